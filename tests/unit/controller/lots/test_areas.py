"""The areas of a line: which area each step runs in, where a new lot goes, when it moves,
and one set of areas for every station of a database."""

from __future__ import annotations

import pytest

from controller.genealogy.db import Database
from controller.lots import areas
from controller.lots.areas import Areas
from controller.recipes.expand import ExternalStepPlan, PlannedStep, ToolStepPlan
from drivers.errors import ParameterError, StationConfigConflict

LINE = Areas.parse({"bumping": ["sputter", "plating", "ball"], "assembly": ["bonder", "dicing"]})


def _tool(index: int, kind: str, **attributes: str) -> ToolStepPlan:
    return ToolStepPlan(index=index, id=f"s{index}", template=f"s{index}", path=("steps", index),
                        name=f"s{index}", role=None, tool=kind, operation="op",
                        attributes=attributes)  # fmt: skip


def _external(index: int) -> ExternalStepPlan:
    return ExternalStepPlan(index=index, id=f"x{index}", template=f"x{index}",
                            path=("steps", index), name=f"x{index}", role=None,
                            external="front-end fab")  # fmt: skip


FLOW: list[PlannedStep] = [
    _external(0),
    _tool(1, "sputter"),
    _tool(2, "ball"),
    _tool(3, "bonder"),
    _external(4),
    _tool(5, "dicing", area="bumping"),
]


def test_a_step_runs_in_the_area_of_its_tool_kind_or_the_one_it_names() -> None:
    assert [LINE.of(s) for s in FLOW] == [None, "bumping", "bumping", "assembly", None, "bumping"]


def test_a_new_lot_goes_to_the_area_of_its_first_step_on_the_line() -> None:
    assert LINE.first(FLOW) == "bumping"
    assert LINE.first([_external(0)]) == ""


@pytest.mark.parametrize(
    ("index", "current", "expected"),
    [(1, "", "bumping"), (3, "bumping", "assembly"), (4, "assembly", "assembly"),
     (5, "assembly", "bumping"), (6, "bumping", "bumping"), (0, "assembly", "assembly")],
    ids=["first", "across", "external-stays", "named", "past-the-end", "external-first"],
)  # fmt: skip
def test_the_area_of_a_lot_is_that_of_its_next_step(
    index: int, current: str, expected: str
) -> None:
    assert LINE.at(FLOW, index, current) == expected


def test_without_areas_every_step_is_in_area_none() -> None:
    assert not Areas() and [Areas().of(s) for s in FLOW] == [""] * len(FLOW)
    assert Areas().first(FLOW) == ""


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"a": ["sputter"], "b": ["sputter"]}, "tool kind sputter is in both a and b"),
        ({"a": ["toaster"]}, r"areas: a: no tool kind 'toaster' \(kinds: "),
        ({"": ["sputter"]}, "area name '' must be 1 to 32 characters"),
    ],
    ids=["twice", "unknown-kind", "empty-name"],
)
def test_bad_areas_are_refused(given: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        Areas.parse(given)


def test_a_step_no_area_runs_or_naming_an_unknown_area_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"step s1 needs a mold, which no area of the line"):
        LINE.check([_tool(1, "mold")])
    with pytest.raises(ParameterError, match=r"step s1 names area 'test', which the line does"):
        LINE.check([_tool(1, "ball", area="test")])


def test_the_first_station_records_the_areas_and_others_must_agree(db: Database) -> None:
    db.run_sync(lambda s: areas.publish(s, LINE))
    assert db.run_sync(areas.load) == LINE
    db.run_sync(lambda s: areas.publish(s, LINE))  # the same: fine
    other = Areas.parse({"line": ["sputter", "plating", "ball", "bonder", "dicing"]})
    with pytest.raises(StationConfigConflict, match=r"this station's areas \(line: ball, "):
        db.run_sync(lambda s: areas.publish(s, other))
    assert db.run_sync(areas.load) == LINE
