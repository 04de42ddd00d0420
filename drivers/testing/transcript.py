"""The core both transcript fakes share: expected requests in order, scripted replies, a clock.

A transcript is a list of steps `(request, reply)` or `(request, reply, seconds)`. Each call
the driver makes must be the next step's request exactly; anything else, or steps left over
at the end, fails the test with the expected and the actual request side by side. A reply is
either the data the real transport would return or a scripted failure; a link error is given
as its class (`ToolTimeout`) and raised the way the transport raises it, naming the tool and
the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeAlias, TypeVar

from drivers.errors import GarbledReply, ToolOffline, ToolTimeout

RequestT = TypeVar("RequestT")
ReplyT = TypeVar("ReplyT")

LinkError: TypeAlias = type[ToolOffline] | type[ToolTimeout] | type[GarbledReply]
"""A scripted link failure: the reply never came, or came as noise."""

LINK_ERRORS: tuple[LinkError, ...] = (ToolOffline, ToolTimeout, GarbledReply)


class TranscriptError(AssertionError):
    """The driver sent something the transcript did not expect, or left steps unsent."""


class TranscriptStepError(TypeError):
    """A step that cannot be one (a reply that cannot answer its request): a mistake in the
    test, reported when the transcript is built."""


@dataclass
class FakeClock:
    """Virtual seconds for `ToolDriver.clock`: they pass only when a step says so, so a link
    budget or a wait timeout is tested exactly and at once."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Transcript(Generic[RequestT, ReplyT]):
    """Checks requests against the script in order and hands out the scripted replies.

    A step's optional third element is how many seconds it takes on `clock`; by default a
    scripted `ToolTimeout` takes the call's full timeout (as a real one does) and everything
    else takes no time."""

    def __init__(
        self,
        steps: Iterable[tuple[RequestT, ReplyT] | tuple[RequestT, ReplyT, float]],
        *,
        tool_id: str,
        timeout: float,
        clock: FakeClock | None,
    ) -> None:
        self.tool_id = tool_id
        self.timeout = timeout
        self.clock = clock if clock is not None else FakeClock()
        self.steps: list[tuple[RequestT, ReplyT, float | None]] = []
        for step in steps:
            request, reply, *rest = step
            self.steps.append((request, reply, rest[0] if rest else None))
            self._check_step(len(self.steps), request, reply)
        self.sent: list[RequestT] = []  # every request the driver made, in order
        self._problem: TranscriptError | None = None

    @property
    def done(self) -> bool:
        return len(self.sent) >= len(self.steps)

    def assert_done(self) -> None:
        """Fail if a request went wrong (even one the driver swallowed) or steps are left."""
        if self._problem is not None:
            raise self._problem
        if not self.done:
            n = len(self.sent)
            left = len(self.steps) - n
            raise TranscriptError(
                f"{self.tool_id}: {left} step(s) of the transcript never sent; next expected"
                f" step {n + 1}: {self._show(self.steps[n][0])}"
            )

    # -- for the protocol fakes -------------------------------------------------------------

    async def _exchange(self, request: RequestT, timeout: float | None) -> ReplyT:
        """Take the next step for `request`: return its reply or raise its link error. A
        suspension point follows, as on a real link, so concurrent callers can interleave
        (and a missing lock in the driver shows as requests out of order)."""
        reply = self._take(request, timeout)
        await asyncio.sleep(0)
        if isinstance(reply, type) and issubclass(reply, LINK_ERRORS):
            raise reply(self.tool_id, f"scripted {reply.__name__}", self._where(request))
        return reply

    def _take(self, request: RequestT, timeout: float | None) -> ReplyT:
        if self._problem is not None:
            raise self._problem
        n = len(self.sent)
        self.sent.append(request)
        if n >= len(self.steps):
            self._fail(
                f"step {n + 1}: unexpected {self._show(request)}; the transcript ended after"
                f" {len(self.steps)} step(s)"
            )
        expected, reply, seconds = self.steps[n]
        if request != expected:
            self._fail(
                f"step {n + 1} of {len(self.steps)}:\n  expected {self._show(expected)}\n"
                f"  got      {self._show(request)}{self._difference(expected, request)}"
            )
        if seconds is None:
            seconds = (timeout or self.timeout) if reply is ToolTimeout else 0.0
        self.clock.advance(seconds)
        return reply

    def _fail(self, text: str) -> NoReturn:
        self._problem = TranscriptError(f"{self.tool_id}: {text}")
        raise self._problem

    # -- per protocol -----------------------------------------------------------------------

    def _check_step(self, n: int, request: RequestT, reply: ReplyT) -> None:
        """Refuse a step whose reply cannot answer its request (a mistake in the test)."""

    def _show(self, request: RequestT) -> str:
        return repr(request)

    def _difference(self, expected: RequestT, actual: RequestT) -> str:
        return ""

    def _where(self, request: RequestT) -> str:
        return str(request)
