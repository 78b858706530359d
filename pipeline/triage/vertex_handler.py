"""RunInference model handler for Gemma served by vLLM on a Vertex AI endpoint."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline.records import Detection
from pipeline.triage.outcome import failed_outcome, parse_outcome, prediction_result
from pipeline.triage.prompt import build_prompt
from pipeline.triage.retry import RetriesExhaustedError, RetryPolicy, call_with_retry

_LOG = logging.getLogger(__name__)

ENDPOINT_PATTERN = re.compile(r"^projects/[^/\s]+/locations/[a-z0-9-]+/endpoints/[0-9]+$")
"""Full resource name of a Vertex AI endpoint."""

# The Model Garden vLLM image puts "Prompt:\n<prompt>\nOutput:\n" before the
# generated text unless raw_response is true. The parser removes that prefix
# too, in case a deployment ignores the flag.
_ECHO_PATTERN = re.compile(r"^Prompt:\n.*?\nOutput:\n", re.DOTALL)


class PredictionClient(Protocol):
    """The one call the handler needs from a Vertex AI endpoint."""

    def predict(self, instances: list[dict[str, Any]], timeout: float) -> Sequence[Any]:
        """Send `instances` and return one prediction per instance, in order."""
        ...


class AiplatformEndpointClient:
    """PredictionClient backed by `google.cloud.aiplatform.Endpoint.predict`."""

    def __init__(self, endpoint_name: str, *, use_dedicated_endpoint: bool) -> None:
        from google.cloud import aiplatform

        # Endpoint() takes the project and region from the resource name and
        # builds a regional client. It fetches the endpoint resource only when a
        # dedicated endpoint's DNS name is needed.
        self._endpoint = aiplatform.Endpoint(endpoint_name)
        self._dedicated = use_dedicated_endpoint

    def predict(self, instances: list[dict[str, Any]], timeout: float) -> Sequence[Any]:
        """Call the endpoint and return `predictions` from the response."""
        response = self._endpoint.predict(
            instances=instances, timeout=timeout, use_dedicated_endpoint=self._dedicated
        )
        return list(response.predictions)


def is_transient(error: Exception) -> bool:
    """Return True for errors that a later identical request may not hit.

    These are HTTP 408, 429, 500, 502, 503 and 504 (DeadlineExceeded is a
    504) from google-api-core, plus connection failures and timeouts. A 400,
    403 or 404 means the request or the setup is wrong, and repeating it only
    adds latency.
    """
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    transient = (
        api_exceptions.TooManyRequests,
        api_exceptions.InternalServerError,
        api_exceptions.BadGateway,
        api_exceptions.ServiceUnavailable,
        api_exceptions.GatewayTimeout,
        auth_exceptions.TransportError,
        ConnectionError,
        TimeoutError,
    )
    if isinstance(error, transient):
        return True
    return isinstance(error, api_exceptions.GoogleAPICallError) and error.code == 408


class VertexGemmaHandler(ModelHandler[Detection, PredictionResult, PredictionClient]):  # type: ignore[misc]
    """Triage detections with Gemma served by vLLM on a Vertex AI endpoint.

    One request carries the whole batch, one instance per detection, in the
    shape of the Model Garden vLLM container: `prompt`, `max_tokens`,
    `temperature`, `top_p`, `top_k` and `raw_response`. The response has one
    generated text per instance. A request that fails on every attempt fails
    each detection in the batch. A prediction that does not parse fails only
    its own detection.

    `model_name` is written to `triage.model` and defaults to the endpoint's
    resource name. `client_factory` builds the client in `load_model`, on the
    worker, so the pipeline graph never holds credentials. Tests pass a fake.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        model_name: str | None = None,
        max_tokens: int = 256,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        max_batch_size: int = 8,
        use_dedicated_endpoint: bool = False,
        client_factory: Callable[[], PredictionClient] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not ENDPOINT_PATTERN.match(endpoint):
            raise ValueError(
                f"Vertex AI endpoint {endpoint!r} is invalid; pass the full resource name "
                "projects/PROJECT/locations/REGION/endpoints/ENDPOINT_ID"
            )
        if timeout_s <= 0:
            raise ValueError(f"timeout_s {timeout_s!r} is invalid; pass seconds above 0")
        super().__init__(max_batch_size=max_batch_size)
        self._endpoint = endpoint
        self._model_name = model_name or endpoint
        self._max_tokens = max_tokens
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._dedicated = use_dedicated_endpoint
        self._client_factory = client_factory
        self._sleep = sleep
        self._jitter = jitter

    def load_model(self) -> PredictionClient:
        """Build the prediction client: the injected factory's, or an aiplatform Endpoint."""
        if self._client_factory is not None:
            return self._client_factory()
        return AiplatformEndpointClient(self._endpoint, use_dedicated_endpoint=self._dedicated)

    def build_instances(self, batch: Sequence[Detection]) -> list[dict[str, Any]]:
        """Return the request instances for a batch, one per detection."""
        # NOTE: the field names follow Google's Model Garden notebooks for the
        # vLLM serving image (predict route /generate). A deployment with a
        # different serving container may expect another request shape.
        return [
            {
                "prompt": build_prompt(detection).gemma_turns(),
                "max_tokens": self._max_tokens,
                "temperature": 0.0,
                "top_p": 1.0,
                "top_k": 1,
                "raw_response": True,
            }
            for detection in batch
        ]

    def run_inference(
        self,
        batch: Sequence[Detection],
        model: PredictionClient,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Send the batch in one request and return one PredictionResult per detection.

        Each result has the detection as `example` and a TriageOutcome as `inference`.
        """
        instances = self.build_instances(batch)
        event_ids = ", ".join(detection.event_id for detection in batch)
        started = time.perf_counter()
        try:
            predictions, attempts = call_with_retry(
                lambda: self._predict(model, instances),
                self._retry,
                is_transient,
                sleep=self._sleep,
                jitter=self._jitter,
                description=f"Vertex AI triage of events {event_ids}",
            )
        except RetriesExhaustedError as error:
            latency_ms = (time.perf_counter() - started) * 1000.0
            _LOG.error("Vertex AI triage of events %s failed: %s", event_ids, error)
            outcome = failed_outcome(error, model=self._model_name, latency_ms=latency_ms)
            return [prediction_result(detection, outcome, self._endpoint) for detection in batch]

        latency_ms = (time.perf_counter() - started) * 1000.0
        return [
            prediction_result(
                detection,
                parse_outcome(
                    _prediction_text(prediction),
                    event_id=detection.event_id,
                    model=self._model_name,
                    attempts=attempts,
                    latency_ms=latency_ms,
                ),
                self._endpoint,
            )
            for detection, prediction in zip(batch, predictions, strict=True)
        ]

    def get_metrics_namespace(self) -> str:
        """Return the namespace of the metrics Beam's RunInference reports for this handler."""
        return "anomaly"

    def _predict(self, client: PredictionClient, instances: list[dict[str, Any]]) -> list[Any]:
        predictions = list(client.predict(instances, self._timeout_s))
        if len(predictions) != len(instances):
            # Retrying cannot realign predictions with detections, so this is
            # raised as a non-transient error and fails the whole batch.
            raise ValueError(
                f"endpoint {self._endpoint} returned {len(predictions)} predictions "
                f"for {len(instances)} instances"
            )
        return predictions


def _prediction_text(prediction: Any) -> str:
    """Return the generated text of one prediction, without an echoed prompt."""
    if isinstance(prediction, str):
        text = prediction
    elif isinstance(prediction, dict) and isinstance(prediction.get("output"), str):
        # NOTE: some serving images answer {"output": ...}; plain text is the
        # documented form for the vLLM image.
        text = prediction["output"]
    else:
        text = str(prediction)
    return _ECHO_PATTERN.sub("", text, count=1)
