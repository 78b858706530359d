"""Tests for TriageDetections on the DirectRunner, with handler none and with fake handlers."""

# Beam's pipeline and metric APIs and google-api-core's exceptions carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from google.api_core import exceptions as api_exceptions

from pipeline.records import Detection
from pipeline.triage import DEAD_LETTERS, DETECTIONS, RetryPolicy, TriageConfig, TriageDetections
from pipeline.triage.local_handler import LocalGemmaHandler
from pipeline.triage.outcome import ERROR_INFERENCE, ERROR_INVALID_OUTPUT, TriageOutcome
from pipeline.triage.samples import make_detection
from pipeline.triage.verdict import Verdict
from pipeline.triage.vertex_handler import VertexGemmaHandler

ENDPOINT = "projects/demo-project/locations/europe-west4/endpoints/1234567890"


class FakeModel:
    """Stand-in model; Beam's shared handle needs an object it can weakly reference."""

    name = "fake-model"


class FakeHandler(ModelHandler[Detection, PredictionResult, FakeModel]):  # type: ignore[misc]
    """Fake handler keyed on event id: "bad" returns invalid output, "boom" raises for the batch."""

    def __init__(self, max_batch_size: int = 1) -> None:
        super().__init__(max_batch_size=max_batch_size)

    def load_model(self):
        return FakeModel()

    def run_inference(self, batch, model, inference_args=None):
        if any("boom" in detection.event_id for detection in batch):
            raise RuntimeError("model crashed")
        outcomes = []
        for detection in batch:
            if "bad" in detection.event_id:
                outcomes.append(
                    TriageOutcome(
                        status="failed",
                        model=model.name,
                        attempts=2,
                        latency_ms=40.0,
                        error_code=ERROR_INVALID_OUTPUT,
                        error_message="model output contains no JSON object: 'hmm'",
                    )
                )
            else:
                outcomes.append(
                    TriageOutcome(
                        status="done",
                        model=model.name,
                        attempts=1,
                        latency_ms=25.0,
                        verdict=Verdict("high", f"summary of {detection.event_id}"),
                    )
                )
        return [
            PredictionResult(detection, outcome, model.name)
            for detection, outcome in zip(batch, outcomes, strict=True)
        ]


class FrozenClock:
    """Clock that never advances, so the token bucket never refills."""

    def __call__(self) -> float:
        return 50.0


def detections(*event_ids: str) -> list[Detection]:
    return [
        make_detection(event_id=event_id, message=f"message {event_id}") for event_id in event_ids
    ]


# The DirectRunner runs in this process, so a module-level store survives the
# pickling of the collecting step (module functions are pickled by reference).
_COLLECTED: dict[str, list[Any]] = {}


def _collect(element: Any, key: str) -> None:
    _COLLECTED.setdefault(key, []).append(element)


def run_triage(
    inputs: list[Detection], config: TriageConfig, **transform_kwargs: Any
) -> tuple[list[Any], list[Any], dict[str, int], dict[str, Any]]:
    """Run TriageDetections and return (detections, dead letters, counters, distributions)."""
    run_id = uuid.uuid4().hex
    pipeline = beam.Pipeline()
    outputs = (
        pipeline
        | beam.Create(inputs, reshuffle=False)
        | TriageDetections(config, **transform_kwargs)
    )
    _ = outputs[DETECTIONS] | "KeepDetections" >> beam.Map(_collect, f"{run_id}-out")
    _ = outputs[DEAD_LETTERS] | "KeepDeadLetters" >> beam.Map(_collect, f"{run_id}-dead")
    result = pipeline.run()
    result.wait_until_finish()

    query = result.metrics().query(MetricsFilter().with_namespace("anomaly"))
    counters = {metric.key.metric.name: metric.committed for metric in query["counters"]}
    distributions = {metric.key.metric.name: metric.committed for metric in query["distributions"]}
    return (
        _COLLECTED.pop(f"{run_id}-out", []),
        _COLLECTED.pop(f"{run_id}-dead", []),
        counters,
        distributions,
    )


def by_id(items: list[Any]) -> dict[str, Any]:
    return {item.event_id: item for item in items}


def without_triage(detection: Detection) -> Detection:
    return dataclasses.replace(detection, triage=None)


def test_none_skips_every_detection_once():
    inputs = detections("a", "b", "c")
    out, dead, counters, _ = run_triage(inputs, TriageConfig(handler="none"))

    assert sorted(d.event_id for d in out) == ["a", "b", "c"]
    assert {d.triage.status for d in out} == {"skipped"}
    assert {d.triage.reason for d in out} == {"triage is off (triage_handler=none)"}
    assert dead == []
    assert counters["triage_skipped"] == 3
    assert "triage_calls" not in counters


def test_fake_handler_every_detection_exactly_once():
    inputs = detections("ok-1", "bad-1", "ok-2", "boom-1", "ok-3")
    config = TriageConfig(handler="local", max_per_second=100.0)
    out, _, counters, distributions = run_triage(inputs, config, model_handler=FakeHandler())

    assert Counter(d.event_id for d in out) == Counter(d.event_id for d in inputs)
    statuses = {d.event_id: d.triage.status for d in out}
    assert statuses == {
        "ok-1": "done",
        "ok-2": "done",
        "ok-3": "done",
        "bad-1": "failed",
        "boom-1": "failed",
    }
    assert by_id(out)["ok-1"].triage.summary == "summary of ok-1"
    assert by_id(out)["ok-1"].triage.severity == "high"
    assert by_id(out)["ok-1"].triage.model == "fake-model"

    assert counters["triage_calls"] == 5
    assert counters["triage_done"] == 3
    assert counters["triage_failures"] == 2
    assert counters["triage_retries"] == 1
    # The batch that raised was never timed, so 4 of the 5 calls have a latency.
    assert distributions["triage_latency_ms"].count == 4
    assert distributions["triage_latency_ms"].min == 25
    assert distributions["triage_latency_ms"].max == 40


def test_failures_go_to_dead_letter():
    inputs = detections("ok-1", "bad-1", "boom-1")
    config = TriageConfig(handler="local", max_per_second=100.0)
    out, dead, _, _ = run_triage(inputs, config, model_handler=FakeHandler())

    letters = by_id(dead)
    assert sorted(letters) == ["bad-1", "boom-1"]
    assert {letter.stage for letter in dead} == {"triage"}
    assert letters["bad-1"].error_code == ERROR_INVALID_OUTPUT
    assert "contains no JSON object" in letters["bad-1"].error_message
    assert letters["boom-1"].error_code == ERROR_INFERENCE
    assert "model crashed" in letters["boom-1"].error_message
    assert '"event_id": "bad-1"' in letters["bad-1"].payload
    assert by_id(out)["boom-1"].triage.reason == letters["boom-1"].error_message


def test_batch_failure_fails_only_that_batch():
    inputs = detections("ok-1", "boom-1", "ok-2", "ok-3")
    config = TriageConfig(handler="local", max_per_second=100.0)
    out, dead, _, _ = run_triage(inputs, config, model_handler=FakeHandler(max_batch_size=1))

    assert {d.event_id for d in out if d.triage.status == "done"} == {"ok-1", "ok-2", "ok-3"}
    assert [letter.event_id for letter in dead] == ["boom-1"]


def test_budget_skips_burst_beyond_capacity():
    inputs = detections(*(f"ok-{i}" for i in range(7)))
    config = TriageConfig(handler="local", max_per_second=1.0, burst=3)
    out, dead, counters, _ = run_triage(
        inputs, config, model_handler=FakeHandler(), clock=FrozenClock()
    )

    statuses = Counter(d.triage.status for d in out)
    assert statuses == {"done": 3, "skipped": 4}
    skipped = [d for d in out if d.triage.status == "skipped"]
    assert all("over the triage budget of 1 per second" in d.triage.reason for d in skipped)
    assert dead == []
    assert counters["triage_over_budget"] == 4
    assert counters["triage_skipped"] == 4
    assert counters["triage_calls"] == 3


def test_triage_changes_only_triage_field():
    inputs = detections("ok-1", "bad-1", "boom-1")
    config = TriageConfig(handler="local", max_per_second=100.0)
    out, _, _, _ = run_triage(inputs, config, model_handler=FakeHandler())

    originals = by_id(inputs)
    for detection in out:
        assert detection.is_anomaly is True
        assert detection.triage is not None
        assert without_triage(detection) == originals[detection.event_id]


def test_vertex_config_builds_handler_without_client():
    handler = TriageConfig(handler="vertex", vertex_endpoint=ENDPOINT).build_model_handler()
    assert type(handler).__name__ == "VertexGemmaHandler"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"handler": "gemini"},
            "triage handler 'gemini' is invalid; use one of local, vertex, none",
        ),
        ({"handler": "vertex"}, "vertex_endpoint None is invalid for triage handler 'vertex'"),
        (
            {"handler": "vertex", "vertex_endpoint": "endpoints/1"},
            "vertex_endpoint 'endpoints/1' is invalid",
        ),
        ({"max_per_second": 0.0}, "triage max_per_second 0.0 is invalid"),
        ({"max_per_second": float("inf")}, "triage max_per_second inf is invalid"),
        ({"burst": 0.5}, "triage burst 0.5 is invalid"),
        ({"max_batch_size": 0}, "triage max_batch_size 0 is invalid"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TriageConfig(**kwargs)


@pytest.mark.parametrize(
    ("handler", "fix"),
    [
        ("none", "omit it, because triage handler 'none' makes no triage calls"),
        ("local", "or use triage handler 'none' to turn triage off"),
        ("vertex", "or use triage handler 'none' to turn triage off"),
    ],
)
def test_config_rate_fix_fits_handler(handler, fix):
    with pytest.raises(ValueError, match=r"triage max_per_second 0\.0 is invalid") as error:
        TriageConfig(handler=handler, vertex_endpoint=ENDPOINT, max_per_second=0.0)
    message = str(error.value)
    assert message.startswith("triage max_per_second 0.0 is invalid; pass a finite number above 0")
    assert message.endswith(fix)


def test_config_passes_local_settings():
    config = TriageConfig(
        handler="local",
        retry=RetryPolicy(max_attempts=5),
        max_batch_size=2,
        share_model_across_processes=True,
    )
    handler = config.build_model_handler()
    assert isinstance(handler, LocalGemmaHandler)
    assert handler._retry.max_attempts == 5
    assert handler.batch_elements_kwargs() == {"max_batch_size": 2}
    assert handler.share_model_across_processes() is True


def test_config_none_has_no_model_handler():
    with pytest.raises(ValueError, match="triage handler 'none' uses no model handler"):
        TriageConfig(handler="none").build_model_handler()


class UnavailableEndpoint:
    """Prediction client whose endpoint always returns HTTP 503."""

    def predict(self, instances, timeout):
        raise api_exceptions.ServiceUnavailable("endpoint is scaling up")


def no_sleep(seconds: float) -> None:
    del seconds


def test_vertex_retries_then_dead_letters():
    handler = VertexGemmaHandler(
        ENDPOINT,
        client_factory=UnavailableEndpoint,
        retry=RetryPolicy(max_attempts=3),
        sleep=no_sleep,
        max_batch_size=2,
    )
    inputs = detections("v-1", "v-2", "v-3")
    config = TriageConfig(handler="vertex", vertex_endpoint=ENDPOINT, max_per_second=100.0)
    out, dead, counters, _ = run_triage(inputs, config, model_handler=handler)

    assert sorted(d.event_id for d in out) == ["v-1", "v-2", "v-3"]
    assert {d.triage.status for d in out} == {"failed"}
    assert sorted(letter.event_id for letter in dead) == ["v-1", "v-2", "v-3"]
    assert {letter.error_code for letter in dead} == {ERROR_INFERENCE}
    assert all("after 3 attempt(s): ServiceUnavailable" in letter.error_message for letter in dead)
    assert counters["triage_retries"] == 6
    assert counters["triage_failures"] == 3
