"""Gemma triage rate: the project's local handler against bare llama-cpp-python on the same prompts.

Both paths load the same GGUF with the same context size, threads and GPU layers, and
generate greedily under the same grammar and repeat penalty. The handler path calls
`LocalGemmaHandler.run_inference` on one detection at a time, so it pays for prompt
building, the model lock, the retry wrapper, its own token sampler and verdict
parsing. The bare path calls `llama_cpp.Llama.create_completion` on prompts built
before timing. Calls alternate between the paths (handler first on even prompts,
bare first on odd ones), so load from other processes falls on both alike.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from benchmarks.memory import max_rss_mib
from pipeline.contract import ContractError, parse_event
from pipeline.detector import Detector, FeatureState
from pipeline.records import Detection, Event
from pipeline.scoring import detection_for
from pipeline.triage.local_handler import LocalGemma, LocalGemmaHandler, assemble_embedded_model
from pipeline.triage.outcome import TriageOutcome
from pipeline.triage.prompt import build_prompt
from pipeline.triage.samples import sample_detections
from pipeline.triage.verdict import RESPONSE_SCHEMA

_LOG = logging.getLogger(__name__)

# Generation settings of both paths. The handler takes N_CTX, SEED and MAX_TOKENS as
# arguments. LocalGemma decodes with its own greedy sampler, which its docstring
# describes as picking the same tokens as create_completion with temperature 0, a
# repeat penalty of 1.1 and the verdict grammar, so the bare path passes those.
# NOTE: the settings are copied, not shared. The benchmark compares the two paths'
# output texts, so a change on one side shows up as outputs that differ.
N_CTX: Final = 8192
SEED: Final = 0
MAX_TOKENS: Final = 128
TEMPERATURE: Final = 0.0
REPEAT_PENALTY: Final = 1.1

HANDLER: Final = "handler"
BARE: Final = "bare"


@dataclass(frozen=True)
class PathResult:
    """Timed calls of one path: the wall time of each call, in prompt order."""

    path: str
    call_seconds: tuple[float, ...]
    generated_tokens: int

    @property
    def calls(self) -> int:
        """Number of timed calls."""
        return len(self.call_seconds)

    @property
    def seconds(self) -> float:
        """Summed wall time of the calls."""
        return sum(self.call_seconds)

    @property
    def calls_per_second(self) -> float:
        """Model calls per second of call time."""
        return self.calls / self.seconds

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of call time."""
        return self.generated_tokens / self.seconds

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict, rates included."""
        return {
            "path": self.path,
            "call_seconds": list(self.call_seconds),
            "calls": self.calls,
            "seconds": self.seconds,
            "generated_tokens": self.generated_tokens,
            "calls_per_second": self.calls_per_second,
            "tokens_per_second": self.tokens_per_second,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PathResult:
        """Rebuild a result from `to_json` output."""
        return cls(
            path=str(data["path"]),
            call_seconds=tuple(float(value) for value in data["call_seconds"]),
            generated_tokens=int(data["generated_tokens"]),
        )


@dataclass(frozen=True)
class TriageResult:
    """Both paths' figures and the settings they ran with.

    `identical_outputs` counts prompts where both paths generated the same text,
    `verdicts_done` the handler calls that produced a valid verdict.
    """

    handler: PathResult
    bare: PathResult
    prompts: int
    distinct_prompts: int
    prompt_source: str
    identical_outputs: int
    verdicts_done: int
    n_threads: int
    n_gpu_layers: int
    model_path: str
    llama_cpp_version: str
    max_rss_mib: float

    def paired_ratio(self) -> float:
        """Median over prompts of bare call time / handler call time for the same prompt.

        The two calls on one prompt run back to back, so load from other processes
        mostly hits both, and one slow call moves the median less than the sums.
        """
        return statistics.median(
            bare / handler
            for bare, handler in zip(self.bare.call_seconds, self.handler.call_seconds, strict=True)
        )

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return {
            "paired_ratio": self.paired_ratio(),
            "handler": self.handler.to_json(),
            "bare": self.bare.to_json(),
            "prompts": self.prompts,
            "distinct_prompts": self.distinct_prompts,
            "prompt_source": self.prompt_source,
            "identical_outputs": self.identical_outputs,
            "verdicts_done": self.verdicts_done,
            "n_threads": self.n_threads,
            "n_gpu_layers": self.n_gpu_layers,
            "model_path": self.model_path,
            "llama_cpp_version": self.llama_cpp_version,
            "max_rss_mib": self.max_rss_mib,
            "settings": {
                "n_ctx": N_CTX,
                "seed": SEED,
                "max_tokens": MAX_TOKENS,
                "temperature": TEMPERATURE,
                "repeat_penalty": REPEAT_PENALTY,
                "grammar": "verdict JSON schema",
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TriageResult:
        """Rebuild a result from `to_json` output, as the triage subprocess prints it."""
        return cls(
            handler=PathResult.from_json(data["handler"]),
            bare=PathResult.from_json(data["bare"]),
            prompts=int(data["prompts"]),
            distinct_prompts=int(data["distinct_prompts"]),
            prompt_source=str(data["prompt_source"]),
            identical_outputs=int(data["identical_outputs"]),
            verdicts_done=int(data["verdicts_done"]),
            n_threads=int(data["n_threads"]),
            n_gpu_layers=int(data["n_gpu_layers"]),
            model_path=str(data["model_path"]),
            llama_cpp_version=str(data["llama_cpp_version"]),
            max_rss_mib=float(data["max_rss_mib"]),
        )


def detections_from_payloads(payloads: Iterable[bytes], limit: int) -> list[Detection]:
    """Score the payloads with the project's detector and return up to `limit` detections.

    Events are scored per entity in (event_time, event_id) order, as the pipeline
    scores them, and each anomaly becomes a Detection with the fields ScoreEvents
    fills. Its detected_at is the event time, so the result does not depend on the
    clock. Payloads that break the event contract are skipped, because only scored
    events reach triage.
    """
    if limit < 1:
        raise ValueError(f"limit={limit} is invalid; pass 1 or more")
    events: list[Event] = []
    for payload in payloads:
        try:
            events.append(parse_event(payload))
        except ContractError:
            continue
    events.sort(key=lambda event: (event.event_time, event.event_id))

    detector = Detector()
    states: dict[str, dict[str, FeatureState]] = {}
    detections: list[Detection] = []
    for event in events:
        score, states[event.entity_id] = detector.score(
            states.get(event.entity_id, {}), event.features, event.event_time
        )
        if not score.is_anomaly:
            continue
        detections.append(detection_for(event, score, detector.name, event.event_time))
        if len(detections) == limit:
            break
    return detections


def select_prompts(payloads: Sequence[bytes], count: int) -> tuple[list[Detection], str]:
    """Return `count` detections to triage and a description of where they come from.

    Detections come from the benchmark input. When it has fewer anomalies than
    `count`, they repeat in order. When it has none, the three triage sample
    detections take their place.
    """
    if count < 1:
        raise ValueError(f"triage prompts={count} is invalid; pass 1 or more")
    found = detections_from_payloads(payloads, count)
    source = f"{len(found)} detection(s) the project's detector flags in the input"
    if not found:
        found = sample_detections()
        source = f"the input has no anomaly; {len(found)} sample detections instead"
    selected = [found[index % len(found)] for index in range(count)]
    return selected, source


class _RecordingModel:
    """Wrapper that the handler calls in place of LocalGemma, keeping each generated text."""

    def __init__(self, model: LocalGemma) -> None:
        self._model = model
        self.texts: list[str] = []

    def complete(self, prompt: str) -> str:
        text = self._model.complete(prompt)
        self.texts.append(text)
        return text

    def close(self) -> None:
        self._model.close()


class _BareGemma:
    """llama_cpp.Llama with the generation settings of the handler, called directly."""

    def __init__(self, model_path: Path, n_threads: int | None, n_gpu_layers: int) -> None:
        import llama_cpp

        self.n_gpu_layers = n_gpu_layers
        self.llama = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=N_CTX,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            seed=SEED,
            verbose=False,
        )
        self._grammar = llama_cpp.llama_grammar.LlamaGrammar.from_json_schema(
            json.dumps(RESPONSE_SCHEMA), verbose=False
        )

    def complete(self, prompt: str) -> tuple[str, int]:
        """Return the generated text and its token count for one prompt."""
        # The handler clears the KV cache before every call, so this path does too.
        self.llama.reset()  # type: ignore[no-untyped-call]
        response: Any = self.llama.create_completion(
            prompt=prompt,
            max_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
            seed=SEED,
            grammar=self._grammar,
            repeat_penalty=REPEAT_PENALTY,
        )
        return str(response["choices"][0]["text"]), int(response["usage"]["completion_tokens"])

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens `text` encodes to, without a BOS token."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def run_triage(
    payloads: Sequence[bytes],
    prompts: int,
    *,
    n_threads: int | None = None,
    model_path: Path | None = None,
    warm_up: bool = True,
) -> TriageResult:
    """Time `prompts` calls on each path, after one untimed warm-up call each.

    Loads two copies of the model in this process, so the peak memory covers both.
    `warm_up` False skips the warm-up calls, for tests that check outputs, not times.
    """
    import llama_cpp

    detections, source = select_prompts(payloads, prompts)
    path = model_path or assemble_embedded_model()
    gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0

    handler = LocalGemmaHandler(
        model_path=str(path),
        n_ctx=N_CTX,
        n_threads=n_threads,
        n_gpu_layers=gpu_layers,
        seed=SEED,
        max_tokens=MAX_TOKENS,
    )
    handler_model = _RecordingModel(handler.load_model())
    bare = _BareGemma(path, n_threads, gpu_layers)
    try:
        return _time_paths(
            handler,
            handler_model,
            bare,
            detections,
            source=source,
            model_path=str(path),
            warm_up=warm_up,
        )
    finally:
        handler_model.close()
        bare.llama.close()


def _time_paths(
    handler: LocalGemmaHandler,
    handler_model: _RecordingModel,
    bare: _BareGemma,
    detections: Sequence[Detection],
    *,
    source: str,
    model_path: str,
    warm_up: bool,
) -> TriageResult:
    import llama_cpp

    model = cast(LocalGemma, handler_model)
    prompt_texts = [build_prompt(detection).gemma_turns() for detection in detections]

    if warm_up:
        handler.run_inference(detections[:1], model)
        bare.complete(prompt_texts[0])
        handler_model.texts.clear()

    handler_seconds: list[float] = []
    bare_seconds: list[float] = []
    bare_texts: list[str] = []
    bare_tokens: list[int] = []
    done = 0
    for index, detection in enumerate(detections):
        handler_first = index % 2 == 0
        if not handler_first:
            seconds, text, tokens = _timed_bare(bare, prompt_texts[index])
            bare_seconds.append(seconds)
        started = time.perf_counter()
        [result] = handler.run_inference([detection], model)
        handler_seconds.append(time.perf_counter() - started)
        if handler_first:
            seconds, text, tokens = _timed_bare(bare, prompt_texts[index])
            bare_seconds.append(seconds)
        bare_texts.append(text)
        bare_tokens.append(tokens)
        outcome = cast(TriageOutcome, result.inference)
        if outcome.status == "done":
            done += 1
        else:
            _LOG.warning(
                "handler triage of %s failed: %s", detection.event_id, outcome.error_message
            )

    handler_tokens = 0
    identical = 0
    for handler_text, bare_text, tokens in zip(
        handler_model.texts, bare_texts, bare_tokens, strict=True
    ):
        if handler_text == bare_text:
            identical += 1
            handler_tokens += tokens
        else:
            handler_tokens += bare.count_tokens(handler_text)

    return TriageResult(
        handler=PathResult(HANDLER, tuple(handler_seconds), handler_tokens),
        bare=PathResult(BARE, tuple(bare_seconds), sum(bare_tokens)),
        prompts=len(detections),
        distinct_prompts=len(set(prompt_texts)),
        prompt_source=source,
        identical_outputs=identical,
        verdicts_done=done,
        n_threads=int(bare.llama.n_threads),
        n_gpu_layers=bare.n_gpu_layers,
        model_path=model_path,
        llama_cpp_version=str(llama_cpp.__version__),
        max_rss_mib=max_rss_mib(),
    )


def _timed_bare(bare: _BareGemma, prompt: str) -> tuple[float, str, int]:
    started = time.perf_counter()
    text, tokens = bare.complete(prompt)
    return time.perf_counter() - started, text, tokens
