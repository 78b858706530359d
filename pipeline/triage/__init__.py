"""Gemma triage of flagged anomalies: prompt, budget, RunInference handlers and the transform."""

from pipeline.triage.beam_memory import restore_memory_probe
from pipeline.triage.retry import RetryPolicy
from pipeline.triage.transform import (
    DEAD_LETTERS,
    DETECTIONS,
    HANDLERS,
    TriageConfig,
    TriageDetections,
    check_max_per_second,
)

__all__ = [
    "DEAD_LETTERS",
    "DETECTIONS",
    "HANDLERS",
    "RetryPolicy",
    "TriageConfig",
    "TriageDetections",
    "check_max_per_second",
]

# Python imports this package before any triage module, on the launcher and on each
# worker that unpickles the triage step, so the probe is restored before a model loads.
restore_memory_probe()
