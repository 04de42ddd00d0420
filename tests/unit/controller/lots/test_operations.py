"""Lot operations through the lot service, on SQLite with no engine: split, merge, scrap and
rework move units and lots by the lifecycle table, write their MES events and genealogy links
in one transaction, and refuse a bad request with one line that changes nothing; a backward
trace reads a moved unit's steps from each lot it was in and lists the rework loops."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from controller.access import Actor, Role
from controller.genealogy import lineage, store, trace
from controller.genealogy.db import Database
from controller.genealogy.models import LotLink, Unit
from controller.genealogy.station_models import Audit
from controller.lots import LotRequest, LotService
from controller.recipes.catalog import load_text
from controller.recipes.history import History
from drivers.errors import Forbidden, LotNotFound, LotStateError, ParameterError
from tests.unit.controller.rows import STATION, events, get_lot, tiny_text

# the tiny recipe with three steps and a rework route from the last back to the first
OPS_TEXT = tiny_text().replace(
    "steps:\n  - {id: fab, external: front-end fab, returns: [wafer_map]}\n",
    """rework_routes:
  - {id: redo, at: [inspect], to: fab, reason: map rejected - fab again}
steps:
  - {id: fab, external: front-end fab, returns: [wafer_map]}
  - {id: sort, external: wafer sort, returns: [yield]}
  - {id: inspect, external: incoming inspection, returns: [verdict]}
""",
)
OPS = load_text(OPS_TEXT, Path("unit-flow.yaml"))
OTHER = load_text(OPS_TEXT.replace("version: 3", "version: 4"), Path("unit-flow.yaml"))
OTHER_LIVE = f"{socket.gethostname()}:{os.getppid()}"  # pytest's parent: alive, not us
ENGINEER = Actor("ada", Role.ENGINEER)
T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


@pytest.fixture
def service(db: Database) -> LotService:
    return LotService(db, station=STATION)


async def _lot(
    service: LotService, lot_id: str, state: str = "held", next_step: int = 2, **lot: Any
) -> None:
    """A lot of OPS with two wafers and two panels, `state` at `next_step`."""
    recipe = OTHER if lot.pop("other", False) else OPS
    request = LotRequest(lot_id=lot_id, recipe="unit-flow", inputs={"wafers": 2})
    await service.create(request, owner=None, recipe=recipe)

    def tx(s: Session) -> None:
        row = store.get_lot(s, lot_id, for_update=True)
        hold = {"hold_kind": "operator", "hold_reason": "look"} if state == "held" else {}
        if lot.get("owner"):  # a lease a minute long
            lot["lease_expires"] = datetime.now(UTC) + timedelta(minutes=1)
        store.set_lot(row, state=state, next_step=next_step, **hold, **lot)

    service.db.run_sync(tx)


def _units(db: Database, lot_id: str) -> list[tuple[str, str, str | None]]:
    rows = db.run_sync(lambda s: store.lot_units(s, lot_id, active_only=False))
    return [(u.name, u.state, u.bin) for u in rows if u.kind != "supply"]


def _links(db: Database) -> list[tuple[str, str, str, int, int | None]]:
    rows = db.run_sync(lambda s: s.query(LotLink).order_by(LotLink.id).all())
    return [(k.kind, k.parent_lot, k.child_lot, k.step_index, k.to_step) for k in rows]


def _types(db: Database, lot_id: str) -> list[str]:
    return [e["type"] for e in events(db, lot_id)]


def _audit(db: Database) -> list[tuple[str, str, str, str]]:
    rows = db.run_sync(lambda s: s.query(Audit).order_by(Audit.id).all())
    return [(a.actor, a.action, a.target, a.result) for a in rows]


def _snapshot(db: Database) -> Any:
    """Everything an operation could change."""

    def read(s: Session) -> Any:
        lots = [(x.id, x.state, x.next_step, x.event_seq) for x in store.list_lots(s)]
        units = [(u.name, u.lot_id, u.state, u.bin) for u in s.query(Unit).order_by(Unit.id)]
        return lots, units, s.query(LotLink).count()

    return db.run_sync(read)


# -- split -----------------------------------------------------------------------------------------


async def test_split_moves_units_into_a_child_at_the_same_step(
    db: Database, service: LotService
) -> None:
    await _lot(service, "L1")
    done = await service.split("L1", ["L1-W02", "L1-P02"], actor=ENGINEER)
    assert done.message == "lot L1: 2 unit(s) split into lot L1.1 (held, next step 3/3)"
    assert done.lots == ()  # held: nothing runs on
    child = get_lot(db, "L1.1")
    assert (child.recipe_hash, child.next_step, child.state, child.hold_reason) == (
        OPS.hash, 2, "held", "look"
    )  # fmt: skip
    assert child.owner is None and child.station == STATION
    assert _units(db, "L1") == [("L1-W01", "active", None), ("L1-P01", "active", None)]
    assert _units(db, "L1.1") == [("L1-W02", "active", None), ("L1-P02", "active", None)]
    assert _links(db) == [("split", "L1", "L1.1", 2, None)]
    split = {
        "parent": "L1", "child": "L1.1", "units": ["L1-W02", "L1-P02"], "next_step": 2,
        "state": "held",
    }  # fmt: skip
    assert [(e["type"], e["seq"], e["data"]) for e in events(db, "L1")][1:] == [
        ("lot_split", 2, split), ("operator_action", 3, pytest.approx(events(db, "L1")[2]["data"]))
    ]  # fmt: skip
    assert [(e["type"], e["seq"], e["data"]) for e in events(db, "L1.1")] == [
        ("lot_split", 1, split)
    ]
    assert _audit(db) == [("ada", "split", "L1", "ok")]
    # a queued lot: both run on; the child id is the next free one
    await _lot(service, "L2", "queued")
    done = await service.split("L2", ["L2-W01"])
    assert done.lots == ("L2", "L2.1") and get_lot(db, "L2.1").state == "queued"


@pytest.mark.parametrize(
    ("state", "owner", "units", "into", "error", "message"),
    [
        ("running", None, ["L1-W02"], None, LotStateError,
         "lot L1 is running: only a lot held, paused, queued can split"),
        ("waiting", None, ["L1-W02"], None, LotStateError,
         "lot L1 is waiting: only a lot held, paused, queued can split"),
        ("completed", None, ["L1-W02"], None, LotStateError,
         "lot L1 is completed: nothing to split"),
        ("queued", OTHER_LIVE, ["L1-W02"], None, LotStateError,
         f"lot L1 is driven by controller {OTHER_LIVE}: hold it first (split happens between"
         " jobs)"),
        ("held", None, ["L1-W09"], None, ParameterError,
         "lot L1 has no active unit L1-W09 (its units: L1-W01, L1-W02, L1-P01, L1-P02)"),
        ("held", None, ["L1-W01", "L1-W02", "L1-P01", "L1-P02"], None, ParameterError,
         "split of lot L1: every unit would move to L1.1; a split leaves at least one unit in"
         " the lot"),
        ("held", None, [], None, ParameterError, "split of lot L1: name the units that go to L1.1"),
        ("held", None, ["L1-W02"], "L1", LotStateError, "lot L1 already exists (held)"),
        ("held", None, ["L1-W02"], "L1 child", ParameterError,
         "lot id 'L1 child': 1-32 letters, digits, '.', '_' or '-', starting with a letter or"
         " digit"),
    ],
    ids=["running", "waiting", "final", "driven", "not-its-unit", "every-unit", "no-unit",
         "child-exists", "bad-child-id"],
)  # fmt: skip
async def test_a_bad_split_is_refused_and_changes_nothing(
    db: Database, service: LotService, state: str, owner: str | None, units: list[str],
    into: str | None, error: type[Exception], message: str,
) -> None:  # fmt: skip
    await _lot(service, "L1", state, owner=owner)
    before = _snapshot(db)
    with pytest.raises(error) as refused:
        await service.split("L1", units, into, actor=ENGINEER)
    assert str(refused.value) == message
    assert _snapshot(db) == before
    assert _audit(db) == [("ada", "split", "L1", "refused")]


async def test_an_unknown_lot_is_not_found(service: LotService) -> None:
    for attempt in (
        service.split("NOPE", ["X"]),
        service.merge("NOPE", ["L1"]),
        service.scrap("NOPE", [], "BROKEN"),
        service.rework("NOPE", "redo"),
    ):
        with pytest.raises(LotNotFound, match="no lot 'NOPE'"):
            await attempt


# -- merge -----------------------------------------------------------------------------------------


async def test_merge_moves_every_unit_and_ends_the_lots_merged(
    db: Database, service: LotService
) -> None:
    await _lot(service, "L1")
    await _lot(service, "L2")
    await service.split("L2", ["L2-W02"])
    done = await service.merge("L1", ["L2", "L2.1"], actor=ENGINEER)
    assert done.message == "lot L1: merged L2, L2.1 (4 unit(s)); held, next step 3/3"
    assert sorted(n for n, _, _ in _units(db, "L1")) == [
        "L1-P01", "L1-P02", "L1-W01", "L1-W02", "L2-P01", "L2-P02", "L2-W01", "L2-W02"
    ]  # fmt: skip
    for gone in ("L2", "L2.1"):
        lot = get_lot(db, gone)
        assert (lot.state, lot.hold_reason) == ("merged", None)
        assert _types(db, gone)[-1] == "lot_merged_into"
    assert _types(db, "L1")[-2:] == ["lot_merged", "operator_action"]
    assert events(db, "L1")[-2]["data"]["lots"] == ["L2", "L2.1"]
    assert _links(db)[1:] == [("merge", "L2", "L1", 2, None), ("merge", "L2.1", "L1", 2, None)]
    assert db.run_sync(lambda s: store.count_units(s, "L1")) == {
        "wafer": 4,
        "panel": 4,
        "supply": 1,
    }


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ({"next_step": 1}, "lot L2 cannot merge into lot L1: next step 2 is not 3"),
        ({"state": "paused"}, "lot L2 cannot merge into lot L1: state paused is not held"),
        ({"other": True},
         "lot L2 cannot merge into lot L1: recipe unit-flow v4 is not unit-flow v3"),
        ({"state": "running"}, "lot L2 is running: only a lot held, paused, queued can merge_into"),
        ({"state": "aborted"}, "lot L2 is aborted: nothing to merge_into"),
    ],
    ids=["other-step", "other-state", "other-recipe", "running", "final"],
)  # fmt: skip
async def test_incompatible_lots_do_not_merge(
    db: Database, service: LotService, other: dict[str, Any], message: str
) -> None:
    await _lot(service, "L1")
    await _lot(service, "L2", **other)
    before = _snapshot(db)
    with pytest.raises(LotStateError) as refused:
        await service.merge("L1", ["L2"], actor=ENGINEER)
    assert str(refused.value) == message
    assert _snapshot(db) == before


async def test_a_lot_is_not_merged_into_itself(service: LotService) -> None:
    await _lot(service, "L1")
    with pytest.raises(ParameterError, match="each lot once, and not itself"):
        await service.merge("L1", ["L1"])
    with pytest.raises(ParameterError, match="name the lots to merge into it"):
        await service.merge("L1", [])


# -- scrap -----------------------------------------------------------------------------------------


async def test_a_partial_scrap_takes_units_out_of_the_counts(
    db: Database, service: LotService
) -> None:
    await _lot(service, "L1")
    who = ENGINEER.because("BROKEN", "W02 cracked at the edge")
    done = await service.scrap("L1", ["L1-W02"], "BROKEN", "W02 cracked at the edge", who)
    assert done.message == "lot L1: 1 unit(s) (BROKEN: W02 cracked at the edge)"
    assert get_lot(db, "L1").state == "held"
    assert ("L1-W02", "scrapped", "scrapped") in _units(db, "L1")
    scrapped = db.run_sync(lambda s: store.unit_by_name(s, "L1-W02"))
    assert scrapped is not None
    assert (scrapped.bin_reason, scrapped.ended_step) == ("BROKEN: W02 cracked at the edge", 1)
    assert db.run_sync(lambda s: store.count_units(s, "L1")) == {
        "wafer": 1,
        "panel": 2,
        "supply": 1,
    }
    [event] = [e for e in events(db, "L1") if e["type"] == "units_scrapped"]
    assert event["data"] == {
        "code": "BROKEN", "reason": "BROKEN: W02 cracked at the edge", "units": ["L1-W02"],
        "remaining": 3,
    }  # fmt: skip
    # the rest: the lot is scrapped, with the code's own text
    done = await service.scrap("L1", [], "CONTAMINATED")
    assert done.message == "lot L1: lot scrapped (CONTAMINATED: contaminated)"
    lot = get_lot(db, "L1")
    assert lot.state == "scrapped"
    assert db.run_sync(lambda s: store.count_units(s, "L1")) == {"supply": 1}
    assert _types(db, "L1")[-1] == "lot_scrapped"
    assert events(db, "L1")[-1]["data"]["units"] == ["L1-W01", "L1-P01", "L1-P02"]


@pytest.mark.parametrize(
    ("code", "units", "error", "message"),
    [
        (None, ["L1-W01"], ParameterError,
         "scrap of lot L1 needs a reason code (codes: BROKEN, DROPPED, CONTAMINATED, OOS,"
         " REWORK-LIMIT, TOOL-DAMAGE, ENG)"),
        ("OOPS", [], ParameterError,
         "unknown scrap code 'OOPS' (codes: BROKEN, DROPPED, CONTAMINATED, OOS, REWORK-LIMIT,"
         " TOOL-DAMAGE, ENG)"),
        ("BROKEN", ["L2-W01"], ParameterError,
         "lot L1 has no active unit L2-W01 (its units: L1-W01, L1-W02, L1-P01, L1-P02)"),
    ],
    ids=["no-code", "unknown-code", "not-its-unit"],
)  # fmt: skip
async def test_a_bad_scrap_is_refused_and_changes_nothing(
    db: Database, service: LotService, code: str | None, units: list[str],
    error: type[Exception], message: str,
) -> None:  # fmt: skip
    await _lot(service, "L1")
    before = _snapshot(db)
    with pytest.raises(error) as refused:
        await service.scrap("L1", units, code, actor=ENGINEER)
    assert str(refused.value) == message
    assert _snapshot(db) == before


async def test_scrap_and_rework_need_an_engineer_split_an_operator(
    db: Database, service: LotService
) -> None:
    await _lot(service, "L1")
    operator = Actor("olga", Role.OPERATOR)
    with pytest.raises(Forbidden) as denied:
        await service.scrap("L1", ["L1-W01"], "BROKEN", actor=operator)
    assert str(denied.value) == (
        "olga (operator) may not scrap lot L1: that needs an engineer or above"
    )
    with pytest.raises(Forbidden, match="may not rework lot L1: that needs an engineer"):
        await service.rework("L1", "redo", actor=operator)
    with pytest.raises(Forbidden, match="may not split lot L1: that needs an operator"):
        await service.split("L1", ["L1-W01"], actor=Actor("vic", Role.VIEWER))
    await service.split("L1", ["L1-W01"], actor=operator)
    assert [a[1:] for a in _audit(db)] == [
        ("scrap", "L1", "denied"), ("rework", "L1", "denied"), ("split", "L1", "denied"),
        ("split", "L1", "ok"),
    ]  # fmt: skip


# -- rework ----------------------------------------------------------------------------------------


async def test_rework_sends_the_lot_back_and_queues_it(db: Database, service: LotService) -> None:
    await _lot(service, "L1", next_step=3)  # held after `inspect`
    done = await service.rework("L1", "redo", comment="map 7 rejected", actor=ENGINEER)
    assert done.message == "lot L1: rework route redo, queued at step 1/3 fab"
    assert done.lots == ("L1",)
    lot = get_lot(db, "L1")
    assert (lot.state, lot.next_step, lot.hold_reason, lot.hold_kind) == ("queued", 0, None, None)
    [event] = [e for e in events(db, "L1") if e["type"] == "lot_reworked"]
    assert (event["step_id"], event["data"]) == ("fab", {
        "route": "redo", "from_index": 2, "from_step": "inspect", "to_index": 0,
        "to_step": "fab", "reason": "map rejected - fab again: map 7 rejected",
    })  # fmt: skip
    assert _links(db) == [("rework", "L1", "L1", 2, 0)]
    # the runner's history sees that the route sent the lot back to step 0
    history = History.from_records([], events(db, "L1"))
    assert history.rework_pending(0) and not history.rework_pending(2)


async def test_rework_of_some_units_splits_a_child_and_sends_it(
    db: Database, service: LotService
) -> None:
    await _lot(service, "L1", next_step=3)
    done = await service.rework("L1", "redo", units=["L1-W02", "L1-P02"], child_id="L1-RW")
    assert done.message == (
        "lot L1-RW (split from L1: 2 unit(s)): rework route redo, queued at step 1/3 fab"
    )
    assert (get_lot(db, "L1").state, get_lot(db, "L1").next_step) == ("held", 3)
    assert (get_lot(db, "L1-RW").state, get_lot(db, "L1-RW").next_step) == ("queued", 0)
    assert _links(db) == [("split", "L1", "L1-RW", 3, None), ("rework", "L1-RW", "L1-RW", 2, 0)]
    assert [(e["seq"], e["type"]) for e in events(db, "L1-RW")] == [
        (1, "lot_split"), (2, "lot_reworked")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("next_step", "route", "units_made_at", "error", "message"),
    [
        (3, "again", None, ParameterError,
         "recipe unit-flow v3 has no rework route 'again' (routes: redo)"),
        (2, "redo", None, LotStateError,
         "lot L1 is after step sort: rework route redo applies after inspect"),
        (0, "redo", None, LotStateError,
         "lot L1 is before its first step: rework route redo applies after inspect"),
        (3, "redo", 1, LotStateError,
         "lot L1: its wafers were made at step 2, after fab where rework route redo re-enters"),
    ],
    ids=["unknown-route", "not-at", "not-started", "units-newer"],
)  # fmt: skip
async def test_a_bad_rework_is_refused_and_changes_nothing(
    db: Database, service: LotService, next_step: int, route: str, units_made_at: int | None,
    error: type[Exception], message: str,
) -> None:  # fmt: skip
    await _lot(service, "L1", next_step=next_step)
    if units_made_at is not None:
        db.run_sync(lambda s: s.query(Unit).filter(Unit.lot_id == "L1").update(
            {"created_step": units_made_at}))  # fmt: skip
    before = _snapshot(db)
    with pytest.raises(error) as refused:
        await service.rework("L1", route, actor=ENGINEER)
    assert str(refused.value) == message
    assert _snapshot(db) == before


# -- genealogy -------------------------------------------------------------------------------------


def _ran(db: Database, lot_id: str, index: int, at: datetime, attempt: int = 1) -> None:
    step = OPS.expand({}).steps[index]
    db.run_sync(
        lambda s: store.add_step_run(
            s, lot_id=lot_id, step_index=index, step_id=step.id, kind="external",
            recipe_id="unit-flow", recipe_hash=OPS.hash, state="confirmed", attempt=attempt,
            results={"n": index}, started_at=at, ended_at=at,
        )
    )  # fmt: skip


def _link_at(db: Database, at: datetime) -> None:
    """Date the newest link (as if the operation happened at `at`)."""

    def tx(s: Session) -> None:
        link = s.query(LotLink).order_by(LotLink.id.desc()).first()
        assert link is not None
        link.created_at = at

    db.run_sync(tx)


async def test_a_trace_reads_a_moved_unit_s_steps_from_each_lot_and_shows_the_loop(
    db: Database, service: LotService
) -> None:
    await _lot(service, "L1", "queued", next_step=0)
    await _lot(service, "L2", "queued", next_step=0)
    for lot_id in ("L1", "L2"):
        _ran(db, lot_id, 0, T0)
        _ran(db, lot_id, 1, T0 + timedelta(minutes=1))
    await service.split("L1", ["L1-W02"], "L1.1")  # both lots at next step 0 (as stored)
    _link_at(db, T0 + timedelta(minutes=2))
    db.run_sync(lambda s: s.query(LotLink).update({"step_index": 2}))
    for lot_id in ("L1", "L1.1", "L2"):  # all three: held after `inspect`
        db.run_sync(lambda s, i=lot_id: store.set_lot(
            store.get_lot(s, i, for_update=True), state="held", next_step=2))  # fmt: skip
    _ran(db, "L1.1", 2, T0 + timedelta(minutes=3))
    _ran(db, "L2", 2, T0 + timedelta(minutes=3))
    db.run_sync(lambda s: [store.set_lot(store.get_lot(s, i, for_update=True), next_step=3)
                           for i in ("L1.1", "L2")])  # fmt: skip
    await service.merge("L2", ["L1.1"])
    _link_at(db, T0 + timedelta(minutes=4))
    await service.rework("L2", "redo", comment="again")
    _link_at(db, T0 + timedelta(minutes=5))
    _ran(db, "L2", 0, T0 + timedelta(minutes=6), attempt=2)

    nodes = db.run_sync(lambda s: trace.backward(s, "L1-W02"))
    node = nodes[0]
    assert node.lot_id == "L2"
    assert [(st["step"], st.get("lot", "L2")) for st in node.steps] == [
        ("fab", "L1"), ("sort", "L1"),  # in L1, before the split
        ("inspect", "L1.1"),  # in the child, before the merge
        ("fab", "L2"),  # in L2 after the merge: the rework loop runs fab again
    ]  # fmt: skip
    assert [(o["kind"], o["from_lot"], o["to_lot"]) for o in node.operations] == [
        ("split", "L1", "L1.1"), ("merge", "L1.1", "L2"), ("rework", "L2", "L2")
    ]  # fmt: skip
    assert node.operations[2] | {"when": None} == {
        "kind": "rework", "from_lot": "L2", "to_lot": "L2", "from_step": 3, "to_step": 1,
        "reason": "map rejected - fab again: again", "when": None,
    }  # fmt: skip
    assert node.to_dict()["operations"] == node.operations
    # a unit never moved: its lot's own steps, and the loop it went through
    own = db.run_sync(lambda s: trace.backward(s, "L2-W01"))[0]
    assert [st["step"] for st in own.steps] == ["fab", "sort", "inspect", "fab"]  # in time order
    assert [o["kind"] for o in own.operations] == ["rework"]
    # the child's process-control history starts with its parent's runs before the split
    runs = db.run_sync(lambda s: lineage.lineage_runs(s, "L1.1"))
    assert [(r.lot_id, r.step_id) for r in runs] == [
        ("L1", "fab"), ("L1", "sort"), ("L1.1", "inspect")
    ]  # fmt: skip


async def test_scrapped_packages_show_on_the_die_map(db: Database, service: LotService) -> None:
    await _lot(service, "L1", next_step=1)

    def dice(s: Session) -> None:  # L1-W01 diced into three packages at step 0
        wafer = store.unit_by_name(s, "L1-W01")
        assert wafer is not None and wafer.id is not None
        store.end_units(s, [wafer.id], "split", 0)
        ids = store.insert_units(s, [
            store.NewUnit(name=f"L1-W01-X{x}", kind="package", lot_id="L1", die_x=x, die_y=0,
                          bin="good", created_step=0)
            for x in range(3)
        ])  # fmt: skip
        store.insert_edges(
            s, [{"parent_id": wafer.id, "child_id": i, "kind": "split"} for i in ids.values()]
        )

    db.run_sync(dice)
    await service.scrap("L1", ["L1-W01-X1"], "TOOL-DAMAGE", "chipped by the pick-up")
    _, dies = db.run_sync(lambda s: trace.die_map(s, "L1-W01"))
    assert [(d["package"], d["bin"], d["reason"]) for d in dies] == [
        ("L1-W01-X0", "good", None),
        ("L1-W01-X1", "scrapped", "TOOL-DAMAGE: chipped by the pick-up"),
        ("L1-W01-X2", "good", None),
    ]
    assert db.run_sync(lambda s: store.count_units(s, "L1"))["package"] == 2
    node = db.run_sync(lambda s: trace.backward(s, "L1-W01-X1"))[0]
    assert node.to_dict()["bin"] == "scrapped: TOOL-DAMAGE: chipped by the pick-up"
