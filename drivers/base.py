"""The one async surface every tool driver offers, whatever its protocol.

connect → identify → status → start(job) → wait(job_id) → result(job_id), plus abort,
clear_alarms and replace_consumable. A job is validated against the tool kind's published
interface (units, ranges, rules, installed setup) before anything is sent, so a bad setpoint
never reaches the tool. Protocol subclasses implement the `_`-prefixed wire calls.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from drivers.errors import (
    GarbledReply,
    JobAborted,
    JobNotFound,
    ParameterError,
    ToolAlarm,
    ToolOffline,
    ToolTimeout,
    ValueRefused,
)
from drivers.interface import (
    JOB_ID_MAX,
    Alarm,
    ControlState,
    JobState,
    Operation,
    ToolInterface,
    ToolState,
    Value,
    check_setup,
)

log = structlog.get_logger("fabline.driver")

ProgressCallback = Callable[[float, JobState], None]
"""Called with (percent done, job state) whenever a poll sees progress move."""


@dataclass(frozen=True)
class Job:
    """What to run: a job id chosen by the caller (unique per tool), an operation of the tool
    kind, and raw parameter values ("5 kW", a Quantity, or a choice such as "CU")."""

    job_id: str
    operation: str
    params: Mapping[str, object] = field(default_factory=dict)
    recipe: str = ""  # the recipe the job's setpoints come from (names GEM process programs)


@dataclass(frozen=True)
class Identity:
    vendor: str
    model: str
    serial: str
    revision: str


@dataclass(frozen=True)
class ConsumableLevel:
    name: str
    unit: str
    level: float  # wear used, or supply left
    limit: float
    supply: bool

    @property
    def used_fraction(self) -> float:
        if self.limit <= 0:
            return 1.0
        return 1.0 - self.level / self.limit if self.supply else self.level / self.limit


@dataclass(frozen=True)
class ToolStatus:
    tool_id: str
    state: ToolState
    job_id: str | None
    progress: float  # percent of the current job
    alarms: tuple[Alarm, ...]
    warnings: tuple[Alarm, ...]
    consumables: tuple[ConsumableLevel, ...]
    setup: Mapping[str, tuple[str, ...]]
    control: ControlState | None = None  # GEM tools: off-line, on-line local or remote


@dataclass(frozen=True)
class JobProgress:
    state: JobState
    progress: float
    alarm_code: int


@dataclass(frozen=True)
class JobResult:
    job_id: str
    operation: str
    state: JobState
    results: Mapping[str, float]
    alarm: Alarm | None = None
    # process warnings the job raised at its end (voids high, under-cured, ...): it completed,
    # but the controller must record them and may hold the lot on them
    warnings: tuple[Alarm, ...] = ()


@dataclass(frozen=True)
class CarrierRead:
    """What a tool's load port read of a carrier: the id on its tag and the state of each
    slot (drivers/protocols/modbus_map.py SlotState; slot 1 first)."""

    carrier_id: str
    slots: tuple[int, ...]


class ToolDriver(ABC):
    """Base of every driver; one instance per tool."""

    interface: ToolInterface

    def __init__(
        self,
        tool_id: str,
        *,
        timeout: float = 2.0,
        poll_max: float = 0.2,
        link_budget: float = 10.0,
    ) -> None:
        self.tool_id = tool_id
        self.timeout = timeout
        self.poll_max = poll_max
        # how long wait() keeps polling through a broken link before giving up
        self.link_budget = link_budget
        self._setup: Mapping[str, tuple[str, ...]] | None = None
        self.identity: Identity | None = None
        # the time `wait` measures its timeout and link budget on; tests swap in a fake clock
        self.clock: Callable[[], float] = time.monotonic

    @property
    def kind(self) -> str:
        return self.interface.kind

    @property
    def setup(self) -> Mapping[str, tuple[str, ...]] | None:
        """What the tool has installed, as its last status said (None: not asked yet)."""
        return self._setup

    # -- the surface ----------------------------------------------------------------------

    async def connect(self) -> Identity:
        self.identity = await self._identify()
        await self.status()  # caches the installed setup used to vet jobs
        log.info("driver.connected", tool_id=self.tool_id, model=self.identity.model)
        return self.identity

    async def identify(self) -> Identity:
        self.identity = await self._identify()
        return self.identity

    async def status(self) -> ToolStatus:
        st = await self._status()
        self._setup = st.setup
        return st

    def validate(self, job: Job) -> tuple[Operation, dict[str, Value]]:
        """Check a job against the published interface and the installed setup, sending
        nothing. Raises ParameterError naming the parameter, value and allowed range."""
        if not job.job_id or len(job.job_id) > JOB_ID_MAX or not job.job_id.isascii():
            raise ParameterError(
                f"{self.tool_id}: job id {job.job_id!r} must be 1–{JOB_ID_MAX} ASCII characters"
            )
        try:
            op = self.interface.operation(job.operation)
            values = op.validate(job.params)
            if self._setup is not None:
                missing = check_setup(op, values, self._setup)
                if missing:
                    raise ParameterError(f"operation {op.name!r}: {missing[1]}")
        except ParameterError as e:
            raise type(e)(f"{self.tool_id}: {e}") from None
        return op, values

    def setup_problem(self, operation: str, values: Mapping[str, Value]) -> str | None:
        """Why this tool, as last seen, is not set up for the job (None: it is, or unknown)."""
        if self._setup is None:
            return None
        missing = check_setup(self.interface.operation(operation), values, self._setup)
        return None if missing is None else missing[1]

    async def start(self, job: Job) -> None:
        """Validate then send the job. Safe to repeat with the same job after a lost reply:
        a job id the tool already runs with the same operation counts as started."""
        op, values = self.validate(job)
        try:
            await self._start(job.job_id, op, values)
        except (ToolOffline, ToolTimeout, GarbledReply):
            # The reply was lost; the job may still have started. Ask the tool.
            if not await self._has_job(job.job_id, op):
                raise
        except ValueRefused:
            # Refused as a duplicate (or busy) because an earlier send of this very job,
            # whose reply was lost, started it: that job is ours and must not run twice.
            try:
                ours = await self._has_job(job.job_id, op)
            except (ToolOffline, ToolTimeout, GarbledReply):
                ours = False
            if not ours:
                raise
            log.info("driver.start_repeated", tool_id=self.tool_id, job_id=job.job_id)
        log.info("driver.started", tool_id=self.tool_id, job_id=job.job_id, operation=op.name)

    async def _has_job(self, job_id: str, op: Operation) -> bool:
        """Whether the tool has started (or finished) this job: this id with this operation.
        An id another operation holds is not ours, so its results never pass for ours."""
        known = await self._result(job_id)
        return known.state not in (JobState.UNKNOWN, JobState.SETUP) and known.operation == op.name

    async def job_progress(self, job_id: str) -> JobProgress:
        return await self._job_progress(job_id)

    async def wait(
        self,
        job_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> JobResult:
        """Poll until the job ends. COMPLETE returns its results; ALARM raises ToolAlarm;
        ABORTED raises JobAborted; a job the tool does not know raises JobNotFound. A link
        that breaks while polling is retried for `link_budget` seconds."""
        deadline = None if timeout is None else self.clock() + timeout
        pause = 0.0
        last_ok = self.clock()
        last_seen: tuple[JobState, float] | None = None
        while True:
            try:
                p = await self._job_progress(job_id)
                last_ok = self.clock()
            except (ToolOffline, ToolTimeout, GarbledReply):
                if self.clock() - last_ok > self.link_budget:
                    raise
                p = None
            if p is not None:
                if on_progress is not None and (p.state, p.progress) != last_seen:
                    on_progress(p.progress, p.state)
                last_seen = (p.state, p.progress)
                if p.state is JobState.UNKNOWN:
                    raise JobNotFound(self.tool_id, f"tool has no record of job {job_id}")
                if p.state.finished:
                    try:
                        return await self._finish(job_id)
                    except (ToolOffline, ToolTimeout, GarbledReply):
                        # the job is over but its result was lost: poll and fetch it again
                        if self.clock() - last_ok > self.link_budget:
                            raise
            if deadline is not None and self.clock() > deadline:
                raise ToolTimeout(self.tool_id, f"job {job_id} still running after {timeout} s")
            await self._idle(pause)
            pause = min(self.poll_max, max(0.002, pause * 2))

    async def run(self, job: Job, *, on_progress: ProgressCallback | None = None) -> JobResult:
        """start + wait."""
        await self.start(job)
        return await self.wait(job.job_id, on_progress=on_progress)

    async def result(self, job_id: str) -> JobResult:
        """The tool's record of a job by id, e.g. to re-attach after a controller restart."""
        res = await self._result(job_id)
        if res.state is JobState.UNKNOWN:
            raise JobNotFound(self.tool_id, f"tool has no record of job {job_id}")
        return res

    async def read_carrier(self, carrier_id: str, expected: tuple[int, ...]) -> CarrierRead | None:
        """Have the tool read a carrier at its load port (SEMI E87 slot-map verification):
        the host names the carrier and the slot map it expects, the tool answers with the
        tag it read and the slots it mapped. None: the tool's protocol has no carrier read
        (GEM here: not built)."""
        return await self._read_carrier(carrier_id, expected)

    async def _read_carrier(self, carrier_id: str, expected: tuple[int, ...]) -> CarrierRead | None:
        return None

    async def abort(self) -> None:
        await self._abort()

    async def clear_alarms(self) -> None:
        await self._clear_alarms()

    async def replace_consumable(self, name: str) -> None:
        names = [c.name for c in self.interface.consumables]
        if name not in names:
            raise ParameterError(
                f"{self.tool_id}: no consumable {name!r} (consumables: {', '.join(names)})"
            )
        await self._replace_consumable(names.index(name), name)

    async def close(self) -> None:
        await self._close()

    # -- helpers for subclasses -----------------------------------------------------------

    async def _idle(self, seconds: float) -> None:
        """Pause between polls of wait(); a protocol with event reports wakes it early."""
        await asyncio.sleep(seconds)

    async def _finish(self, job_id: str) -> JobResult:
        res = await self.result(job_id)
        if res.state is JobState.ALARM:
            alarm = res.alarm or self.interface.alarm(0)
            raise ToolAlarm(self.tool_id, alarm.code, alarm.text, job_id)
        if res.state is JobState.ABORTED:
            raise JobAborted(self.tool_id, f"job {job_id} was aborted")
        return res

    def _split_alarms(self, codes: list[int]) -> tuple[tuple[Alarm, ...], tuple[Alarm, ...]]:
        found = [self.interface.alarm(c) for c in codes if c]
        return (
            tuple(a for a in found if not a.warning),
            tuple(a for a in found if a.warning),
        )

    # -- wire calls -----------------------------------------------------------------------

    @abstractmethod
    async def _identify(self) -> Identity: ...

    @abstractmethod
    async def _status(self) -> ToolStatus: ...

    @abstractmethod
    async def _start(self, job_id: str, op: Operation, values: Mapping[str, Value]) -> None: ...

    @abstractmethod
    async def _job_progress(self, job_id: str) -> JobProgress: ...

    @abstractmethod
    async def _result(self, job_id: str) -> JobResult: ...

    @abstractmethod
    async def _abort(self) -> None: ...

    @abstractmethod
    async def _clear_alarms(self) -> None: ...

    @abstractmethod
    async def _replace_consumable(self, index: int, name: str) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...
