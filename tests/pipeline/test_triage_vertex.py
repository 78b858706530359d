"""Tests for the Vertex AI triage handler against a fake prediction client."""

# google-api-core's exception constructors carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as api_exceptions

from pipeline.triage.outcome import ERROR_INFERENCE, ERROR_INVALID_OUTPUT
from pipeline.triage.retry import RetryPolicy
from pipeline.triage.samples import make_detection, sample_detections
from pipeline.triage.vertex_handler import VertexGemmaHandler, is_transient

ENDPOINT = "projects/demo-project/locations/europe-west4/endpoints/1234567890"
GOOD = '{"severity": "high", "summary": "amount is 52 standard deviations above baseline"}'


class FakeClient:
    """Records requests and replays queued responses: a list of predictions or an error."""

    def __init__(self, *responses: list[object] | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[tuple[list[dict[str, Any]], float]] = []

    def predict(self, instances, timeout):
        self.requests.append((instances, timeout))
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response


def make_handler(client: FakeClient, sleeps: list[float] | None = None, **kwargs):
    return VertexGemmaHandler(
        ENDPOINT,
        client_factory=lambda: client,
        sleep=(sleeps if sleeps is not None else []).append,
        jitter=lambda: 1.0,
        **kwargs,
    )


def run(handler: VertexGemmaHandler, batch):
    """Return the TriageOutcome of each detection, checking it is paired with its example."""
    results = list(handler.run_inference(batch, handler.load_model()))
    assert [result.example for result in results] == list(batch)
    return [result.inference for result in results]


def test_request_shape():
    client = FakeClient([GOOD, GOOD])
    handler = make_handler(client, max_tokens=200, timeout_s=12.5)
    batch = sample_detections()[:2]
    run(handler, batch)

    [(instances, timeout)] = client.requests
    assert timeout == 12.5
    assert len(instances) == 2
    for instance in instances:
        assert set(instance) == {
            "prompt",
            "max_tokens",
            "temperature",
            "top_p",
            "top_k",
            "raw_response",
        }
        assert instance["max_tokens"] == 200
        assert instance["temperature"] == 0.0
        assert instance["raw_response"] is True
        assert str(instance["prompt"]).startswith("<start_of_turn>user\n")
        assert str(instance["prompt"]).endswith("<start_of_turn>model\n")
    assert '"evt-card-1"' in instances[0]["prompt"]
    assert '"evt-host-7"' in instances[1]["prompt"]


@pytest.mark.parametrize(
    "prediction",
    [
        GOOD,
        f"Prompt:\n<start_of_turn>user\nignored {{}}\nOutput:\n{GOOD}",
        f"```json\n{GOOD}\n```",
        {"output": GOOD},
    ],
)
def test_prediction_parses(prediction):
    [outcome] = run(make_handler(FakeClient([prediction])), [make_detection()])
    assert outcome.status == "done"
    assert outcome.verdict is not None
    assert outcome.verdict.severity == "high"
    assert outcome.model == ENDPOINT
    assert outcome.attempts == 1


def test_bad_output_fails_only_its_detection():
    client = FakeClient(
        [GOOD, "I cannot help with that.", '{"severity": "extreme", "summary": "x"}']
    )
    outcomes = run(make_handler(client), sample_detections())

    assert [outcome.status for outcome in outcomes] == ["done", "failed", "failed"]
    assert outcomes[1].error_code == ERROR_INVALID_OUTPUT
    assert "contains no JSON object" in (outcomes[1].error_message or "")
    assert "severity 'extreme'" in (outcomes[2].error_message or "")
    assert len(client.requests) == 1


def test_transient_errors_are_retried():
    sleeps: list[float] = []
    client = FakeClient(
        api_exceptions.ServiceUnavailable("endpoint warming up"),
        api_exceptions.TooManyRequests("quota"),
        [GOOD],
    )
    [outcome] = run(
        make_handler(client, sleeps, retry=RetryPolicy(max_attempts=3)), [make_detection()]
    )

    assert outcome.status == "done"
    assert outcome.attempts == 3
    assert len(client.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_exhausted_retries_fail_whole_batch():
    sleeps: list[float] = []
    client = FakeClient(*(api_exceptions.ServiceUnavailable(f"down {i}") for i in range(3)))
    handler = make_handler(client, sleeps, retry=RetryPolicy(max_attempts=3))
    outcomes = run(handler, sample_detections())

    assert [outcome.status for outcome in outcomes] == ["failed"] * 3
    assert {outcome.error_code for outcome in outcomes} == {ERROR_INFERENCE}
    assert "after 3 attempt(s): ServiceUnavailable" in (outcomes[0].error_message or "")
    assert len(client.requests) == 3
    assert len(sleeps) == 2


def test_permanent_error_is_not_retried():
    client = FakeClient(api_exceptions.PermissionDenied("aiplatform.endpoints.predict denied"))
    [outcome] = run(make_handler(client), [make_detection()])

    assert outcome.status == "failed"
    assert outcome.attempts == 1
    assert "PermissionDenied" in (outcome.error_message or "")
    assert len(client.requests) == 1


def test_prediction_count_mismatch_fails_batch():
    client = FakeClient([GOOD])
    outcomes = run(make_handler(client), sample_detections()[:2])

    assert [outcome.status for outcome in outcomes] == ["failed", "failed"]
    assert "returned 1 predictions for 2 instances" in (outcomes[0].error_message or "")
    assert len(client.requests) == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (api_exceptions.ServiceUnavailable("x"), True),
        (api_exceptions.TooManyRequests("x"), True),
        (api_exceptions.InternalServerError("x"), True),
        (api_exceptions.DeadlineExceeded("x"), True),
        (ConnectionResetError("x"), True),
        (TimeoutError("x"), True),
        (api_exceptions.InvalidArgument("x"), False),
        (api_exceptions.PermissionDenied("x"), False),
        (api_exceptions.NotFound("x"), False),
        (ValueError("x"), False),
    ],
)
def test_is_transient(error, expected):
    assert is_transient(error) is expected


@pytest.mark.parametrize(
    "endpoint",
    [
        "",
        "1234567890",
        "projects/p/locations/r/endpoints/",
        "projects/p/locations/europe-west4/endpoints/abc",
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/r/endpoints/1",
    ],
)
def test_handler_rejects_bad_endpoint(endpoint):
    with pytest.raises(ValueError, match="projects/PROJECT/locations/REGION/endpoints/ENDPOINT_ID"):
        VertexGemmaHandler(endpoint)


def test_client_is_built_in_load_model():
    built: list[FakeClient] = []

    def factory():
        built.append(FakeClient())
        return built[-1]

    handler = VertexGemmaHandler(ENDPOINT, client_factory=factory)
    assert built == []
    assert handler.load_model() is built[0]
