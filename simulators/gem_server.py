"""A `SimTool` as SECS/GEM equipment (SEMI E30) over HSMS-SS, passive (the host connects).

The vocabulary (SVIDs, ECIDs, CEIDs, ALIDs, RCMDs, the JOB object, process programs) is the
kind's `gem_map` (docs/tools/gem.md). GEM behaviour modelled: communication state (S1F13
before anything else on a connection), control state (off-line → S1F17 → on-line remote, or
local when the operator's switch says so: the `local` fault), host-defined reports and event
enables, alarm reports with enables, process-program storage with a capacity, remote
commands with every HCACK, S9 error reports for what the tool cannot read, and S14F1 GetAttr
on JOB objects so a host can re-attach to a job by id. Event reports are not spooled: an
event while no host is communicating is lost, as on a tool with spooling disabled.

Link faults: drop closes the connection, stall withholds the next reply (the host's T3
expires), garble answers with a well-framed message whose SECS-II body is not readable,
slow delays replies, offline refuses connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Mapping

import structlog

from drivers.errors import ParameterError, ToolError
from drivers.interface import ControlState, ToolState
from drivers.line import GemSettings
from drivers.protocols import gem_map as gm
from drivers.protocols.hsms import HsmsConnection, Message, SType, Timers
from drivers.protocols.modbus_map import Refusal
from drivers.protocols.secs2 import (
    BOOLEAN,
    F4,
    F8,
    U1,
    U2,
    U4,
    A,
    B,
    Item,
    L,
    SecsFormatError,
    encode,
)
from drivers.units import to_unit
from simulators.faults import Reply, wire_text
from simulators.server import ToolServer
from simulators.tool import Refused, SimTool, ToolEvent

log = structlog.get_logger("fabline.sim")

PP_CAPACITY = 64  # process programs the tool stores; S7F1 answers "no space" beyond
TIME_FORMAT = "%Y%m%d%H%M%S"

# HCACK for a tool refusal: cannot perform now (2), or a bad parameter (3)
_HCACK_FOR: dict[Refusal, int] = {
    Refusal.OUT_OF_RANGE: 3,
    Refusal.RULE: 3,
    Refusal.BAD_JOB_ID: 3,
    Refusal.UNKNOWN_OPERATION: 3,
    Refusal.DUPLICATE_JOB: 5,
    Refusal.NONE: 5,
}
_EVENT_OF: dict[str, str] = {
    "started": "JOB_STARTED",
    "alarm": "JOB_ALARMED",
    "aborted": "JOB_ABORTED",
    "paused": "JOB_PAUSED",
    "resumed": "JOB_RESUMED",
    "alarms_cleared": "ALARMS_CLEARED",
    "consumable_replaced": "CONSUMABLE_REPLACED",
}


class _Bad(Exception):
    """A message the tool cannot read: answered with S9F7 (illegal data)."""


class GemServer(ToolServer):
    protocol = "gem"

    def __init__(self, tool: SimTool, settings: GemSettings | None = None) -> None:
        super().__init__(tool)
        self.settings = settings or GemSettings()
        s = self.settings
        self.timers = Timers(t3=s.t3 or 45.0, t6=s.t6 or 5.0, t7=s.t7 or 10.0, t8=s.t8 or 5.0)
        self.map = gm.gem_map(tool.interface)
        self.control = ControlState.HOST_OFFLINE
        self.local_switch = False  # the operator's local/remote switch on the tool
        self.programs: OrderedDict[str, str] = OrderedDict()
        self.text_programs: set[str] = set()  # PPIDs downloaded as <A>: uploaded as <A> too
        self.pp_capacity = PP_CAPACITY
        self.selected_pp = ""
        self.reports: dict[int, tuple[int, ...]] = {}
        self.links: dict[int, tuple[int, ...]] = {}
        self.enabled: set[int] = set()
        self.alarms_enabled: set[int] = set()
        self.reported_alarms: set[int] = set()
        self.refusal: tuple[int, str] = (0, "")
        self.terminal: list[str] = []  # texts the host displayed (S10F3)
        self.clock_offset = dt.timedelta()
        self.previous_state = ToolState.IDLE
        self._state = tool.state
        self.conn: HsmsConnection | None = None
        self.communicating = False
        self._outbox: asyncio.Queue[tuple[int, int, Item]] | None = None
        self._dataid = 0
        tool.listeners.append(self._on_tool_event)
        self._handlers: dict[tuple[int, int], Callable[[Message, Item | None], Item | None]] = {
            (1, 1): self._s1f1, (1, 3): self._s1f3, (1, 11): self._s1f11, (1, 13): self._s1f13,
            (1, 15): self._s1f15, (1, 17): self._s1f17, (2, 13): self._s2f13,
            (2, 17): self._s2f17, (2, 31): self._s2f31, (2, 33): self._s2f33,
            (2, 35): self._s2f35, (2, 37): self._s2f37, (2, 41): self._s2f41,
            (5, 3): self._s5f3, (5, 5): self._s5f5, (7, 1): self._s7f1, (7, 3): self._s7f3,
            (7, 5): self._s7f5, (7, 17): self._s7f17, (7, 19): self._s7f19,
            (10, 3): self._s10f3, (14, 1): self._s14f1,
        }  # fmt: skip
        self._streams = {s for s, _ in self._handlers}

    # -- connection -------------------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.conn is not None and self.conn.alive:
            return  # HSMS-SS: one host at a time; the base closes this second connection
        conn = HsmsConnection(
            reader, writer, name=self.tool.tool_id, session=self.settings.device_id,
            timers=self.timers, handler=self._handle, passive=True,
        )  # fmt: skip
        self.conn, self.communicating = conn, False
        self._outbox = asyncio.Queue()
        conn.start()
        sender = asyncio.create_task(self._send_events(conn, self._outbox))
        try:
            await conn.wait_closed()
        finally:
            sender.cancel()
            if self.conn is conn:
                self.conn, self.communicating, self._outbox = None, False, None

    async def connect_to(self, host: str, port: int) -> None:
        """Active mode: connect to a passive host and select (the tool is the active side)."""
        reader, writer = await asyncio.open_connection(host, port)
        conn = HsmsConnection(
            reader, writer, name=self.tool.tool_id, session=self.settings.device_id,
            timers=self.timers, handler=self._handle,
        )  # fmt: skip
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        self.tool.faults.connections.add(transport)
        self.conn, self.communicating = conn, False
        self._outbox = asyncio.Queue()
        conn.start()
        await conn.select()
        self._spawn(self._send_events(conn, self._outbox))

    async def _send_events(
        self, conn: HsmsConnection, outbox: asyncio.Queue[tuple[int, int, Item]]
    ) -> None:
        """Event and alarm reports, in order, each waiting for the host's acknowledge."""
        while conn.alive:
            stream, function, item = await outbox.get()
            try:
                await conn.request(stream, function, item)
            except ToolError as e:
                log.info("sim.gem_report_unacknowledged", tool_id=self.tool.tool_id, error=str(e))

    # -- faults specific to GEM ------------------------------------------------------------

    def switch_control(self, local: bool) -> str:
        """The operator turns the tool's local/remote switch."""
        self.local_switch = local
        if self.control.online:
            self._set_control(ControlState.LOCAL if local else ControlState.REMOTE)
        return (
            f"{self.tool.tool_id}: control {'local' if local else 'remote'} ({self.control.name})"
        )

    def _set_control(self, state: ControlState) -> None:
        if state is self.control:
            return
        self.control = state
        name = {ControlState.LOCAL: "CONTROL_LOCAL", ControlState.REMOTE: "CONTROL_REMOTE"}.get(
            state, "CONTROL_OFFLINE"
        )
        self._event(name, {}, force=True)

    # -- dispatch ---------------------------------------------------------------------------

    async def _handle(self, conn: HsmsConnection, msg: Message) -> None:
        if msg.session != self.settings.device_id:
            self._s9(conn, 1, msg)
            return
        handler = self._handlers.get((msg.stream, msg.function))
        if handler is None:
            self._s9(conn, 5 if msg.stream in self._streams else 3, msg)
            return
        if not self.communicating and (msg.stream, msg.function) != (1, 13):
            await self._answer(conn, msg, None, function=0)  # not communicating: abort
            return
        if not self.control.online and (msg.stream, msg.function) not in (
            (1, 13), (1, 15), (1, 17)
        ):  # fmt: skip
            await self._answer(conn, msg, None, function=0)  # off-line: abort the transaction
            return
        try:
            reply = handler(msg, msg.item())
        except (SecsFormatError, _Bad) as e:
            log.info(
                "sim.gem_illegal_data", tool_id=self.tool.tool_id, message=msg.name, error=str(e)
            )
            self._s9(conn, 7, msg)
            return
        self._check_alarms()
        if msg.wbit:
            await self._answer(conn, msg, reply)

    async def _answer(
        self, conn: HsmsConnection, msg: Message, item: Item | None, *, function: int | None = None
    ) -> None:
        action, delay = self.tool.faults.next_reply()
        if delay:
            await asyncio.sleep(delay)
        if action is Reply.STALL:
            return
        fn = msg.function + 1 if function is None else function
        body = encode(item) if item is not None else b""
        if action is Reply.GARBLE:  # well framed, unreadable body: an unknown format code
            body = b"\xfd" + self.garbled(body)[:7]
        with contextlib.suppress(ToolError):
            conn.write(Message(msg.session, msg.stream, fn, False, SType.DATA, msg.system, body))

    def _s9(self, conn: HsmsConnection, function: int, msg: Message) -> None:
        with contextlib.suppress(ToolError):
            conn.send(9, function, B(msg.header()), system=conn.next_system())

    # -- stream 1: identity, status, communications, control ---------------------------------

    def _ident(self) -> Item:
        return L(A(wire_text(self.tool.model)[:20]), A(wire_text(self.tool.revision)[:20]))

    def _s1f1(self, msg: Message, body: Item | None) -> Item:
        return self._ident()

    def _s1f3(self, msg: Message, body: Item | None) -> Item:
        vids = self._u4_list(body)
        return L(*(self._value(v, {}) for v in vids))

    def _s1f11(self, msg: Message, body: Item | None) -> Item:
        vids = self._u4_list(body) or [v.vid for v in self.map.svs]
        out = []
        for vid in vids:
            v = self.map.by_vid(vid)
            sv = v if v is not None and v.kind == "SV" else None
            out.append(L(U4(vid), A(sv.name if sv else ""), A(wire_text(sv.unit) if sv else "")))
        return L(*out)

    def _s1f13(self, msg: Message, body: Item | None) -> Item:
        self.communicating = True
        return L(B(0), self._ident())

    def _s1f15(self, msg: Message, body: Item | None) -> Item:
        self._set_control(ControlState.HOST_OFFLINE)
        return B(0)

    def _s1f17(self, msg: Message, body: Item | None) -> Item:
        if self.control.online:
            return B(2)  # already on-line
        if self.control is ControlState.EQUIPMENT_OFFLINE:
            return B(1)
        self._set_control(ControlState.LOCAL if self.local_switch else ControlState.REMOTE)
        return B(0)

    # -- stream 2: constants, clock, reports, remote commands ---------------------------------

    def _s2f13(self, msg: Message, body: Item | None) -> Item:
        vids = self._u4_list(body) or [v.vid for v in self.map.ecs]
        return L(*(self._value(v, {}, kind="EC") for v in vids))

    def _s2f17(self, msg: Message, body: Item | None) -> Item:
        return A(self._clock())

    def _s2f31(self, msg: Message, body: Item | None) -> Item:
        text = _item(body).text()
        try:
            when = dt.datetime.strptime(text[:14], TIME_FORMAT) if len(text) == 16 else None
        except ValueError:
            when = None
        if when is None:
            return B(1)
        self.clock_offset = when - dt.datetime.now()
        return B(0)

    def _s2f33(self, msg: Message, body: Item | None) -> Item:
        _, reports = _item(body).items(2)
        defs = [(r.items(2)[0].integer(), [v.integer() for v in r.items(2)[1].items()])
                for r in reports.items()]  # fmt: skip
        if not defs:
            self.reports.clear()
            self.links.clear()
            return B(0)
        for rptid, vids in defs:
            if vids and rptid in self.reports:
                return B(3)
            if not all(self._reportable(v) for v in vids):
                return B(4)
        for rptid, vids in defs:
            if vids:
                self.reports[rptid] = tuple(vids)
            else:
                self.reports.pop(rptid, None)
                self.links = {c: tuple(r for r in rs if r != rptid) for c, rs in self.links.items()}
        return B(0)

    def _reportable(self, vid: int) -> bool:
        """A status or data variable (equipment constants are not reported)."""
        v = self.map.by_vid(vid)
        return v is not None and v.kind != "EC"

    def _s2f35(self, msg: Message, body: Item | None) -> Item:
        _, links = _item(body).items(2)
        defs = [(c.items(2)[0].integer(), [r.integer() for r in c.items(2)[1].items()])
                for c in links.items()]  # fmt: skip
        for ceid, rptids in defs:
            if self.map.event_by_ceid(ceid) is None:
                return B(4)
            if rptids and self.links.get(ceid):
                return B(3)
            if any(r not in self.reports for r in rptids):
                return B(5)
        for ceid, rptids in defs:
            if rptids:
                self.links[ceid] = tuple(rptids)
            else:
                self.links.pop(ceid, None)
        return B(0)

    def _s2f37(self, msg: Message, body: Item | None) -> Item:
        ceed, ceids = _item(body).items(2)
        ids = [c.integer() for c in ceids.items()] or [e.ceid for e in self.map.events]
        if any(self.map.event_by_ceid(c) is None for c in ids):
            return B(1)
        if ceed.boolean():
            self.enabled.update(ids)
        else:
            self.enabled.difference_update(ids)
        return B(0)

    def _s2f41(self, msg: Message, body: Item | None) -> Item:
        rcmd_item, cps = _item(body).items(2)
        name = rcmd_item.text()
        params: dict[str, Item] = {}
        for cp in cps.items():
            cpname, cpval = cp.items(2)
            params[cpname.text()] = cpval
        try:
            command = gm.rcmd(name)
        except KeyError:
            return self._hcack(1, f"no remote command {name}")
        unknown = [n for n in params if n not in command.params]
        if unknown:
            return self._hcack(
                3, f"{name} has no parameter {unknown[0]}", [(n, 1) for n in unknown]
            )
        missing = [n for n in command.params if n not in params]
        if missing:
            return self._hcack(3, f"{name} needs {' '.join(missing)}", [(n, 2) for n in missing])
        if self.control is not ControlState.REMOTE:
            return self._hcack(
                2, "on-line local: the operator at the tool has control; remote commands refused",
                code=Refusal.BUSY,
            )  # fmt: skip
        try:
            return self._run_command(name, {k: v.text() if v.fmt.name == "A" else str(v.integer())
                                            for k, v in params.items()})  # fmt: skip
        except Refused as e:
            hcack = _HCACK_FOR.get(e.reason, 2)
            bad = [(command.params[0], 2)] if hcack == 3 and command.params else []
            return self._hcack(hcack, e.text, bad, code=e.reason)

    def _run_command(self, name: str, cp: Mapping[str, str]) -> Item:
        t = self.tool
        if name == "PP-SELECT":
            ppid = cp[gm.CP_PPID]
            if ppid not in self.programs:
                return self._hcack(3, f"no process program {ppid}", [(gm.CP_PPID, 2)])
            self.selected_pp = ppid
            self._event("PP_SELECTED", {"EVENT_PPID": A(ppid)})
            return self._hcack(0)
        if name == "START":
            if not self.selected_pp:
                raise Refused(Refusal.NO_JOB, "no process program selected (PP-SELECT first)")
            op, values = self._program_values(self.selected_pp)
            t.start_job(cp[gm.CP_JOBID], op, values)
            return self._hcack(4)  # JOB_STARTED follows
        if name in ("STOP", "ABORT"):
            try:
                t.abort()
            except Refused as e:
                if e.reason is Refusal.NO_JOB:
                    return self._hcack(5, "no job running")
                raise
            return self._hcack(4)  # JOB_ABORTED follows
        if name == "PAUSE":
            t.pause()
            return self._hcack(0)
        if name == "RESUME":
            t.resume()
            return self._hcack(0)
        if name == "CLEAR-ALARMS":
            t.clear_alarms()
            return self._hcack(0)
        if name == "REPLACE-CONSUMABLE":
            which = cp[gm.CP_CONSUMABLE]
            if which.lower() not in [c.name for c in t.interface.consumables]:
                return self._hcack(3, f"no consumable {which}", [(gm.CP_CONSUMABLE, 2)])
            t.replace_consumable(which)
            return self._hcack(0)
        raise AssertionError(name)  # every RCMD is handled above

    def _program_values(self, ppid: str) -> tuple[str, dict[str, object]]:
        try:
            op, fields = gm.parse_pp(self.tool.interface, self.programs[ppid])
            values: dict[str, object] = {}
            for name, text in fields.items():
                p = op.param(name)
                values[name] = text if p.is_choice else to_unit(text, p.unit)
        except ParameterError as e:
            raise Refused(Refusal.RULE, f"process program {ppid}: {e}") from None
        return op.name, values

    def _hcack(
        self, hcack: int, text: str = "", cpacks: list[tuple[str, int]] | None = None,
        code: int = Refusal.RULE,
    ) -> Item:  # fmt: skip
        if hcack in (1, 2, 3, 6):
            self.refusal = (int(code), wire_text(text))
        elif hcack in (0, 4):
            self.refusal = (0, "")
        return L(B(hcack), L(*(L(A(n), B(c)) for n, c in cpacks or [])))

    # -- stream 5: alarms ---------------------------------------------------------------------

    def _s5f3(self, msg: Message, body: Item | None) -> Item:
        aled, alid = _item(body).items(2)
        ids = list(alid.integers()) or [a.code for a in self.tool.interface.alarms]
        if aled.integer() & 0x80:
            self.alarms_enabled.update(ids)
        else:
            self.alarms_enabled.difference_update(ids)
        return B(0)

    def _s5f5(self, msg: Message, body: Item | None) -> Item:
        ids = list(_item(body).integers()) or [a.code for a in self.tool.interface.alarms]
        out = []
        for code in ids:
            a = self.tool.interface.alarm(code)
            on = gm.ALCD_SET if code in self.reported_alarms else 0
            out.append(
                L(B(on | self.map.alarm_category(code)), U4(code), A(wire_text(a.text)[:40]))
            )
        return L(*out)

    def _check_alarms(self) -> None:
        now = set(self.tool.alarms) | set(self.tool.warnings())
        for code in sorted(now - self.reported_alarms):
            self._alarm_report(code, True)
        for code in sorted(self.reported_alarms - now):
            self._alarm_report(code, False)
        self.reported_alarms = now

    def _alarm_report(self, code: int, on: bool) -> None:
        if code not in self.alarms_enabled or not self._reporting():
            return
        alcd = (gm.ALCD_SET if on else 0) | self.map.alarm_category(code)
        text = wire_text(self.tool.interface.alarm(code).text)[:40]
        assert self._outbox is not None
        self._outbox.put_nowait((5, 1, L(B(alcd), U4(code), A(text))))

    # -- stream 7: process programs ------------------------------------------------------------

    def _s7f1(self, msg: Message, body: Item | None) -> Item:
        ppid_item, _length = _item(body).items(2)
        ppid = ppid_item.text()
        if not ppid or len(ppid) > gm.PPID_MAX:
            return B(3)
        if ppid not in self.programs and len(self.programs) >= self.pp_capacity:
            return B(gm.PPGNT_NO_SPACE)
        return B(gm.PPGNT_OK)

    def _s7f3(self, msg: Message, body: Item | None) -> Item:
        ppid_item, ppbody = _item(body).items(2)
        ppid = ppid_item.text()
        text = _pp_text(ppbody)
        if text is None:
            return B(gm.ACKC7_BAD_MODE)
        if ppid not in self.programs and len(self.programs) >= self.pp_capacity:
            return B(gm.ACKC7_STORAGE)
        try:
            gm.parse_pp(self.tool.interface, text)
        except ParameterError as e:
            self.refusal = (int(Refusal.RULE), wire_text(f"process program {ppid}: {e}"))
            return B(gm.ACKC7_BAD_MODE)
        self.programs[ppid] = text
        self.programs.move_to_end(ppid)
        if ppbody.fmt.name == "A":
            self.text_programs.add(ppid)
        else:
            self.text_programs.discard(ppid)
        self._event("PP_CHANGED", {"EVENT_PPID": A(ppid)})
        return B(gm.ACKC7_OK)

    def _s7f5(self, msg: Message, body: Item | None) -> Item:
        ppid = _item(body).text()
        text = self.programs.get(ppid)
        if text is None:
            return L()
        return L(A(ppid), A(text) if ppid in self.text_programs else B(text.encode()))

    def _s7f17(self, msg: Message, body: Item | None) -> Item:
        ppids = [p.text() for p in _item(body).items()] or list(self.programs)
        if any(p not in self.programs for p in ppids):
            return B(gm.ACKC7_NOT_FOUND)
        for p in ppids:
            del self.programs[p]
            if p == self.selected_pp:
                self.selected_pp = ""
            self._event("PP_CHANGED", {"EVENT_PPID": A(p)})
        return B(gm.ACKC7_OK)

    def _s7f19(self, msg: Message, body: Item | None) -> Item:
        return L(*(A(p) for p in self.programs))

    # -- stream 10: terminal; stream 14: objects -------------------------------------------------

    def _s10f3(self, msg: Message, body: Item | None) -> Item:
        _tid, text = _item(body).items(2)
        self.terminal.append(text.text())
        return B(0)

    def _s14f1(self, msg: Message, body: Item | None) -> Item:
        _spec, objtype, objids, _qualifiers, attrids = _item(body).items(5)
        wanted = [a.text() for a in attrids.items()]
        errors: list[Item] = []
        found: list[Item] = []
        if objtype.text() != gm.JOB_OBJTYPE:
            errors.append(L(U4(2), A(f"unknown object type {objtype.text()}")))
        else:
            for obj in objids.items():
                job = self.tool.job(obj.text())
                if job is None:
                    errors.append(L(U4(gm.ERR_UNKNOWN_OBJECT), A(f"no job {obj.text()}")))
                    continue
                attrs: dict[str, Item] = {
                    gm.ATTR_STATE: U1(int(job.state)),
                    gm.ATTR_PROGRESS: F4(job.progress(self.tool.now())),
                    gm.ATTR_ALARM: U4(job.alarm),
                    gm.ATTR_OPERATION: A(job.op.name),
                    gm.ATTR_WARNINGS: L(*(U4(w) for w in job.warnings)),
                }
                for r in job.op.results:
                    if r.name in job.results:
                        attrs[r.name.upper()] = F8(job.results[r.name])
                names = wanted or list(attrs)
                for n in names:
                    if n not in attrs and n not in {r.name.upper() for r in job.op.results}:
                        errors.append(L(U4(gm.ERR_UNKNOWN_ATTRIBUTE), A(f"no attribute {n}")))
                pairs = [L(A(n), attrs[n]) for n in names if n in attrs]
                found.append(L(A(obj.text()), L(*pairs)))
        return L(L(*found), L(U1(1 if errors else 0), L(*errors)))

    # -- values and events -----------------------------------------------------------------------

    def _clock(self) -> str:
        now = dt.datetime.now() + self.clock_offset
        return now.strftime(TIME_FORMAT) + f"{now.microsecond // 10000:02d}"

    def _value(self, vid: int, context: Mapping[str, Item], kind: str = "SV") -> Item:
        v = self.map.by_vid(vid)
        if v is None or (kind == "EC") != (v.kind == "EC"):
            return L()  # unknown id: a zero-length item (E5)
        if v.kind == "DV":
            return context.get(v.name, L())
        t, name = self.tool, v.name
        fixed: dict[str, Callable[[], Item]] = {
            "CLOCK": lambda: A(self._clock()),
            "CONTROL_STATE": lambda: U1(int(self.control)),
            "PROCESS_STATE": lambda: U1(int(t.state)),
            "PREVIOUS_PROCESS_STATE": lambda: U1(int(self.previous_state)),
            "JOB_ID": lambda: A(t.current.job_id if t.current else ""),
            "PROGRESS": lambda: F4(t.progress()),
            "ALARMS_SET": lambda: L(*(U4(a) for a in t.alarms)),
            "WARNINGS_SET": lambda: L(*(U4(w) for w in t.warnings())),
            "PP_EXEC_NAME": lambda: A(self.selected_pp),
            "JOBS_DONE": lambda: U4(t.jobs_done & 0xFFFFFFFF),
            "VENDOR": lambda: A(wire_text(t.vendor)),
            "SERIAL_NUMBER": lambda: A(wire_text(t.serial)),
            "REFUSAL_CODE": lambda: U1(self.refusal[0]),
            "REFUSAL_TEXT": lambda: A(self.refusal[1]),
            "PAUSED": lambda: BOOLEAN(t.current is not None and t.current.paused_at is not None),
            "ESTABLISH_COMM_TIMEOUT": lambda: U2(10),
            "TIME_FORMAT": lambda: U1(1),
        }
        if name in fixed:
            return fixed[name]()
        for c in t.interface.consumables:
            if name == gm.consumable_level(c.name):
                return F8(t.levels[c.name])
            if name == gm.consumable_limit(c.name):
                return F8(c.limit)
            if name == gm.consumable_warn(c.name):
                return F8(c.warn)
        for f in t.interface.setup:
            if name == gm.setup_installed(f.name):
                return L(*(A(x) for x in t.setup.get(f.name, ())))
        raise AssertionError(name)  # every variable of the map has a value above

    def _reporting(self) -> bool:
        return self._outbox is not None and self.communicating and self.control.online

    def _event(self, name: str, context: Mapping[str, Item], *, force: bool = False) -> None:
        """Queue an S6F11 for an enabled event, with its linked reports' values as of now.
        `force`: a control-state change is reported even as the tool goes off-line."""
        ev = self.map.event(name)
        if ev.ceid not in self.enabled or not (self._reporting() or (force and self.communicating)):
            return
        reports = [
            L(U4(r), L(*(self._value(v, context) for v in self.reports.get(r, ()))))
            for r in self.links.get(ev.ceid, ())
        ]
        self._dataid += 1
        assert self._outbox is not None
        self._outbox.put_nowait((6, 11, L(U4(self._dataid), U4(ev.ceid), L(*reports))))

    def _on_tool_event(self, e: ToolEvent) -> None:
        if self.tool.state is not self._state:
            self.previous_state, self._state = self._state, self.tool.state
        self._check_alarms()
        if e.kind == "alarm_raised":
            return
        context: dict[str, Item] = {}
        job = e.job
        if job is not None:
            context = {
                "EVENT_JOB_ID": A(job.job_id),
                "EVENT_JOB_STATE": U1(int(job.state)),
                "EVENT_ALARM": U4(job.alarm),
                "EVENT_OPERATION": A(job.op.name),
                "EVENT_WARNINGS": L(*(U4(w) for w in job.warnings)),
            }
            for r in job.op.results:
                if r.name in job.results:
                    context[gm.result_var(r.name)] = F8(job.results[r.name])
        if e.kind == "consumable_replaced":
            context["EVENT_CONSUMABLE"] = A(e.detail.upper())
        if e.kind == "completed":
            assert job is not None
            self._event(gm.completed_name(job.op), context)
        else:
            self._event(_EVENT_OF[e.kind], context)

    # -- helpers -------------------------------------------------------------------------------

    def _u4_list(self, body: Item | None) -> list[int]:
        return [v.integer() for v in _item(body).items()] if body is not None else []


def _item(body: Item | None) -> Item:
    if body is None:
        raise _Bad("the message needs a body")
    return body


def _pp_text(ppbody: Item) -> str | None:
    """A PPBODY as text: A, or B holding UTF-8."""
    if ppbody.fmt.name == "A":
        return ppbody.text()
    if ppbody.fmt.name == "B":
        try:
            return ppbody.binary().decode()
        except UnicodeDecodeError:
            return None
    return None
