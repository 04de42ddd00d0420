"""Every transaction a lot runner writes, on SQLite and without a tool: the intent before the
send (or the pending request instead), a step's commit (results, genealogy, events, the next
intent, or a hold when a result is out of spec), holds and aborts with and without a run,
external steps, and taking or giving back a lot."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from controller.engine import journal
from controller.engine.journal import Intent
from controller.engine.material import Material, UnitView
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Edge, StepRun, Unit
from controller.lots import lease
from controller.lots.lease import ME
from controller.lots.lifecycle import HoldReason
from controller.recipes.expand import ExternalStepPlan, ToolStepPlan
from drivers.base import JobResult
from drivers.errors import LotBusy, StaleStep
from drivers.interface import JobState
from tests.unit.controller.rows import STATION, events, get_lot, new_lot, tiny_recipe

TINY = tiny_recipe()
OTHER_LIVE = f"{socket.gethostname()}:{os.getppid()}"
DEAD = f"{socket.gethostname()}:{2**22 + 1}"  # above Linux's largest pid (test_lease.py)

DICE_VALUES: dict[str, Any] = {"blade": "HUB_30", "stack_thickness": 775.0, "feed": 50.0}


Spec = dict[str, tuple[float | None, float | None]]


def _tool_step(index: int = 0, spec: Spec | None = None) -> ToolStepPlan:
    return ToolStepPlan(
        index=index, id=f"dice{index}", template="dice", path=("steps", index), name="dice",
        role=None, tool="dicing", operation="dice", values=DICE_VALUES,
        params={"blade": "HUB_30", "stack_thickness": "775 µm", "feed": "50 mm/s"},
        spec=spec or {}, consume=("blade_wear",),
    )  # fmt: skip


def _external_step(index: int = 0) -> ExternalStepPlan:
    return ExternalStepPlan(
        index=index, id="fab", template="fab", path=("steps", index), name="fab",
        role=None, external="front-end fab", returns=("wafer_map",),
    )  # fmt: skip


def _wafers(db: Database, lot_id: str = "L1") -> dict[str, int]:
    rows = [
        store.NewUnit(name=f"{lot_id}-W0{n}", kind="wafer", lot_id=lot_id, slot=n,
                      attributes={"input": "wafers"})
        for n in (1, 2)
    ]  # fmt: skip
    return db.run_sync(lambda s: store.insert_units(s, rows))


def _material(ids: dict[str, int]) -> Material:
    return Material(
        "L1", {n: UnitView(n, "wafer", i, int(n[-1]), "wafers") for n, i in ids.items()}
    )


def _started(db: Database, step: ToolStepPlan, job_id: str = "J-1") -> int:
    def tx(s: Session) -> int:
        return store.add_step_run(
            s, lot_id="L1", step_index=step.index, step_id=step.id, kind="tool",
            tool_id="DICE-1", job_id=job_id, recipe_id="unit-flow", recipe_hash=TINY.hash,
            state="started",
        )  # fmt: skip

    return db.run_sync(tx)


def _runs(db: Database) -> list[StepRun]:
    return db.run_sync(lambda s: store.step_runs(s, "L1"))


def _types(db: Database) -> list[str]:
    return [e["type"] for e in events(db, "L1")]


# -- spec ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "results", "violations"),
    [
        ({"kerf_width": (20.0, 40.0)}, {"kerf_width": 30.0}, []),
        ({"kerf_width": (20.0, 40.0)}, {"kerf_width": 40.0}, []),  # limits are inclusive
        ({"kerf_width": (20.0, 40.0)}, {"kerf_width": 45.0}, ["kerf_width 45 µm > 40 µm"]),
        ({"kerf_width": (20.0, 40.0)}, {"kerf_width": 12.5}, ["kerf_width 12.5 µm < 20 µm"]),
        ({"kerf_width": (None, 40.0)}, {"kerf_width": -1e6}, []),
        ({"kerf_width": (20.0, None)}, {"kerf_width": 1e6}, []),
        ({"kerf_width": (20.0, 40.0)}, {}, ["kerf_width not reported"]),
        (
            {"kerf_width": (20.0, 40.0), "chipping_front": (None, 10.0)},
            {"kerf_width": 50.0, "chipping_front": 11.0},
            ["kerf_width 50 µm > 40 µm", "chipping_front 11 µm > 10 µm"],
        ),
        ({}, {"kerf_width": 1e9}, []),
    ],
)
def test_spec_violations(
    spec: dict[str, tuple[float | None, float | None]],
    results: dict[str, float],
    violations: list[str],
) -> None:
    assert journal.spec_violations(_tool_step(spec=spec), results) == violations


# -- intent ----------------------------------------------------------------------------------------


def _intent(step: ToolStepPlan, job_id: str = "J-1", attempt: int = 1) -> Intent:
    return Intent(step, "DICE-1", "dicing", attempt, job_id)


def _write_intent(db: Database, intent: Intent) -> int | None:
    def tx(s: Session) -> int | None:
        return journal.write_intent(s, store.get_lot(s, "L1", for_update=True), intent, TINY)

    return db.run_sync(tx)


def test_an_intent_is_a_started_run_and_its_track_in(db: Database) -> None:
    new_lot(db, "L1", event_seq=1)
    step = _tool_step(index=0)
    run_id = _write_intent(db, _intent(step, "J-1", attempt=2))
    [run] = _runs(db)
    assert run.id == run_id
    assert (run.state, run.kind, run.attempt, run.job_id, run.tool_id, run.tool_kind) == (
        "started", "tool", 2, "J-1", "DICE-1", "dicing"
    )  # fmt: skip
    assert (run.operation, run.recipe_id, run.recipe_hash) == ("dice", "unit-flow", TINY.hash)
    assert run.setpoints == {
        "blade": {"value": "HUB_30", "unit": ""},
        "stack_thickness": {"value": 775.0, "unit": "µm"},
        "feed": {"value": 50.0, "unit": "mm/s"},
    }
    lot = get_lot(db, "L1")
    assert (lot.state, lot.owner) == ("running", ME)
    track_in, started = events(db, "L1")
    info = {"step_index": 0, "operation": "dice", "job_id": "J-1", "attempt": 2, "role": None,
            "pieces": []}  # fmt: skip
    assert (track_in["type"], track_in["seq"], track_in["data"]) == ("track_in", 2, info)
    assert (started["type"], started["seq"]) == ("step_started", 3)
    assert started["data"] == {**info, "setpoints": run.setpoints}
    assert {(e["tool_id"], e["step_id"]) for e in (track_in, started)} == {("DICE-1", "dice0")}


@pytest.mark.parametrize(("request_", "state"), [("hold", "held"), ("pause", "paused"),
                                                  ("abort", "aborted")])  # fmt: skip
def test_a_pending_request_is_applied_instead_of_the_intent(
    db: Database, request_: str, state: str
) -> None:
    new_lot(db, "L1", request=request_, request_kind="mes", request_reason="MES says")
    assert _write_intent(db, _intent(_tool_step())) is None
    assert _runs(db) == []
    lot = get_lot(db, "L1")
    assert (lot.state, lot.request) == (state, None)
    [said] = events(db, "L1")
    assert (said["type"], said["step_id"]) == (request_, "dice0")


# -- commit ----------------------------------------------------------------------------------------


def _commit(
    db: Database,
    step: ToolStepPlan,
    run_id: int,
    results: dict[str, float],
    material: Material,
    next_intent: Intent | None = None,
    area: str | None = None,
) -> journal.Committed:
    result = JobResult("J-1", "dice", JobState.COMPLETE, results)

    def tx(s: Session) -> journal.Committed:
        return journal.commit(
            s, "L1", step, "DICE-1", run_id, result, material, TINY, next_intent, (), area
        )

    return db.run_sync(tx)


def _edges(db: Database) -> list[tuple[str, str, str]]:
    def tx(s: Session) -> list[tuple[str, str, str]]:
        names = {u.id: u.name for u in s.query(Unit)}
        return [(names[e.parent_id], names[e.child_id], e.kind) for e in s.query(Edge)]

    return db.run_sync(tx)


def test_a_step_in_spec_commits_results_genealogy_and_events(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    ids = _wafers(db)
    step = _tool_step(spec={"kerf_width": (20.0, 40.0)})
    run_id = _started(db, step)
    done = _commit(db, step, run_id, {"kerf_width": 31.5, "die_count": 5.0}, _material(ids))
    assert done.next_run is None and done.lot.state == "running"
    [run] = _runs(db)
    assert run.state == "done" and run.ended_at is not None
    assert run.results == {
        "kerf_width": {"value": 31.5, "unit": "µm"},
        "die_count": {"value": 5.0, "unit": "count"},
    }
    lot = get_lot(db, "L1")
    assert (lot.state, lot.next_step) == ("running", 1)
    assert _types(db) == ["step_completed", "track_out", "genealogy_consume"]
    completed, track_out, consumed = events(db, "L1")
    assert [e["seq"] for e in (completed, track_out, consumed)] == [1, 2, 3]
    assert completed["data"]["in_spec"] is True
    assert completed["data"]["setpoints"] == {
        "blade": "HUB_30", "stack_thickness": "775 µm", "feed": "50 mm/s"
    }  # fmt: skip
    assert track_out["data"] == {"step_index": 0, "job_id": "J-1"}
    # the blade nobody registered is an anonymous consumable lot, so consumption still traces
    assert consumed["data"] == {
        "consumable": "blade_wear", "consumable_lot": "DICE-1.blade_wear.1", "units": 2
    }  # fmt: skip
    assert (consumed["step_id"], consumed["tool_id"]) == ("dice0", "DICE-1")
    assert _edges(db) == [
        ("DICE-1.blade_wear.1", "L1-W01", "consume"),
        ("DICE-1.blade_wear.1", "L1-W02", "consume"),
    ]


def test_a_step_before_another_area_hands_the_lot_over(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME, area="bumping", lease_epoch=2)
    lease.HELD["L1"] = 2
    ids = _wafers(db)
    step = _tool_step(0)
    run_id = _started(db, step)
    done = _commit(db, step, run_id, {}, _material(ids), area="assembly")
    assert done.next_run is None
    lot = get_lot(db, "L1")
    assert (lot.state, lot.area, lot.owner, lot.lease_expires) == ("queued", "assembly", None, None)
    assert (lot.next_step, lot.lease_epoch, lease.HELD) == (1, 2, {})
    handed = events(db, "L1")[-1]
    assert (handed["type"], handed["data"]) == (
        "lot_handed_over",
        {"from_area": "bumping", "to_area": "assembly", "from_station": STATION, "next_step": 1},
    )


def test_a_held_step_stays_in_its_area(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME, area="bumping")
    ids = _wafers(db)
    step = _tool_step(spec={"kerf_width": (20.0, 40.0)})
    run_id = _started(db, step)
    _commit(db, step, run_id, {"kerf_width": 99.0}, _material(ids), area="assembly")
    lot = get_lot(db, "L1")
    assert (lot.state, lot.area, lot.owner) == ("held", "bumping", ME)


def test_a_commit_writes_the_next_intent_when_given(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    ids = _wafers(db)
    step, following = _tool_step(0), _tool_step(1)
    run_id = _started(db, step)
    done = _commit(db, step, run_id, {}, _material(ids), _intent(following, "J-2"))
    _, second = _runs(db)
    assert done.next_run == second.id
    assert (second.step_index, second.job_id, second.state) == (1, "J-2", "started")
    assert _types(db)[-2:] == ["track_in", "step_started"]


def test_a_result_out_of_spec_holds_the_lot_and_writes_no_next_intent(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    ids = _wafers(db)
    step = _tool_step(0, spec={"kerf_width": (20.0, 40.0)})
    run_id = _started(db, step)
    done = _commit(db, step, run_id, {"kerf_width": 45.0}, _material(ids), _intent(_tool_step(1)))
    assert done.next_run is None and len(_runs(db)) == 1
    lot = get_lot(db, "L1")
    assert (lot.state, lot.hold_kind, lot.next_step) == ("held", "out_of_spec", 1)
    assert lot.hold_reason == "out of spec at step dice0: kerf_width 45 µm > 40 µm"
    assert _types(db) == ["step_completed", "track_out", "genealogy_consume", "hold"]
    assert events(db, "L1")[0]["data"]["in_spec"] is False
    assert events(db, "L1")[-1]["data"] == {"reason": lot.hold_reason, "kind": "out_of_spec"}


def test_a_step_is_committed_once(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    ids = _wafers(db)
    step = _tool_step(0)
    run_id = _started(db, step)
    _commit(db, step, run_id, {}, _material(ids))
    with pytest.raises(StaleStep, match=f"step run {run_id} is no longer started"):
        _commit(db, step, run_id, {}, _material(ids))
    assert len(events(db, "L1")) == 3 and len(_edges(db)) == 2  # nothing written twice


# -- stop ------------------------------------------------------------------------------------------


def _stop(db: Database, reason: HoldReason, **how: Any) -> None:
    db.run_sync(lambda s: journal.stop(s, "L1", _tool_step(), reason, **how))


def test_stop_ends_the_run_and_holds_the_lot(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    run_id = _started(db, _tool_step())
    _stop(db, HoldReason("alarm", "E42 spindle"), tool_id="DICE-1", run=(run_id, "alarm"))
    [run] = _runs(db)
    assert (run.state, run.message) == ("alarm", "E42 spindle") and run.ended_at is not None
    lot = get_lot(db, "L1")
    assert (lot.state, lot.hold_kind, lot.hold_reason) == ("held", "alarm", "E42 spindle")
    [hold] = events(db, "L1")
    assert (hold["type"], hold["tool_id"], hold["step_id"]) == ("hold", "DICE-1", "dice0")


def test_stop_without_a_run_leaves_runs_alone(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    run_id = _started(db, _tool_step())
    _stop(db, HoldReason("no_tool", "no dicing tool set up"))
    assert _runs(db)[0].state == "started"  # re-attached on release
    assert get_lot(db, "L1").state == "held" and _types(db) == ["hold"]
    assert run_id


def test_stop_can_abort(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    run_id = _started(db, _tool_step())
    _stop(db, HoldReason("operator", "scrap"), run=(run_id, "aborted"), abort=True)
    assert get_lot(db, "L1").state == "aborted" and _runs(db)[0].state == "aborted"
    assert _types(db) == ["abort"]


def test_stop_of_a_run_already_ended_changes_nothing(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    run_id = _started(db, _tool_step())
    _stop(db, HoldReason("alarm", "E42"), run=(run_id, "alarm"))
    with pytest.raises(StaleStep):
        _stop(db, HoldReason("alarm", "again"), run=(run_id, "failed"))
    assert get_lot(db, "L1").hold_reason == "E42" and _types(db) == ["hold"]


# -- external steps --------------------------------------------------------------------------------


def _external(db: Database, auto: bool) -> None:
    db.run_sync(lambda s: journal.external(s, "L1", _external_step(), TINY, auto))


def test_a_simulated_partner_confirms_an_external_step_at_once(db: Database) -> None:
    new_lot(db, "L1", "running", owner=None)
    _external(db, auto=True)
    [run] = _runs(db)
    assert (run.kind, run.state, run.attempt) == ("external", "confirmed", 1)
    assert run.results == {"wafer_map": "SIM-L1-fab-wafer_map"} and run.ended_at is not None
    assert run.setpoints == {"external": "front-end fab", "returns": ["wafer_map"]}
    lot = get_lot(db, "L1")
    assert (lot.state, lot.next_step, lot.owner) == ("queued", 1, ME)
    waiting, confirmed = events(db, "L1")
    assert (waiting["type"], waiting["data"]) == (
        "external_waiting", {"external": "front-end fab", "returns": ["wafer_map"]}
    )  # fmt: skip
    assert (confirmed["type"], confirmed["data"]) == (
        "external_confirmed",
        {"returned": {"wafer_map": "SIM-L1-fab-wafer_map"}, "by": "simulated partner"},
    )


def test_a_real_partner_is_waited_for_once(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    _external(db, auto=False)
    [run] = _runs(db)
    assert (run.state, run.results, run.ended_at) == ("waiting", {}, None)
    assert get_lot(db, "L1").state == "waiting" and _types(db) == ["external_waiting"]
    _external(db, auto=False)  # a runner coming back to the step: no second run, no event
    assert len(_runs(db)) == 1 and _types(db) == ["external_waiting"]


def test_a_lot_back_at_a_step_it_waits_at_waits_again_quietly(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    _external(db, auto=False)
    db.run_sync(lambda s: store.set_lot(store.get_lot(s, "L1"), state="queued"))
    _external(db, auto=False)
    assert get_lot(db, "L1").state == "waiting"
    assert len(_runs(db)) == 1 and _types(db) == ["external_waiting"]


def test_a_request_pending_at_an_external_step_is_applied_first(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME, request="pause", request_reason="lunch")
    _external(db, auto=True)
    assert _runs(db) == [] and get_lot(db, "L1").state == "paused" and _types(db) == ["pause"]


# -- claim, disown, reopen, complete ---------------------------------------------------------------


def _claim(db: Database) -> journal.Claimed:
    return db.run_sync(lambda s: journal.claim(s, "L1", "station-1"))


def test_claim_refuses_a_lot_another_live_controller_drives(db: Database) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=1)
    new_lot(db, "L1", "running", owner=OTHER_LIVE, lease_expires=expires)
    with pytest.raises(LotBusy, match=f"lot L1 is being driven by controller {OTHER_LIVE} "):
        _claim(db)
    assert get_lot(db, "L1").owner == OTHER_LIVE


def test_claim_takes_a_lot_whose_lease_ran_out_with_the_next_epoch(db: Database) -> None:
    expired = datetime.now(UTC) - timedelta(seconds=1)
    new_lot(db, "L1", "running", owner=OTHER_LIVE, lease_epoch=3, lease_expires=expired)
    lot = _claim(db).lot
    assert (lot.owner, lot.lease_epoch, lease.HELD) == (ME, 4, {"L1": 4})


@pytest.mark.parametrize("owner", [None, DEAD, ME], ids=["nobody", "dead", "me"])
def test_claim_takes_a_queued_lot_with_its_material(db: Database, owner: str | None) -> None:
    new_lot(db, "L1", "queued", owner=owner)
    _wafers(db)
    drawn = [
        store.NewUnit(name=f"L1-DIE00{n}", kind="die", lot_id="L1", state="merged",
                      created_step=2, attributes={"input": "dies"})
        for n in (1, 2)
    ] + [store.NewUnit(name="DIELOT7", kind="supply", lot_id="L1", state="supply",
                       attributes={"supply_for": "dies"})]  # fmt: skip
    db.run_sync(lambda s: store.insert_units(s, drawn))
    claimed = _claim(db)
    assert claimed.lot.owner == ME and get_lot(db, "L1").owner == ME
    assert claimed.recipe_text == TINY.text
    assert [u.name for u in claimed.units] == ["L1-W01", "L1-W02", "DIELOT7"]
    assert claimed.supply_counts == {"dies": 2}  # the next die drawn is L1-DIE003
    assert claimed.prior is None and events(db, "L1") == []


def test_claim_finds_the_newest_run_of_the_next_step(db: Database) -> None:
    new_lot(db, "L1", "running", owner=DEAD)
    step = _tool_step(0)
    _started(db, step, "J-1")
    db.run_sync(lambda s: store.finish_step_run(s, 1, expect=("started",), state="failed"))
    newest = db.run_sync(
        lambda s: store.add_step_run(
            s, lot_id="L1", step_index=0, step_id="dice0", attempt=2, kind="tool",
            job_id="J-2", recipe_id="unit-flow", recipe_hash=TINY.hash, state="started",
        )
    )  # fmt: skip
    prior = _claim(db).prior
    assert prior is not None and (prior.id, prior.job_id) == (newest, "J-2")


def test_claiming_a_paused_lot_resumes_it(db: Database) -> None:
    new_lot(db, "L1", "paused", hold_reason="held before the pause")
    claimed = _claim(db)
    assert (claimed.lot.state, claimed.lot.owner) == ("queued", ME)
    [release] = events(db, "L1")
    assert release["data"] == {"was": "held before the pause", "note": "resumed"}


@pytest.mark.parametrize("state", ["held", "waiting", "completed", "aborted"])
def test_a_stopped_lot_is_claimed_without_taking_it(db: Database, state: str) -> None:
    new_lot(db, "L1", state, owner=None)
    _wafers(db)
    claimed = _claim(db)
    assert (claimed.units, claimed.prior, claimed.supply_counts) == ([], None, {})
    assert get_lot(db, "L1").owner is None and events(db, "L1") == []


@pytest.mark.parametrize(
    ("owner", "after"),
    [(ME, None), (OTHER_LIVE, OTHER_LIVE), (None, None)],
    ids=["me", "other-live", "nobody"],  # not the pids: every test process must collect alike
)
def test_disown_gives_back_only_this_process_s_lot(
    db: Database, owner: str | None, after: str | None
) -> None:
    new_lot(db, "L1", "held", owner=owner)
    db.run_sync(lambda s: journal.disown(s, "L1"))
    assert get_lot(db, "L1").owner == after


def test_reopen_starts_a_failed_run_again(db: Database) -> None:
    new_lot(db, "L1", "held", owner=None)
    run_id = _started(db, _tool_step())
    db.run_sync(lambda s: store.finish_step_run(s, run_id, expect=("started",), state="failed",
                                                message="no reply"))  # fmt: skip
    lot = db.run_sync(lambda s: journal.reopen(s, "L1", run_id))
    assert (lot.state, lot.owner) == ("running", ME)
    [run] = _runs(db)
    assert (run.state, run.message, run.ended_at) == ("started", None, None)


def test_complete_counts_the_lot_s_units(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME, event_seq=6)
    _wafers(db)
    db.run_sync(lambda s: journal.complete(s, "L1"))
    assert get_lot(db, "L1").state == "completed"
    [done] = events(db, "L1")
    assert (done["type"], done["seq"], done["data"]) == (
        "lot_completed",
        7,
        {"units": {"wafer": 2}},
    )
