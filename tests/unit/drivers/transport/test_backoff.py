"""Reconnect pacing (drivers/transport/backoff.py): the delay sequence, and retry_until's
promises: it retries only what it is told to, returns the first success, and never sleeps
past its deadline. Delays are milliseconds or the deadline is already near, so nothing here
waits long."""

from __future__ import annotations

import time

import pytest

from drivers.errors import ToolOffline, ToolTimeout
from drivers.transport.backoff import Backoff, retry_until


def test_delays_grow_by_the_factor_up_to_the_maximum() -> None:
    b = Backoff(initial=0.05, maximum=2.0, factor=2.0)
    assert [b.delay(n) for n in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert Backoff().delay(0) == 0.05 and Backoff().delay(100) == 2.0


class Flaky:
    """Fails `failures` times with `error`, then returns the number of calls."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.calls


FAST = Backoff(initial=0.001, maximum=0.002)


async def test_retries_until_the_first_success() -> None:
    attempt = Flaky(3, ToolOffline("T", "refused"))
    result = await retry_until(
        attempt, deadline=time.monotonic() + 60, backoff=FAST, retry_on=(ToolOffline,)
    )
    assert result == 4 and attempt.calls == 4


async def test_an_error_it_was_not_told_to_retry_propagates_at_once() -> None:
    attempt = Flaky(3, KeyError("bug"))
    with pytest.raises(KeyError):
        await retry_until(
            attempt, deadline=time.monotonic() + 60, backoff=FAST, retry_on=(ToolOffline,)
        )
    assert attempt.calls == 1


async def test_the_last_error_propagates_when_the_next_pause_would_pass_the_deadline() -> None:
    """The first pause (10 s) would end after the deadline (1 s): no sleep, one attempt."""
    attempt = Flaky(100, ToolTimeout("T", "no reply"))
    t0 = time.monotonic()
    with pytest.raises(ToolTimeout, match="no reply"):
        await retry_until(
            attempt,
            deadline=t0 + 1.0,
            backoff=Backoff(initial=10.0, maximum=10.0),
            retry_on=(ToolTimeout,),
        )
    assert attempt.calls == 1
    assert time.monotonic() - t0 < 1.0  # gave up without sleeping into the deadline


async def test_a_deadline_already_past_still_makes_one_attempt() -> None:
    attempt = Flaky(0, ToolOffline("T", "x"))
    assert await retry_until(attempt, deadline=0.0, backoff=FAST, retry_on=(ToolOffline,)) == 1
