"""Which jobs a step becomes (controller/engine/pieces.py), as table tests on synthetic
material: a job per wafer in slot order, batches sized by the recipe's count, boats of
packages only where the recipe sets the count, units of other inputs not pieces until merged,
and each piece's defects its own (controller/engine/material.py)."""

from __future__ import annotations

from typing import Any

from controller.engine.material import Material, UnitView, plan_change
from controller.engine.pieces import mean_results, plan_jobs
from controller.recipes.expand import ToolStepPlan
from controller.recipes.model import Genealogy
from tests.unit.controller.engine.test_material import INPUTS, ROUND


def _step(
    tool: str, operation: str, params: dict[str, Any] | None = None, **genealogy: Any
) -> ToolStepPlan:
    values: dict[str, Any] = dict(params or {})
    return ToolStepPlan(
        index=3, id="s", template="s", path=("steps", 3), name="s", role=None, tool=tool,
        operation=operation, params=params or {}, values=values,
        genealogy=Genealogy.model_validate(genealogy),
    )  # fmt: skip


def _lot(*units: UnitView) -> Material:
    return Material("L1", {u.name: u for u in units})


def _wafer(n: int, slot: int | None = None) -> UnitView:
    return UnitView(f"L1-W{n:02d}", "wafer", 100 + n, slot if slot is not None else n, "wafers")


def _package(n: int) -> UnitView:
    return UnitView(f"L1-W01-X{n:03d}Y000", "package", 1000 + n, 1, None)


def test_a_job_per_wafer_in_slot_order() -> None:
    lot = _lot(_wafer(1, slot=3), _wafer(2, slot=1), _wafer(3, slot=2))
    jobs = plan_jobs(lot, _step("sputter", "deposit"), "wafers")
    assert [j.names for j in jobs] == [["L1-W02"], ["L1-W03"], ["L1-W01"]]
    assert [j.key for j in jobs] == ["L1-W02", "L1-W03", "L1-W01"]
    assert not any(j.batch for j in jobs)


def test_a_batch_takes_the_recipes_count_and_each_job_counts_its_own() -> None:
    lot = _lot(*(_wafer(n) for n in range(1, 6)))
    jobs = plan_jobs(lot, _step("clean", "plasma", {"work_pieces": 2.0}), "wafers")
    assert [j.names for j in jobs] == [["L1-W01", "L1-W02"], ["L1-W03", "L1-W04"], ["L1-W05"]]
    assert [j.step.values["work_pieces"] for j in jobs] == [2.0, 2.0, 1.0]


def test_packages_ride_in_boats_only_where_the_recipe_sets_the_count() -> None:
    lot = _lot(*(_package(n) for n in range(1, 6)))
    boats = plan_jobs(lot, _step("ball", "ball_place", {"work_pieces": 2.0}), "wafers")
    assert [len(j.units) for j in boats] == [2, 2, 1]
    whole = plan_jobs(lot, _step("coater", "dispense", {"sites": 5.0}), "wafers")
    assert [(j.key, j.units) for j in whole] == [("", ())]  # one job for the lot
    default = plan_jobs(lot, _step("clean", "plasma"), "wafers")
    assert [j.key for j in default] == [""]  # no count written: not 5 jobs of one package


def test_units_of_another_input_wait_until_a_merge_makes_them_part_of_a_piece() -> None:
    panel = UnitView("L1-P01", "panel", 300, 1, "panels")
    lot = _lot(_wafer(1), panel)
    assert [j.names for j in plan_jobs(lot, _step("bonder", "laminate"), "wafers")] == [["L1-W01"]]
    merge = _step("bonder", "wafer_to_panel", merge={"into": "assembly", "from": ["wafers",
                                                                           "panels"]})  # fmt: skip
    assert [j.names for j in plan_jobs(lot, merge, "wafers")] == [["L1-W01"]]


def test_each_pieces_defects_stay_with_it_and_run_out_bins_the_edge() -> None:
    lot = _lot(_wafer(1), _wafer(2))
    bond = _step("bonder", "wafer_to_panel")
    change = plan_change(
        lot, bond, {}, {}, INPUTS, {"L1-W01": {"opens": 0.0}, "L1-W02": {"opens": 2.0}}
    )
    assert "defects" not in lot.active["L1-W01"].attributes
    assert change.attributes["L1-W02"]["defects"] == {"open bump": 2}
    assert change.attributes["L1-W02"]["edge_defects"] == ["open bump"]
    dice = _step("dicing", "dice", ROUND, split={"from": "wafer", "into": "package"})
    lot.active["L1-W02"].attributes = change.attributes["L1-W02"]
    cut = plan_change(lot, dice, {}, {}, INPUTS)
    rejected = sorted(n for n, (b, _) in cut.bins.items() if b == "reject")
    # the plus of five dies (test_material.ROUND): the centre (2, 2) is never the edge
    assert len(rejected) == 2 and all(n.startswith("L1-W02-") for n in rejected)
    assert "L1-W02-X002Y002" not in rejected


def test_the_steps_value_for_later_steps_is_the_mean_over_pieces() -> None:
    assert mean_results({"a": {"t": 1.0, "n": 2.0}, "b": {"t": 3.0}}) == {"t": 2.0, "n": 2.0}


def test_a_resumed_lot_reads_a_steps_mean_over_its_pieces_newest_runs() -> None:
    from dataclasses import dataclass
    from datetime import UTC, datetime

    from controller.recipes.history import History

    @dataclass
    class Run:
        id: int
        step_index: int
        state: str
        results: dict[str, Any]
        ended_at: datetime | None
        piece: str | None

    def at(minute: int) -> datetime:
        return datetime(2026, 12, 6, 8, minute, tzinfo=UTC)

    def t(v: float) -> dict[str, Any]:
        return {"thickness": {"value": v, "unit": "µm"}}

    runs = [
        Run(1, 2, "done", t(10.0), at(1), "L-W01"),
        Run(2, 2, "done", t(99.0), at(2), "L-W02"),  # retried below: the newest counts
        Run(3, 2, "done", t(14.0), at(4), "L-W02"),
        Run(4, 2, "failed", t(50.0), at(5), "L-W03"),
    ]
    pieces = [(r.id, r.piece or "", r.results) for r in runs]
    h = History.from_records(runs, (), pieces)
    assert h.measured[2] == {"thickness": 12.0} and h.ended[2] == at(4)
    # each piece its own newest measurement (feed-forward per wafer), else the lot's mean
    assert h.pieces_measured([2]) == ["L-W01", "L-W02"]
    assert [h.result(2, "thickness", p) for p in ("L-W01", "L-W02", "L-W03", None)] == [
        10.0, 14.0, 12.0, 12.0,
    ]  # fmt: skip
