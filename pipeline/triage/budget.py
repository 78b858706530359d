"""Token bucket that caps how many detections per second go to the model."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe token bucket: `rate` tokens per second, at most `capacity` stored.

    The bucket starts full, so a quiet stream can absorb a burst of `capacity`
    detections at once, and after that admits `rate` per second on average.
    `try_acquire` does not wait for a token. A caller over budget gets False at
    once, which keeps a burst of anomalies from stalling the stream behind slow
    model calls.

    `clock` returns seconds from any fixed origin. Tests pass a fake clock, so
    refill is checked without sleeping. The default is `time.monotonic`, which
    is immune to wall-clock jumps.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(
                f"token bucket rate {rate!r} is invalid; pass a finite number of "
                "detections per second above 0, or set the triage handler to 'none' "
                "to turn triage off"
            )
        resolved_capacity = max(1.0, rate) if capacity is None else capacity
        if not math.isfinite(resolved_capacity) or resolved_capacity < 1:
            raise ValueError(
                f"token bucket capacity {capacity!r} is invalid; pass a finite number "
                "of at least 1, or None for one second of rate"
            )

        self.rate = rate
        self.capacity = resolved_capacity
        self._clock = clock
        self._tokens = resolved_capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take one token and return True, or return False when the bucket is empty."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now

            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
