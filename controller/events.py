"""The MES event vocabulary: one typed model per event type, in one versioned envelope.

Events are written to the outbox in the same transaction as the change they report; the
outbox gives each lot's events a gapless sequence number (`seq`) and the station name. The
JSON Schema of each type (`fabline mes schema`) and the event table of docs/mes.md are
generated from these models, so the three cannot drift apart. The wire format is
`fabline.event/1`: fields may be added, never renamed or removed.

To add an event type: a `...Data` model and an event class below (its docstring is the
"when" of the docs table, each data field's description its "data" column), added to
`Event`; then regenerate the docs table (tests/unit/controller/test_events.py says how).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

SCHEMA = "fabline.event/1"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Data(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )


class Quantity(_Data):
    value: float | str
    unit: str


class EventBase(BaseModel):
    """The envelope every event shares."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_serialization_defaults_required=True,
    )

    schema_: Literal["fabline.event/1"] = Field(default="fabline.event/1", alias="schema")
    event_id: str = Field(
        default_factory=lambda: str(uuid.uuid4()), json_schema_extra={"format": "uuid"}
    )
    time: str = Field(default_factory=_now, json_schema_extra={"format": "date-time"})
    lot_id: str | None = None
    seq: int | None = None
    station: str | None = None
    tool_id: str | None = None
    step_id: str | None = None

    def dump(self) -> dict[str, Any]:
        """The event as it goes on the wire."""
        return self.model_dump(mode="json", by_alias=True)


# -- lots -------------------------------------------------------------------------------


class LotCreatedData(_Data):
    recipe_id: str
    recipe_version: int
    recipe_hash: str
    options: dict[str, str | int] = Field(description="options in force")
    inputs: dict[str, int] = Field(description="name → count")
    steps: int
    units: list[str] = Field(description="names")
    carriers: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="carrier id → slot → unit (FOUP, cassette)"
    )


class LotCreated(EventBase):
    """a lot is created"""

    type: Literal["lot_created"] = "lot_created"
    data: LotCreatedData


class StepInfo(_Data):
    step_index: int
    operation: str
    job_id: str
    attempt: int
    role: str | None
    pieces: list[str] = Field(
        default_factory=list,
        description="the work pieces of the job, in load order (none: the whole lot)",
    )


class TrackIn(EventBase):
    """a step's job is about to go to its tool (intent recorded)"""

    type: Literal["track_in"] = "track_in"
    data: StepInfo


class Setpoint(_Data):
    """A quantity sent to the tool; one fed forward from earlier measurements also carries
    its formula, the value the recipe planned and the measurements it was computed from."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    value: float | str
    unit: str
    formula: str | None = None
    planned: float | None = None
    inputs: dict[str, float] | None = None

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        return {k: v for k, v in out.items() if v is not None or k in ("value", "unit")}


class StepStartedData(StepInfo):
    setpoints: dict[str, Setpoint] = Field(description="quantities sent")


class StepStarted(EventBase):
    """same moment, with what is sent"""

    type: Literal["step_started"] = "step_started"
    data: StepStartedData


class StepCompletedData(_Data):
    job_id: str
    operation: str
    setpoints: dict[str, str] = Field(description="as the recipe wrote them")
    results: dict[str, Quantity] = Field(description="quantities")
    in_spec: bool
    pieces: dict[str, dict[str, Quantity]] = Field(
        default_factory=dict,
        description="a job of several pieces: each piece's own results (results: the job's)",
    )


class StepCompleted(EventBase):
    """the job finished and its results are recorded"""

    type: Literal["step_completed"] = "step_completed"
    data: StepCompletedData


class TrackOutData(_Data):
    step_index: int
    job_id: str


class TrackOut(EventBase):
    """the lot leaves the tool"""

    type: Literal["track_out"] = "track_out"
    data: TrackOutData


class MergeData(_Data):
    into: str = Field(description="kind")
    units: int
    parts: int


class GenealogyMerge(EventBase):
    """units merged (wafers into a stack, a chip onto a strip, a film onto a wafer)"""

    type: Literal["genealogy_merge"] = "genealogy_merge"
    data: MergeData


class SplitData(_Data):
    parent: str
    into: str
    count: int
    die_map: str = Field(description="the command that prints the map")


class GenealogySplit(EventBase):
    """a unit diced into packages"""

    type: Literal["genealogy_split"] = "genealogy_split"
    data: SplitData


class ConsumeData(_Data):
    consumable: str
    consumable_lot: str
    units: int


class GenealogyConsume(EventBase):
    """a consumable lot used by the step"""

    type: Literal["genealogy_consume"] = "genealogy_consume"
    data: ConsumeData


class ExternalWaitingData(_Data):
    external: str = Field(description="what is expected")
    returns: list[str] = Field(description="fields the confirmation must carry")


class ExternalWaiting(EventBase):
    """the lot waits at a step outside the line (front-end fab, an incoming film)"""

    type: Literal["external_waiting"] = "external_waiting"
    data: ExternalWaitingData


class HandOverData(_Data):
    from_area: str = Field(description="the area the lot leaves")
    to_area: str = Field(description="the area of its next step, whose station picks it up")
    from_station: str = Field(description="the station that drove it here")
    next_step: int = Field(description="index of the next step (0-based)")


class HandedOver(EventBase):
    """the lot's next step is in another area of the line: it leaves this station's queue for
    that area's, between the steps"""

    type: Literal["lot_handed_over"] = "lot_handed_over"
    data: HandOverData


class ExternalConfirmedData(_Data):
    returned: dict[str, str] = Field(description="the fields")
    by: str


class ExternalConfirmed(EventBase):
    """that material came back"""

    type: Literal["external_confirmed"] = "external_confirmed"
    data: ExternalConfirmedData


HoldKind = Literal[
    "alarm",
    "out_of_spec",
    "warning",
    "qtime",
    "interlock",
    "feed_forward",
    "unreachable",
    "lost_job",
    "no_tool",
    "refused",
    "operator",
    "mes",
    "spc",
    "carrier",
]
"""Why a lot stopped, as a category a page or an MES can filter on (the text says the rest)."""


class HoldData(_Data):
    reason: str
    kind: HoldKind = Field(
        description="alarm, out_of_spec, warning, qtime, interlock, feed_forward, unreachable,"
        " lost_job, no_tool, refused, operator, mes, spc"
    )


class Hold(EventBase):
    """the lot is held: tool alarm, out-of-spec result, unreachable tool, lost job, operator,
    MES, SPC rule violation"""

    type: Literal["hold"] = "hold"
    data: HoldData


class PauseData(_Data):
    reason: str | None


class Pause(EventBase):
    """the lot is paused (between steps)"""

    type: Literal["pause"] = "pause"
    data: PauseData


class ReleaseData(_Data):
    was: str | None = Field(description="the hold reason it had")
    note: str | None


class Release(EventBase):
    """a held or paused lot is released"""

    type: Literal["release"] = "release"
    data: ReleaseData


class Abort(EventBase):
    """the lot is aborted (its running job stopped on the tool)"""

    type: Literal["abort"] = "abort"
    data: HoldData


class WarningData(_Data):
    code: int
    name: str
    text: str
    action: Literal["hold", "record"] = Field(description="what the recipe says to do")
    expected: bool = Field(description="the recipe expects this warning at this step")


class ToolWarning(EventBase):
    """a tool reported a process warning at the end of the step's job"""

    type: Literal["tool_warning"] = "tool_warning"
    data: WarningData


class QtimeData(_Data):
    step_index: int
    from_index: int
    from_step: str
    limit_s: float
    waited_s: float
    action: Literal["hold", "rework"]
    rework_step: str | None
    reason: str


class QtimeExpired(EventBase):
    """a queue-time limit between two steps ran out before the later one started"""

    type: Literal["qtime_expired"] = "qtime_expired"
    data: QtimeData


class StepSkippedData(_Data):
    reason: str


class StepSkipped(EventBase):
    """a rework step was not needed (its queue time was kept) and is skipped"""

    type: Literal["step_skipped"] = "step_skipped"
    data: StepSkippedData


class LotCompletedData(_Data):
    units: dict[str, int] = Field(description="kind → count")


class LotCompleted(EventBase):
    """every step done"""

    type: Literal["lot_completed"] = "lot_completed"
    data: LotCompletedData


# -- lot operations (controller/lots/operations.py) -------------------------------------------


class LotSplitData(_Data):
    parent: str = Field(description="the lot split")
    child: str = Field(description="the new lot, with the parent's recipe and next step")
    units: list[str] = Field(description="the units that moved to the child")
    next_step: int = Field(description="index of the step both lots run next (0-based)")
    state: str = Field(description="the state both lots are in (the child's is the parent's)")


class LotSplit(EventBase):
    """units of a lot moved into a new child lot (written on the parent's and the child's
    topics)"""

    type: Literal["lot_split"] = "lot_split"
    data: LotSplitData


class LotMergedData(_Data):
    into: str = Field(description="the lot kept")
    lots: list[str] = Field(description="the lots merged into it")
    units: list[str] = Field(description="the units that joined it")
    next_step: int = Field(description="index of the step it runs next (0-based)")


class LotMerged(EventBase):
    """other lots (same recipe version, same next step) were merged into this one"""

    type: Literal["lot_merged"] = "lot_merged"
    data: LotMergedData


class LotMergedInto(EventBase):
    """this lot was merged into another: its units are that lot's now, and it is final"""

    type: Literal["lot_merged_into"] = "lot_merged_into"
    data: LotMergedData


class ScrapData(_Data):
    code: str = Field(description="the scrap code")
    reason: str = Field(description="the code's text and the comment")
    units: list[str] = Field(description="the units scrapped")
    remaining: int = Field(description="active units the lot still has")


class LotScrapped(EventBase):
    """the whole lot was scrapped (every unit it still had): final"""

    type: Literal["lot_scrapped"] = "lot_scrapped"
    data: ScrapData


class UnitsScrapped(EventBase):
    """some units of the lot were scrapped: they leave its counts, their bin says scrapped"""

    type: Literal["units_scrapped"] = "units_scrapped"
    data: ScrapData


class ReworkData(_Data):
    route: str = Field(description="the recipe's rework route")
    from_index: int = Field(description="the step the lot was at (0-based)")
    from_step: str
    to_index: int = Field(description="the step it re-enters at (0-based)")
    to_step: str
    reason: str


class LotReworked(EventBase):
    """the lot re-enters its flow at an earlier step by a rework route of its recipe (e.g.
    strip and recoat): it is queued there and the steps from there run again"""

    type: Literal["lot_reworked"] = "lot_reworked"
    data: ReworkData


class SpcViolationData(_Data):
    chart: str = Field(description="the chart: recipe/step/result@tool")
    point: int = Field(description="the point's number on the chart (1-based)")
    value: float = Field(description="the plotted value, in the result's unit")
    unit: str
    rules: list[str] = Field(description="rule ids that fired: N1..N8, WE1..WE4, R1 (spread)")
    texts: list[str] = Field(description="one line per rule")
    action: Literal["none", "warn", "hold", "inhibit"] = Field(
        description="the chart's OCAP action: none, warn, hold (the lot), inhibit (the tool too)"
    )


class SpcViolation(EventBase):
    """a piece's result violated a run rule of its SPC control chart (docs/spc.md)"""

    type: Literal["spc_violation"] = "spc_violation"
    data: SpcViolationData


# -- tools --------------------------------------------------------------------------------

E10State = Literal[
    "PRODUCTIVE",
    "STANDBY",
    "ENGINEERING",
    "SCHEDULED_DOWN",
    "UNSCHEDULED_DOWN",
    "NON_SCHEDULED",
]


class ToolStateData(_Data):
    state: Literal["idle", "busy", "alarm", "offline"]
    e10: E10State = Field(description="SEMI E10: PRODUCTIVE, STANDBY, UNSCHEDULED_DOWN, ...")
    tool_state: str | None = Field(description="the tool's own")
    job_id: str | None
    alarms: list[int]
    e116: Literal["idle", "busy", "blocked"] | None = Field(
        default=None, description="SEMI E116: idle, busy, blocked"
    )
    blocked: str | None = Field(default=None, description="why it is blocked")
    e10_substate: str | None = Field(default=None, description="entered by a technician")
    context: str | None = Field(default=None, description="the technician's note")


class ToolStateChanged(EventBase):
    """a tool's state changed"""

    type: Literal["tool_state"] = "tool_state"
    data: ToolStateData


class AlarmData(_Data):
    code: int
    name: str
    text: str


class AlarmSet(EventBase):
    """a tool alarm appeared"""

    type: Literal["alarm_set"] = "alarm_set"
    data: AlarmData


class AlarmCleared(EventBase):
    """a tool alarm went away"""

    type: Literal["alarm_cleared"] = "alarm_cleared"
    data: AlarmData


# -- the station ----------------------------------------------------------------------------


class OperatorActionData(_Data):
    actor: str = Field(description="user, mes:<client> or cli:<os user>")
    role: str
    action: str = Field(
        description="dispatch, hold, release, abort, split, merge, scrap, rework, e10, ..."
    )
    target: str = Field(description="lot, tool, alarm or user")
    reason_code: str | None
    comment: str | None
    result: Literal["ok", "denied", "refused"]
    message: str


class OperatorAction(EventBase):
    """a person (or the MES, or a terminal) acted: also an append-only audit row"""

    type: Literal["operator_action"] = "operator_action"
    data: OperatorActionData


class CommandReplyData(_Data):
    command_id: str | None
    client: str | None
    command: str | None
    lot_id: str | None
    status: Literal["accepted", "rejected"]
    reason: str | None
    repeat: bool


class CommandReply(EventBase):
    """answer to a command (topic `replies`)"""

    type: Literal["command_reply"] = "command_reply"
    data: CommandReplyData


Event = Annotated[
    LotCreated
    | TrackIn
    | StepStarted
    | StepCompleted
    | TrackOut
    | GenealogyMerge
    | GenealogySplit
    | GenealogyConsume
    | ExternalWaiting
    | HandedOver
    | ExternalConfirmed
    | Hold
    | Pause
    | Release
    | Abort
    | ToolWarning
    | QtimeExpired
    | StepSkipped
    | LotCompleted
    | LotSplit
    | LotMerged
    | LotMergedInto
    | LotScrapped
    | UnitsScrapped
    | LotReworked
    | SpcViolation
    | ToolStateChanged
    | AlarmSet
    | AlarmCleared
    | OperatorAction
    | CommandReply,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_CLASSES: dict[str, type[EventBase]] = {
    c.model_fields["type"].default: c
    for c in EventBase.__subclasses__()  # every class above, in order
}
EVENT_TYPES = tuple(EVENT_CLASSES)
LOT_EVENTS = frozenset(
    t
    for t in EVENT_TYPES
    if t not in ("tool_state", "alarm_set", "alarm_cleared", "command_reply", "operator_action")
)
