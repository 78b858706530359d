"""Names of the pipeline's Beam metrics, shared by the stages and the run summary."""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "anomaly"

# Counters. Every input record is counted once in EVENTS_IN and ends in exactly one of
# SCORED, DUPLICATES or the input-stage dead letters (INVALID + LATE + ENRICHMENT_FAILED).
EVENTS_IN: Final = "events_in"
INVALID: Final = "invalid"
DUPLICATES: Final = "duplicates"
SCORED: Final = "scored"
ANOMALIES: Final = "anomalies"
LATE: Final = "late_events"
ENRICHED: Final = "enriched"
ENRICHMENT_MISSING: Final = "enrichment_missing"
ENRICHMENT_FAILED: Final = "enrichment_failed"
ENTITIES_EXPIRED: Final = "entities_expired"
UNTRACKED_FEATURES: Final = "untracked_features"
SINK_FAILURES: Final = "sink_failures"
# Written by pipeline.triage.
TRIAGE_CALLS: Final = "triage_calls"
TRIAGE_FAILURES: Final = "triage_failures"

# Distributions (integers, milliseconds).
EVENT_TIME_LAG_MS: Final = "event_time_lag_ms"
TRIAGE_LATENCY_MS: Final = "triage_latency_ms"
