"""TriageDetections: annotate each detection with a model triage, within a per-worker budget."""

# Beam's transform constructors and metric methods carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.pvalue import DoOutputsTuple, PCollection, TaggedOutput
from apache_beam.utils import shared

from pipeline.records import DeadLetter, Detection, Triage
from pipeline.triage.budget import TokenBucket
from pipeline.triage.outcome import ERROR_INFERENCE, TriageOutcome
from pipeline.triage.retry import RetryPolicy
from pipeline.triage.vertex_handler import ENDPOINT_PATTERN

_LOG = logging.getLogger(__name__)

HANDLERS: Final = ("local", "vertex", "none")
"""Accepted values of TriageConfig.handler (the pipeline option triage_handler)."""

DETECTIONS: Final = "detections"
"""Output tag: every input detection exactly once, with `triage` set."""

DEAD_LETTERS: Final = "dead_letters"
"""Output tag: one DeadLetter (stage "triage") per detection whose triage failed."""

METRICS_NAMESPACE: Final = "anomaly"
STAGE: Final = "triage"

_WITHIN_BUDGET = "within_budget"
_OVER_BUDGET = "over_budget"


def check_max_per_second(
    max_per_second: float,
    handler: str,
    *,
    rate_name: str = "triage max_per_second",
    handler_none: str = "triage handler 'none'",
) -> None:
    """Raise ValueError unless `max_per_second` is a finite number above 0.

    The rate is checked for every handler, so a mistyped value never passes
    unnoticed. The message names the value as `rate_name` and gives the fix for
    `handler`. Turning triage off with `handler_none` is offered only when the
    handler triages, because handler "none" makes no calls and ignores the rate.
    """
    if math.isfinite(max_per_second) and max_per_second > 0:
        return
    if handler == "none":
        fix = (
            f"pass a finite number above 0 or omit it, because {handler_none} makes no triage calls"
        )
    else:
        fix = f"pass a finite number above 0, or use {handler_none} to turn triage off"
    raise ValueError(f"{rate_name} {max_per_second!r} is invalid; {fix}")


@dataclass(frozen=True)
class TriageConfig:
    """Settings of the triage stage.

    `handler` picks the model: "local" runs the embedded Gemma 3 270M on each
    worker, "vertex" calls `vertex_endpoint`, and "none" marks every detection
    skipped without loading a model. `max_per_second` and `burst` size the
    token bucket of each SDK worker process (see TokenBucket); `burst` None
    means one second's worth. `retry` bounds the attempts per model call.
    `share_model_across_processes` makes the local handler load one model per
    worker machine instead of one per SDK process, for GPU workers.
    """

    handler: str = "none"
    vertex_endpoint: str | None = None
    max_per_second: float = 1.0
    burst: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_batch_size: int = 4
    use_dedicated_endpoint: bool = False
    share_model_across_processes: bool = False

    def __post_init__(self) -> None:
        if self.handler not in HANDLERS:
            raise ValueError(
                f"triage handler {self.handler!r} is invalid; use one of {', '.join(HANDLERS)}"
            )
        if self.handler == "vertex" and (
            self.vertex_endpoint is None or not ENDPOINT_PATTERN.match(self.vertex_endpoint)
        ):
            raise ValueError(
                f"vertex_endpoint {self.vertex_endpoint!r} is invalid for triage handler "
                "'vertex'; pass projects/PROJECT/locations/REGION/endpoints/ENDPOINT_ID"
            )
        check_max_per_second(self.max_per_second, self.handler)
        if self.burst is not None and (not math.isfinite(self.burst) or self.burst < 1):
            raise ValueError(f"triage burst {self.burst!r} is invalid; pass a number >= 1 or None")
        if self.max_batch_size < 1:
            raise ValueError(
                f"triage max_batch_size {self.max_batch_size!r} is invalid; pass 1 or more"
            )

    def build_model_handler(self) -> ModelHandler[Detection, PredictionResult, Any]:
        """Return the RunInference model handler for `handler` ("local" or "vertex")."""
        if self.handler == "local":
            from pipeline.triage.local_handler import LocalGemmaHandler

            return LocalGemmaHandler(
                retry=self.retry,
                max_batch_size=self.max_batch_size,
                share_across_processes=self.share_model_across_processes,
            )
        if self.handler == "vertex":
            from pipeline.triage.vertex_handler import VertexGemmaHandler

            assert self.vertex_endpoint is not None  # checked in __post_init__
            return VertexGemmaHandler(
                self.vertex_endpoint,
                retry=self.retry,
                max_batch_size=self.max_batch_size,
                use_dedicated_endpoint=self.use_dedicated_endpoint,
            )
        raise ValueError("triage handler 'none' uses no model handler")


@dataclass(frozen=True)
class _Annotated:
    """A detection with its triage set, and what the metrics and dead letters need."""

    detection: Detection
    outcome: TriageOutcome | None = None
    over_budget: bool = False


class _ApplyBudget(beam.DoFn):  # type: ignore[misc]
    """Pass detections on while the process's token bucket has tokens; mark the rest skipped."""

    def __init__(self, rate: float, burst: float | None, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        # The Shared handle's key travels with the pickled DoFn, so every copy
        # of this DoFn in one SDK process gets the same bucket.
        self._shared = shared.Shared()
        self._bucket: TokenBucket | None = None

    def setup(self) -> None:
        self._bucket = self._shared.acquire(
            lambda: TokenBucket(self._rate, self._burst, self._clock)
        )

    def process(self, detection: Detection) -> Iterator[Any]:
        assert self._bucket is not None
        if self._bucket.try_acquire():
            yield detection
            return

        reason = (
            f"over the triage budget of {self._rate:g} per second per worker process; "
            "raise triage_max_per_second to triage more"
        )
        skipped = detection.with_triage(Triage(status="skipped", reason=reason))
        yield TaggedOutput(_OVER_BUDGET, _Annotated(skipped, over_budget=True))


def _annotate_prediction(result: PredictionResult) -> _Annotated:
    detection = cast(Detection, result.example)
    outcome = cast(TriageOutcome, result.inference)
    return _Annotated(detection.with_triage(outcome.to_triage()), outcome=outcome)


def _annotate_failed_batch(failure: tuple[Any, Any]) -> Iterator[_Annotated]:
    """Fail every detection of a batch whose RunInference call raised."""
    batch, error_info = failure
    error_text = error_info[1] if isinstance(error_info, tuple) else repr(error_info)
    message = f"triage model call raised: {error_text}"
    _LOG.error("triage of %d detection(s) failed: %s", len(batch), error_text)
    for detection in batch:
        outcome = TriageOutcome(
            status="failed",
            model="unknown",
            attempts=1,
            latency_ms=None,
            error_code=ERROR_INFERENCE,
            error_message=message,
        )
        yield _Annotated(
            detection.with_triage(Triage(status="failed", reason=message)), outcome=outcome
        )


def _skip_all(detection: Detection) -> _Annotated:
    reason = "triage is off (triage_handler=none)"
    return _Annotated(detection.with_triage(Triage(status="skipped", reason=reason)))


class _EmitAndCount(beam.DoFn):  # type: ignore[misc]
    """Emit each annotated detection, dead-letter failed ones, and update the metrics."""

    def __init__(self) -> None:
        self._calls = Metrics.counter(METRICS_NAMESPACE, "triage_calls")
        self._done = Metrics.counter(METRICS_NAMESPACE, "triage_done")
        self._skipped = Metrics.counter(METRICS_NAMESPACE, "triage_skipped")
        self._over_budget = Metrics.counter(METRICS_NAMESPACE, "triage_over_budget")
        self._failures = Metrics.counter(METRICS_NAMESPACE, "triage_failures")
        self._retries = Metrics.counter(METRICS_NAMESPACE, "triage_retries")
        self._latency = Metrics.distribution(METRICS_NAMESPACE, "triage_latency_ms")

    def process(self, annotated: _Annotated) -> Iterator[Any]:
        detection = annotated.detection
        outcome = annotated.outcome
        status = detection.triage.status if detection.triage else "skipped"

        if status == "skipped":
            self._skipped.inc()
            if annotated.over_budget:
                self._over_budget.inc()
        if outcome is not None:
            self._calls.inc()
            self._retries.inc(max(0, outcome.attempts - 1))
            if outcome.latency_ms is not None:
                self._latency.update(round(outcome.latency_ms))
        if status == "done":
            self._done.inc()

        yield detection

        if status == "failed":
            self._failures.inc()
            yield TaggedOutput(DEAD_LETTERS, _dead_letter(detection, outcome))


def _dead_letter(detection: Detection, outcome: TriageOutcome | None) -> DeadLetter:
    try:
        payload = detection.to_json_line()
    except (TypeError, ValueError):
        # A non-finite feature value cannot be written as JSON; keep it readable.
        payload = json.dumps({"event_id": detection.event_id, "detection": repr(detection)})
    reason = detection.triage.reason if detection.triage else None
    return DeadLetter.for_payload(
        payload,
        error_code=(outcome.error_code if outcome and outcome.error_code else ERROR_INFERENCE),
        error_message=reason or "triage failed without a reason",
        stage=STAGE,
        event_id=detection.event_id,
    )


class TriageDetections(beam.PTransform[PCollection[Detection], DoOutputsTuple]):  # type: ignore[misc]
    """Annotate every detection with a Gemma triage; never drop or alter the detection.

    Input: PCollection[Detection]. Output: a tagged tuple whose DETECTIONS
    output contains each input detection exactly once with `triage` set (done,
    skipped or failed), and whose DEAD_LETTERS output contains a DeadLetter for
    each failed triage. Only `triage` changes, so `is_anomaly` and the score
    are what the detector decided.

    The budget is applied before RunInference, so a detection over budget
    never waits for the model. `model_handler` replaces the handler that
    `config.handler` selects (tests pass a fake), and `clock` feeds the token
    bucket.
    """

    def __init__(
        self,
        config: TriageConfig,
        *,
        model_handler: ModelHandler[Detection, PredictionResult, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._config = config
        self._model_handler = model_handler
        self._clock = clock

    def expand(self, detections: PCollection[Detection]) -> DoOutputsTuple:
        if self._config.handler == "none" and self._model_handler is None:
            annotated = detections | "SkipAll" >> beam.Map(_skip_all)
        else:
            annotated = self._triage(detections)

        outputs: DoOutputsTuple = annotated | "Emit" >> beam.ParDo(_EmitAndCount()).with_outputs(
            DEAD_LETTERS, main=DETECTIONS
        )
        return outputs

    def _triage(self, detections: PCollection[Detection]) -> PCollection[_Annotated]:
        budgeted = detections | "Budget" >> beam.ParDo(
            _ApplyBudget(self._config.max_per_second, self._config.burst, self._clock)
        ).with_outputs(_OVER_BUDGET, main=_WITHIN_BUDGET)

        handler = self._model_handler or self._config.build_model_handler()
        results, failed = (
            budgeted[_WITHIN_BUDGET] | "Infer" >> RunInference(handler).with_exception_handling()
        )

        inferred = results | "Annotate" >> beam.Map(_annotate_prediction)
        crashed = failed.failed_inferences | "FailBatch" >> beam.FlatMap(_annotate_failed_batch)
        branches: Sequence[PCollection[_Annotated]] = (budgeted[_OVER_BUDGET], inferred, crashed)
        merged: PCollection[_Annotated] = branches | "Merge" >> beam.Flatten()
        return merged
