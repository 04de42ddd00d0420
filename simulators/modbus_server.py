"""Modbus TCP server publishing the fabline register map for a `SimTool`.

Implements the function codes the map needs: 3 and 4 (read holding / input), 6 and 16
(write single / multiple), and 43/14 (Read Device Identification, basic, regular and
extended streams and individual access). Anything else answers exception 1.
"""

from __future__ import annotations

import asyncio
import struct

from drivers.interface import JobState
from drivers.protocols import modbus_map as mm
from drivers.protocols.modbus_map import Command, Refusal
from simulators.faults import wire_text
from simulators.server import ToolServer
from simulators.tool import Refused, SimTool

HOLDING_SIZE = mm.HR_CARRIER_EXPECTED + mm.CARRIER_SLOTS
WRITABLE = (
    set(range(0, mm.HR_PARAMS + 2 * mm.PARAM_SLOTS))
    | set(range(mm.HR_QUERY_JOB_ID, mm.HR_QUERY_JOB_ID + mm.JOB_ID_REGS))
    | set(range(mm.HR_CARRIER_ID, HOLDING_SIZE))
)
MAX_READ = 125

EXCEPTION_FOR: dict[Refusal, int] = {
    Refusal.BUSY: mm.EXC_DEVICE_BUSY,
    Refusal.IN_ALARM: mm.EXC_DEVICE_BUSY,
    Refusal.CONSUMABLE_EXHAUSTED: mm.EXC_DEVICE_FAILURE,
}


class ModbusError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ModbusServer(ToolServer):
    protocol = "modbus"

    def __init__(self, tool: SimTool) -> None:
        super().__init__(tool)
        self.holding = [0] * HOLDING_SIZE
        self.refusal: tuple[int, int, str] = (0, 0, "")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(7)
            tid, pid, length, unit = struct.unpack(">HHHB", header)
            if pid != 0 or not 2 <= length <= 254:
                return  # not Modbus TCP: drop the connection, as real devices do
            pdu = await reader.readexactly(length - 1)
            try:
                body = self.handle(pdu)
            except ModbusError as e:
                body = bytes([pdu[0] | 0x80, e.code])
            frame = struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body
            await self.reply(writer, frame)

    def handle(self, pdu: bytes) -> bytes:
        fc = pdu[0]
        if fc in (3, 4):
            address, count = struct.unpack(">HH", pdu[1:5])
            if not 1 <= count <= MAX_READ:
                raise ModbusError(mm.EXC_ILLEGAL_VALUE)
            regs = self._read(fc, address, count)
            return struct.pack(f">BB{count}H", fc, 2 * count, *regs)
        if fc == 6:
            address, value = struct.unpack(">HH", pdu[1:5])
            self._write(address, [value])
            return pdu[:5]
        if fc == 16:
            address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
            if nbytes != 2 * count or len(pdu) != 6 + nbytes or not 1 <= count <= 123:
                raise ModbusError(mm.EXC_ILLEGAL_VALUE)
            self._write(address, list(struct.unpack(f">{count}H", pdu[6:])))
            return pdu[:5]
        if fc == 43 and len(pdu) >= 4 and pdu[1] == 14:
            return self._identification(pdu[2], pdu[3])
        raise ModbusError(mm.EXC_ILLEGAL_FUNCTION)

    # -- registers --------------------------------------------------------------------------

    def _read(self, fc: int, address: int, count: int) -> list[int]:
        if fc == 3:
            if address + count > HOLDING_SIZE:
                raise ModbusError(mm.EXC_ILLEGAL_ADDRESS)
            return self.holding[address : address + count]
        if address + count <= mm.STATUS_BLOCK:
            return self._status_block()[address : address + count]
        q0 = mm.IR_QUERY_JOB_ID
        if q0 <= address and address + count <= q0 + mm.QUERY_BLOCK:
            return self._query_block()[address - q0 : address - q0 + count]
        c0 = mm.IR_CARRIER_ID
        if c0 <= address and address + count <= c0 + mm.CARRIER_BLOCK:
            return self._carrier_block()[address - c0 : address - c0 + count]
        raise ModbusError(mm.EXC_ILLEGAL_ADDRESS)

    def _carrier_block(self) -> list[int]:
        """The carrier named at HR_CARRIER_ID, read now: its tag and its slot map."""
        h = self.holding
        carrier = mm.regs_to_str(h[mm.HR_CARRIER_ID : mm.HR_CARRIER_ID + mm.JOB_ID_REGS])
        expected = h[mm.HR_CARRIER_EXPECTED : mm.HR_CARRIER_EXPECTED + mm.CARRIER_SLOTS]
        read, slots = self.tool.read_carrier(carrier, list(expected))
        return [*mm.str_to_regs(read[:32], mm.JOB_ID_REGS), *slots]

    def _write(self, address: int, values: list[int]) -> None:
        span = range(address, address + len(values))
        if any(a not in WRITABLE for a in span):
            raise ModbusError(mm.EXC_ILLEGAL_ADDRESS)
        self.holding[address : address + len(values)] = values
        if address == mm.HR_COMMAND:
            command, self.holding[mm.HR_COMMAND] = self.holding[mm.HR_COMMAND], 0
            self._execute(command)

    def _execute(self, command: int) -> None:
        t = self.tool
        try:
            if command == Command.START:
                self._start()
            elif command == Command.ABORT:
                t.abort()
            elif command == Command.CLEAR_ALARMS:
                t.clear_alarms()
            elif command == Command.RESET:
                t.reset()
            elif command == Command.REPLACE_CONSUMABLE:
                i = self.holding[mm.HR_ARGUMENT]
                if i >= len(t.interface.consumables):
                    raise Refused(Refusal.BAD_COMMAND, f"no consumable index {i}")
                t.replace_consumable(t.interface.consumables[i].name)
            elif command != Command.NONE:
                raise Refused(Refusal.BAD_COMMAND, f"unknown command {command}")
        except Refused as e:
            self.refusal = (e.reason, self._register_of(e), wire_text(e.text))
            raise ModbusError(EXCEPTION_FOR.get(e.reason, mm.EXC_ILLEGAL_VALUE)) from None
        self.refusal = (0, 0, "")

    def _start(self) -> None:
        h = self.holding
        try:
            job_id = (
                bytes(
                    b
                    for r in h[mm.HR_JOB_ID : mm.HR_JOB_ID + mm.JOB_ID_REGS]
                    for b in r.to_bytes(2)
                )
                .split(b"\0", 1)[0]
                .decode("ascii")
            )
        except UnicodeDecodeError:
            raise Refused(Refusal.BAD_JOB_ID, "job id is not ASCII") from None
        slots = [
            mm.regs_to_f32(h[mm.HR_PARAMS + 2 * i : mm.HR_PARAMS + 2 * i + 2])
            for i in range(mm.PARAM_SLOTS)
        ]
        self.tool.load_and_start(job_id, h[mm.HR_ARGUMENT], slots)

    def _register_of(self, e: Refused) -> int:
        if e.reason in (Refusal.BAD_JOB_ID, Refusal.DUPLICATE_JOB):
            return mm.HR_JOB_ID
        if e.reason is Refusal.UNKNOWN_OPERATION:
            return mm.HR_ARGUMENT
        if e.param is not None and self.tool.current is not None:
            names = [p.name for p in self.tool.current.op.params]
            if e.param in names:
                return mm.HR_PARAMS + 2 * names.index(e.param)
        if e.param is not None:  # the job was dropped; find the slot by operation code
            try:
                op = self.tool.interface.operation_by_code(self.holding[mm.HR_ARGUMENT])
                return mm.HR_PARAMS + 2 * [p.name for p in op.params].index(e.param)
            except (KeyError, ValueError):
                pass
        return mm.HR_COMMAND

    def _status_block(self) -> list[int]:
        t = self.tool
        r = [0] * mm.STATUS_BLOCK
        r[mm.IR_STATE] = int(t.state)
        r[mm.IR_PROGRESS] = round(t.progress() * 10)
        alarms = t.alarms[: mm.ALARM_SLOTS]
        warnings = t.warnings()
        r[mm.IR_ALARM_CODE] = alarms[0] if alarms else 0
        r[mm.IR_ALARM_COUNT] = len(t.alarms)
        r[mm.IR_WARNING_CODE] = warnings[0] if warnings else 0
        code, register, text = self.refusal
        r[mm.IR_REFUSAL_CODE], r[mm.IR_REFUSAL_REGISTER] = code, register
        r[mm.IR_JOBS_DONE : mm.IR_JOBS_DONE + 2] = mm.u32_to_regs(t.jobs_done & 0xFFFFFFFF)
        job_id = t.current.job_id if t.current else ""
        r[mm.IR_JOB_ID : mm.IR_JOB_ID + mm.JOB_ID_REGS] = mm.str_to_regs(job_id, mm.JOB_ID_REGS)
        r[mm.IR_REFUSAL_TEXT : mm.IR_REFUSAL_TEXT + mm.REFUSAL_TEXT_REGS] = mm.str_to_regs(
            text[: 2 * mm.REFUSAL_TEXT_REGS], mm.REFUSAL_TEXT_REGS
        )
        for i, a in enumerate(alarms):
            r[mm.IR_ALARM_CODES + i] = a
        for i, w in enumerate(warnings[: mm.WARNING_SLOTS]):
            r[mm.IR_WARNING_CODES + i] = w
        for i, f in enumerate(t.interface.setup[: mm.SETUP_SLOTS]):
            installed = t.setup.get(f.name, ())
            r[mm.IR_SETUP + i] = sum(1 << b for b, ch in enumerate(f.choices) if ch in installed)
        for i, c in enumerate(t.interface.consumables[: mm.CONSUMABLE_SLOTS]):
            lvl, lim = mm.IR_CONSUMABLE_LEVEL + 2 * i, mm.IR_CONSUMABLE_LIMIT + 2 * i
            r[lvl : lvl + 2] = mm.f32_to_regs(t.levels[c.name])
            r[lim : lim + 2] = mm.f32_to_regs(c.limit)
        return r

    def _query_block(self) -> list[int]:
        base = mm.IR_QUERY_JOB_ID
        q = [0] * mm.QUERY_BLOCK
        q[: mm.JOB_ID_REGS] = self.holding[mm.HR_QUERY_JOB_ID : mm.HR_QUERY_JOB_ID + mm.JOB_ID_REGS]
        job_id = mm.regs_to_str(q[: mm.JOB_ID_REGS])
        job = self.tool.job(job_id) if job_id else None
        if job is None:
            q[mm.IR_QUERY_STATE - base] = JobState.UNKNOWN
            return q
        q[mm.IR_QUERY_STATE - base] = int(job.state)
        q[mm.IR_QUERY_PROGRESS - base] = round(job.progress(self.tool.now()) * 10)
        q[mm.IR_QUERY_ALARM - base] = job.alarm
        q[mm.IR_QUERY_OPERATION - base] = job.op.code
        for i, res in enumerate(job.op.results[: mm.RESULT_SLOTS]):
            at = mm.IR_QUERY_RESULTS - base + 2 * i
            q[at : at + 2] = mm.f32_to_regs(job.results.get(res.name, 0.0))
        warnings = job.warnings[: mm.QUERY_WARNING_SLOTS]
        q[mm.IR_QUERY_WARNING_COUNT - base] = len(warnings)
        for i, code in enumerate(warnings):
            q[mm.IR_QUERY_WARNINGS - base + i] = code
        return q

    # -- identification ---------------------------------------------------------------------

    def _identification(self, code: int, object_id: int) -> bytes:
        t = self.tool
        objects = {
            mm.OBJ_VENDOR: t.vendor,
            mm.OBJ_PRODUCT_CODE: t.model,
            mm.OBJ_REVISION: t.revision,
            0x03: "https://fabline.invalid/sim",
            mm.OBJ_PRODUCT_NAME: t.interface.title,
            mm.OBJ_MODEL_NAME: t.model,
            0x06: t.tool_id,
            mm.OBJ_SERIAL: t.serial,
        }
        if code == 4:
            if object_id not in objects:
                raise ModbusError(mm.EXC_ILLEGAL_ADDRESS)
            chosen = [object_id]
        elif code in (1, 2, 3):
            upper = {1: 0x02, 2: 0x7F, 3: 0xFF}[code]
            chosen = [k for k in sorted(objects) if object_id <= k <= upper]
        else:
            raise ModbusError(mm.EXC_ILLEGAL_VALUE)
        body = bytearray([43, 14, code, 0x83, 0x00, 0x00, len(chosen)])
        for k in chosen:
            raw = wire_text(objects[k]).encode("ascii")[:240]
            body += bytes([k, len(raw)]) + raw
        return bytes(body)
