"""What a step's genealogy declaration does to a lot's material, as table tests on tiny
synthetic steps (no recipe, no database): merges make targets and put parts on them, splits
cut the die map, consumables and supply draws add edges, defects ride on wafers until dicing
bins the packages. Every expectation below is worked out by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from controller.engine.material import Material, UnitView, plan_change
from controller.events import (
    ConsumeData,
    MergeData,
    SplitData,
)
from controller.genealogy.store import NewUnit
from controller.genealogy.write import Change, EdgeRow
from controller.recipes.expand import ToolStepPlan
from controller.recipes.model import Genealogy, InputSpec
from drivers.errors import GenealogyError

INPUTS: Mapping[str, InputSpec] = {
    "wafers": InputSpec(kind="wafer", count="1..25"),
    "strips": InputSpec(kind="strip", count="1..20"),
    "blanks": InputSpec(kind="wafer", supply=True),
    "dies": InputSpec(kind="die", supply=True),
}
# A 20 mm round piece cut at 4 mm: columns and rows run over [-10, -6, -2, 2, 6, 10] mm and a
# die counts when its far corner lies within 10 - 3 (edge exclusion) = 7 mm, i.e. x² + y² ≤ 49
# with the far corner's |x|, |y| in {2, 6}: 2²+2², 2²+6², 6²+2² — a plus of five dies,
# column-major: (1,2) (2,1) (2,2) (2,3) (3,2).
ROUND: dict[str, Any] = {
    "work_shape": "ROUND",
    "work_width": 20.0,
    "work_length": 20.0,
    "die_x": 4.0,
    "die_y": 4.0,
}
PLUS = [(1, 2), (2, 1), (2, 2), (2, 3), (3, 2)]
# A 3 x 2 mm rectangle cut at 1 mm: every whole pitch, column-major.
RECT: dict[str, Any] = {
    "work_shape": "RECT",
    "work_width": 3.0,
    "work_length": 2.0,
    "die_x": 1.0,
    "die_y": 1.0,
}
GRID = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]


def _step(
    index: int = 4,
    genealogy: dict[str, Any] | None = None,
    name: str = "",
    tool: tuple[str, str] = ("dicing", "dice"),
    **values: Any,
) -> ToolStepPlan:
    name = name or f"step{index}"
    return ToolStepPlan(
        index=index,
        id=name,
        template=name,
        path=("steps", index),
        name=f"step {index}",
        role=None,
        tool=tool[0],
        operation=tool[1],
        values=values,
        genealogy=Genealogy.model_validate(genealogy or {}),
    )


def _merge(into: str, *sources: str, per: int = 1) -> dict[str, Any]:
    return {"merge": {"into": into, "from": list(sources), "per": per}}


def _split(parent: str, into: str = "package") -> dict[str, Any]:
    return {"split": {"from": parent, "into": into}}


def _material(*units: UnitView, **supply_counts: int) -> Material:
    return Material("L1", {u.name: u for u in units}, dict(supply_counts))


def _wafer(n: int) -> UnitView:
    return UnitView(f"L1-W{n:02d}", "wafer", 100 + n, n, "wafers")


def _plan(
    material: Material,
    step: ToolStepPlan,
    results: Mapping[str, float] | None = None,
    consumables: Mapping[str, str] | None = None,
) -> Change:
    return plan_change(material, step, results or {}, consumables or {}, INPUTS)


def _said(change: Change) -> list[tuple[str, object]]:
    """The change's events as (type, data): ids and times are new for every event."""
    return [(e.type, e.data) for e in change.events]  # type: ignore[attr-defined]


def _drawn(name: str, kind: str, source: str, index: int = 4) -> NewUnit:
    return NewUnit(name=name, kind=kind, created_step=index, attributes={"input": source})


# -- merge -----------------------------------------------------------------------------------------


def test_the_first_merge_makes_one_target_per_anchor() -> None:
    change = _plan(_material(_wafer(1), _wafer(2)), _step(genealogy=_merge("stack", "wafers")))
    assert change.units == [
        NewUnit(
            name="L1-STK01", kind="stack", created_step=4, slot=1, attributes={"from": "L1-W01"}
        ),
        NewUnit(
            name="L1-STK02", kind="stack", created_step=4, slot=2, attributes={"from": "L1-W02"}
        ),
    ]
    assert change.edges == [
        EdgeRow("L1-W01", "L1-STK01", "merge"),
        EdgeRow("L1-W02", "L1-STK02", "merge"),
    ]
    assert change.ended == {"L1-W01": "merged", "L1-W02": "merged"}
    assert _said(change) == [("genealogy_merge", MergeData(into="stack", units=2, parts=2))]
    assert change.bins == {} and change.attributes == {}


def test_an_anchor_without_a_slot_names_its_target_after_itself() -> None:
    film = UnitView("L1-F7", "film", 7, None, None)
    change = _plan(_material(film), _step(genealogy=_merge("assembly", "film")))
    assert [u["name"] for u in change.units] == ["L1-ASMF7"]
    assert change.edges == [EdgeRow("L1-F7", "L1-ASMF7", "merge")]


def test_a_first_merge_with_a_supply_draws_one_part_per_target() -> None:
    material = _material(_wafer(1), _wafer(2))
    material.sources["blanks"] = "BLANKLOT"  # drawn from an upstream lot
    change = _plan(material, _step(genealogy=_merge("stack", "wafers", "blanks")))
    assert [u["name"] for u in change.units] == ["L1-STK01", "L1-STK02", "L1-BLA001", "L1-BLA002"]
    assert change.units[2:] == [
        _drawn("L1-BLA001", "wafer", "blanks"),
        _drawn("L1-BLA002", "wafer", "blanks"),
    ]
    assert change.edges == [
        EdgeRow("L1-W01", "L1-STK01", "merge"),
        EdgeRow("L1-W02", "L1-STK02", "merge"),
        EdgeRow("BLANKLOT", "L1-BLA001", "split"),
        EdgeRow("L1-BLA001", "L1-STK01", "merge"),
        EdgeRow("BLANKLOT", "L1-BLA002", "split"),
        EdgeRow("L1-BLA002", "L1-STK02", "merge"),
    ]
    assert change.ended == dict.fromkeys(["L1-W01", "L1-W02", "L1-BLA001", "L1-BLA002"], "merged")
    assert material.supply_counts == {"blanks": 2}
    # two wafers and two blanks went into two stacks
    assert _said(change) == [("genealogy_merge", MergeData(into="stack", units=2, parts=4))]


def test_a_later_merge_puts_parts_on_the_targets_numbering_on() -> None:
    stacks = [UnitView(f"L1-STK0{n}", "stack", 200 + n, n) for n in (1, 2)]
    material = _material(*stacks, blanks=2)  # two blanks drawn by the first layer
    change = _plan(material, _step(index=7, genealogy=_merge("stack", "blanks")))
    assert change.units == [
        _drawn("L1-BLA003", "wafer", "blanks", 7),
        _drawn("L1-BLA004", "wafer", "blanks", 7),
    ]
    assert change.edges == [  # no source lot known: no split edge
        EdgeRow("L1-BLA003", "L1-STK01", "merge"),
        EdgeRow("L1-BLA004", "L1-STK02", "merge"),
    ]
    assert material.supply_counts == {"blanks": 4}
    assert _said(change) == [("genealogy_merge", MergeData(into="stack", units=2, parts=2))]


def test_parts_per_target_are_placed_on_its_sites_in_order() -> None:
    strips = [UnitView(f"L1-S0{n}", "strip", 300 + n, n, "strips") for n in (1, 2)]
    material = _material(*strips)
    material.sources["dies"] = "DIELOT7"
    change = _plan(material, _step(genealogy=_merge("strip", "dies", per=3)))
    assert [u["name"] for u in change.units] == [f"L1-DIE00{n}" for n in range(1, 7)]
    assert change.attributes == {
        "L1-S01": {"sites": {"dies": ["L1-DIE001", "L1-DIE002", "L1-DIE003"]}},
        "L1-S02": {"sites": {"dies": ["L1-DIE004", "L1-DIE005", "L1-DIE006"]}},
    }
    assert [e for e in change.edges if e.kind == "merge"] == [
        EdgeRow(f"L1-DIE00{n}", f"L1-S0{1 + (n - 1) // 3}", "merge") for n in range(1, 7)
    ]
    assert [e for e in change.edges if e.kind == "split"] == [
        EdgeRow("DIELOT7", f"L1-DIE00{n}", "split") for n in range(1, 7)
    ]
    assert _said(change) == [("genealogy_merge", MergeData(into="strip", units=2, parts=6))]
    # later placements number on; one part per strip records no sites, more fill further ones
    again = _plan(material, _step(index=5, genealogy=_merge("strip", "dies", per=1)))
    assert [u["name"] for u in again.units] == ["L1-DIE007", "L1-DIE008"]
    assert again.attributes == {}
    third = _plan(material, _step(index=6, genealogy=_merge("strip", "dies", per=2)))
    assert third.attributes["L1-S02"] == {
        "sites": {"dies": ["L1-DIE004", "L1-DIE005", "L1-DIE006", "L1-DIE011", "L1-DIE012"]}
    }


def test_a_merge_from_a_unit_kind_takes_per_parts_of_that_kind() -> None:
    stack = UnitView("L1-STK01", "stack", 1, 1)
    films = [UnitView(f"L1-F{n}", "film", 1 + n, None) for n in (1, 2, 3)]
    one = _plan(_material(stack, *films), _step(genealogy=_merge("stack", "film")))
    assert one.units == [] and one.edges == [EdgeRow("L1-F1", "L1-STK01", "merge")]
    assert one.ended == {"L1-F1": "merged"} and one.attributes == {}
    assert _said(one) == [("genealogy_merge", MergeData(into="stack", units=1, parts=1))]
    two = _plan(_material(stack, *films), _step(genealogy=_merge("stack", "film", per=2)))
    assert two.edges == [
        EdgeRow("L1-F1", "L1-STK01", "merge"),
        EdgeRow("L1-F2", "L1-STK01", "merge"),
    ]
    assert two.attributes == {"L1-STK01": {"sites": {"film": ["L1-F1", "L1-F2"]}}}


# -- split -----------------------------------------------------------------------------------------


def test_a_round_piece_is_cut_along_its_die_map() -> None:
    stack = UnitView("L1-STK01", "stack", 9, 1)
    change = _plan(_material(stack), _step(genealogy=_split("stack"), **ROUND))
    names = [f"L1-STK01-X{x:03d}Y{y:03d}" for x, y in PLUS]
    assert names[0] == "L1-STK01-X001Y002"
    assert change.units == [
        NewUnit(
            name=n,
            kind="package",
            created_step=4,
            bin="good",
            slot=1,
            attributes={"from": "L1-STK01"},
            die_x=x,
            die_y=y,
        )
        for n, (x, y) in zip(names, PLUS, strict=True)
    ]
    assert change.edges == [EdgeRow("L1-STK01", n, "split") for n in names]
    assert change.ended == {"L1-STK01": "split"}
    assert change.bins == {}
    assert _said(change) == [
        (
            "genealogy_split",
            SplitData(
                parent="L1-STK01", into="package", count=5, die_map="fabline die-map L1-STK01"
            ),
        )
    ]


def test_a_strip_is_cut_at_every_pitch_and_its_placed_chips_go_with_their_sites() -> None:
    strip = UnitView(
        "L1-S01", "strip", 5, 1, "strips", {"sites": {"dies": ["L1-DIE001", "L1-DIE002"]}}
    )
    change = _plan(_material(strip), _step(genealogy=_split("strip"), **RECT))
    names = [f"L1-S01-X{x:03d}Y{y:03d}" for x, y in GRID]
    assert [
        (u["name"], u.get("unit_x"), u.get("unit_y"), u.get("die_x")) for u in change.units
    ] == [(n, x, y, None) for n, (x, y) in zip(names, GRID, strict=True)]
    assert change.edges == [
        EdgeRow("L1-DIE001", names[0], "merge"),
        EdgeRow("L1-S01", names[0], "split"),
        EdgeRow("L1-DIE002", names[1], "merge"),
        EdgeRow("L1-S01", names[1], "split"),
        *(EdgeRow("L1-S01", n, "split") for n in names[2:]),
    ]


def test_a_wafer_on_its_panel_has_both_positions() -> None:
    assembly = UnitView("L1-ASM01", "assembly", 5, 1)
    change = _plan(_material(assembly), _step(genealogy=_split("assembly"), **ROUND))
    first = change.units[0]
    assert (first["die_x"], first["die_y"], first["unit_x"], first["unit_y"]) == (1, 2, 1, 2)


def test_defects_a_piece_carries_bin_that_many_packages_reproducibly() -> None:
    stack = UnitView("L1-STK01", "stack", 9, 1, None, {"defects": {"missing ball": 2}})
    step = _step(genealogy=_split("stack"), **ROUND)
    change = _plan(_material(stack), step)
    # the choice is part of the record: a rerun must bin the same packages (hash order)
    assert change.bins == {
        "L1-STK01-X002Y003": ("reject", "missing ball"),
        "L1-STK01-X001Y002": ("reject", "missing ball"),
    }
    assert _plan(_material(stack), step).bins == change.bins
    other = UnitView("L1-STK02", "stack", 9, 1, None, {"defects": {"missing ball": 2}})
    assert set(_plan(_material(other), step).bins) == {"L1-STK02-X002Y001", "L1-STK02-X002Y003"}
    many = UnitView("L1-STK01", "stack", 9, 1, None, {"defects": {"missing ball": 99}})
    assert len(_plan(_material(many), step).bins) == 5  # no more rejects than packages


def test_what_a_merge_made_can_be_cut_in_the_same_step() -> None:
    change = _plan(
        _material(_wafer(1)),
        _step(genealogy={**_merge("stack", "wafers"), **_split("stack")}, **ROUND),
    )
    assert [u["name"] for u in change.units][:2] == ["L1-STK01", "L1-STK01-X001Y002"]
    assert change.ended == {"L1-W01": "merged", "L1-STK01": "split"}


@pytest.mark.parametrize(
    ("material", "values", "message"),
    [
        (_material(_wafer(1)), ROUND, "step step4: nothing of kind stack to split"),
        (
            _material(UnitView("L1-STK01", "stack", 9, 1)),
            {},
            "step step4: the cut's 'work_shape' is not set",
        ),
    ],
    ids=["no-parent", "no-die-map"],
)
def test_a_split_that_cannot_be_planned_is_a_genealogy_error(
    material: Material, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(GenealogyError) as refused:
        _plan(material, _step(genealogy=_split("stack"), **values))
    assert str(refused.value) == message


# -- consume ---------------------------------------------------------------------------------------


def test_a_consumable_lot_feeds_every_unit_the_step_processed() -> None:
    change = _plan(
        _material(_wafer(1), _wafer(2)),
        _step(),
        consumables={"flux": "FLUX-LOT-3", "ball_supply": "BALLS-9"},
    )
    assert change.edges == [
        EdgeRow("FLUX-LOT-3", "L1-W01", "consume"),
        EdgeRow("FLUX-LOT-3", "L1-W02", "consume"),
        EdgeRow("BALLS-9", "L1-W01", "consume"),
        EdgeRow("BALLS-9", "L1-W02", "consume"),
    ]
    assert _said(change) == [
        ("genealogy_consume", ConsumeData(consumable="flux", consumable_lot="FLUX-LOT-3", units=2)),
        (
            "genealogy_consume",
            ConsumeData(consumable="ball_supply", consumable_lot="BALLS-9", units=2),
        ),
    ]
    assert not change.ended and not change.units


def test_consumption_goes_to_what_comes_out_of_the_step() -> None:
    change = _plan(
        _material(_wafer(1), _wafer(2)),
        _step(genealogy=_merge("stack", "wafers")),
        consumables={"reel_adhesive_film": "ADH-1"},
    )
    assert [e for e in change.edges if e.kind == "consume"] == [
        EdgeRow("ADH-1", "L1-STK01", "consume"),
        EdgeRow("ADH-1", "L1-STK02", "consume"),
    ]
    assert _said(change)[-1] == (
        "genealogy_consume",
        ConsumeData(consumable="reel_adhesive_film", consumable_lot="ADH-1", units=2),
    )


# -- defects ---------------------------------------------------------------------------------------

BUMP = ("ball", "wafer_bump")  # its results count missing balls and bridged bumps


def test_defects_spread_over_the_wafers_a_step_processed() -> None:
    w1, w2 = _wafer(1), _wafer(2)
    w1.attributes["defects"] = {"missing ball": 1}  # from an earlier step
    change = _plan(_material(w1, w2), _step(tool=BUMP), results={"missing": 5.0, "bridged": 1.4})
    # 5 over two wafers: 3 and 2 (the first gets the remainder); 1.4 rounds to 1
    defects = {name: a["defects"] for name, a in change.attributes.items()}
    assert [(d["missing ball"], d.get("bridged bumps", 0)) for d in defects.values()] == [
        (4, 1),
        (2, 0),
    ]
    assert list(defects) == ["L1-W01", "L1-W02"] and change.bins == {}


@pytest.mark.parametrize("results", [{}, {"missing": 0.4}, {"missing": -3.0}, {"thickness": 9.0}])
def test_no_defects_change_nothing(results: dict[str, float]) -> None:
    change = _plan(_material(_wafer(1)), _step(tool=BUMP), results=results)
    assert change.attributes == {} and not change


def test_defects_on_packages_bin_them_at_once() -> None:
    packages = [UnitView(f"P{n}", "package", n, None) for n in range(1, 6)]
    change = _plan(_material(*packages), _step(name="reflow", tool=BUMP), results={"bridged": 2.0})
    assert change.bins == {"P1": ("reject", "bridged bumps"), "P3": ("reject", "bridged bumps")}
    assert change.attributes == {}


def test_defects_ride_on_a_wafer_until_dicing_bins_its_packages() -> None:
    material = _material(UnitView("L1-STK01", "stack", 9, 1))
    balls = _plan(material, _step(index=5, tool=BUMP), results={"missing": 2.0})
    material.apply(balls, {})
    assert material.active["L1-STK01"].attributes == {"defects": {"missing ball": 2}}
    diced = _plan(material, _step(index=6, genealogy=_split("stack"), **ROUND))
    assert sorted(diced.bins) == ["L1-STK01-X001Y002", "L1-STK01-X002Y003"]
    material.apply(diced, {n["name"]: i for i, n in enumerate(diced.units)})
    assert list(material.active) == [f"L1-STK01-X{x:03d}Y{y:03d}" for x, y in PLUS]
    assert material.active["L1-STK01-X002Y001"].id == 1


# -- incoming wafer-sort maps --------------------------------------------------------------------


def _sort_map(*bad: tuple[int, int, str]) -> dict[str, Any]:
    return {"source": "w.xml", "substrate": None, "dies": 5, "bad": [list(b) for b in bad]}


def test_known_bad_dies_are_rejected_at_the_split_with_their_sort_bin() -> None:
    attributes = {"sort_map": _sort_map((2, 2, "7")), "defects": {"missing ball": 5}}
    wafer = UnitView("L1-W01", "wafer", 9, 1, "wafers", attributes)
    change = _plan(_material(wafer), _step(genealogy=_split("wafer"), **ROUND))
    assert change.bins["L1-W01-X002Y002"] == ("reject", "wafer sort bin 7")
    bad = next(u for u in change.units if u["name"] == "L1-W01-X002Y002")
    assert bad["attributes"] == {"from": "L1-W01", "sort_bin": "wafer sort bin 7"}
    # the wafer's own defects fall on the other dies: a known-bad die keeps its reason
    assert len(change.bins) == 5
    assert {n for n, b in change.bins.items() if b[1] == "missing ball"} == {
        n for n in change.bins if n != "L1-W01-X002Y002"
    }


def test_a_later_defect_passes_a_sort_reject_by() -> None:
    rejected = UnitView("L1-W01-X002Y002", "package", 11, 1, None,
                        {"from": "L1-W01", "sort_bin": "wafer sort bin 7"})  # fmt: skip
    good = UnitView("L1-W01-X001Y002", "package", 12, 1, None, {"from": "L1-W01"})
    step = _step(name="bump", tool=("ball", "ball_place"))
    defect = next(r for r in step.op.results if r.defect)
    change = _plan(_material(rejected, good), step, {defect.name: 2})
    assert change.bins == {"L1-W01-X001Y002": ("reject", defect.defect)}


def test_a_stack_rejects_the_union_of_its_layers_bad_dies() -> None:
    wafer = UnitView(
        "L1-W01", "wafer", 101, 1, "wafers",
        {"input": "wafers", "sort_map": _sort_map((1, 2, "2")),
         "sort_layers": {"2": _sort_map((3, 2, "3"), (1, 2, "2"))}},
    )  # fmt: skip
    bond = _plan(_material(wafer), _step(genealogy=_merge("stack", "wafers", "blanks")))
    stack = next(u for u in bond.units if u["kind"] == "stack")
    blank = next(u for u in bond.units if u["kind"] == "wafer")
    assert blank["attributes"]["sort_map"]["bad"] == [[3, 2, "3"], [1, 2, "2"]]
    assert stack["attributes"]["layers"] == 2
    material = _material()
    material.apply(bond, {})
    cut = _plan(material, _step(index=9, genealogy=_split("stack"), **ROUND))
    assert cut.bins == {
        "L1-STK01-X001Y002": ("reject", "wafer sort bin 2 (layer 1)"),
        "L1-STK01-X003Y002": ("reject", "wafer sort bin 3 (layer 2)"),
    }


def test_a_sort_map_off_the_die_grid_stops_the_split_naming_unit_and_position() -> None:
    wafer = UnitView("L1-W01", "wafer", 9, 1, "wafers", {"sort_map": _sort_map((0, 0, "2"))})
    with pytest.raises(GenealogyError, match=r"L1-W01's wafer-sort map has position \(0, 0\)"):
        _plan(_material(wafer), _step(genealogy=_split("wafer"), **ROUND))
