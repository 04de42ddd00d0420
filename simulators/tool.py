"""A simulated tool: processing state machine, job table, consumables, alarms and faults.

Protocol servers (`scpi_server`, `modbus_server`) translate wire messages into the calls
below; subclasses (one per kind) supply the process physics: how long a job takes, what it
measures, what it wears. Time runs `time_scale` times faster than the wall clock; noise is
seeded per (seed, tool, job) so a run is reproducible whatever order jobs arrive in. A job id
may end in a nonce after `#` (the engine adds one so ids stay unique on a tool across
databases); the seed ignores it, so the same lot run twice with the same seed measures the same.
"""

from __future__ import annotations

import abc
import asyncio
import math
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from drivers.errors import ParameterError
from drivers.interface import (
    Consumable,
    JobState,
    Operation,
    Param,
    ToolInterface,
    ToolState,
    Value,
    check_setup,
    piece_job_id,
)
from drivers.protocols.modbus_map import Refusal
from simulators.faults import FaultPlan

log = structlog.get_logger("fabline.sim")

F32_EPS = 2.0**-23  # relative rounding of an IEEE-754 single
JOB_MEMORY = 100_000  # jobs (and batch pieces) remembered for result-by-id after a restart


class Refused(Exception):
    """The tool refuses a command; servers map `reason` onto their protocol's error."""

    def __init__(self, reason: Refusal, text: str, param: str | None = None) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.param = param


@dataclass
class Plan:
    """What a job will do, decided when it starts: simulated duration, results, wear, and
    an alarm (code, fraction of the job) if the physics or an injected fault calls for one."""

    duration_s: float
    results: dict[str, float]
    wear: dict[str, float] = field(default_factory=dict)
    alarm: tuple[int, float] | None = None
    warnings: list[int] = field(default_factory=list)  # raised at completion; do not stop
    # a batch job's pieces, in load order: each one's own results (its own noise)
    pieces: list[dict[str, float]] = field(default_factory=list)


@dataclass
class SimJob:
    job_id: str
    op: Operation
    values: dict[str, Value] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    state: JobState = JobState.SETUP
    started: float = 0.0
    real_duration: float = 0.0
    results: dict[str, float] = field(default_factory=dict)
    alarm: int = 0
    handle: asyncio.TimerHandle | None = None
    plan: Plan | None = None
    # what the pending timer will do, so a pause can hold it and a resume re-arm it
    timer: tuple[Callable[..., None], tuple[Any, ...]] | None = None
    timer_when: float = 0.0  # loop time the timer fires at (were the job not paused)
    paused_at: float | None = None  # loop time the job was paused at
    warnings: list[int] = field(default_factory=list)  # process warnings raised at its end

    stopped_at: float = 0.0  # percent done when an alarm or abort ended the job

    def progress(self, now: float) -> float:
        """Percent done."""
        if self.state is JobState.COMPLETE:
            return 100.0
        if self.state in (JobState.ALARM, JobState.ABORTED):
            return self.stopped_at
        if self.state is not JobState.RUNNING or self.real_duration <= 0:
            return 0.0
        if self.paused_at is not None:
            now = self.paused_at
        return min(100.0, 100.0 * (now - self.started) / self.real_duration)

    def stop(self, state: JobState, now: float) -> None:
        self.stopped_at = self.progress(now)
        self.state = state
        self.paused_at = None
        if self.handle:
            self.handle.cancel()
            self.handle = None


EventKind = Literal[
    "started", "completed", "alarm", "aborted", "paused", "resumed", "alarm_raised",
    "alarms_cleared", "consumable_replaced",
]  # fmt: skip


@dataclass(frozen=True)
class ToolEvent:
    """Something that happened on the tool, for protocol servers that report events (GEM)."""

    kind: EventKind
    job: SimJob | None = None
    detail: str = ""  # the consumable replaced


class SimTool(abc.ABC):
    """Base of every simulated tool; one instance per tool of a line."""

    interface: ToolInterface

    def __init__(
        self,
        tool_id: str,
        *,
        seed: int = 0,
        time_scale: float = 1000.0,
        setup: Mapping[str, list[str]] | None = None,
        serial: str | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0 (use math.inf for instant jobs)")
        self.tool_id = tool_id
        self.seed = seed
        self.time_scale = time_scale
        self.serial = serial or f"SN-{tool_id}"
        self.revision = "1.0.0"
        self.setup: dict[str, tuple[str, ...]] = {
            f.name: tuple(self.interface.default_setup.get(f.name, ()))
            for f in self.interface.setup
        }
        for name, values in (setup or {}).items():
            self._set_setup(name, values)
        self.levels: dict[str, float] = {
            c.name: (c.limit if c.supply else 0.0) for c in self.interface.consumables
        }
        self.state = ToolState.IDLE
        self.current: SimJob | None = None
        self.jobs: OrderedDict[str, SimJob] = OrderedDict()
        self.alarms: list[int] = []
        self.process_warnings: set[int] = set()  # from the last job's physics
        self.jobs_done = 0
        self.faults = FaultPlan()
        self.listeners: list[Callable[[ToolEvent], None]] = []

    # -- identity and status ----------------------------------------------------------------

    @property
    def vendor(self) -> str:
        return self.interface.vendor

    @property
    def model(self) -> str:
        return self.interface.model

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def warnings(self) -> list[int]:
        out = []
        for c in self.interface.consumables:
            codes = self.interface.consumable_alarms.get(c.name)
            if codes and self.used_fraction(c) >= c.warn:
                out.append(codes[1])
        return sorted(set(out) | self.process_warnings)

    def used_fraction(self, c: Consumable) -> float:
        level = self.levels[c.name]
        return 1.0 - level / c.limit if c.supply else level / c.limit

    def progress(self) -> float:
        return self.current.progress(self.now()) if self.current else 0.0

    # -- job commands -----------------------------------------------------------------------

    def new_job(self, job_id: str, operation: str) -> None:
        self._ready_for_job()
        if not job_id or len(job_id) > 32 or not job_id.isascii() or not job_id.isprintable():
            raise Refused(Refusal.BAD_JOB_ID, f"bad job id {job_id!r} (1-32 ASCII characters)")
        if job_id in self.jobs:
            old = self.jobs[job_id]
            raise Refused(Refusal.DUPLICATE_JOB, f"job {job_id} already exists ({old.state.name})")
        try:
            op = self.interface.operation(operation.lower())
        except ParameterError:
            names = " ".join(o.mnemonic for o in self.interface.operations)
            raise Refused(
                Refusal.UNKNOWN_OPERATION, f"unknown operation {operation} (have {names})"
            ) from None
        if self.current is not None and self.current.state is JobState.SETUP:
            self.jobs.pop(self.current.job_id, None)  # replace an unstarted job
        self.current = SimJob(job_id, op)
        self.jobs[job_id] = self.current
        self._forget_old_jobs()
        self.state = ToolState.SETUP

    def set_param(self, name: str, raw: object) -> None:
        job = self.current
        if job is None or job.state is not JobState.SETUP:
            raise Refused(Refusal.NO_JOB, "no job in set-up (send JOB:NEW first)")
        try:
            param = job.op.param(name.lower())
        except ParameterError:
            job.refused.append(name)
            names = " ".join(p.name.upper() for p in job.op.params)
            raise Refused(
                Refusal.OUT_OF_RANGE,
                f"{job.op.mnemonic} has no parameter {name} (have {names})",
                name,
            ) from None
        try:
            job.values[param.name] = _coerce(param, raw)
        except Refused:
            job.refused.append(param.name)
            raise
        job.refused = [n for n in job.refused if n != param.name]  # a good value mends it

    def start(self) -> None:
        job = self.current
        if job is None or job.state is not JobState.SETUP:
            raise Refused(Refusal.NO_JOB, "no job in set-up (send JOB:NEW first)")
        if job.refused:
            raise Refused(
                Refusal.RULE, f"job {job.job_id} has refused parameters: {' '.join(job.refused)}"
            )
        self._launch(job)

    def load_and_start(self, job_id: str, op_code: int, slots: list[float]) -> None:
        """The Modbus path: a whole job block at once. `Refused.param` names the slot."""
        try:
            op = self.interface.operation_by_code(op_code)
        except KeyError:
            raise Refused(Refusal.UNKNOWN_OPERATION, f"unknown operation code {op_code}") from None
        self.new_job(job_id, op.name)
        job = self.current
        assert job is not None
        try:
            for i, p in enumerate(op.params):
                try:
                    raw = p.decode(slots[i])
                except ValueError as e:
                    raise Refused(Refusal.OUT_OF_RANGE, str(e).upper(), p.name) from None
                job.values[p.name] = _coerce(p, raw)
            self._launch(job)
        except Refused:
            self.jobs.pop(job_id, None)
            self.current = None
            self.state = ToolState.ALARM if self.alarms else ToolState.IDLE
            raise

    def start_job(self, job_id: str, operation: str, values: Mapping[str, object]) -> None:
        """The GEM path: a job from a process program, every setpoint at once (numbers in
        the parameter's canonical unit). A refused job leaves nothing behind."""
        self.new_job(job_id, operation)
        try:
            for name, raw in values.items():
                self.set_param(name, raw)
            self.start()
        except Refused:
            self.jobs.pop(job_id, None)
            self.current = None
            self.state = ToolState.ALARM if self.alarms else ToolState.IDLE
            raise

    def abort(self) -> None:
        job = self.current
        if job is None or job.state not in (JobState.RUNNING, JobState.SETUP):
            raise Refused(Refusal.NO_JOB, "no job to abort")
        job.stop(JobState.ABORTED, self.now())
        if job.plan is not None:
            self._wear(job.plan, job.stopped_at / 100.0)
        self.state = ToolState.ABORTED
        self.jobs_done += 1
        log.info("sim.aborted", tool_id=self.tool_id, job_id=job.job_id)
        self._emit(ToolEvent("aborted", job))

    def pause(self) -> None:
        """Hold the running job where it is (its timer stops with it)."""
        job = self.current
        if job is None or job.state is not JobState.RUNNING:
            raise Refused(Refusal.NO_JOB, "no running job to pause")
        if job.paused_at is not None:
            raise Refused(Refusal.NONE, f"job {job.job_id} is already paused")
        job.paused_at = self.now()
        if job.handle:
            job.handle.cancel()
            job.handle = None
        self._emit(ToolEvent("paused", job))

    def resume(self) -> None:
        job = self.current
        if job is None or job.state is not JobState.RUNNING:
            raise Refused(Refusal.NO_JOB, "no job to resume")
        if job.paused_at is None:
            raise Refused(Refusal.NONE, f"job {job.job_id} is not paused")
        now = self.now()
        held = now - job.paused_at
        job.started += held
        job.paused_at = None
        if job.timer is not None and job.handle is None:
            when = job.timer_when + held
            fn, args = job.timer
            self._schedule(job, max(0.0, when - now), fn, *args)
        self._emit(ToolEvent("resumed", job))

    def clear_alarms(self) -> None:
        if self.state is ToolState.RUNNING:
            raise Refused(Refusal.BUSY, "cannot clear alarms while a job runs")
        had = bool(self.alarms)
        self.alarms.clear()
        if self.state is ToolState.ALARM:
            self.state = ToolState.IDLE
        if had:
            self._emit(ToolEvent("alarms_cleared"))

    def reset(self) -> None:
        if self.current and self.current.state is JobState.RUNNING:
            self.abort()
        self.alarms.clear()
        self.state = ToolState.IDLE

    def replace_consumable(self, name: str) -> None:
        if self.state is ToolState.RUNNING:
            raise Refused(Refusal.BUSY, "cannot replace a consumable while a job runs")
        spec = next((c for c in self.interface.consumables if c.name == name.lower()), None)
        if spec is None:
            raise Refused(Refusal.BAD_COMMAND, f"no consumable {name}")
        self.levels[spec.name] = spec.limit if spec.supply else 0.0
        codes = self.interface.consumable_alarms.get(spec.name)
        if codes:
            self.alarms = [a for a in self.alarms if a != codes[0]]
            if not self.alarms and self.state is ToolState.ALARM:
                self.state = ToolState.IDLE
        log.info("sim.consumable_replaced", tool_id=self.tool_id, consumable=spec.name)
        self._emit(ToolEvent("consumable_replaced", detail=spec.name))

    def job(self, job_id: str) -> SimJob | None:
        return self.jobs.get(job_id)

    def read_carrier(self, carrier_id: str, expected: list[int]) -> tuple[str, list[int]]:
        """The load port reads the carrier's tag and maps its slots. The simulated carrier
        holds what the host says it holds, unless a `slot_map` fault changed it (one read)."""
        read = self.faults.carrier_read or carrier_id
        slots = list(expected) + [0] * (25 - len(expected))
        for n, state in self.faults.slot_map.items():
            slots[n - 1] = state
        self.faults.slot_map.clear()
        self.faults.carrier_read = None
        return read, slots[:25]

    # -- fault hooks used by the control server ---------------------------------------------

    def exhaust(self, name: str) -> None:
        spec = next((c for c in self.interface.consumables if c.name == name), None)
        if spec is None:
            names = ", ".join(c.name for c in self.interface.consumables)
            raise ValueError(f"{self.tool_id} has no consumable {name!r} ({names})")
        self.levels[name] = 0.0 if spec.supply else spec.limit

    def inject_alarm(self, code: int, at: float) -> None:
        """Alarm the running job at fraction `at` (now, if already past), else the next job."""
        job = self.current
        if job is not None and job.state is JobState.RUNNING:
            done = job.progress(self.now()) / 100.0
            delay = max(0.0, (at - done) * job.real_duration)
            if job.handle:
                job.handle.cancel()
            self._schedule(job, delay, self._alarm, job, code)
        else:
            self.faults.pending_alarms.append((code, at))

    # -- physics hooks (subclasses) ---------------------------------------------------------

    @abc.abstractmethod
    def plan(self, op: Operation, values: Mapping[str, Value], rng: random.Random) -> Plan:
        """The job's duration, results, wear and warnings (each kind models its process)."""

    def piece_plans(
        self, op: Operation, values: Mapping[str, Value], base: str
    ) -> list[dict[str, float]]:
        """Each piece of a batch job measured on its own: the process of one piece at its
        place in the batch, with noise seeded per piece (the whole job's plan still decides
        the duration and the wear)."""
        assert op.pieces.count is not None
        one = {**values, op.pieces.count: 1.0}
        out = []
        for n in range(1, op.piece_count(values) + 1):
            rng = random.Random(f"{self.seed}/{self.tool_id}/{base}/{n}")
            out.append(self.plan(op, one, rng).results)
        return out

    def refuse_reason(self, op: Operation, values: Mapping[str, Value]) -> str | None:
        """A tool-specific reason to refuse a job beyond ranges, rules and setup."""
        return None

    # -- internals --------------------------------------------------------------------------

    def _ready_for_job(self) -> None:
        if self.state is ToolState.RUNNING:
            assert self.current is not None
            raise Refused(Refusal.BUSY, f"busy with job {self.current.job_id}")
        if self.state is ToolState.ALARM:
            codes = " ".join(str(a) for a in self.alarms)
            raise Refused(Refusal.IN_ALARM, f"alarm active ({codes}): clear it first")

    def _launch(self, job: SimJob) -> None:
        op, values = job.op, job.values
        missing = [p.name.upper() for p in op.params if p.name not in values and p.required]
        if missing:
            raise Refused(Refusal.RULE, f"missing parameters: {' '.join(missing)}")
        for p in op.params:
            if p.name not in values and p.default is not None:
                values[p.name] = p.default
        for rule in op.rules:
            reason = rule.check(values)
            if reason:
                raise Refused(Refusal.RULE, reason)
        not_set_up = check_setup(op, values, self.setup)
        if not_set_up:
            raise Refused(Refusal.NOT_SET_UP, not_set_up[1], not_set_up[0])
        reason = self.refuse_reason(op, values)
        if reason:
            raise Refused(Refusal.RULE, reason)
        base = job.job_id.split("#")[0]
        rng = random.Random(f"{self.seed}/{self.tool_id}/{base}")
        plan = self.plan(op, values, rng)
        if not op.pieces.per_piece:
            plan.pieces = self.piece_plans(op, values, base)
            _place_defects(op, plan, random.Random(f"{self.seed}/{self.tool_id}/{base}/defects"))
        self._check_consumables(plan)
        if self.faults.pending_alarms:
            code, at = self.faults.pending_alarms.pop(0)
            plan.alarm = (code, at)
        loop = asyncio.get_running_loop()
        self.process_warnings.clear()
        job.plan = plan
        job.state = JobState.RUNNING
        job.started = loop.time()
        job.real_duration = (
            0.0 if math.isinf(self.time_scale) else plan.duration_s / self.time_scale
        )
        self.state = ToolState.RUNNING
        self.faults.job_started()
        if plan.alarm is not None:
            code, at = plan.alarm
            self._schedule(job, at * job.real_duration, self._alarm, job, code, at)
        else:
            self._schedule(job, job.real_duration, self._complete, job, plan)
        log.debug("sim.started", tool_id=self.tool_id, job_id=job.job_id, op=op.name)
        self._emit(ToolEvent("started", job))

    def _schedule(self, job: SimJob, delay: float, fn: Callable[..., None], *args: Any) -> None:
        job.timer, job.timer_when = (fn, args), self.now() + delay
        if job.paused_at is None:
            job.handle = asyncio.get_running_loop().call_later(delay, fn, *args)

    def _emit(self, event: ToolEvent) -> None:
        for listener in self.listeners:
            listener(event)

    def _check_consumables(self, plan: Plan) -> None:
        for name, amount in plan.wear.items():
            spec = next(c for c in self.interface.consumables if c.name == name)
            level = self.levels[name]
            short = level < amount if spec.supply else level >= spec.limit
            if short:
                codes = self.interface.consumable_alarms.get(name)
                if codes:
                    self._raise_alarm(codes[0])
                have = (
                    f"{level:.6g} {spec.unit} left"
                    if spec.supply
                    else (f"{level:.6g} of {spec.limit:.6g} {spec.unit} used")
                )
                raise Refused(
                    Refusal.CONSUMABLE_EXHAUSTED, f"{name} exhausted ({have}): replace it"
                )

    def _complete(self, job: SimJob, plan: Plan) -> None:
        job.handle = None
        self._wear(plan, 1.0)
        self.process_warnings.update(plan.warnings)
        job.warnings = sorted(set(plan.warnings))
        job.results = plan.results
        job.state = JobState.COMPLETE
        for n, results in enumerate(plan.pieces, start=1):
            # each piece of a batch is queried like a job of its own, by `<job id>/<n>`
            piece = SimJob(piece_job_id(job.job_id, n), job.op, job.values, state=JobState.COMPLETE)
            piece.results = {**results, "duration": plan.results.get("duration", 0.0)}
            piece.warnings, piece.stopped_at = job.warnings, 100.0
            self.jobs[piece.job_id] = piece
        self._forget_old_jobs()
        self.jobs_done += 1
        self.state = ToolState.COMPLETE
        self._emit(ToolEvent("completed", job))

    def _wear(self, plan: Plan, fraction: float) -> None:
        for name, amount in plan.wear.items():
            spec = next(c for c in self.interface.consumables if c.name == name)
            self.levels[name] += -amount * fraction if spec.supply else amount * fraction

    def _alarm(self, job: SimJob, code: int, at: float | None = None) -> None:
        job.handle = None
        job.stop(JobState.ALARM, self.now())
        if at is not None:  # the planned point, not when a busy event loop got round to it
            job.stopped_at = 100.0 * at
        job.alarm = code
        if job.plan is not None:  # the part of the job done before the alarm still wore
            self._wear(job.plan, job.stopped_at / 100.0)
        self.jobs_done += 1
        self._raise_alarm(code)
        log.info("sim.alarm", tool_id=self.tool_id, job_id=job.job_id, code=code)
        self._emit(ToolEvent("alarm", job))

    def _raise_alarm(self, code: int) -> None:
        if code not in self.alarms:
            self.alarms.append(code)
            self._emit(ToolEvent("alarm_raised", detail=str(code)))
        self.state = ToolState.ALARM

    def _forget_old_jobs(self) -> None:
        while len(self.jobs) > JOB_MEMORY:
            self.jobs.popitem(last=False)

    def _set_setup(self, name: str, values: list[str]) -> None:
        try:
            f = self.interface.setup_field(name)
        except KeyError:
            fields = ", ".join(f.name for f in self.interface.setup) or "none"
            raise ValueError(
                f"{self.tool_id}: no setup field {name!r} (fields: {fields})"
            ) from None
        if not f.multi and len(values) > 1:
            raise ValueError(f"{self.tool_id}: setup {name} takes one value, not {values}")
        bad = [v for v in values if v not in f.choices]
        if bad:
            raise ValueError(f"{self.tool_id}: setup {name}: unknown {bad} (choices: {f.choices})")
        self.setup[name] = tuple(values)


def _place_defects(op: Operation, plan: Plan, rng: random.Random) -> None:
    """A batch's defects as the tool counted them for the whole job, each at one piece's
    position (a missing ball is missing in one unit of the boat): the pieces' defect counts
    add up to the job's, whatever noise each piece's own measurements carry."""
    n = len(plan.pieces)
    for r in op.results:
        if not r.defect or r.name not in plan.results:
            continue
        counts = [0] * n
        for _ in range(max(0, round(plan.results[r.name]))):
            counts[rng.randrange(n)] += 1
        for piece, k in zip(plan.pieces, counts, strict=True):
            piece[r.name] = float(k)


def _coerce(param: Param, raw: object) -> Value:
    """Validate a wire value: numbers arrive in the parameter's canonical unit."""
    if param.is_choice:
        text = str(raw).strip().upper()
        if text not in param.choices:
            raise Refused(
                Refusal.OUT_OF_RANGE,
                f"{param.name.upper()} {text} not allowed ({' '.join(param.choices)})",
                param.name,
            )
        return text
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Refused(
            Refusal.OUT_OF_RANGE, f"{param.name.upper()} {raw} is not a number", param.name
        ) from None
    if param.integer and value != int(value):
        raise Refused(
            Refusal.OUT_OF_RANGE, f"{param.name.upper()} {value:g} must be whole", param.name
        )
    # Modbus carries f32: a limit like 1e-3 arrives as 0.0010000000474974513, so compare
    # with a tolerance of f32 rounding rather than refuse a setpoint exactly at the limit.
    slack = F32_EPS * max(abs(value), abs(param.min or 0.0), abs(param.max or 0.0))
    if (
        not math.isfinite(value)
        or (param.min is not None and value < param.min - slack)
        or (param.max is not None and value > param.max + slack)
    ):
        lo = "-inf" if param.min is None else f"{param.min:g}"
        hi = "inf" if param.max is None else f"{param.max:g}"
        raise Refused(
            Refusal.OUT_OF_RANGE,
            f"{param.name.upper()} {value:g} out of range {lo}-{hi} {param.unit}".rstrip(),
            param.name,
        )
    return value
