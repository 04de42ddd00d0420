"""Driver for tools that publish the fabline Modbus register map (docs/tools/modbus-map.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

from drivers.base import (
    CarrierRead,
    ConsumableLevel,
    Identity,
    JobProgress,
    JobResult,
    ToolDriver,
    ToolStatus,
)
from drivers.errors import (
    GarbledReply,
    ToolBusy,
    ToolError,
    ToolOffline,
    ToolTimeout,
    ValueRefused,
)
from drivers.interface import JobState, Operation, ToolInterface, ToolState, Value
from drivers.protocols import modbus_map as mm
from drivers.transport.modbus import ModbusLink, ModbusTransport

# Tool state -> state of the tool's current job, for the one-read progress poll. IDLE and
# ALARM are left out: they say nothing certain about the last job (IDLE after its alarm was
# cleared, ALARM raised after it completed), so those polls ask for the job by id.
_JOB_STATE_OF_TOOL = {
    ToolState.SETUP: JobState.SETUP,
    ToolState.RUNNING: JobState.RUNNING,
    ToolState.COMPLETE: JobState.COMPLETE,
    ToolState.ABORTED: JobState.ABORTED,
}


class ModbusDriver(ToolDriver):
    def __init__(
        self, tool_id: str, interface: ToolInterface, host: str, port: int, **options: float
    ) -> None:
        super().__init__(tool_id, **options)
        self.interface = interface
        # a ModbusLink, so tests can put a transcript fake here (drivers/testing)
        self.link: ModbusLink = ModbusTransport(tool_id, host, port, timeout=self.timeout)
        # selecting a job (HR write) and reading it back (IR read) must not interleave
        self._query_lock = asyncio.Lock()

    async def _identify(self) -> Identity:
        info = await self.link.identify()
        try:
            return Identity(
                vendor=info[mm.OBJ_VENDOR],
                model=info[mm.OBJ_PRODUCT_CODE],
                serial=info.get(mm.OBJ_SERIAL, ""),
                revision=info[mm.OBJ_REVISION],
            )
        except KeyError as e:
            raise GarbledReply(
                self.tool_id, f"identification lacks object {e}", "FC43/14"
            ) from None

    async def _status(self) -> ToolStatus:
        r = await self.link.read_input(0, mm.STATUS_BLOCK)
        try:
            state = ToolState(r[mm.IR_STATE])
        except ValueError:
            raise GarbledReply(self.tool_id, f"unknown state {r[mm.IR_STATE]}", "IR 0") from None
        job_id = mm.regs_to_str(r[mm.IR_JOB_ID : mm.IR_JOB_ID + mm.JOB_ID_REGS]) or None
        codes = list(r[mm.IR_ALARM_CODES : mm.IR_ALARM_CODES + mm.ALARM_SLOTS])
        codes += r[mm.IR_WARNING_CODES : mm.IR_WARNING_CODES + mm.WARNING_SLOTS]
        alarms, warnings = self._split_alarms(sorted(set(codes)))
        consumables = tuple(
            ConsumableLevel(
                c.name,
                c.unit,
                mm.regs_to_f32(_slot(r, mm.IR_CONSUMABLE_LEVEL, i)),
                mm.regs_to_f32(_slot(r, mm.IR_CONSUMABLE_LIMIT, i)),
                c.supply,
            )
            for i, c in enumerate(self.interface.consumables)
        )
        setup = {
            f.name: tuple(ch for b, ch in enumerate(f.choices) if r[mm.IR_SETUP + i] >> b & 1)
            for i, f in enumerate(self.interface.setup)
        }
        return ToolStatus(
            self.tool_id,
            state,
            job_id,
            r[mm.IR_PROGRESS] / 10.0,
            alarms,
            warnings,
            consumables,
            setup,
        )

    async def _start(self, job_id: str, op: Operation, values: Mapping[str, Value]) -> None:
        block = [mm.Command.START, op.code, *mm.str_to_regs(job_id, mm.JOB_ID_REGS), 0, 0]
        for p in op.params:
            block += mm.f32_to_regs(p.encode(values[p.name]))
        try:
            await self.link.write(mm.HR_COMMAND, block)
        except ValueRefused as e:
            raise await self._explain(e) from None

    async def _job_progress(self, job_id: str) -> JobProgress:
        # One read answers for the current job; older jobs need a query by id.
        r = await self.link.read_input(0, mm.IR_JOB_ID + mm.JOB_ID_REGS)
        if mm.regs_to_str(r[mm.IR_JOB_ID :]) == job_id:
            try:
                tool_state = ToolState(r[mm.IR_STATE])
            except ValueError:
                raise GarbledReply(self.tool_id, f"unknown state {r[0]}", "IR 0") from None
            state = _JOB_STATE_OF_TOOL.get(tool_state)
            if state is not None:
                return JobProgress(state, r[mm.IR_PROGRESS] / 10.0, r[mm.IR_ALARM_CODE])
        q = await self._query(job_id)
        return JobProgress(
            _job_state(self.tool_id, q[mm.IR_QUERY_STATE - mm.IR_QUERY_JOB_ID]),
            q[mm.IR_QUERY_PROGRESS - mm.IR_QUERY_JOB_ID] / 10.0,
            q[mm.IR_QUERY_ALARM - mm.IR_QUERY_JOB_ID],
        )

    async def _read_carrier(self, carrier_id: str, expected: tuple[int, ...]) -> CarrierRead:
        slots = [*expected, *([0] * (mm.CARRIER_SLOTS - len(expected)))][: mm.CARRIER_SLOTS]
        async with self._query_lock:
            await self.link.write(
                mm.HR_CARRIER_ID, [*mm.str_to_regs(carrier_id, mm.JOB_ID_REGS), *slots]
            )
            r = await self.link.read_input(mm.IR_CARRIER_ID, mm.CARRIER_BLOCK)
        return CarrierRead(
            mm.regs_to_str(r[: mm.JOB_ID_REGS]), tuple(r[mm.JOB_ID_REGS : mm.CARRIER_BLOCK])
        )

    async def _result(self, job_id: str) -> JobResult:
        q = await self._query(job_id)
        base = mm.IR_QUERY_JOB_ID
        state = _job_state(self.tool_id, q[mm.IR_QUERY_STATE - base])
        if state is JobState.UNKNOWN:
            return JobResult(job_id, "", state, {})
        try:
            op = self.interface.operation_by_code(q[mm.IR_QUERY_OPERATION - base])
        except KeyError:
            raise GarbledReply(
                self.tool_id, f"unknown operation code {q[mm.IR_QUERY_OPERATION - base]}", "IR 219"
            ) from None
        results = {
            res.name: mm.regs_to_f32(_slot(q, mm.IR_QUERY_RESULTS - base, i))
            for i, res in enumerate(op.results)
        }
        code = q[mm.IR_QUERY_ALARM - base]
        count = q[mm.IR_QUERY_WARNING_COUNT - base]
        if count > mm.QUERY_WARNING_SLOTS:
            raise GarbledReply(self.tool_id, f"{count} job warnings", "IR 268")
        at = mm.IR_QUERY_WARNINGS - base
        warnings = tuple(self.interface.alarm(c) for c in q[at : at + count])
        return JobResult(
            job_id, op.name, state, results, self.interface.alarm(code) if code else None, warnings
        )

    async def _abort(self) -> None:
        await self._command(mm.Command.ABORT)

    async def _clear_alarms(self) -> None:
        await self._command(mm.Command.CLEAR_ALARMS)

    async def _replace_consumable(self, index: int, name: str) -> None:
        await self._command(mm.Command.REPLACE_CONSUMABLE, index)

    async def _close(self) -> None:
        await self.link.close()

    # -- helpers --------------------------------------------------------------------------

    async def _command(self, command: mm.Command, argument: int | None = None) -> None:
        values = [command] if argument is None else [command, argument]
        try:
            await self.link.write(mm.HR_COMMAND, values)
        except ValueRefused as e:
            raise await self._explain(e) from None

    async def _query(self, job_id: str) -> list[int]:
        async with self._query_lock:
            await self.link.write(mm.HR_QUERY_JOB_ID, mm.str_to_regs(job_id, mm.JOB_ID_REGS))
            q = await self.link.read_input(mm.IR_QUERY_JOB_ID, mm.QUERY_BLOCK)
        echo = mm.regs_to_str(q[: mm.JOB_ID_REGS])
        if echo != job_id:
            raise GarbledReply(self.tool_id, f"query echoed job {echo!r}, not {job_id!r}", "IR 200")
        return q

    async def _explain(self, refused: ValueRefused) -> ToolError:
        """Turn a bare Modbus exception into the tool's own reason (refusal registers)."""
        try:
            r = await self.link.read_input(
                mm.IR_REFUSAL_CODE, mm.IR_REFUSAL_TEXT + mm.REFUSAL_TEXT_REGS - mm.IR_REFUSAL_CODE
            )
        except ToolError:
            return refused
        code, register = r[0], r[1]
        text = mm.regs_to_str(r[mm.IR_REFUSAL_TEXT - mm.IR_REFUSAL_CODE :])
        try:
            reason = mm.Refusal(code).name.lower().replace("_", " ")
        except ValueError:
            reason = f"refusal {code}"
        if code == mm.Refusal.NOT_SET_UP:
            # refresh the cached setup; the refusal stands either way
            with contextlib.suppress(ToolOffline, ToolTimeout, GarbledReply):
                await self.status()
        cls = ToolBusy if code in (mm.Refusal.BUSY, mm.Refusal.IN_ALARM) else ValueRefused
        return cls(self.tool_id, f"refused ({reason}): {text}", f"HR {register}", code=code)


def _slot(regs: Sequence[int], base: int, i: int) -> Sequence[int]:
    return regs[base + 2 * i : base + 2 * i + 2]


def _job_state(tool_id: str, raw: int) -> JobState:
    try:
        return JobState(raw)
    except ValueError:
        raise GarbledReply(tool_id, f"unknown job state {raw}", "IR 216") from None
