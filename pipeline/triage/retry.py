"""Bounded retry with exponential backoff for model calls."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

_LOG = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt limit and backoff schedule for a failed model call.

    Retry n, counting from 1, waits
    `min(max_backoff_s, initial_backoff_s * multiplier ** (n - 1))` seconds
    times a random factor between 0.5 and 1.0, so that many workers failing
    together do not retry in lockstep. The defaults allow 3 attempts with waits
    of up to 0.5 s and 1 s, so they add at most 1.5 s of waiting to a detection.
    That keeps a flaky endpoint from holding a streaming bundle for long.
    """

    max_attempts: int = 3
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(
                f"retry max_attempts {self.max_attempts!r} is invalid; pass 1 for no "
                "retries or a larger whole number"
            )
        for name in ("initial_backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"retry {name} {value!r} is invalid; pass seconds >= 0")
        if not math.isfinite(self.multiplier) or self.multiplier < 1:
            raise ValueError(f"retry multiplier {self.multiplier!r} is invalid; pass a number >= 1")

    def backoff_s(self, retry_number: int, jitter: float) -> float:
        """Return the delay in seconds before retry `retry_number`, counting from 1.

        `jitter`, between 0 and 1, sets the factor between 0.5 and 1.0 that
        scales the full delay.
        """
        full = min(
            self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry_number - 1)
        )
        return full * (0.5 + 0.5 * jitter)


class RetriesExhaustedError(Exception):
    """Raised when the last allowed attempt failed; `__cause__` is its error."""

    def __init__(self, attempts: int, error: BaseException) -> None:
        super().__init__(f"failed after {attempts} attempt(s): {type(error).__name__}: {error}")
        self.attempts = attempts
        self.error = error


def call_with_retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    is_retryable: Callable[[Exception], bool],
    *,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    description: str = "model call",
) -> tuple[T, int]:
    """Run `call` until it succeeds, and return its result and the attempt count.

    An exception that `is_retryable` rejects ends the loop at once, because
    repeating a bad request or a permission error only adds latency.

    Raises:
        RetriesExhaustedError: the last attempt failed or the error was not retryable.
    """
    attempt = 1
    while True:
        try:
            return call(), attempt
        except Exception as error:
            if attempt >= policy.max_attempts or not is_retryable(error):
                raise RetriesExhaustedError(attempt, error) from error

            delay = policy.backoff_s(attempt, jitter())
            _LOG.warning(
                "%s failed on attempt %d of %d, retrying in %.2f s: %s: %s",
                description,
                attempt,
                policy.max_attempts,
                delay,
                type(error).__name__,
                error,
            )
            sleep(delay)
            attempt += 1
