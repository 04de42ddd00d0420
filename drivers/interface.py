"""The published interface of a tool kind: operations, parameters, results, alarms, consumables.

One `ToolInterface` per kind (see `drivers/interfaces/`) is the single source of truth that the
driver validates against, the simulator implements, and `docs/tools/<kind>.md` is generated
from. It is pure data plus the tool's published parameter rules; no I/O lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

from drivers.errors import ParameterError, UnitError
from drivers.units import Quantity, format_quantity, parse_quantity, to_unit

Value = float | str
"""A validated parameter value: a number in the parameter's canonical unit, or a choice."""


class ToolState(IntEnum):
    """Processing state of a tool. COMPLETE and ABORTED are resting states like IDLE."""

    IDLE = 0
    SETUP = 1
    RUNNING = 2
    COMPLETE = 3
    ALARM = 4
    ABORTED = 5


class ControlState(IntEnum):
    """Who controls a tool (SEMI E30 control state, GEM's numbering): off-line, on-line with
    the operator at the tool in charge (local), or on-line under the host (remote)."""

    EQUIPMENT_OFFLINE = 1
    ATTEMPT_ONLINE = 2
    HOST_OFFLINE = 3
    LOCAL = 4
    REMOTE = 5

    @property
    def online(self) -> bool:
        return self in (ControlState.LOCAL, ControlState.REMOTE)


class JobState(IntEnum):
    """State of one job as the tool remembers it; UNKNOWN if it has no record of the id."""

    UNKNOWN = 0
    SETUP = 1
    RUNNING = 2
    COMPLETE = 3
    ALARM = 4
    ABORTED = 5

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETE, JobState.ALARM, JobState.ABORTED)


JOB_ID_MAX = 32
"""Longest job id any tool accepts (a Modbus string field of 16 registers)."""


@dataclass(frozen=True)
class Param:
    """One typed job parameter. Numbers are held in `unit`; choices are upper-case mnemonics."""

    name: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    default: Value | None = None
    integer: bool = False
    setup: str | None = None  # name of the setup field this value must be installed in
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    def describe_range(self) -> str:
        if self.is_choice:
            return "one of " + ", ".join(self.choices)
        lo = "-inf" if self.min is None else format_quantity(self.min, "")
        hi = "inf" if self.max is None else format_quantity(self.max, "")
        return f"{lo}–{hi} {self.unit}".rstrip()

    def coerce(self, raw: object) -> Value:
        """Validate one raw value (string with unit, Quantity, number, choice) for this param."""
        if self.is_choice:
            text = str(raw).strip().upper()
            if text not in self.choices:
                raise ParameterError(
                    f"parameter {self.name!r} = {raw!r} is not allowed ({self.describe_range()})"
                )
            return text
        if not isinstance(raw, str | int | float | Quantity) or isinstance(raw, bool):
            raise ParameterError(f"parameter {self.name!r}: expected a number, got {raw!r}")
        try:
            value = to_unit(raw, self.unit)
        except UnitError as e:
            raise UnitError(f"parameter {self.name!r}: {e}") from None
        if self.integer and value != int(value):
            raise ParameterError(f"parameter {self.name!r} = {raw!r} must be a whole number")
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            shown = raw if isinstance(raw, str) else str(parse_quantity(raw))
            raise ParameterError(
                f"parameter {self.name!r} = {shown} is outside the allowed range"
                f" {self.describe_range()}"
            )
        return value

    def encode(self, value: Value) -> float:
        """Numeric wire form: choices travel as their index (Modbus f32 slot)."""
        if self.is_choice:
            return float(self.choices.index(str(value)))
        return float(value)

    def decode(self, number: float) -> Value:
        if self.is_choice:
            idx = round(number)
            if not 0 <= idx < len(self.choices):
                raise ValueError(f"{self.name}: choice code {idx} out of range")
            return self.choices[idx]
        return number


@dataclass(frozen=True)
class Result:
    """One measured result a job reports, in `unit`. `defect`: a count of defective units
    (or sites) of this kind, binned as rejects with that reason by the genealogy; `at_edge`:
    the defects lie at the work piece's edge (run-out, edge chipping), so the dies binned
    for them are the outermost ones, not dies picked at random."""

    name: str
    unit: str = ""
    doc: str = ""
    defect: str | None = None
    at_edge: bool = False


@dataclass(frozen=True)
class Rule:
    """A published cross-parameter constraint; `check` returns a reason when violated."""

    doc: str
    check: Callable[[Mapping[str, Value]], str | None]


def window(
    choice: str,
    param: str,
    table: Mapping[str, tuple[float, float]],
    unit: str,
    *,
    word: str = "window",
    unset: float | None = None,
) -> Callable[[Mapping[str, Value]], str | None]:
    """A Rule check: `param` lies in the window (lo, hi) that the value of `choice` selects in
    `table` (e.g. the mold temperature window of the molding method); `unset` (a "let the
    tool choose" value) is not checked."""

    def check(v: Mapping[str, Value]) -> str | None:
        key, x = str(v[choice]), float(v[param])
        if x == unset:
            return None
        lo, hi = table[key]
        if lo <= x <= hi:
            return None
        return f"{param} {x:g} {unit} outside the {key} {word} {lo:g}–{hi:g} {unit}"

    return check


@dataclass(frozen=True)
class DieGrid:
    """The parameters of an operation that cut a work piece into a grid of dies: the
    genealogy splits the piece into one package per grid position."""

    shape: str = "work_shape"  # ROUND (a wafer) or RECT (a panel or strip)
    width: str = "work_width"
    length: str = "work_length"
    die_x: str = "die_x"
    die_y: str = "die_y"


@dataclass(frozen=True)
class Pieces:
    """How an operation takes material: what one work piece is at that point of a flow, and
    how many one job processes. Per piece (`batch` 1): one job per wafer, panel, strip or
    boat. Batch: up to `batch` pieces in one job (a plating rack, a cure oven, a reflow line,
    a mold press), their number set by the integer parameter `count`; the tool then keeps
    each piece's results as a job of its own, `<job id>/<n>` (n = 1.. in load order)."""

    what: str = "wafer, stack, panel or strip"
    batch: int = 1
    count: str | None = None  # the parameter carrying the number of pieces in the job

    @property
    def per_piece(self) -> bool:
        return self.count is None

    def describe(self) -> str:
        if self.per_piece:
            return f"per piece: one {self.what} per job"
        return f"batch: up to {self.batch} pieces ({self.what}) per job, counted by `{self.count}`"


PIECE_SUFFIX = "/"
"""A batch job's piece n is known to the tool as `<job id>/<n>`."""


def piece_job_id(job_id: str, n: int) -> str:
    """The id a batch job's piece `n` (1-based, load order) is queried by."""
    return f"{job_id}{PIECE_SUFFIX}{n}"


@dataclass(frozen=True)
class Operation:
    name: str
    code: int  # Modbus operation code; SCPI uses the upper-case name
    doc: str
    params: tuple[Param, ...]
    results: tuple[Result, ...]
    rules: tuple[Rule, ...] = ()
    die_grid: DieGrid | None = None  # the operation singulates
    pieces: Pieces = Pieces()

    def __post_init__(self) -> None:
        count = self.pieces.count
        if count is None:
            return
        p = next((p for p in self.params if p.name == count), None)
        if p is None or not p.integer or p.max is None or p.max < self.pieces.batch:
            raise ValueError(
                f"operation {self.name}: pieces are counted by {count!r}, which must be an"
                f" integer parameter allowing {self.pieces.batch}"
            )

    def piece_count(self, values: Mapping[str, Value]) -> int:
        """Pieces one job with these values processes."""
        if self.pieces.count is None:
            return 1
        return int(float(values.get(self.pieces.count, 1)))

    @property
    def mnemonic(self) -> str:
        return self.name.upper()

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(
            f"operation {self.name!r} has no parameter {name!r}"
            f" (parameters: {', '.join(p.name for p in self.params)})"
        )

    def validate(self, raw: Mapping[str, object]) -> dict[str, Value]:
        """Check every parameter and the rules; fill defaults. Raises ParameterError."""
        for name in raw:
            self.param(name)  # unknown names are an error
        values: dict[str, Value] = {}
        for p in self.params:
            if p.name in raw:
                values[p.name] = p.coerce(raw[p.name])
            elif p.default is not None:
                values[p.name] = p.default
            else:
                raise ParameterError(
                    f"operation {self.name!r}: missing parameter {p.name!r} ({p.describe_range()})"
                )
        for rule in self.rules:
            reason = rule.check(values)
            if reason:
                raise ParameterError(f"operation {self.name!r}: {reason}")
        return values


@dataclass(frozen=True)
class Alarm:
    """A tool alarm. A warning is reported in status but does not stop a job."""

    code: int
    name: str
    text: str
    warning: bool = False


@dataclass(frozen=True)
class Consumable:
    """A wearing part or supply. `limit` is where the tool refuses new jobs; a warning alarm
    is raised at `warn` × limit."""

    name: str
    unit: str
    limit: float
    doc: str = ""
    warn: float = 0.9
    supply: bool = False  # True: counts down from `limit` (ball supply); False: wear counts up


@dataclass(frozen=True)
class SetupField:
    """Something an engineer installs on the tool: targets, baths, blade, ball alloy."""

    name: str
    choices: tuple[str, ...]
    multi: bool = True
    doc: str = ""


@dataclass(frozen=True)
class Qualification:
    """The kind's short representative job (`fabline tool qualify`): an operation and its
    parameters, fitted to what a tool has installed by `fit` where that matters."""

    operation: str
    params: Mapping[str, str]
    fit: Callable[[Mapping[str, tuple[str, ...]]], Mapping[str, str]] | None = None

    def job(self, setup: Mapping[str, tuple[str, ...]] | None) -> dict[str, str]:
        fitted = self.fit(setup) if self.fit is not None and setup else {}
        return {**self.params, **fitted}


@dataclass(frozen=True)
class ToolInterface:
    """Everything fabline knows about a tool kind, in one record: its wire interface
    (operations, parameters, results, alarms, consumables, setup) and what the rest of
    fabline needs of the kind — the id prefix of its tools, the alarms each consumable
    raises, its qualification job. Drivers, simulators, docs and the engine derive from it."""

    kind: str
    protocol: Literal["scpi", "modbus"]  # published; a line file may put any kind on GEM
    title: str
    vendor: str
    model: str
    operations: tuple[Operation, ...]
    alarms: tuple[Alarm, ...]
    consumables: tuple[Consumable, ...]
    id_prefix: str  # tool ids of the kind: SPUT-1, SPUT-2, ...
    qualification: Qualification
    # consumable -> (alarm when exhausted, warning near its limit)
    consumable_alarms: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    setup: tuple[SetupField, ...] = ()
    default_setup: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        names = {c.name for c in self.consumables}
        codes = {a.code: a for a in self.alarms}
        for name, (alarm, warning) in self.consumable_alarms.items():
            if name not in names:
                raise ValueError(f"{self.kind}: consumable_alarms names no consumable {name!r}")
            if alarm not in codes or codes[alarm].warning:
                raise ValueError(f"{self.kind}: {name} alarm {alarm} is not an alarm of the kind")
            if warning not in codes or not codes[warning].warning:
                raise ValueError(f"{self.kind}: {name} warning {warning} is not a warning")

    def operation(self, name: str) -> Operation:
        for op in self.operations:
            if op.name == name:
                return op
        raise ParameterError(
            f"{self.kind} has no operation {name!r}"
            f" (operations: {', '.join(o.name for o in self.operations)})"
        )

    def operation_by_code(self, code: int) -> Operation:
        for op in self.operations:
            if op.code == code:
                return op
        raise KeyError(code)

    def alarm(self, code: int) -> Alarm:
        for a in self.alarms:
            if a.code == code:
                return a
        return Alarm(code, "UNKNOWN", f"unknown alarm {code}")

    def setup_field(self, name: str) -> SetupField:
        for f in self.setup:
            if f.name == name:
                return f
        raise KeyError(name)


def check_setup(
    op: Operation, values: Mapping[str, Value], setup: Mapping[str, tuple[str, ...]]
) -> tuple[str, str] | None:
    """(parameter, reason) when the job needs something not installed on the tool."""
    for p in op.params:
        if p.setup is None:
            continue
        installed = setup.get(p.setup, ())
        if values[p.name] not in installed:
            have = " ".join(installed) or "nothing"
            # key facts first: a Modbus refusal text keeps only 64 characters
            return p.name, (
                f"{p.name} {values[p.name]} not set up (installed: {have}); parameter"
                f" {p.name!r} needs one of the {p.setup} installed on this tool"
            )
    return None
