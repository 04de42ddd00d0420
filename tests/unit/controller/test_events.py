"""The MES event vocabulary: every type, written through the outbox (which adds the station
and the lot's sequence number), is valid against its published JSON Schema, and invalid
without any one of its fields; the discriminated union reads every type back; the event table
of docs/mes.md is the one generated from the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from pydantic import BaseModel
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.events import (
    EVENT_ADAPTER,
    EVENT_CLASSES,
    EVENT_TYPES,
    LOT_EVENTS,
    AlarmData,
    CommandReplyData,
    ConsumeData,
    Event,
    EventBase,
    ExternalConfirmedData,
    ExternalWaitingData,
    HandOverData,
    HoldData,
    LotCompletedData,
    LotCreatedData,
    LotMergedData,
    LotSplitData,
    MergeData,
    OperatorActionData,
    PauseData,
    QtimeData,
    Quantity,
    ReleaseData,
    ReworkData,
    ScrapData,
    Setpoint,
    SpcViolationData,
    SplitData,
    StepCompletedData,
    StepInfo,
    StepSkippedData,
    StepStartedData,
    ToolStateData,
    TrackOutData,
    WarningData,
)
from controller.genealogy import store
from controller.genealogy.models import Outbox
from controller.mes.schema import TABLE_BEGIN, TABLE_END, event_schema, event_table
from tests.unit.controller.rows import STATION, add_lot, database_from

DOC = Path(__file__).resolve().parents[3] / "docs" / "mes.md"
INFO = {"step_index": 3, "operation": "dice", "job_id": "J-1", "attempt": 1, "role": "singulate"}

# One instance of each type's data; a new event type needs its sample here.
SAMPLES: dict[str, BaseModel] = {
    "lot_created": LotCreatedData(
        recipe_id="unit-flow", recipe_version=3, recipe_hash="a03c41dcd22175d0",
        options={"layout": "plain", "layers": 2}, inputs={"wafers": 2}, steps=1,
        units=["L1-W01", "L1-W02"],
    ),
    "track_in": StepInfo(**INFO),
    "step_started": StepStartedData(
        **INFO, setpoints={"feed": Setpoint(value=50.0, unit="mm/s", formula="40 mm/s + 10 mm/s",
                                            planned=50.0, inputs={"coat.thickness": 20.0}),
                           "blade": Setpoint(value="HUB_30", unit="")},
    ),
    "step_completed": StepCompletedData(
        job_id="J-1", operation="dice", setpoints={"feed": "50 mm/s"},
        results={"kerf_width": Quantity(value=31.5, unit="µm")}, in_spec=True,
    ),
    "track_out": TrackOutData(step_index=3, job_id="J-1"),
    "genealogy_merge": MergeData(into="stack", units=2, parts=4),
    "genealogy_split": SplitData(parent="L1-STK01", into="package", count=5,
                                 die_map="fabline die-map L1-STK01"),
    "genealogy_consume": ConsumeData(consumable="flux", consumable_lot="FLUX-3", units=2),
    "external_waiting": ExternalWaitingData(external="front-end fab", returns=["wafer_map"]),
    "external_confirmed": ExternalConfirmedData(returned={"wafer_map": "M-1"}, by="mes"),
    "lot_handed_over": HandOverData(from_area="bumping", to_area="assembly",
                                    from_station="st-bump", next_step=9),
    "tool_warning": WarningData(code=384, name="JOINT_SHEAR_HIGH", text="edge shear high",
                                action="hold", expected=False),
    "qtime_expired": QtimeData(step_index=5, from_index=3, from_step="plasma", limit_s=7200.0,
                               waited_s=9000.0, action="rework", rework_step="re-clean",
                               reason="exposed Cu oxidises"),
    "step_skipped": StepSkippedData(reason="rework step re-clean not needed"),
    "hold": HoldData(reason="kerf_width 45 µm > 40 µm", kind="out_of_spec"),
    "pause": PauseData(reason=None),
    "release": ReleaseData(was="kerf_width 45 µm > 40 µm", note="blade changed"),
    "abort": HoldData(reason="customer cancelled", kind="mes"),
    "lot_completed": LotCompletedData(units={"package": 10, "wafer": 0}),
    "lot_split": LotSplitData(parent="L1", child="L1.1", units=["L1-W02"], next_step=4,
                              state="held"),
    "lot_merged": LotMergedData(into="L1", lots=["L1.1"], units=["L1-W02"], next_step=6),
    "lot_merged_into": LotMergedData(into="L1", lots=["L1.1"], units=["L1-W02"], next_step=6),
    "lot_scrapped": ScrapData(code="BROKEN", reason="BROKEN: wafer broken: W01 cracked",
                              units=["L1-W01"], remaining=0),
    "units_scrapped": ScrapData(code="BROKEN", reason="BROKEN: wafer broken", units=["L1-W01"],
                                remaining=1),
    "lot_reworked": ReworkData(route="recoat", from_index=5, from_step="develop", to_index=3,
                               to_step="coat", reason="CD out of spec: strip and recoat"),
    "spc_violation": SpcViolationData(
        chart="unit-flow/dice/kerf_offset@DICE-1", point=19, value=2.41, unit="µm",
        rules=["N2"], texts=["N2: 9 points in a row (points 11–19) above the centre line"],
        action="inhibit",
    ),
    "tool_state": ToolStateData(state="busy", e10="PRODUCTIVE", tool_state="RUNNING",
                                job_id="J-1", alarms=[]),
    "alarm_set": AlarmData(code=42, name="SPINDLE_OVERLOAD", text="spindle current high"),
    "alarm_cleared": AlarmData(code=42, name="SPINDLE_OVERLOAD", text="spindle current high"),
    "command_reply": CommandReplyData(
        command_id="C-1", client="mes", command="hold", lot_id="L1", status="accepted",
        reason="lot L1: held", repeat=False,
    ),
    "operator_action": OperatorActionData(
        actor="ada", role="engineer", action="release", target="L1", reason_code=None,
        comment="checked under the scope", result="ok", message="lot L1: released",
    ),
}  # fmt: skip


def _event(kind: str) -> EventBase:
    where: dict[str, str] = {}
    if kind in LOT_EVENTS:
        where = {"lot_id": "L1", "step_id": "dice", "tool_id": "DICE-1"}
    elif kind not in ("command_reply", "operator_action"):
        where = {"tool_id": "DICE-1"}
    return EVENT_CLASSES[kind].model_validate({**where, "data": SAMPLES[kind]})


@pytest.fixture(scope="module")
def written(migrated: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """One event of every type as the outbox holds it, by type (written once: the tests
    only read it)."""

    def tx(s: Session) -> dict[str, dict[str, Any]]:
        add_lot(s, "L1", event_seq=4)
        s.flush()
        lot = store.get_lot(s, "L1", for_update=True)
        store.add_events(s, STATION, [_event(kind) for kind in EVENT_TYPES], lot)
        return {row.type: dict(row.payload) for row in s.query(Outbox).order_by(col(Outbox.id))}

    db = database_from(migrated)
    try:
        yield db.run_sync(tx)
    finally:
        db.close()


def test_every_type_has_a_sample_and_a_place_in_the_union() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)
    union = get_args(get_args(Event)[0])
    assert [c.model_fields["type"].default for c in union] == list(EVENT_TYPES)
    assert {"tool_state", "alarm_set", "alarm_cleared", "command_reply", "operator_action"} == (
        set(EVENT_TYPES) - LOT_EVENTS
    )


def test_the_outbox_numbers_the_lot_s_events_and_names_the_station(
    written: dict[str, dict[str, Any]],
) -> None:
    lot_events = [p for p in written.values() if p["type"] in LOT_EVENTS]
    assert [p["seq"] for p in lot_events] == list(range(5, 5 + len(LOT_EVENTS)))
    assert {p["station"] for p in written.values()} == {STATION}
    assert {p["seq"] for p in written.values() if p["type"] not in LOT_EVENTS} == {None}


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_each_type_is_valid_against_its_schema(
    written: dict[str, dict[str, Any]], kind: str
) -> None:
    schema = event_schema(kind)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    payload = written[kind]
    assert list(validator.iter_errors(payload)) == []
    assert payload["type"] == kind and payload["schema"] == "fabline.event/1"


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_each_type_is_invalid_without_any_of_its_fields(
    written: dict[str, dict[str, Any]], kind: str
) -> None:
    validator = Draft202012Validator(event_schema(kind))
    payload = written[kind]
    for key in payload:
        assert not validator.is_valid({k: v for k, v in payload.items() if k != key}), key
    for key in payload["data"]:
        data = {k: v for k, v in payload["data"].items() if k != key}
        assert not validator.is_valid({**payload, "data": data}), f"data.{key}"
    assert not validator.is_valid({**payload, "type": "something_else"})


@pytest.mark.parametrize("kind", sorted(LOT_EVENTS))
def test_a_lot_event_has_its_lot_and_a_sequence_number_from_one(
    written: dict[str, dict[str, Any]], kind: str
) -> None:
    validator = Draft202012Validator(event_schema(kind))
    payload = written[kind]
    for bad in ({"seq": 0}, {"seq": None}, {"seq": "5"}, {"lot_id": None}, {"station": None}):
        assert not validator.is_valid({**payload, **bad}), bad


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_the_union_reads_every_type_back(written: dict[str, dict[str, Any]], kind: str) -> None:
    payload = written[kind]
    event = EVENT_ADAPTER.validate_python(payload)
    assert type(event) is EVENT_CLASSES[kind]
    assert event.dump() == payload
    assert EVENT_ADAPTER.validate_json(EVENT_ADAPTER.dump_json(event, by_alias=True)) == event


def test_the_docs_table_is_generated_from_the_models() -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(TABLE_BEGIN), text.index(TABLE_END) + len(TABLE_END)
    assert text[start:end] == event_table(), (
        "docs/mes.md's event table is stale: regenerate it with"
        " `python -m controller.mes.schema docs/mes.md`"
    )


def test_the_table_has_a_row_per_type_with_its_data_fields() -> None:
    rows = event_table().splitlines()[3:-1]
    assert [r.split("|")[1].strip() for r in rows] == [f"`{k}`" for k in EVENT_TYPES]
    hold = next(r for r in rows if r.startswith("| `hold`"))
    assert "`reason`, `kind` (alarm, out_of_spec" in hold
