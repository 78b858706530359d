"""Tests for the triage token bucket and retry policy, with a fake clock and sleep."""

from __future__ import annotations

import pytest

from pipeline.triage.budget import TokenBucket
from pipeline.triage.retry import RetriesExhaustedError, RetryPolicy, call_with_retry


class FakeClock:
    """Clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def take(bucket: TokenBucket, count: int) -> list[bool]:
    return [bucket.try_acquire() for _ in range(count)]


def test_bucket_burst_beyond_capacity_is_rejected():
    bucket = TokenBucket(rate=2.0, capacity=5, clock=FakeClock())
    assert take(bucket, 8) == [True] * 5 + [False] * 3


def test_bucket_refills_at_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=5, clock=clock)
    take(bucket, 5)

    clock.now += 1.0
    assert take(bucket, 3) == [True, True, False]


def test_bucket_refill_stops_at_capacity():
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, capacity=3, clock=clock)
    take(bucket, 3)

    clock.now += 60.0
    assert take(bucket, 5) == [True] * 3 + [False] * 2


def test_bucket_partial_token_is_not_enough():
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, capacity=1, clock=clock)
    take(bucket, 1)

    clock.now += 0.5
    assert bucket.try_acquire() is False
    clock.now += 0.5
    assert bucket.try_acquire() is True


def test_bucket_ignores_clock_going_back():
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, capacity=1, clock=clock)
    take(bucket, 1)

    clock.now -= 100.0
    assert bucket.try_acquire() is False


@pytest.mark.parametrize(("rate", "expected"), [(0.2, 1.0), (1.0, 1.0), (25.0, 25.0)])
def test_bucket_default_capacity(rate, expected):
    assert TokenBucket(rate=rate, clock=FakeClock()).capacity == expected


@pytest.mark.parametrize(
    ("rate", "capacity", "message"),
    [
        (0.0, None, "token bucket rate 0.0 is invalid"),
        (-1.0, None, "token bucket rate -1.0 is invalid"),
        (float("nan"), None, "token bucket rate nan is invalid"),
        (float("inf"), None, "token bucket rate inf is invalid"),
        (1.0, 0.5, "token bucket capacity 0.5 is invalid"),
    ],
)
def test_bucket_rejects_bad_settings(rate, capacity, message):
    with pytest.raises(ValueError, match=message):
        TokenBucket(rate=rate, capacity=capacity, clock=FakeClock())


class Flaky:
    """Callable that raises the queued errors in order, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retry_succeeds_after_transient_errors():
    sleeps: list[float] = []
    call = Flaky(ConnectionError("reset"), ConnectionError("reset"))
    result, attempts = call_with_retry(
        call, RetryPolicy(max_attempts=3), lambda _: True, sleep=sleeps.append, jitter=lambda: 1.0
    )
    assert result == "ok"
    assert attempts == 3
    assert sleeps == [0.5, 1.0]


def test_retry_gives_up_after_max_attempts():
    sleeps: list[float] = []
    call = Flaky(*(ConnectionError(f"reset {i}") for i in range(5)))
    with pytest.raises(RetriesExhaustedError, match="failed after 3 attempt") as raised:
        call_with_retry(
            call,
            RetryPolicy(max_attempts=3),
            lambda _: True,
            sleep=sleeps.append,
            jitter=lambda: 0.0,
        )
    assert raised.value.attempts == 3
    assert isinstance(raised.value.error, ConnectionError)
    assert call.calls == 3
    assert sleeps == [0.25, 0.5]


def test_retry_stops_on_permanent_error():
    sleeps: list[float] = []
    call = Flaky(ValueError("bad request"))
    with pytest.raises(RetriesExhaustedError, match="failed after 1 attempt"):
        call_with_retry(
            call,
            RetryPolicy(),
            lambda error: not isinstance(error, ValueError),
            sleep=sleeps.append,
            jitter=lambda: 1.0,
        )
    assert call.calls == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("retry_number", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (9, 5.0)]
)
def test_backoff_grows_to_cap(retry_number, expected):
    assert RetryPolicy().backoff_s(retry_number, jitter=1.0) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "retry max_attempts 0 is invalid"),
        ({"initial_backoff_s": -1.0}, "retry initial_backoff_s -1.0 is invalid"),
        ({"max_backoff_s": float("nan")}, "retry max_backoff_s nan is invalid"),
        ({"multiplier": 0.5}, "retry multiplier 0.5 is invalid"),
    ],
)
def test_retry_policy_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)
