"""Each flow that could not be built is refused with one clear line naming the physics: take
away a recipe's declaration (or the step that made it buildable) and `recipes check` reports
the interlock that catches it, at the file and line of the step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.recipes import find
from controller.recipes.catalog import RecipeError, check_file, load

Data = dict[str, Any]


def _data(recipe_id: str) -> Data:
    data: Data = yaml.safe_load(find(recipe_id).path.read_text())
    return data


def _walk(steps: list[Any]) -> list[Data]:
    out: list[Data] = []
    for s in steps:
        out += _walk(s["steps"]) if "repeat" in s else [s]
    return out


def step(data: Data, step_id: str) -> Data:
    return next(s for s in _walk(data["steps"]) if s["id"] == step_id)


def drop(data: Data, step_id: str) -> None:
    def remove(steps: list[Any]) -> None:
        for s in list(steps):
            if "repeat" in s:
                remove(s["steps"])
            elif s["id"] == step_id:
                steps.remove(s)

    remove(data["steps"])


def undeclare(data: Data, word: str) -> None:
    """Remove the declared constraints whose reason mentions `word`."""
    data["constraints"] = [c for c in data["constraints"] if word not in c["reason"]]


def _write(tmp_path: Path, data: Data) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def _check(tmp_path: Path, data: Data) -> list[str]:
    return check_file(_write(tmp_path, data))


def _expand(tmp_path: Path, data: Data, options: dict[str, str]) -> list[str]:
    try:
        load(_write(tmp_path, data)).expand(options)
    except RecipeError as e:
        return e.problems
    return []


def _no_dicing_feed(d: Data) -> None:
    dice = step(d, "dice")
    dice.pop("feed_forward")
    dice["params"] |= {"stack_thickness": "830 µm", "cut_depth": "860 µm"}


def _second_mold_over_bare_standoff(d: Data) -> None:
    drop(d, "ncp")
    step(d, "chip-mount")["params"]["underfill"] = "NONE"


def _barrier_only_with_a_seal(d: Data) -> None:
    step(d, "heat-barrier")["when"] = {"resin_seal": "with"}


def _cure_after_polish(d: Data) -> None:
    pmc = step(d, "first-pmc")
    drop(d, "first-pmc")
    step(d, "polish")["feed_forward"]["warpage"] = "first-encapsulant.warpage"
    d["steps"].insert(d["steps"].index(step(d, "polish")) + 1, pmc)


def _high_lead_in_a_hotter_oven(d: Data) -> None:
    undeclare(d, "high-lead")
    step(d, "bumps-reflow")["params"]["peak_limit"] = "370 °C"


def _no_first_bake(d: Data) -> None:
    drop(d, "strip-bake-1")
    drop(d, "strip-rebake-1")
    d["queue_times"] = [q for q in d["queue_times"] if q["from"] != "strip-bake-1"]


def _gang_bond_hotter(d: Data) -> None:
    step(d, "join")["params"] |= {"joint": "AU_SN", "temp": "300 °C", "pressure": "30 MPa"}


def _no_pre_scale(d: Data) -> None:
    step(d, "leads")["params"].pop("artwork_scale")


CASES: list[tuple[str, str, dict[str, str], Callable[[Data], None], list[str]]] = [
    # 001: the underfill, the parts on a flush-cut unit, the panel CTE
    (
        "001 capillary underfill",
        "fcbga-thermal-001-19",
        {"underfill": "capillary_unit"},
        lambda d: undeclare(d, "capillary"),
        ["interlock die_edges", "no substrate beside the die"],
    ),
    (
        "001 cap spreader",
        "fcbga-thermal-001-19",
        {"spreader": "cap_cu"},
        lambda d: undeclare(d, "cap-like"),
        ["interlock landing", "CAP_SPREADER", "cut die and substrate flush"],
    ),
    (
        "001 stiffener",
        "fcbga-thermal-001-19",
        {"stiffener": "with", "spreader": "flat_cu"},
        lambda d: undeclare(d, "stiffener ring"),
        ["interlock landing", "STIFFENER"],
    ),
    (
        "001 soda-lime glass",
        "fcbga-thermal-001-19",
        {"substrate": "glass_soda_lime"},
        lambda d: undeclare(d, "soda-lime"),
        ["interlock joint_shear", "shear 246 % on cool-down"],
    ),
    (
        "001 organic panel",
        "fcbga-thermal-001-19",
        {"substrate": "organic"},
        lambda d: undeclare(d, "organic panel"),
        ["interlock cte_runout", "ORGANIC panel runs out 310 µm"],
    ),
    # 000: FEOL, the epoxy budget, the via bottom, the heat-layer barrier, the dicing depth
    (
        "000 FEOL",
        "stacked-wlp-000-11",
        {"device_process": "feol"},
        lambda d: undeclare(d, "front-end"),
        ["interlock thermal_budget: max_temp 1000 °C exceeds the 375 °C"],
    ),
    (
        "000 epoxy budget",
        "stacked-wlp-000-11",
        {"insulating": "epoxy"},
        lambda d: undeclare(d, "epoxy"),
        ["max_temp 250 °C exceeds the 175 °C"],
    ),
    (
        "000 liner not opened",
        "stacked-wlp-000-11",
        {},
        lambda d: drop(d, "liner-open"),
        ["interlock via_bottom", "liner of step liner@layer=2 still covers the hole bottoms"],
    ),
    (
        "000 Cu on bare Si",
        "stacked-wlp-000-11",
        {"resin_seal": "without"},
        _barrier_only_with_a_seal,
        ["interlock adhesion", "CU at step heat-layer", "without a Ti/TiW adhesion barrier"],
    ),
    (
        "000 constant dicing depth",
        "stacked-wlp-000-11",
        {},
        _no_dicing_feed,
        ["interlock stack", "stack_thickness of step dice is a constant"],
    ),
    # 003: the chip stand-off, the mould gap, the cure before the polish, sink and grind, high Pb
    (
        "003 second mould into the stand-off",
        "substrate-first-fc-003-1",
        {},
        _second_mold_over_bare_standoff,
        [
            "interlock gap_filler",
            "EMC_MUF at step second-encapsulant cannot fill",
            "chip stand-off of step chip-mount",
            "underfill it first",
        ],
    ),
    (
        "003 polish before the post-mould cure",
        "substrate-first-fc-003-1",
        {},
        _cure_after_polish,
        [
            "interlock cure_before_grind",
            "step polish grinds the compound of step first-encapsulant",
        ],
    ),
    (
        "003 heat sink ground open",
        "substrate-first-fc-003-1",
        {"chip_back": "exposed", "heat_sink": "with"},
        lambda d: undeclare(d, "cut the heat sink"),
        ["interlock grind_through_part"],
    ),
    (
        "003 high-lead bumps",
        "substrate-first-fc-003-1",
        {"bump_alloy": "high_pb"},
        _high_lead_in_a_hotter_oven,
        ["peak_temp 350 °C exceeds the 260 °C allowed after the start"],
    ),
    (
        "003 warpage not told to the ball tool",
        "substrate-first-fc-003-1",
        {},
        lambda d: step(d, "balls").pop("feed_forward"),
        ["interlock warpage", "measured at step post-mold-cure is not fed forward to step balls"],
    ),
    (
        "003 no bake before the mould",
        "substrate-first-fc-003-1",
        {},
        _no_first_bake,
        ["step first-encapsulant needs a moisture bake"],
    ),
    (
        "003 no plasma before the bond",
        "substrate-first-fc-003-1",
        {},
        lambda d: drop(d, "mount-clean"),
        ["step chip-mount needs a plasma clean right before it"],
    ),
    (
        "003 no flux clean",
        "substrate-first-fc-003-1",
        {},
        lambda d: drop(d, "bump-flux-clean"),
        ["step bumps-reflow needs a flux clean right after the reflow"],
    ),
    # 002: the wafer-scale laminations and the join of 48
    (
        "002-45 leads not pre-scaled",
        "wlcsp-002-45",
        {},
        _no_pre_scale,
        [
            "interlock cte_runout",
            "LEAD laminated at 150 °C on a 300 mm work runs out 270 µm",
            "pre-scale the artwork by -1800 ppm",
        ],
    ),
    (
        "002-48 no join",
        "wlcsp-002-48",
        {},
        lambda d: drop(d, "join"),
        ["violates claim 002:48", "no step has role 'join_traces'"],
    ),
    (
        "002-48 join hotter than the lamination",
        "wlcsp-002-48",
        {},
        _gang_bond_hotter,
        ["gang bond at 300 °C moves the trace ends 241 µm at the wafer edge"],
    ),
]


@pytest.mark.parametrize(
    ("name", "recipe_id", "options", "mutate", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_unbuildable_flow_is_refused_with_its_physics(
    tmp_path: Path,
    name: str,
    recipe_id: str,
    options: dict[str, str],
    mutate: Callable[[Data], None],
    words: list[str],
) -> None:
    """The option combination the case is about, expanded (`recipes check` reports the same
    line for every combination it breaks, flagged "impossible option combination")."""
    data = _data(recipe_id)
    mutate(data)
    lines = _expand(tmp_path, data, options)
    hits = [line for line in lines if all(w in line for w in words)]
    assert hits, lines
    assert all(line.startswith(f"{tmp_path / 'r.yaml'}:") for line in hits)
    assert all("\n" not in line for line in hits)


def test_mold_refuses_min_gap_zero_with_parts_in_the_cavity(tmp_path: Path) -> None:
    data = _data("substrate-first-fc-003-1")
    step(data, "first-encapsulant").pop("feed_forward")  # no min_gap: "nothing narrower"
    lines = _check(tmp_path, data)
    assert any("min_gap 0 with parts in the cavity" in line for line in lines), lines


def test_shipped_recipes_are_clean(tmp_path: Path) -> None:
    for recipe_id in sorted({c[1] for c in CASES}):
        assert _check(tmp_path, _data(recipe_id)) == [], recipe_id


def test_undeclared_combination_is_reported_by_check(tmp_path: Path) -> None:
    data = _data("fcbga-thermal-001-19")
    undeclare(data, "cap-like")
    lines = _check(tmp_path, data)
    assert any(
        "impossible option combination" in line
        and "spreader=cap_cu" in line
        and "(declare it under constraints): interlock landing" in line
        for line in lines
    ), lines


def test_declared_refusals_give_their_reason_at_run_time() -> None:
    r = find("fcbga-thermal-001-19")
    with pytest.raises(RecipeError) as e:
        r.expand({"spreader": "cap_cu"})
    (line,) = e.value.problems
    assert "impossible option combination" in line and "spreader=cap_cu" in line
    assert "the flush cut of claim 19 leaves none (interlock landing)" in line
