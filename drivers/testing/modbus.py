"""A transcript fake of `ModbusTransport`: exact register requests in, scripted blocks out.

    with expect_modbus(DICING, [
        (Write(100, text_regs("J1", 16)), None),
        (ReadInput(200, 68), Registers(68, base=200).text(200, "J1", 16).u16(216, 3)...),
    ]) as d:
        await d.result("J1")

Requests are `ReadInput(address, count)` (FC4), `ReadHolding(address, count)` (FC3),
`Write(address, values)` (FC6/FC16) and `Identify()` (FC43/14). A read is answered with its
registers (exactly `count` of them; `Registers` builds a block field by field), a write with
`None`, an identification with its objects; `ModbusRefused(exception)` is a Modbus exception
reply, raised as the transport raises it (`ToolBusy` for 6, else `ValueRefused`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self, TypeAlias

from drivers.errors import ToolBusy, ValueRefused
from drivers.interface import ToolInterface
from drivers.modbus_driver import ModbusDriver
from drivers.protocols import modbus_map as mm
from drivers.testing.transcript import (
    LINK_ERRORS,
    FakeClock,
    LinkError,
    Transcript,
    TranscriptStepError,
)
from drivers.transport.modbus import EXCEPTION_NAMES


@dataclass(frozen=True)
class ReadInput:
    address: int
    count: int

    def __str__(self) -> str:
        return f"IR {self.address}+{self.count}"


@dataclass(frozen=True)
class ReadHolding:
    address: int
    count: int

    def __str__(self) -> str:
        return f"HR {self.address}+{self.count}"


@dataclass(frozen=True)
class Write:
    address: int
    values: Sequence[int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))  # compare by value, any sequence

    def __str__(self) -> str:
        return f"HR {self.address}"


@dataclass(frozen=True)
class Identify:
    def __str__(self) -> str:
        return "FC43/14"


@dataclass(frozen=True)
class ModbusRefused:
    """A Modbus exception reply with this exception code (3 illegal value, 6 busy, ...)."""

    exception: int


ModbusRequest: TypeAlias = ReadInput | ReadHolding | Write | Identify
ModbusReply: TypeAlias = Sequence[int] | dict[int, str] | ModbusRefused | LinkError | None
ModbusStep: TypeAlias = tuple[ModbusRequest, ModbusReply] | tuple[ModbusRequest, ModbusReply, float]


class Registers(list[int]):
    """A block of registers starting at `base`, all 0, filled field by field in the map's
    encodings (docs/tools/modbus-map.md): `Registers(114).u16(0, 2).text(10, "J1", 16)`."""

    def __init__(self, count: int, *, base: int = 0) -> None:
        super().__init__([0] * count)
        self.base = base

    def u16(self, address: int, value: int) -> Self:
        return self._put(address, [value])

    def u32(self, address: int, value: int) -> Self:
        return self._put(address, mm.u32_to_regs(value))

    def f32(self, address: int, value: float) -> Self:
        return self._put(address, mm.f32_to_regs(value))

    def text(self, address: int, text: str, n_regs: int) -> Self:
        return self._put(address, mm.str_to_regs(text, n_regs))

    def _put(self, address: int, regs: list[int]) -> Self:
        i = address - self.base
        if i < 0 or i + len(regs) > len(self):
            raise IndexError(
                f"registers {address}..{address + len(regs) - 1} outside this block"
                f" {self.base}..{self.base + len(self) - 1}"
            )
        if not all(0 <= r <= 0xFFFF for r in regs):
            raise ValueError(f"register values {regs} do not fit 16 bits")
        self[i : i + len(regs)] = regs
        return self


def text_regs(text: str, n_regs: int) -> list[int]:
    """A string field as the registers a driver writes (ASCII, NUL-padded)."""
    return mm.str_to_regs(text, n_regs)


class ModbusTranscript(Transcript[ModbusRequest, ModbusReply]):
    """Stands in for `ModbusTransport` (the `ModbusLink` surface)."""

    def __init__(
        self,
        steps: Iterable[ModbusStep],
        *,
        tool_id: str = "TOOL-1",
        timeout: float = 2.0,
        clock: FakeClock | None = None,
    ) -> None:
        super().__init__(steps, tool_id=tool_id, timeout=timeout, clock=clock)

    async def connect(self, timeout: float | None = None) -> None:
        """A TCP connect sends no Modbus request: nothing to check."""

    async def close(self) -> None:
        """Nothing goes on the wire when a link closes; the next call would reopen it."""

    async def read_input(
        self, address: int, count: int, *, timeout: float | None = None
    ) -> list[int]:
        return self._registers(await self._call(ReadInput(address, count), timeout))

    async def read_holding(
        self, address: int, count: int, *, timeout: float | None = None
    ) -> list[int]:
        return self._registers(await self._call(ReadHolding(address, count), timeout))

    async def write(
        self, address: int, values: Sequence[int], *, timeout: float | None = None
    ) -> None:
        await self._call(Write(address, values), timeout)

    async def identify(self, *, timeout: float | None = None) -> dict[int, str]:
        reply = await self._call(Identify(), timeout)
        assert isinstance(reply, dict)
        return dict(reply)

    async def _call(self, request: ModbusRequest, timeout: float | None) -> ModbusReply:
        reply = await self._exchange(request, timeout)
        if isinstance(reply, ModbusRefused):
            code = reply.exception
            name = EXCEPTION_NAMES.get(code, "exception")
            cls = ToolBusy if code == mm.EXC_DEVICE_BUSY else ValueRefused
            raise cls(self.tool_id, f"refused: exception {code} ({name})", str(request))
        return reply

    @staticmethod
    def _registers(reply: ModbusReply) -> list[int]:
        assert isinstance(reply, Sequence) and not isinstance(reply, str)
        return list(reply)

    # -- checks -----------------------------------------------------------------------------

    def _check_step(self, n: int, request: ModbusRequest, reply: ModbusReply) -> None:
        where = f"step {n} ({self._show(request)})"
        if not isinstance(request, ReadInput | ReadHolding | Write | Identify):
            raise TranscriptStepError(f"step {n}: {request!r} is not a Modbus request")
        if isinstance(reply, ModbusRefused) or (
            isinstance(reply, type) and issubclass(reply, LINK_ERRORS)
        ):
            return
        if isinstance(request, ReadInput | ReadHolding):
            if not isinstance(reply, Sequence) or len(reply) != request.count:
                got = len(reply) if isinstance(reply, Sequence) else repr(reply)
                raise TranscriptStepError(f"{where}: needs {request.count} registers, got {got}")
        elif isinstance(request, Write) and reply is not None:
            raise TranscriptStepError(f"{where}: a write is answered with None, not {reply!r}")
        elif isinstance(request, Identify) and not isinstance(reply, dict):
            raise TranscriptStepError(f"{where}: needs a dict of objects, not {reply!r}")

    def _show(self, request: ModbusRequest) -> str:
        if isinstance(request, Write):
            values = ", ".join(str(v) for v in request.values[:8])
            more = f", ... ({len(request.values)} registers)" if len(request.values) > 8 else ""
            return f"Write({request.address}, [{values}{more}])"
        return repr(request)

    def _difference(self, expected: ModbusRequest, actual: ModbusRequest) -> str:
        if not (isinstance(expected, Write) and isinstance(actual, Write)):
            return ""
        if expected.address != actual.address:
            return ""
        if len(expected.values) != len(actual.values):
            return f"\n  {len(expected.values)} registers expected, {len(actual.values)} sent"
        i = next(
            i for i, (a, b) in enumerate(zip(expected.values, actual.values, strict=True)) if a != b
        )
        return (
            f"\n  first difference at register {expected.address + i}:"
            f" expected {expected.values[i]}, got {actual.values[i]}"
        )

    def _where(self, request: ModbusRequest) -> str:
        return str(request)


@contextmanager
def expect_modbus(
    interface: ToolInterface,
    steps: Iterable[ModbusStep],
    *,
    tool_id: str = "TOOL-1",
    **options: float,
) -> Iterator[ModbusDriver]:
    """A `ModbusDriver` for `interface` whose link is a transcript; on leaving the block
    without an error every step must have been sent. `options` as for `expect_scpi`."""
    options.setdefault("poll_max", 0.0)
    link = ModbusTranscript(steps, tool_id=tool_id, timeout=options.get("timeout", 2.0))
    driver = ModbusDriver(tool_id, interface, "fake", 0, **options)
    driver.link = link
    driver.clock = link.clock
    yield driver
    link.assert_done()
