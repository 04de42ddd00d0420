"""The GEM vocabulary of a tool kind (docs/tools/gem.md), derived from its ToolInterface.

Like the Modbus register map, nothing here is listed per kind: status variables, equipment
constants, data variables, collection events, alarms, remote commands, the job object the
host queries (E39 GetAttr, S14F1) and the process-program body all follow from the
interface's operations, results, alarms, consumables and setup fields, so every kind can be
a GEM tool. Numbering:

| range | what |
|---|---|
| SVID 1–99 | tool status: control and process state, current job, alarms, refusal |
| SVID 100 + i | level of consumable i (wear used, or supply left) |
| SVID 200 + i | choices installed in setup field i |
| DVID 1000–1099 | event data: job id, state, alarm, operation, PPID, consumable |
| DVID 1100 + i | result i of the kind (union over operations, first appearance) |
| ECID 2000–2099 | GEM constants |
| ECID 2100 + 2i, 2101 + 2i | limit and warning fraction of consumable i |
| CEID 1–99 | control state, job, process program, alarm and consumable events |
| CEID 100 + code | `<OPERATION>_COMPLETED`, reporting that operation's results |
| ALID | the interface's alarm codes |
| RPTID | the reports fabline's host defines at connect (`REPORTS`) |
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from drivers.errors import ParameterError
from drivers.interface import Operation, ToolInterface, Value
from drivers.units import format_quantity

VarKind = Literal["SV", "DV", "EC"]


@dataclass(frozen=True)
class Variable:
    vid: int
    name: str
    kind: VarKind
    fmt: str  # SECS-II format on the wire, as the sheet shows it
    unit: str = ""
    doc: str = ""


@dataclass(frozen=True)
class CollectionEvent:
    ceid: int
    name: str
    rptid: int  # the report fabline's host links to it
    doc: str = ""


@dataclass(frozen=True)
class RemoteCommand:
    name: str
    params: tuple[str, ...]  # CPNAMEs, each sent as <A>
    doc: str
    done_event: str | None = None  # CEID name that signals completion after HCACK 4


@dataclass(frozen=True)
class Report:
    rptid: int
    vids: tuple[str, ...]  # variable names


# -- fixed part: the same for every kind ----------------------------------------------------

SV_FIXED = (
    Variable(1, "CLOCK", "SV", "A[16]", doc="YYYYMMDDhhmmsscc (TIME, S2F31)"),
    Variable(2, "CONTROL_STATE", "SV", "U1", doc="1 equipment off-line … 4 local, 5 remote"),
    Variable(3, "PROCESS_STATE", "SV", "U1", doc="ToolState: 0 IDLE … 5 ABORTED"),
    Variable(4, "PREVIOUS_PROCESS_STATE", "SV", "U1"),
    Variable(5, "JOB_ID", "SV", "A", doc="current (or last) job"),
    Variable(6, "PROGRESS", "SV", "F4", "%", "of the current job"),
    Variable(7, "ALARMS_SET", "SV", "L of U4", doc="ALIDs of the alarms set"),
    Variable(8, "WARNINGS_SET", "SV", "L of U4", doc="ALIDs of the warnings set"),
    Variable(9, "PP_EXEC_NAME", "SV", "A", doc="PPID selected for the next job"),
    Variable(10, "JOBS_DONE", "SV", "U4", doc="jobs ended since power-on"),
    Variable(11, "VENDOR", "SV", "A"),
    Variable(12, "SERIAL_NUMBER", "SV", "A"),
    Variable(13, "REFUSAL_CODE", "SV", "U1", doc="why the last command was refused (0 none)"),
    Variable(14, "REFUSAL_TEXT", "SV", "A", doc="the tool's words for it"),
    Variable(15, "PAUSED", "SV", "BOOLEAN", doc="the current job is paused"),
)  # fmt: skip
DV_FIXED = (
    Variable(1000, "EVENT_JOB_ID", "DV", "A"),
    Variable(1001, "EVENT_JOB_STATE", "DV", "U1", doc="JobState: 2 RUNNING … 5 ABORTED"),
    Variable(1002, "EVENT_ALARM", "DV", "U4", doc="alarm that ended the job (0 none)"),
    Variable(1003, "EVENT_OPERATION", "DV", "A"),
    Variable(1004, "EVENT_PPID", "DV", "A"),
    Variable(1005, "EVENT_CONSUMABLE", "DV", "A"),
    Variable(1006, "EVENT_WARNINGS", "DV", "L", doc="process warnings the job raised (ALIDs)"),
)  # fmt: skip
EC_FIXED = (
    Variable(2000, "ESTABLISH_COMM_TIMEOUT", "EC", "U2", "s", "S1F13 retry period"),
    Variable(2001, "TIME_FORMAT", "EC", "U1", doc="1: 16-character TIME"),
)

CE_FIXED = (
    CollectionEvent(1, "CONTROL_OFFLINE", 2, "the tool went off-line"),
    CollectionEvent(2, "CONTROL_LOCAL", 2, "operator switched the tool to on-line local"),
    CollectionEvent(3, "CONTROL_REMOTE", 2, "the tool is on-line remote"),
    CollectionEvent(10, "JOB_STARTED", 1, "a job started (after START)"),
    CollectionEvent(11, "JOB_ALARMED", 1, "an alarm stopped the job"),
    CollectionEvent(12, "JOB_ABORTED", 1, "the job was aborted or stopped"),
    CollectionEvent(13, "JOB_PAUSED", 1, "the job paused"),
    CollectionEvent(14, "JOB_RESUMED", 1, "the job resumed"),
    CollectionEvent(20, "PP_SELECTED", 3, "a process program was selected"),
    CollectionEvent(21, "PP_CHANGED", 3, "a process program was created, changed or deleted"),
    CollectionEvent(30, "ALARMS_CLEARED", 5, "alarms cleared"),
    CollectionEvent(31, "CONSUMABLE_REPLACED", 4, "a consumable was replaced"),
)
RPT_JOB, RPT_CONTROL, RPT_PP, RPT_CONSUMABLE, RPT_ALARMS = 1, 2, 3, 4, 5
REPORTS_FIXED = (
    Report(RPT_JOB, ("EVENT_JOB_ID", "EVENT_JOB_STATE", "EVENT_ALARM", "EVENT_OPERATION")),
    Report(RPT_CONTROL, ("CONTROL_STATE",)),
    Report(RPT_PP, ("EVENT_PPID",)),
    Report(RPT_CONSUMABLE, ("EVENT_CONSUMABLE",)),
    Report(RPT_ALARMS, ("ALARMS_SET",)),
)

# remote commands, CPNAMEs and the job object
CP_PPID, CP_JOBID, CP_CONSUMABLE = "PPID", "JOBID", "CONSUMABLE"
RCMDS = (
    RemoteCommand("PP-SELECT", (CP_PPID,), "select the process program of the next job",
                  "PP_SELECTED"),
    RemoteCommand("START", (CP_JOBID,), "start a job of the selected process program",
                  "JOB_STARTED"),
    RemoteCommand("STOP", (), "end the current job at the next safe point", "JOB_ABORTED"),
    RemoteCommand("PAUSE", (), "pause the current job", "JOB_PAUSED"),
    RemoteCommand("RESUME", (), "resume the paused job", "JOB_RESUMED"),
    RemoteCommand("ABORT", (), "abort the current job now", "JOB_ABORTED"),
    RemoteCommand("CLEAR-ALARMS", (), "acknowledge and clear the alarms", "ALARMS_CLEARED"),
    RemoteCommand("REPLACE-CONSUMABLE", (CP_CONSUMABLE,), "record a consumable as replaced",
                  "CONSUMABLE_REPLACED"),
)  # fmt: skip
JOB_OBJTYPE = "JOB"
ATTR_STATE, ATTR_PROGRESS, ATTR_ALARM, ATTR_OPERATION = "JOBSTATE", "PROGRESS", "ALARM", "OPERATION"
ATTR_WARNINGS = "WARNINGS"  # L of U4: the process warnings the job raised at its end

# SEMI E5 codes the host and the tools use
HCACK_TEXT = {
    0: "done",
    1: "command does not exist",
    2: "cannot perform now",
    3: "at least one parameter is invalid",
    4: "accepted, completion will be signalled by an event",
    5: "already in the desired condition",
    6: "no such object",
}
CPACK_TEXT = {1: "parameter name does not exist", 2: "illegal value", 3: "illegal format"}
ALCD_SET = 0x80
ALCD_ALARM = 4  # category: parameter control error (the process left its window)
ALCD_WARNING = 6  # category: equipment status warning
ERR_UNKNOWN_OBJECT = 3  # E39 ERRCODE: unknown object instance
ERR_UNKNOWN_ATTRIBUTE = 4  # E39 ERRCODE: unknown attribute name
PPGNT_OK, PPGNT_ALREADY_HAVE, PPGNT_NO_SPACE = 0, 1, 2
ACKC7_OK, ACKC7_DENIED, ACKC7_NOT_FOUND, ACKC7_BAD_MODE, ACKC7_STORAGE = 0, 1, 4, 5, 7


@dataclass(frozen=True)
class GemMap:
    """The GEM vocabulary of one tool kind."""

    interface: ToolInterface
    variables: tuple[Variable, ...]
    events: tuple[CollectionEvent, ...]
    reports: tuple[Report, ...]
    results: tuple[tuple[str, str], ...]  # (result name, unit) in DVID order

    @functools.cached_property
    def _by_name(self) -> dict[str, Variable]:
        return {v.name: v for v in self.variables}

    @functools.cached_property
    def _by_vid(self) -> dict[int, Variable]:
        return {v.vid: v for v in self.variables}

    @functools.cached_property
    def _events(self) -> dict[str, CollectionEvent]:
        return {e.name: e for e in self.events}

    def var(self, name: str) -> Variable:
        return self._by_name[name]

    def vid(self, name: str) -> int:
        return self._by_name[name].vid

    def by_vid(self, vid: int) -> Variable | None:
        return self._by_vid.get(vid)

    def event(self, name: str) -> CollectionEvent:
        return self._events[name]

    def event_by_ceid(self, ceid: int) -> CollectionEvent | None:
        return next((e for e in self.events if e.ceid == ceid), None)

    @property
    def svs(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.kind == "SV")

    @property
    def ecs(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.kind == "EC")

    @property
    def dvs(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.kind == "DV")

    def completed(self, op: Operation) -> CollectionEvent:
        return self.event(completed_name(op))

    def operation_of(self, ceid: int) -> Operation | None:
        if ceid < 100:
            return None
        try:
            return self.interface.operation_by_code(ceid - 100)
        except KeyError:
            return None

    def alarm_category(self, code: int) -> int:
        return ALCD_WARNING if self.interface.alarm(code).warning else ALCD_ALARM


def completed_name(op: Operation) -> str:
    return f"{op.mnemonic}_COMPLETED"


def consumable_level(name: str) -> str:
    return f"{name.upper()}_LEVEL"


def consumable_limit(name: str) -> str:
    return f"{name.upper()}_LIMIT"


def consumable_warn(name: str) -> str:
    return f"{name.upper()}_WARN"


def setup_installed(name: str) -> str:
    return f"{name.upper()}_INSTALLED"


def result_var(name: str) -> str:
    return f"RESULT_{name.upper()}"


_MAPS: dict[str, GemMap] = {}


def gem_map(iface: ToolInterface) -> GemMap:
    found = _MAPS.get(iface.kind)
    if found is None or found.interface is not iface:
        found = _MAPS[iface.kind] = _derive(iface)
    return found


def _derive(iface: ToolInterface) -> GemMap:
    variables = list(SV_FIXED)
    for i, c in enumerate(iface.consumables):
        doc = "supply left" if c.supply else "wear used"
        variables.append(Variable(100 + i, consumable_level(c.name), "SV", "F8", c.unit, doc))
    for i, f in enumerate(iface.setup):
        variables.append(
            Variable(200 + i, setup_installed(f.name), "SV", "L of A", doc=f"installed {f.name}")
        )
    variables += DV_FIXED
    results: dict[str, str] = {}
    for op in iface.operations:
        for r in op.results:
            results.setdefault(r.name, r.unit)
    for i, (name, unit) in enumerate(results.items()):
        variables.append(Variable(1100 + i, result_var(name), "DV", "F8", unit))
    variables += EC_FIXED
    for i, c in enumerate(iface.consumables):
        variables.append(
            Variable(
                2100 + 2 * i,
                consumable_limit(c.name),
                "EC",
                "F8",
                c.unit,
                "level where the tool refuses new jobs",
            )
        )
        variables.append(
            Variable(
                2101 + 2 * i,
                consumable_warn(c.name),
                "EC",
                "F8",
                "",
                "fraction of the limit that raises the warning",
            )
        )
    events = list(CE_FIXED)
    reports = list(REPORTS_FIXED)
    for op in iface.operations:
        rptid = 100 + op.code
        events.append(
            CollectionEvent(100 + op.code, completed_name(op), rptid, f"a {op.name} job completed")
        )
        reports.append(
            Report(
                rptid,
                (
                    "EVENT_JOB_ID",
                    "EVENT_JOB_STATE",
                    "EVENT_OPERATION",
                    "EVENT_WARNINGS",
                    *(result_var(r.name) for r in op.results),
                ),
            )
        )
    return GemMap(iface, tuple(variables), tuple(events), tuple(reports), tuple(results.items()))


def rcmd(name: str) -> RemoteCommand:
    for c in RCMDS:
        if c.name == name:
            return c
    raise KeyError(name)


# -- process programs ------------------------------------------------------------------------

PP_HEADER = "# fabline process program 1"
PPID_MAX = 80


def pp_body(iface: ToolInterface, op: Operation, values: Mapping[str, Value]) -> str:
    """The process program of one job: the operation and every setpoint with its unit, one
    per line, in the interface's parameter order — readable by an engineer at the tool."""
    lines = [PP_HEADER, f"kind: {iface.kind}", f"operation: {op.name}"]
    for p in op.params:
        v = values[p.name]
        if p.is_choice:
            lines.append(f"{p.name}: {v}")
        else:
            lines.append(f"{p.name}: {format_quantity(float(v), p.unit)}")
    return "\n".join(lines) + "\n"


def content_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def ppid(recipe: str, op: Operation, body: str) -> str:
    """`<recipe>/<operation>/<content hash>`; without a recipe id, the tool kind's name."""
    head = f"{recipe}/{op.name}/"
    if len(head) + 12 > PPID_MAX:
        head = head[: PPID_MAX - 13] + "/"
    return head + content_hash(body)


def parse_pp(iface: ToolInterface, body: str) -> tuple[Operation, dict[str, str]]:
    """Operation and raw setpoint texts ("130 µm") of a process program body.
    Raises ParameterError naming the line."""
    lines = body.splitlines()
    if not lines or lines[0].strip() != PP_HEADER:
        raise ParameterError(f"line 1: not a fabline process program (expected {PP_HEADER!r})")
    fields: dict[str, str] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ParameterError(f"line {n}: expected 'name: value', got {line!r}")
        if key.strip() in fields:
            raise ParameterError(f"line {n}: {key.strip()} given twice")
        fields[key.strip()] = value.strip()
    if fields.pop("kind", None) != iface.kind:
        raise ParameterError(f"kind: the program is not for a {iface.kind} tool")
    op = iface.operation(fields.pop("operation", ""))
    return op, fields
