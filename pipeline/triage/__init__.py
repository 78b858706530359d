"""Gemma triage of flagged anomalies: prompt, budget, RunInference handlers and the transform."""

from pipeline.triage.retry import RetryPolicy
from pipeline.triage.transform import (
    DEAD_LETTERS,
    DETECTIONS,
    HANDLERS,
    TriageConfig,
    TriageDetections,
)

__all__ = [
    "DEAD_LETTERS",
    "DETECTIONS",
    "HANDLERS",
    "RetryPolicy",
    "TriageConfig",
    "TriageDetections",
]
