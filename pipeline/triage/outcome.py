"""Per-detection result of a model call, shared by the local and Vertex AI handlers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from apache_beam.ml.inference.base import PredictionResult

from pipeline.records import Detection, Triage
from pipeline.triage.retry import RetriesExhaustedError
from pipeline.triage.verdict import InvalidModelOutputError, Verdict, parse_verdict

_LOG = logging.getLogger(__name__)

ERROR_INFERENCE = "triage_inference_error"
"""Dead-letter error code: the model call raised on every allowed attempt."""

ERROR_INVALID_OUTPUT = "triage_invalid_output"
"""Dead-letter error code: the model returned text without a valid verdict."""


@dataclass(frozen=True)
class TriageOutcome:
    """Result of triaging one detection: a verdict, or the reason there is none.

    `latency_ms` covers the model call that produced the outcome, retries and
    backoff included. For a batched remote request it is the latency of the
    whole request, which every detection in the batch waited for. It is None
    when the call raised out of the handler and was never timed.
    """

    status: Literal["done", "failed"]
    model: str
    attempts: int
    latency_ms: float | None
    verdict: Verdict | None = None
    error_code: str | None = None
    error_message: str | None = None

    def to_triage(self) -> Triage:
        """Return the Triage annotation that this outcome puts on the detection."""
        if self.verdict is not None:
            return Triage(
                status="done",
                severity=self.verdict.severity,
                summary=self.verdict.summary,
                model=self.model,
            )
        return Triage(status="failed", model=self.model, reason=self.error_message)


def parse_outcome(
    text: str, *, event_id: str, model: str, attempts: int, latency_ms: float
) -> TriageOutcome:
    """Turn model text into a done outcome, or a failed one naming the parse error."""
    try:
        verdict = parse_verdict(text)
    except InvalidModelOutputError as error:
        _LOG.warning("triage of event %s by %s returned invalid output: %s", event_id, model, error)
        return TriageOutcome(
            status="failed",
            model=model,
            attempts=attempts,
            latency_ms=latency_ms,
            error_code=ERROR_INVALID_OUTPUT,
            error_message=str(error),
        )
    return TriageOutcome(
        status="done", model=model, attempts=attempts, latency_ms=latency_ms, verdict=verdict
    )


def failed_outcome(error: RetriesExhaustedError, *, model: str, latency_ms: float) -> TriageOutcome:
    """Return the failed outcome for a call that raised on its last allowed attempt."""
    return TriageOutcome(
        status="failed",
        model=model,
        attempts=error.attempts,
        latency_ms=latency_ms,
        error_code=ERROR_INFERENCE,
        error_message=(
            f"model call failed after {error.attempts} attempt(s): "
            f"{type(error.error).__name__}: {error.error}"
        ),
    )


def prediction_result(
    detection: Detection, outcome: TriageOutcome, model_id: str
) -> PredictionResult:
    """Pair a detection with its outcome, the element type RunInference emits."""
    return PredictionResult(detection, outcome, model_id)  # type: ignore[no-untyped-call]
