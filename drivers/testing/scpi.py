"""A transcript fake of `ScpiTransport`: exact messages in, scripted reply units out.

    with expect_scpi(SPUTTER, [
        ('JOB:STAT? "J1"', "RUNNING,50.0,0"),
        ('JOB:STAT? "J1"', ToolTimeout),
        ('JOB:STAT? "J1"', "COMPLETE,100.0,0"),
        ('JOB:RES? "J1"', "COMPLETE,DEPOSIT,0,THICKNESS,301.2"),
    ]) as d:
        await d.wait("J1")

A message is what the driver hands the transport (the transport itself appends
`;:SYST:ERR?`). A reply is the line the tool would send before its error unit, `""` for a
command; `ScpiRefused(code, text)` is a refusal read from the error queue, raised as the
transport raises it (`ToolBusy` for -213 and -200, else `ValueRefused`, with the code).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeAlias

from drivers.errors import GarbledReply, ToolBusy, ValueRefused
from drivers.interface import ToolInterface
from drivers.protocols.scpi_syntax import split_top
from drivers.scpi_driver import ScpiDriver
from drivers.testing.transcript import (
    LINK_ERRORS,
    FakeClock,
    LinkError,
    Transcript,
    TranscriptStepError,
)
from drivers.transport.scpi import BUSY_CODES


@dataclass(frozen=True)
class ScpiRefused:
    """The tool refused the message: `SYST:ERR?` answered `code,"text"`."""

    code: int
    text: str = ""


ScpiReply: TypeAlias = str | ScpiRefused | LinkError
ScpiStep: TypeAlias = tuple[str, ScpiReply] | tuple[str, ScpiReply, float]


class ScpiTranscript(Transcript[str, ScpiReply]):
    """Stands in for `ScpiTransport` (the `ScpiLink` surface)."""

    def __init__(
        self,
        steps: Iterable[ScpiStep],
        *,
        tool_id: str = "TOOL-1",
        timeout: float = 2.0,
        clock: FakeClock | None = None,
    ) -> None:
        super().__init__(steps, tool_id=tool_id, timeout=timeout, clock=clock)
        self.resource = f"fake::{tool_id}"
        self.identity: str | None = None

    async def connect(self, timeout: float | None = None) -> str:
        """Opening a real link sends `*IDN?`; so does this, as the next step."""
        units = await self.query("*IDN?", timeout=timeout)
        self.identity = ";".join(units)
        return self.identity

    async def query(
        self, message: str, *, timeout: float | None = None, idempotent: bool = True
    ) -> list[str]:
        reply = await self._exchange(message, timeout)
        if isinstance(reply, ScpiRefused):
            cls = ToolBusy if reply.code in BUSY_CODES else ValueRefused
            raise cls(self.tool_id, f"refused: {reply.code} {reply.text}", message, code=reply.code)
        assert isinstance(reply, str)  # link errors were raised by _exchange
        try:
            return split_top(reply, ";") if reply else []
        except ValueError:  # as the transport does with a line it cannot split
            raise GarbledReply(self.tool_id, f"garbled reply {reply[:80]!r}", message) from None

    async def command(self, message: str, *, timeout: float | None = None) -> None:
        units = await self.query(message, timeout=timeout, idempotent=False)
        if units:
            raise GarbledReply(self.tool_id, f"unexpected reply {units!r}", message)

    async def close(self) -> None:
        """Nothing goes on the wire when a link closes; the next call would reopen it."""

    def _check_step(self, n: int, request: str, reply: ScpiReply) -> None:
        if not isinstance(request, str):
            raise TranscriptStepError(f"step {n}: a message is a str, not {request!r}")
        ok = isinstance(reply, str | ScpiRefused) or (
            isinstance(reply, type) and issubclass(reply, LINK_ERRORS)
        )
        if not ok:
            raise TranscriptStepError(
                f"step {n} ({request!r}): reply {reply!r} is not a reply line, ScpiRefused,"
                " ToolOffline, ToolTimeout or GarbledReply"
            )


@contextmanager
def expect_scpi(
    interface: ToolInterface,
    steps: Iterable[ScpiStep],
    *,
    tool_id: str = "TOOL-1",
    **options: float,
) -> Iterator[ScpiDriver]:
    """A `ScpiDriver` for `interface` whose link is a transcript; on leaving the block
    without an error every step must have been sent. `options` are the driver's (timeout,
    link_budget, ...); polls do not pause unless `poll_max` is given. The driver's clock is
    the transcript's `FakeClock`, reachable as `driver.link.clock`."""
    options.setdefault("poll_max", 0.0)
    link = ScpiTranscript(steps, tool_id=tool_id, timeout=options.get("timeout", 2.0))
    driver = ScpiDriver(tool_id, interface, link.resource, **options)
    driver.link = link
    driver.clock = link.clock
    yield driver
    link.assert_done()
