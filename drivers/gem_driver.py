"""Driver for SECS/GEM tools (SEMI E30 over HSMS-SS), speaking the kind's GEM vocabulary
(docs/tools/gem.md).

On every new HSMS connection the driver establishes communications (S1F13), asks the tool
on-line (S1F17), sets its clock (S2F31), defines, links and enables its event reports
(S2F33/35/37), enables alarm reports (S5F3), reads the equipment constants (S2F13) and the
process programs stored (S7F19). A job is a process program built from the setpoints
(S7F1/F3 download, S7F5 upload-and-compare), selected and started by remote command
(S2F41 PP-SELECT, START). Event reports (S6F11) and alarm reports (S5F1) are the fast path:
they end wait() as soon as the tool reports the job's end. The tool's own record, queried by
job id (S14F1 GetAttr on its JOB object), stays the truth, so a lost event costs a poll,
not a job.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TypeVar

import structlog

from drivers.base import (
    ConsumableLevel,
    Identity,
    Job,
    JobProgress,
    JobResult,
    ToolDriver,
    ToolStatus,
)
from drivers.errors import GarbledReply, ToolBusy, ToolError, ToolTimeout, ValueRefused
from drivers.interface import (
    Alarm,
    ControlState,
    JobState,
    Operation,
    ToolInterface,
    ToolState,
    Value,
)
from drivers.line import GemSettings
from drivers.protocols import gem_map as gm
from drivers.protocols.hsms import HsmsConnection, Message, Timers
from drivers.protocols.modbus_map import Refusal
from drivers.protocols.secs2 import BOOLEAN, U4, A, B, Item, L, SecsFormatError, encode
from drivers.transport.backoff import Backoff
from drivers.transport.hsms import HsmsTransport

log = structlog.get_logger("fabline.gem")

JOB_CACHE = 1000  # finished jobs remembered from event reports
T = TypeVar("T")


class GemDriver(ToolDriver):
    def __init__(
        self,
        tool_id: str,
        interface: ToolInterface,
        host: str,
        port: int,
        settings: GemSettings | None = None,
        **options: float,
    ) -> None:
        super().__init__(tool_id, **options)
        self.interface = interface
        self.map = gm.gem_map(interface)
        s = settings or GemSettings()
        self.settings = s
        timers = Timers(
            t3=s.t3 or self.timeout,
            t5=s.t5 or Backoff().initial,
            t6=s.t6 or self.timeout,
            t7=s.t7 or 10.0,
            t8=s.t8 or self.timeout,
            linktest=s.linktest,
        )
        self.link = HsmsTransport(
            tool_id, host, port, session=s.device_id, mode=s.mode, timers=timers,
            backoff=None if s.t5 else Backoff(), handler=self._on_primary,
            on_connect=self._establish,
        )  # fmt: skip
        self.control: ControlState | None = None
        self.model_name = ""
        self.software_revision = ""
        self.terminal: list[str] = []  # operator messages from the tool (S10F1)
        self.alarm_reports: list[tuple[int, bool]] = []  # (ALID, set) as the tool reported
        self._limits: dict[str, float] = {}
        self._verified: OrderedDict[str, None] = OrderedDict()  # PPIDs checked on the tool
        self._stored: set[str] = set()  # PPIDs the tool listed at connect (content unknown)
        self._finished: OrderedDict[str, JobResult] = OrderedDict()  # from event reports
        # jobs the tool reported started (JOB_STARTED, JOB_RESUMED): monotonic time of the
        # report or of the last query, and the progress it gave
        self._running: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._changed = asyncio.Event()
        self._waiters: list[tuple[str, str | None, asyncio.Future[None]]] = []
        self._recipes: dict[str, str] = {}
        self._reports = {r.rptid: r.vids for r in self.map.reports}
        self._sv_bodies: dict[tuple[str, ...], bytes] = {}
        self._status_names = (
            "CONTROL_STATE", "PROCESS_STATE", "JOB_ID", "PROGRESS", "ALARMS_SET", "WARNINGS_SET",
            *(gm.consumable_level(c.name) for c in interface.consumables),
            *(gm.setup_installed(f.name) for f in interface.setup),
        )  # fmt: skip

    # -- the surface, GEM extras ---------------------------------------------------------------

    async def start(self, job: Job) -> None:
        self._recipes[job.job_id] = job.recipe
        try:
            await super().start(job)
        finally:
            self._recipes.pop(job.job_id, None)

    async def pause(self) -> None:
        await self._command("PAUSE")
        self._running.clear()  # a paused job does not progress: ask the tool from now on

    async def resume(self) -> None:
        await self._command("RESUME")

    async def stop(self) -> None:
        """End the current job at the tool's next safe point (RCMD STOP)."""
        await self._command("STOP")

    def expect_event(self, name: str, job_id: str | None = None) -> asyncio.Future[None]:
        """A future that completes when the tool next reports collection event `name` (for
        `job_id`, when given). Register it before causing the event."""
        self.map.event(name)  # a clear KeyError for a name the vocabulary lacks
        fut = self._expect(name, job_id)
        fut.add_done_callback(
            lambda f: setattr(self, "_waiters", [w for w in self._waiters if w[2] is not f])
        )
        return fut

    async def display(self, text: str, terminal: int = 0) -> None:
        """Show a message on the tool's terminal (S10F3)."""
        reply = await self._request(10, 3, L(B(terminal), A(text[:240])))
        ack = self._parse(reply, "S10F3", lambda r: r.integer())
        if ack:
            why = {1: "will not be displayed", 2: "terminal not available"}.get(ack, "refused")
            raise ValueRefused(self.tool_id, f"message {why} (ACKC10 {ack})", "S10F3", code=ack)

    # -- wire calls ------------------------------------------------------------------------------

    async def _identify(self) -> Identity:
        reply = await self._request(1, 1, None, idempotent=True)
        mdln, softrev = self._parse(reply, "S1F1", lambda r: [i.text() for i in r.items(2)])
        vendor, serial = await self._svs("VENDOR", "SERIAL_NUMBER")
        return Identity(vendor.text(), mdln, serial.text(), softrev)

    async def _status(self) -> ToolStatus:
        values = await self._svs(*self._status_names)

        def build() -> ToolStatus:
            control = ControlState(values[0].integer())
            state = ToolState(values[1].integer())
            codes = [v.integer() for v in values[4].items()] + [
                v.integer() for v in values[5].items()
            ]
            alarms, warnings = self._split_alarms(sorted(set(codes)))
            n = len(self.interface.consumables)
            consumables = tuple(
                ConsumableLevel(c.name, c.unit, values[6 + i].number(),
                                self._limits.get(c.name, c.limit), c.supply)
                for i, c in enumerate(self.interface.consumables)
            )  # fmt: skip
            setup = {
                f.name: tuple(x.text() for x in values[6 + n + i].items())
                for i, f in enumerate(self.interface.setup)
            }
            return ToolStatus(
                self.tool_id, state, values[2].text() or None, values[3].number(), alarms,
                warnings, consumables, setup, control,
            )  # fmt: skip

        try:
            st = build()
        except (SecsFormatError, ValueError) as e:
            raise GarbledReply(self.tool_id, f"bad status values ({e})", "S1F3") from None
        self.control = st.control
        return st

    async def _start(self, job_id: str, op: Operation, values: Mapping[str, Value]) -> None:
        if self.control is ControlState.LOCAL:
            raise ToolBusy(self.tool_id, _LOCAL, "S2F41 START")
        body = gm.pp_body(self.interface, op, values)
        ppid = gm.ppid(self._recipes.get(job_id) or self.interface.kind, op, body)
        await self._ensure_program(ppid, body)
        await self._command("PP-SELECT", {gm.CP_PPID: ppid})
        await self._command("START", {gm.CP_JOBID: job_id}, job_id=job_id)

    async def _job_progress(self, job_id: str) -> JobProgress:
        done = self._finished.get(job_id)
        if done is not None:
            return JobProgress(done.state, 100.0 if done.state is JobState.COMPLETE else 0.0,
                               done.alarm.code if done.alarm else 0)  # fmt: skip
        self._changed.clear()  # an event from now on wakes the next _idle at once
        running = self._running.get(job_id)
        if running is not None and time.monotonic() - running[0] < self.poll_max:
            # the tool reported it running a moment ago and will report its end: no query
            # until poll_max has passed (then the tool's record is asked, as for any job)
            return JobProgress(JobState.RUNNING, running[1], 0)
        attrs = await self._job_attrs(job_id, [gm.ATTR_STATE, gm.ATTR_PROGRESS, gm.ATTR_ALARM])
        if attrs is None:
            return JobProgress(JobState.UNKNOWN, 0.0, 0)
        try:
            p = JobProgress(
                JobState(attrs[gm.ATTR_STATE].integer()),
                attrs[gm.ATTR_PROGRESS].number(),
                attrs[gm.ATTR_ALARM].integer(),
            )
        except (KeyError, ValueError, SecsFormatError) as e:
            raise GarbledReply(self.tool_id, f"bad job attributes ({e!r})", "S14F1") from None
        if p.state is JobState.RUNNING:
            self._note_running(job_id, p.progress)
        else:
            self._running.pop(job_id, None)
        return p

    def _warnings(self, item: Item | None) -> tuple[Alarm, ...]:
        """The process warnings of a job (absent: a tool that reports none)."""
        if item is None:
            return ()
        return tuple(self.interface.alarm(w.integer()) for w in item.items())

    def _note_running(self, job_id: str, progress: float) -> None:
        self._running[job_id] = (time.monotonic(), progress)
        self._running.move_to_end(job_id)
        while len(self._running) > JOB_CACHE:
            self._running.popitem(last=False)

    async def _result(self, job_id: str) -> JobResult:
        done = self._finished.get(job_id)
        if done is not None:
            return done
        attrs = await self._job_attrs(job_id, [])
        if attrs is None:
            return JobResult(job_id=job_id, operation="", state=JobState.UNKNOWN, results={})
        try:
            op = self.interface.operation(attrs[gm.ATTR_OPERATION].text())
            code = attrs[gm.ATTR_ALARM].integer()
            return JobResult(
                job_id=job_id,
                operation=op.name,
                state=JobState(attrs[gm.ATTR_STATE].integer()),
                results={
                    r.name: attrs[r.name.upper()].number()
                    for r in op.results
                    if r.name.upper() in attrs
                },
                alarm=self.interface.alarm(code) if code else None,
                warnings=self._warnings(attrs.get(gm.ATTR_WARNINGS)),
            )
        except (KeyError, ValueError, SecsFormatError, ToolError) as e:
            raise GarbledReply(self.tool_id, f"bad job attributes ({e!r})", "S14F1") from None

    async def _abort(self) -> None:
        await self._command("ABORT")

    async def _clear_alarms(self) -> None:
        await self._command("CLEAR-ALARMS")

    async def _replace_consumable(self, index: int, name: str) -> None:
        await self._command("REPLACE-CONSUMABLE", {gm.CP_CONSUMABLE: name.upper()})

    async def _close(self) -> None:
        await self.link.close()

    async def _idle(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            pass

    # -- establishing communications (every new connection) ---------------------------------------

    async def _establish(self, conn: HsmsConnection) -> None:
        async def ask(stream: int, function: int, item: Item | None) -> Item:
            reply = await conn.request(stream, function, item)
            if reply is None:
                raise GarbledReply(self.tool_id, "empty reply", f"S{stream}F{function}")
            return reply

        def check(ack: Item, where: str, ok: tuple[int, ...] = (0,)) -> int:
            try:
                code = ack.integer()
            except SecsFormatError as e:
                raise GarbledReply(self.tool_id, str(e), where) from None
            if code not in ok:
                raise ValueRefused(self.tool_id, f"refused with code {code}", where, code=code)
            return code

        reply = await ask(1, 13, L())
        try:
            commack, ident = reply.items(2)
            self.model_name, self.software_revision = (i.text() for i in ident.items(2))
        except SecsFormatError as e:
            raise GarbledReply(self.tool_id, str(e), "S1F13") from None
        check(commack, "S1F13")
        onlack = (await ask(1, 17, None)).integer()
        if onlack == 1:
            raise ToolBusy(self.tool_id, "the tool refuses to go on-line (ONLACK 1)", "S1F17")

        async def optional(stream: int, function: int, item: Item | None) -> Item | None:
            """A capability the tool may lack (S9F5 or SxF0): None then."""
            try:
                return await ask(stream, function, item)
            except ValueRefused as e:
                log.info("gem.capability_missing", tool_id=self.tool_id, where=e.where)
                return None

        if self.settings.set_clock:
            tiack = await optional(2, 31, A(_clock()))
            if tiack is None or tiack.integer():
                log.warning("gem.time_not_set", tool_id=self.tool_id)
        m = self.map
        check(await ask(2, 37, L(BOOLEAN(False), L())), "S2F37")
        check(await ask(2, 33, L(U4(0), L())), "S2F33")
        defs = L(*(L(U4(r.rptid), L(*(U4(m.vid(v)) for v in r.vids))) for r in m.reports))
        check(await ask(2, 33, L(U4(1), defs)), "S2F33")
        links = L(*(L(U4(e.ceid), L(U4(e.rptid))) for e in m.events))
        check(await ask(2, 35, L(U4(2), links)), "S2F35")
        check(await ask(2, 37, L(BOOLEAN(True), L(*(U4(e.ceid) for e in m.events)))), "S2F37")
        every = await optional(5, 3, L(B(gm.ALCD_SET), U4()))  # an empty ALID: all alarms
        if every is None or every.integer():
            for a in self.interface.alarms:  # tools that enable one alarm at a time
                check(await ask(5, 3, L(B(gm.ALCD_SET), U4(a.code))), f"S5F3 ALID {a.code}")
        limits = [gm.consumable_limit(c.name) for c in self.interface.consumables]
        ecs = await ask(2, 13, L(*(U4(m.vid(n)) for n in limits)))
        try:
            self._limits = {
                c.name: v.number()
                for c, v in zip(self.interface.consumables, ecs.items(len(limits)), strict=True)
            }
            stored = await optional(7, 19, None)
            self._stored = {p.text() for p in stored.items()} if stored is not None else set()
            control = (await ask(1, 3, L(U4(m.vid("CONTROL_STATE"))))).items(1)[0].integer()
            self.control = ControlState(control)
        except (SecsFormatError, ValueError) as e:
            raise GarbledReply(self.tool_id, f"bad reply while establishing ({e})") from None
        self._verified.clear()
        log.info("gem.established", tool_id=self.tool_id, model=self.model_name,
                 control=self.control.name)  # fmt: skip

    # -- process programs ---------------------------------------------------------------------

    async def _ensure_program(self, ppid: str, body: str) -> None:
        """The tool holds `ppid` with exactly `body`: download it if needed, then read it
        back and compare."""
        if ppid in self._verified:
            self._verified.move_to_end(ppid)
            return
        if ppid in self._stored and await self._upload(ppid) == body:
            self._verified[ppid] = None
            return
        data = body.encode()
        for attempt in (1, 2):
            reply = await self._request(7, 1, L(A(ppid), U4(len(data))))
            grant = self._parse(reply, "S7F1", lambda r: r.integer())
            if grant in (gm.PPGNT_OK, gm.PPGNT_ALREADY_HAVE):
                break
            if grant == gm.PPGNT_NO_SPACE and attempt == 1 and await self._make_room():
                continue
            why = {2: "no space", 3: "invalid PPID", 4: "busy", 5: "will not accept"}
            reason = f"{why.get(grant, 'PPGNT')} {grant}"
            raise ValueRefused(
                self.tool_id, f"download of {ppid} refused ({reason})", "S7F1", code=grant
            )
        reply = await self._request(7, 3, L(A(ppid), B(data)))
        ack = self._parse(reply, "S7F3", lambda r: r.integer())
        if ack != gm.ACKC7_OK:
            (text,) = await self._svs("REFUSAL_TEXT")
            raise ValueRefused(
                self.tool_id, f"process program {ppid} refused (ACKC7 {ack}): {text.text()}",
                "S7F3", code=ack,
            )  # fmt: skip
        if await self._upload(ppid) != body:
            raise GarbledReply(self.tool_id, f"process program {ppid} reads back changed", "S7F5")
        self._stored.add(ppid)
        self._verified[ppid] = None

    async def _upload(self, ppid: str) -> str | None:
        reply = await self._request(7, 5, A(ppid), idempotent=True)

        def body(r: Item) -> str | None:
            if not r.items():
                return None
            got, ppbody = r.items(2)
            if got.text() != ppid:
                raise SecsFormatError(f"asked for {ppid}, got {got.text()}")
            return ppbody.binary().decode() if ppbody.fmt.name == "B" else ppbody.text()

        try:
            return self._parse(reply, "S7F5", body)
        except UnicodeDecodeError:
            return None

    async def _make_room(self) -> bool:
        """Delete the least recently used process programs fabline downloaded (S7F17)."""
        ours = [p for p in self._verified if p in self._stored] or [
            p for p in sorted(self._stored) if p.count("/") == 2
        ]
        victims = ours[: max(1, len(ours) // 4)]
        if not victims:
            return False
        reply = await self._request(7, 17, L(*(A(p) for p in victims)))
        if self._parse(reply, "S7F17", lambda r: r.integer()) != gm.ACKC7_OK:
            return False
        for p in victims:
            self._stored.discard(p)
            self._verified.pop(p, None)
        log.info("gem.programs_deleted", tool_id=self.tool_id, count=len(victims))
        return True

    # -- remote commands --------------------------------------------------------------------------

    async def _command(
        self, name: str, params: Mapping[str, str] | None = None, *, job_id: str | None = None
    ) -> None:
        """S2F41 with every HCACK handled: 0 done; 4 done later, confirmed by the command's
        event (or, failing that, by the tool's state) within the driver's timeout; 5 already
        so; 1, 2, 3, 6 refused with the tool's reason."""
        cmd = gm.rcmd(name)
        where = f"S2F41 {name}"
        event = cmd.done_event
        waiter = self._expect(event, job_id) if event else None
        try:
            body = L(A(name), L(*(L(A(k), A(v)) for k, v in (params or {}).items())))
            reply = await self._request(2, 41, body)

            def parse(r: Item) -> tuple[int, list[tuple[str, int]]]:
                hcack, cps = r.items(2)
                return hcack.integer(), [(c.items(2)[0].text(), c.items(2)[1].integer())
                                         for c in cps.items()]  # fmt: skip

            hcack, cpacks = self._parse(reply, where, parse)
            if hcack in (0, 5):
                return
            if hcack == 4:
                assert waiter is not None
                try:
                    async with asyncio.timeout(self.timeout):
                        await waiter
                except TimeoutError:
                    if not await self._confirmed(name, job_id):
                        raise ToolTimeout(
                            self.tool_id,
                            f"accepted (HCACK 4) but no {event} within {self.timeout:g} s",
                            where,
                        ) from None
                return
            raise await self._refused(name, hcack, cpacks)
        finally:
            if waiter is not None:
                waiter.cancel()
                self._waiters = [w for w in self._waiters if w[2] is not waiter]

    async def _confirmed(self, name: str, job_id: str | None) -> bool:
        """The event did not come (lost, or not reported): does the tool's state show it?"""
        if job_id is not None:
            return (await self._job_progress(job_id)).state not in (
                JobState.UNKNOWN, JobState.SETUP,
            )  # fmt: skip
        (state,) = await self._svs("PROCESS_STATE")
        return name not in ("ABORT", "STOP") or state.integer() != ToolState.RUNNING

    async def _refused(self, name: str, hcack: int, cpacks: list[tuple[str, int]]) -> ToolError:
        where = f"S2F41 {name}"
        code_item, text_item, control_item = await self._svs(
            "REFUSAL_CODE", "REFUSAL_TEXT", "CONTROL_STATE"
        )
        try:
            code, text = code_item.integer(), text_item.text()
            self.control = ControlState(control_item.integer())
        except (SecsFormatError, ValueError):
            code, text = 0, ""
        what = gm.HCACK_TEXT.get(hcack, "refused")
        bad = "; ".join(f"{n}: {gm.CPACK_TEXT.get(c, f'CPACK {c}')}" for n, c in cpacks)
        detail = f"{name} refused (HCACK {hcack} {what})"
        if self.control is ControlState.LOCAL:
            return ToolBusy(self.tool_id, _LOCAL, where, code=hcack)
        detail += f": {text}" if text else ""
        detail += f" [{bad}]" if bad else ""
        if code == Refusal.NOT_SET_UP:
            await self.status()  # the tool's setup changed since we cached it
        busy = hcack == 2 and code in (Refusal.BUSY, Refusal.IN_ALARM)
        return (ToolBusy if busy else ValueRefused)(self.tool_id, detail, where, code=hcack)

    def _expect(self, event: str, job_id: str | None) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((event, job_id, fut))
        return fut

    # -- messages from the tool --------------------------------------------------------------------

    async def _on_primary(self, conn: HsmsConnection, msg: Message) -> None:
        key = (msg.stream, msg.function)
        try:
            body = msg.item()
        except SecsFormatError as e:
            log.warning("gem.unreadable", tool_id=self.tool_id, message=msg.name, error=str(e))
            body = None
        ack = 0
        try:
            if key == (6, 11):
                self._on_event(_body(body))
            elif key == (5, 1):
                alcd, alid, altx = _body(body).items(3)
                self.alarm_reports.append((alid.integer(), bool(alcd.integer() & gm.ALCD_SET)))
                del self.alarm_reports[:-100]
                log.info("gem.alarm", tool_id=self.tool_id, alid=alid.integer(),
                         set=bool(alcd.integer() & gm.ALCD_SET), text=altx.text())  # fmt: skip
                self._changed.set()
            elif key == (10, 1):
                self.terminal.append(_body(body).items(2)[1].text())
            elif key == (1, 1):
                conn.reply(msg, L())
                return
            elif key == (1, 13):
                conn.reply(msg, L(B(0), L()))
                return
            elif msg.wbit:
                conn.reply(msg, None, function=0)
                return
        except (SecsFormatError, ValueError) as e:
            log.warning("gem.bad_report", tool_id=self.tool_id, message=msg.name, error=str(e))
            ack = 1
        if msg.wbit:
            conn.reply(msg, B(ack))

    def _on_event(self, body: Item) -> None:
        _dataid, ceid_item, reports = body.items(3)
        ceid = ceid_item.integer()
        values: dict[str, Item] = {}
        for r in reports.items():
            rptid, vs = r.items(2)
            names = self._reports.get(rptid.integer(), ())
            values.update(zip(names, vs.items(), strict=False))
        ev = self.map.event_by_ceid(ceid)
        name = ev.name if ev else f"CEID {ceid}"
        log.debug("gem.event", tool_id=self.tool_id, ceid=ceid, name=name)
        if name in ("CONTROL_OFFLINE", "CONTROL_LOCAL", "CONTROL_REMOTE"):
            if "CONTROL_STATE" in values:
                self.control = ControlState(values["CONTROL_STATE"].integer())
        elif name == "PP_CHANGED" and "EVENT_PPID" in values:
            self._verified.pop(values["EVENT_PPID"].text(), None)
        job_id = values["EVENT_JOB_ID"].text() if "EVENT_JOB_ID" in values else None
        ends_job = name in ("JOB_ALARMED", "JOB_ABORTED") or self.map.operation_of(ceid) is not None
        if job_id is not None and ends_job:
            self._running.pop(job_id, None)
            self._remember(job_id, ceid, values)
        elif job_id is not None and name in ("JOB_STARTED", "JOB_RESUMED"):
            self._note_running(job_id, self._running.get(job_id, (0.0, 0.0))[1])
        elif job_id is not None and name == "JOB_PAUSED":
            self._running.pop(job_id, None)
        for event, wanted, fut in self._waiters:
            if event == name and (wanted is None or wanted == job_id) and not fut.done():
                fut.set_result(None)
        self._changed.set()

    def _remember(self, job_id: str, ceid: int, values: Mapping[str, Item]) -> None:
        op = self.map.operation_of(ceid)
        if op is None:
            try:
                op = self.interface.operation(values["EVENT_OPERATION"].text())
            except (KeyError, ToolError, SecsFormatError):
                return
        state = JobState(values["EVENT_JOB_STATE"].integer())
        alarm = values["EVENT_ALARM"].integer() if "EVENT_ALARM" in values else 0
        results = {
            r.name: values[gm.result_var(r.name)].number()
            for r in op.results
            if gm.result_var(r.name) in values and values[gm.result_var(r.name)].fmt.name == "F8"
        }
        if state is JobState.COMPLETE and len(results) != len(op.results):
            return  # an incomplete report: let the query by id answer
        try:
            warnings = self._warnings(values.get("EVENT_WARNINGS"))
        except (SecsFormatError, ValueError):
            return  # a garbled report: let the query by id answer
        self._finished[job_id] = JobResult(
            job_id=job_id,
            operation=op.name,
            state=state,
            results=results,
            alarm=self.interface.alarm(alarm) if alarm else None,
            warnings=warnings,
        )
        while len(self._finished) > JOB_CACHE:
            self._finished.popitem(last=False)

    # -- helpers -------------------------------------------------------------------------------

    async def _request(
        self, stream: int, function: int, item: Item | bytes | None, *, idempotent: bool = False
    ) -> Item:
        reply = await self.link.request(stream, function, item, idempotent=idempotent)
        if reply is None:
            raise GarbledReply(self.tool_id, "empty reply", f"S{stream}F{function}")
        return reply

    async def _svs(self, *names: str) -> tuple[Item, ...]:
        body = self._sv_bodies.get(names)
        if body is None:  # the same few requests every time: encode each once
            body = self._sv_bodies[names] = encode(L(*(U4(self.map.vid(n)) for n in names)))
        reply = await self._request(1, 3, body, idempotent=True)
        values = self._parse(reply, "S1F3", lambda r: r.items(len(names)))
        for n, v in zip(names, values, strict=True):
            if v.fmt.name == "L" and not v.items() and not self.map.var(n).fmt.startswith("L"):
                raise GarbledReply(
                    self.tool_id, f"the tool has no SVID {self.map.vid(n)} ({n})", "S1F3"
                )
        return values

    async def _job_attrs(self, job_id: str, attrs: list[str]) -> dict[str, Item] | None:
        body = L(A(""), A(gm.JOB_OBJTYPE), L(A(job_id)), L(), L(*(A(a) for a in attrs)))
        reply = await self._request(14, 1, body, idempotent=True)

        def parse(r: Item) -> dict[str, Item] | None:
            found, status = r.items(2)
            objack, errors = status.items(2)
            codes = [e.items(2)[0].integer() for e in errors.items()]
            for obj in found.items():
                objid, pairs = obj.items(2)
                if objid.text() == job_id:
                    return {p.items(2)[0].text(): p.items(2)[1] for p in pairs.items()}
            if gm.ERR_UNKNOWN_OBJECT in codes:
                return None
            raise SecsFormatError(
                f"no attributes and no 'unknown object' error (OBJACK {objack.integer()})"
            )

        return self._parse(reply, "S14F1", parse)

    def _parse(self, reply: Item, where: str, fn: Callable[[Item], T]) -> T:
        try:
            return fn(reply)
        except (SecsFormatError, IndexError, ValueError) as e:
            raise GarbledReply(self.tool_id, f"unexpected reply {reply} ({e})", where) from None


_LOCAL = (
    "the tool is on-line local: the operator at the tool has control and it refuses"
    " remote commands; switch it to remote to dispatch"
)


def _clock() -> str:
    """TIME for S2F31: YYYYMMDDhhmmsscc."""
    now = dt.datetime.now()
    return now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 10000:02d}"


def _body(item: Item | None) -> Item:
    if item is None:
        raise SecsFormatError("the message has no body")
    return item
