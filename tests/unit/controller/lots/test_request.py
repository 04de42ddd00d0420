"""A lot request resolved into a plan before anything is recorded: counts checked against the
recipe's range before a unit is named, unit ids and supply sources checked, unknown inputs and
draft recipes refused — each with one message naming the input or the recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.lots.inputs import InputUnit, parse_input_arg, unit_list
from controller.lots.request import MAX_UNITS, LotRequest, plan
from drivers.errors import ParameterError, RecipeError, RecipeNotFound
from tests.unit.controller.rows import tiny_recipe, tiny_text

TINY = tiny_recipe()


def _units(units: list[InputUnit]) -> list[tuple[str, int | None]]:
    return [(u.name, u.slot) for u in units]


# -- counts ----------------------------------------------------------------------------------------


def test_the_minimum_count_is_made_when_none_is_given() -> None:
    p = plan(LotRequest(lot_id="L1", recipe="unit-flow"), recipe=TINY)
    assert _units(p.inputs["wafers"]) == [("L1-W01", 1)]
    assert _units(p.inputs["panels"]) == [("L1-P01", 1)]  # one panel per wafer
    assert (p.lot_id, p.priority, p.recipe, len(p.expansion.steps)) == ("L1", 0, TINY, 1)


def test_a_count_names_units_after_the_lot_in_slot_order() -> None:
    p = plan(LotRequest(lot_id="L1", recipe="unit-flow", inputs={"wafers": 3}), recipe=TINY)
    assert _units(p.inputs["wafers"]) == [("L1-W01", 1), ("L1-W02", 2), ("L1-W03", 3)]
    assert _units(p.inputs["panels"]) == [("L1-P01", 1), ("L1-P02", 2), ("L1-P03", 3)]


@pytest.mark.parametrize("count", [0, 5, 10**9])
def test_a_count_outside_the_recipe_s_range_is_refused_before_units_are_made(count: int) -> None:
    # 10**9 would take minutes and gigabytes to name: refused from the range alone
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"wafers": count})
    with pytest.raises(ParameterError) as refused:
        plan(request, recipe=TINY)
    assert str(refused.value) == f"input 'wafers' takes 1..4 wafers, not {count}"


# -- unit ids --------------------------------------------------------------------------------------


def test_given_unit_ids_keep_their_order_as_slots() -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"wafers": ["Z9", "A1", "m.2"]})
    p = plan(request, recipe=TINY)
    assert _units(p.inputs["wafers"]) == [("Z9", 1), ("A1", 2), ("m.2", 3)]
    assert _units(p.inputs["panels"]) == [("L1-P01", 1), ("L1-P02", 2), ("L1-P03", 3)]


@pytest.mark.parametrize("bad", ["-3", "../x", "x" * 65, "", "W 1", "Wü"])
def test_a_bad_unit_id_is_refused_naming_the_input(bad: str) -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"wafers": ["W1", bad]})
    with pytest.raises(
        ParameterError, match=r"^input 'wafers': .* is neither a count nor a unit id"
    ):
        plan(request, recipe=TINY)


def test_a_64_character_unit_id_is_taken() -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"wafers": ["x" * 64]})
    assert _units(plan(request, recipe=TINY).inputs["wafers"]) == [("x" * 64, 1)]


@pytest.mark.parametrize(
    ("wafers", "message"),
    [
        (["A", "B", "A"], "input 'wafers': unit ids repeat"),
        (["A", "B", "C", "D", "E"], "input 'wafers' takes 1..4 wafers, not 5"),
        ([f"W{i}" for i in range(MAX_UNITS + 1)], "input 'wafers': more than 1000 unit ids"),
    ],
    ids=["repeat", "too-many-for-the-recipe", "too-many-for-anything"],
)
def test_unit_id_lists_are_checked(wafers: list[str], message: str) -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"wafers": wafers})
    with pytest.raises(ParameterError) as refused:
        plan(request, recipe=TINY)
    assert str(refused.value) == message


def test_an_input_per_another_takes_ids_one_for_each() -> None:
    inputs: dict[str, int | list[str]] = {"wafers": 2, "panels": ["PA", "PB"]}
    p = plan(LotRequest(lot_id="L1", recipe="unit-flow", inputs=inputs), recipe=TINY)
    assert _units(p.inputs["panels"]) == [("PA", 1), ("PB", 2)]
    inputs["panels"] = ["PA"]
    with pytest.raises(ParameterError, match=r"^input 'panels': 1 units for 2 wafers$"):
        plan(LotRequest(lot_id="L1", recipe="unit-flow", inputs=inputs), recipe=TINY)


@pytest.mark.parametrize("lot_id", ["../L", "-L", "L" * 33, ""])
def test_a_bad_lot_id_is_refused_with_the_rule(lot_id: str) -> None:
    with pytest.raises(ParameterError, match=r"^lot id .*: 1-32 letters, digits, '\.', '_' or '-'"):
        plan(LotRequest(lot_id=lot_id, recipe="unit-flow"), recipe=TINY)


# -- supply sources and input names ----------------------------------------------------------------


def test_a_supply_input_draws_from_a_lot_named_after_this_one_by_default() -> None:
    assert plan(LotRequest(lot_id="L1", recipe="unit-flow"), recipe=TINY).supplies == {
        "dies": "L1-DIE"
    }


def test_a_supply_input_draws_from_the_source_lot_given() -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"dies": ["DIELOT7"]})
    p = plan(request, recipe=TINY)
    assert p.supplies == {"dies": "DIELOT7"}
    assert "dies" not in p.inputs  # drawn unit by unit by the steps, not made up front


@pytest.mark.parametrize("value", [["DIELOT7", "DIELOT8"], 3], ids=["two-ids", "a-count"])
def test_a_supply_input_takes_one_source_lot_only(value: int | list[str]) -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"dies": value})
    with pytest.raises(ParameterError) as refused:
        plan(request, recipe=TINY)
    assert str(refused.value) == "supply input 'dies' takes one source lot id, e.g. dies=LOT42"


def test_an_unknown_input_is_refused_listing_the_recipe_s_inputs() -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", inputs={"chips": 2})
    with pytest.raises(ParameterError) as refused:
        plan(request, recipe=TINY)
    assert str(refused.value) == (
        "recipe unit-flow has no input 'chips' (inputs: wafers, panels, dies)"
    )


# -- the recipe ------------------------------------------------------------------------------------


def test_a_draft_recipe_runs_only_when_drafts_are_allowed() -> None:
    draft = tiny_recipe("draft")
    request = LotRequest(lot_id="L1", recipe="unit-flow")
    with pytest.raises(ParameterError) as refused:
        plan(request, recipe=draft)
    assert str(refused.value) == (
        "recipe unit-flow v3 is draft, not approved; only approved recipes run"
        " (or pass --allow-draft)"
    )
    assert plan(request, recipe=draft, allow_draft=True).recipe is draft


def test_options_are_expanded_and_an_impossible_one_refused() -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", options={"layout": "stacked"})
    with pytest.raises(RecipeError, match="violates claim 000:11"):
        plan(request, recipe=TINY)
    request = LotRequest(lot_id="L1", recipe="unit-flow", options={"colour": "red"})
    with pytest.raises(RecipeError, match="unknown option 'colour' \\(options: layout\\)"):
        plan(request, recipe=TINY)


def test_the_recipe_comes_from_the_catalog_unless_one_is_passed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "unit-flow-3.yaml").write_text(tiny_text("approved", 3), encoding="utf-8")
    (tmp_path / "unit-flow-4.yaml").write_text(tiny_text("draft", 4), encoding="utf-8")
    monkeypatch.setenv("FABLINE_RECIPES", str(tmp_path))
    newest = plan(LotRequest(lot_id="L1", recipe="unit-flow"), allow_draft=True)
    assert newest.recipe.recipe.version == 4
    older = plan(LotRequest(lot_id="L1", recipe="unit-flow", version=3))
    assert (older.recipe.recipe.version, older.recipe.hash) == (3, TINY.hash)
    with pytest.raises(RecipeNotFound, match="unknown recipe 'elsewhere' \\(recipes: unit-flow\\)"):
        plan(LotRequest(lot_id="L1", recipe="elsewhere"))
    # a recipe passed in is used as it is, whatever the catalog holds
    assert plan(LotRequest(lot_id="L1", recipe="elsewhere"), recipe=TINY).recipe is TINY


def test_the_priority_is_carried_and_bounded() -> None:
    assert (
        plan(LotRequest(lot_id="L1", recipe="unit-flow", priority=-7), recipe=TINY).priority == -7
    )
    with pytest.raises(ValidationError, match="priority"):
        LotRequest(lot_id="L1", recipe="unit-flow", priority=1001)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        LotRequest(lot_id="L1", recipe="unit-flow", wafers=3)  # type: ignore[call-arg]


# -- the command line's NAME=VALUE -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("wafers=5", ("wafers", 5)),
        ("wafers=W01, W02", ("wafers", [InputUnit("W01", 1), InputUnit("W02", 2)])),
        ("dies=DIELOT7", ("dies", [InputUnit("DIELOT7", 1)])),
    ],
)
def test_an_input_argument_is_a_count_or_ids(text: str, parsed: object) -> None:
    assert parse_input_arg(text) == parsed


@pytest.mark.parametrize("text", ["wafers", "=5", "wafers=", "wafers=-3", "wafers=a,,b"])
def test_a_bad_input_argument_is_refused(text: str) -> None:
    with pytest.raises(ParameterError, match=r"is not NAME=COUNT|is neither a count nor a unit id"):
        parse_input_arg(text)


def test_a_refused_unit_id_is_shown_short() -> None:
    with pytest.raises(ParameterError) as refused:
        unit_list("wafers", ["x" * 5000])
    text = str(refused.value)
    assert "x" * 100 not in text and "(5000 characters)" in text
