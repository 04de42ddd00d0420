"""SPC in the step transaction (controller/engine/spc_hook.py), on SQLite without a tool: the
phase I baseline collected then frozen, points judged by the frozen limits only, violations
recorded with the chart's OCAP action (event, hold, inhibit), one inhibit per chart while it
is in force, a baseline without variation left for an engineer, a re-baseline starting a new
series; and through `journal.commit`, the lot held with kind spc."""

from __future__ import annotations

import math

import pytest
from sqlalchemy.orm import Session

from controller.engine import journal, spc_hook
from controller.engine.material import Material
from controller.engine.spc_hook import SpcOutcome
from controller.events import SpcViolation
from controller.genealogy import spc_store, store
from controller.genealogy.db import Database
from controller.genealogy.models import utcnow
from controller.lots.lease import ME
from controller.recipes import ChartPlan
from controller.recipes.expand import ToolStepPlan
from drivers.base import JobResult
from drivers.interface import JobState
from tests.unit.controller.rows import events, get_lot, new_lot, tiny_recipe

KEY = ("unit-flow", "dice", "kerf_offset", "DICE-1")
NAME = "unit-flow/dice/kerf_offset@DICE-1"
BASELINE = [10.0, 11.0, 10.0, 11.0, 10.0]  # mean 10.4, MR̄ 1, σ = 1/1.128
SIGMA = 1.0 / 1.128


def _step(action: str = "hold", baseline: int = 5, index: int = 0) -> ToolStepPlan:
    return ToolStepPlan(
        index=index, id=f"dice@i={index}", template="dice", path=("steps", 0), name="dice",
        role=None, tool="dicing", operation="dice",
        spc=(ChartPlan("kerf_offset", "µm", "nelson", action, baseline, True),),
    )  # fmt: skip


def _record(db: Database, step: ToolStepPlan, value: float, lot: str = "L1") -> SpcOutcome:
    def tx(s: Session) -> SpcOutcome:
        return spc_hook.record(
            s, lot_id=lot, recipe_id="unit-flow", step=step, tool_id="DICE-1", run_id=1,
            job_id=f"J-{lot}", results={"kerf_offset": value, "kerf_width": 30.0},
        )  # fmt: skip

    return db.run_sync(tx)


def _baseline(db: Database, step: ToolStepPlan) -> None:
    for v in BASELINE:
        assert _record(db, step, v) == SpcOutcome()


def test_phase_one_collects_the_baseline_then_freezes_its_limits(db: Database) -> None:
    step = _step()
    for v in BASELINE[:-1]:
        assert _record(db, step, v) == SpcOutcome()
    chart = db.run_sync(lambda s: spc_store.chart(s, KEY))
    assert chart is not None and chart.id is not None
    cid = chart.id
    assert db.run_sync(lambda s: spc_store.current_limits(s, cid)) is None
    _record(db, step, BASELINE[-1])
    limits = db.run_sync(lambda s: spc_store.current_limits(s, cid))
    assert limits is not None
    assert (limits.source, limits.basis, limits.since, limits.frozen_by) == ("phase-i", 5, 0, "spc")
    assert math.isclose(limits.center, 10.4) and math.isclose(limits.sigma, SIGMA)
    points = db.run_sync(lambda s: spc_store.points(s, cid))
    assert [p.idx for p in points] == [0, 1, 2, 3, 4]
    assert {p.limits_id for p in points} == {None}
    assert [p.spread for p in points] == [None, 1.0, 1.0, 1.0, 1.0]
    assert (chart.action, chart.rule_set, chart.baseline_points, chart.unit) == (
        "hold",
        "nelson",
        5,
        "µm",
    )


def test_later_points_are_judged_by_the_frozen_limits(db: Database) -> None:
    step = _step()
    _baseline(db, step)
    assert _record(db, step, 11.0) == SpcOutcome()  # inside ±3σ = 10.4 ± 2.66
    out = _record(db, step, 13.2)  # above the UCL 13.06
    assert out.hold is not None and out.hold.kind == "spc"
    assert out.hold.text.startswith(f"SPC {NAME}: N1: ")
    assert not out.inhibited
    [event] = out.events
    assert isinstance(event, SpcViolation)
    assert (event.lot_id, event.step_id, event.tool_id) == ("L1", "dice@i=0", "DICE-1")
    assert event.data.chart == NAME and event.data.point == 7 and event.data.value == 13.2
    assert event.data.rules[0] == "N1" and event.data.action == "hold"
    cid = db.run_sync(lambda s: spc_store.chart(s, KEY)).id  # type: ignore[union-attr]
    assert cid is not None
    rows = db.run_sync(lambda s: spc_store.violations(s, cid))
    assert (rows[0].idx, rows[0].rule, rows[0].action, rows[0].lot_id) == (6, "N1", "hold", "L1")
    # the limits stay those of the baseline, however the series goes on
    for v in (13.0, 13.1, 12.9):
        _record(db, step, v)
    limits = db.run_sync(lambda s: spc_store.current_limits(s, cid))
    assert limits is not None and math.isclose(limits.center, 10.4)


@pytest.mark.parametrize(("action", "holds", "inhibits"), [
    ("none", False, False), ("warn", False, False), ("hold", True, False),
    ("inhibit", True, True),
])  # fmt: skip
def test_the_chart_s_action_decides_what_a_violation_does(
    db: Database, action: str, holds: bool, inhibits: bool
) -> None:
    step = _step(action)
    _baseline(db, step)
    out = _record(db, step, 20.0)
    assert [e.type for e in out.events] == ["spc_violation"]  # always recorded and published
    assert (out.hold is not None, out.inhibited) == (holds, inhibits)
    inhibits_now = db.run_sync(lambda s: spc_store.open_inhibits(s, "DICE-1"))
    assert len(inhibits_now) == (1 if inhibits else 0)


def test_a_chart_inhibits_its_tool_once_while_the_inhibit_is_in_force(db: Database) -> None:
    step = _step("inhibit")
    _baseline(db, step)
    assert _record(db, step, 20.0, "L7").inhibited
    assert _record(db, step, 21.0, "L8").inhibited  # held out still; no second row
    [inhibit] = db.run_sync(lambda s: spc_store.open_inhibits(s, "DICE-1"))
    assert (inhibit.source, inhibit.by, inhibit.ref) == ("spc", "spc", NAME)
    assert inhibit.reason.startswith(f"SPC {NAME}: N1: point 6 ")
    assert inhibit.violation_id is not None

    def release(s: Session) -> None:
        row = spc_store.open_inhibits(s, "DICE-1")[0]
        row.released_at, row.released_by, row.release_note = utcnow(), "tess", "blade changed"

    db.run_sync(release)
    _record(db, step, 22.0, "L9")  # released: the next violation inhibits again
    assert len(db.run_sync(lambda s: spc_store.open_inhibits(s, "DICE-1"))) == 1


def test_a_baseline_without_variation_freezes_nothing(db: Database) -> None:
    step = _step()
    for _ in range(6):
        assert _record(db, step, 10.0) == SpcOutcome()
    cid = db.run_sync(lambda s: spc_store.chart(s, KEY)).id  # type: ignore[union-attr]
    assert cid is not None
    assert db.run_sync(lambda s: spc_store.current_limits(s, cid)) is None


def test_a_rebaseline_starts_a_new_series(db: Database) -> None:
    step = _step()
    _baseline(db, step)

    def rebaseline(s: Session) -> None:
        chart = spc_store.chart(s, KEY)
        assert chart is not None and chart.id is not None
        spc_store.supersede_limits(s, chart.id)
        chart.phase_start = spc_store.next_index(s, chart.id)

    db.run_sync(rebaseline)
    for v in (20.0, 21.0, 20.0, 21.0, 20.0):  # a new blade, a new level: phase I again
        assert _record(db, step, v) == SpcOutcome()
    cid = db.run_sync(lambda s: spc_store.chart(s, KEY)).id  # type: ignore[union-attr]
    assert cid is not None
    limits = db.run_sync(lambda s: spc_store.current_limits(s, cid))
    assert limits is not None and limits.since == 5 and math.isclose(limits.center, 20.4)
    assert _record(db, step, 20.5) == SpcOutcome()
    assert _record(db, step, 10.4).hold is not None  # the old level is now out of control


def test_an_spc_hold_holds_the_lot_after_the_step(db: Database) -> None:
    new_lot(db, "L1", "running", owner=ME)
    step = _step("inhibit")
    _baseline(db, step)

    def tx(s: Session) -> journal.Committed:
        run_id = store.add_step_run(
            s, lot_id="L1", step_index=0, step_id=step.id, kind="tool", tool_id="DICE-1",
            job_id="J-9", recipe_id="unit-flow", recipe_hash=tiny_recipe().hash,
            state="started",
        )  # fmt: skip
        result = JobResult("J-9", "dice", JobState.COMPLETE, {"kerf_offset": 20.0})
        return journal.commit(s, "L1", step, "DICE-1", run_id, result,
                              Material("L1", {}), tiny_recipe(), None)  # fmt: skip

    done = db.run_sync(tx)
    assert done.spc.inhibited and done.next_run is None
    lot = get_lot(db, "L1")
    assert (lot.state, lot.hold_kind, lot.next_step) == ("held", "spc", 1)
    assert lot.hold_reason is not None and lot.hold_reason.startswith(f"SPC {NAME}: N1")
    types = [e["type"] for e in events(db, "L1")]
    assert types[-2:] == ["spc_violation", "hold"]
    assert events(db, "L1")[-1]["tool_id"] == "DICE-1"


def test_only_declared_results_are_charted(db: Database) -> None:
    _record(db, _step(), 10.0)
    charts = db.run_sync(lambda s: spc_store.charts(s))
    assert [(c.result, c.tool_id) for c in charts] == [("kerf_offset", "DICE-1")]
    assert _record(db, ToolStepPlan(
        index=0, id="dice", template="dice", path=("steps", 0), name="dice", role=None,
        tool="dicing", operation="dice",
    ), 10.0) == SpcOutcome()  # fmt: skip
    assert len(db.run_sync(lambda s: spc_store.charts(s))) == 1
