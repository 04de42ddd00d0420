"""Driver for tools that speak the fabline SCPI command set (docs/tools/scpi-commands.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from drivers.base import (
    CarrierRead,
    ConsumableLevel,
    Identity,
    JobProgress,
    JobResult,
    ToolDriver,
    ToolStatus,
)
from drivers.errors import GarbledReply, ParameterError, ToolError, ToolOffline, ToolTimeout
from drivers.interface import JobState, Operation, ToolInterface, ToolState, Value
from drivers.protocols.scpi_syntax import quote, split_top, unquote
from drivers.transport.scpi import ScpiLink, ScpiTransport

HARDWARE_MISSING = -241  # SCPI error: the job needs a target/bath that is not installed


def _number(text: str) -> float:
    return float(text)


class ScpiDriver(ToolDriver):
    def __init__(
        self, tool_id: str, interface: ToolInterface, resource: str, **options: float
    ) -> None:
        super().__init__(tool_id, **options)
        self.interface = interface
        # a ScpiLink, so tests can put a transcript fake here (drivers/testing)
        self.link: ScpiLink = ScpiTransport(tool_id, resource, timeout=self.timeout)
        self._consumables = {c.name: c for c in interface.consumables}

    async def _identify(self) -> Identity:
        units = await self.link.query("*IDN?")
        fields = self._fields(units, 1, "*IDN?")[0]
        if len(fields) != 4:
            raise GarbledReply(self.tool_id, f"*IDN? gave {units[0]!r}", "*IDN?")
        return Identity(*fields)

    async def _status(self) -> ToolStatus:
        q = "TOOL:STAT?;:TOOL:ALAR?;:TOOL:CONS?;:TOOL:SET?"
        state_f, alarm_f, cons_f, setup_f = self._fields(await self.link.query(q), 4, q)
        try:
            state = ToolState[state_f[0]]
            job_id = unquote(state_f[1]) or None
            progress = _number(state_f[2])
            codes = [int(c) for c in alarm_f[1::2]]
            consumables = []
            for i in range(int(cons_f[0])):
                name, level, limit = cons_f[1 + 3 * i : 4 + 3 * i]
                spec = self._consumables[name.lower()]
                consumables.append(
                    ConsumableLevel(spec.name, spec.unit, float(level), float(limit), spec.supply)
                )
            setup = {
                setup_f[1 + 2 * i].lower(): tuple(unquote(setup_f[2 + 2 * i]).split())
                for i in range(int(setup_f[0]))
            }
        except (KeyError, ValueError, IndexError) as e:
            raise GarbledReply(self.tool_id, f"bad status reply ({e!r})", q) from None
        alarms, warnings = self._split_alarms(codes)
        return ToolStatus(
            self.tool_id, state, job_id, progress, alarms, warnings, tuple(consumables), setup
        )

    async def _start(self, job_id: str, op: Operation, values: Mapping[str, Value]) -> None:
        units = [f"JOB:NEW {quote(job_id)},{op.mnemonic}"]
        for p in op.params:
            v = values[p.name]
            units.append(f":JOB:PAR {p.name.upper()},{v if p.is_choice else format(v, '.9g')}")
        units.append(":JOB:STAR")
        message = ";".join(units)
        try:
            await self.link.command(message)
        except ToolError as e:
            if e.code == HARDWARE_MISSING:
                # the tool's setup changed since we cached it; the refusal stands either way
                with contextlib.suppress(ToolOffline, ToolTimeout, GarbledReply):
                    await self.status()
            raise

    async def _job_progress(self, job_id: str) -> JobProgress:
        q = f"JOB:STAT? {quote(job_id)}"
        (f,) = self._fields(await self.link.query(q), 1, q)
        try:
            return JobProgress(JobState[f[0]], _number(f[1]), int(f[2]))
        except (KeyError, ValueError, IndexError):
            raise GarbledReply(self.tool_id, f"bad job state {f!r}", q) from None

    async def _read_carrier(self, carrier_id: str, expected: tuple[int, ...]) -> CarrierRead:
        q = f"CARR:MAP? {quote(carrier_id)},{quote(''.join(str(x) for x in expected))}"
        (f,) = self._fields(await self.link.query(q), 1, q)
        try:
            tag, states = unquote(f[0]), unquote(f[1])
            return CarrierRead(tag, tuple(int(c) for c in states))
        except (ValueError, IndexError):
            raise GarbledReply(self.tool_id, f"bad slot map {f!r}", q) from None

    async def _result(self, job_id: str) -> JobResult:
        q = f"JOB:RES? {quote(job_id)}"
        (f,) = self._fields(await self.link.query(q), 1, q)
        try:
            state = JobState[f[0]]
            if state is JobState.UNKNOWN:
                return JobResult(job_id, "", state, {})
            op = self.interface.operation(f[1].lower())
            alarm = self.interface.alarm(int(f[2])) if int(f[2]) else None
            n_warnings = int(f[3])
            warnings = tuple(self.interface.alarm(int(c)) for c in f[4 : 4 + n_warnings])
            pairs = f[4 + n_warnings :]
            if len(warnings) != n_warnings or len(pairs) % 2:
                raise ValueError("truncated")
            results = {pairs[i].lower(): float(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        except (KeyError, ValueError, IndexError, ParameterError):
            raise GarbledReply(self.tool_id, f"bad job result {f!r}", q) from None
        return JobResult(job_id, op.name, state, results, alarm, warnings)

    async def _abort(self) -> None:
        await self.link.command("JOB:ABOR")

    async def _clear_alarms(self) -> None:
        await self.link.command("TOOL:ALAR:CLE")

    async def _replace_consumable(self, index: int, name: str) -> None:
        await self.link.command(f"TOOL:CONS:REPL {name.upper()}")

    async def _close(self) -> None:
        await self.link.close()

    def _fields(self, units: list[str], expected: int, where: str) -> list[list[str]]:
        if len(units) != expected:
            raise GarbledReply(
                self.tool_id, f"expected {expected} reply units, got {len(units)}", where
            )
        try:
            return [split_top(u, ",") for u in units]
        except ValueError as e:
            raise GarbledReply(self.tool_id, str(e), where) from None
