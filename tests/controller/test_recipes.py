"""Recipes: every file valid, every method claim covered, claim rules enforced, bad files
reported one line each with FILE:LINE, and no mutation of a valid recipe crashes the checker."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.recipes import RecipeError, catalog, check_file, find, recipes_dir
from controller.recipes.catalog import combinations

METHOD_CLAIMS = {("000", 11), ("001", 19), ("003", 1)} | {
    ("002", n) for n in (24, 34, 38, 42, 45, 48, 49)
}
LINE = re.compile(r"^.+\.yaml:\d+: (?:[\w.()-]|\[\"(?:[^\"\\]|\\.)*\"\])+: .+$")


def recipe_data(recipe_id: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(find(recipe_id).path.read_text())
    return data


def write(tmp_path: Path, data: Any, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return p


def test_every_recipe_is_valid() -> None:
    files = sorted(recipes_dir().glob("*.yaml"))
    assert files
    for f in files:
        assert check_file(f) == [], f


def test_every_method_claim_has_a_recipe_that_names_it() -> None:
    named = set().union(*(r.recipe.claimed() for r in catalog()))
    missing = METHOD_CLAIMS - named
    assert not missing, missing
    assert all(r.recipe.status == "approved" for r in catalog())


def test_content_hash_ignores_status_but_not_content(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    a = check_and_load(write(tmp_path, data, "a.yaml"))
    draft = {**data, "status": "draft"}
    b = check_and_load(write(tmp_path, draft, "b.yaml"))
    changed = copy.deepcopy(data)
    changed["steps"][-1]["params"]["feed"] = "9 mm/s"
    c = check_and_load(write(tmp_path, changed, "c.yaml"))
    assert a == b != c


def check_and_load(path: Path) -> str:
    from controller.recipes import load

    return load(path).hash


# -- claim constraints: each breaks one claim and is refused with that claim ---------------


def _step(data: dict[str, Any], step_id: str) -> dict[str, Any]:
    def walk(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
        for s in steps:
            if s.get("id") == step_id:
                return s
            if "steps" in s:
                found = walk(s["steps"])
                if found:
                    return found
        return None

    found = walk(data["steps"])
    assert found is not None, step_id
    return found


def _problems(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    lines = check_file(write(tmp_path, data))
    assert all(LINE.match(line) for line in lines), lines
    return lines


def test_a_claim_without_a_rule_is_refused(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    data["claims"][0]["claims"].append(1)  # 000:1 is a product claim: nothing to check it
    lines = _problems(tmp_path, data)
    assert any("claim 000:1 has no rule" in line for line in lines), lines


def test_photo_ink_sold_as_epoxy_encapsulant_violates_002_27(tmp_path: Path) -> None:
    data = recipe_data("wlcsp-002-24")
    epoxy = data["options"]["encapsulant"]["values"]["epoxy"]
    epoxy.update(material="PHOTO_INK", cure_temp="150 °C")  # a valid cure, the wrong material
    lines = _problems(tmp_path, data)
    assert any("violates claim 002:27" in line and "PHOTO_INK" in line for line in lines)


def test_heat_radiation_layer_of_gold_violates_000_14(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    data["options"]["heat_layer"]["values"]["gold"] = {
        "target": "AU", "consumable": "target_au", "claims": ["000:12-14"]
    }  # fmt: skip
    lines = _problems(tmp_path, data)
    assert any("heat_layer=gold" in line and "violates claim 000:14" in line for line in lines)


def test_insulating_layer_of_bcb_violates_000_15(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    pi = data["options"]["insulating"]["values"]["polyimide"]
    # BCB: a real adhesive polymer, run inside its own windows, but neither PI nor epoxy
    pi.update(material="BCB", adhesive="BCB", bond_temp="250 °C", cure_temp="250 °C")
    lines = _problems(tmp_path, data)
    assert any("violates claim 000:15" in line and "BCB" in line for line in lines)


def test_insulating_layer_of_silicone_is_refused(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    data["options"]["insulating"]["values"]["polyimide"]["material"] = "SILICONE"
    lines = _problems(tmp_path, data)
    assert lines and all("SILICONE" in line for line in lines)


def test_resin_sealing_after_dicing_violates_000_16(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    steps = data["steps"]
    seal = [s for s in steps if s.get("role") == "resin_seal"]
    rest = [s for s in steps if s.get("role") != "resin_seal"]
    data["steps"] = rest + seal  # after the dicing step
    data["options"]["resin_seal"]["default"] = "with"
    lines = _problems(tmp_path, data)
    assert any("violates claim 000:16" in line and "before dicing" in line for line in lines)


def test_through_electrodes_plated_apart_from_rewiring_violate_000_17(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    _step(data, "plate-tsv-rdl")["params"]["feature"] = "TSV"
    lines = _problems(tmp_path, data)
    assert any("violates claim 000:17" in line for line in lines)


def test_nickel_gold_layer_without_its_nickel_is_refused(tmp_path: Path) -> None:
    for r in catalog():
        claimed = r.recipe.claimed()
        ni_au = {("002", n) for n in (31, 36, 41, 44)} & claimed
        if ni_au:
            break
    else:
        pytest.skip("no recipe with a Ni/Au metal layer claim")
    data = yaml.safe_load(r.path.read_text())

    def drop_nickel(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for s in steps:
            if "steps" in s:
                s = {**s, "steps": drop_nickel(s["steps"])}
            chem = str(s.get("params", {}).get("chemistry", ""))
            if s.get("role") == "trace_metal" and chem in ("NI_SULFAMATE", "EN_NI"):
                continue
            out.append(s)
        return out

    data["steps"] = drop_nickel(data["steps"])
    lines = _problems(tmp_path, data)
    assert any(re.search(r"violates claim 002:(31|36|41|44)", line) and "nickel" in line
               for line in lines), lines  # fmt: skip


def test_wafer_diced_before_attach_violates_001_19(tmp_path: Path) -> None:
    data = recipe_data("fcbga-thermal-001-19")
    dice = dict(_step(data, "singulate"), id="early-cut")  # an extra cut before the attach
    dice.pop("feed_forward")
    dice.pop("genealogy")
    dice["params"] = {**dice["params"], "stack_thickness": "725 µm", "cut_depth": "755 µm"}
    data["steps"].insert(0, dice)
    lines = _problems(tmp_path, data)
    assert any("violates claim 001:19" in line for line in lines)


def test_sac_bumps_violate_003_3(tmp_path: Path) -> None:
    data = recipe_data("substrate-first-fc-003-1")
    data["options"]["bump_alloy"]["values"]["tin"].update(alloy="SAC305", peak="245 °C")
    lines = _problems(tmp_path, data)
    assert any("violates claim 003:3" in line for line in lines)


def test_undeclared_interlock_violation_is_an_impossible_combination(tmp_path: Path) -> None:
    data = recipe_data("stacked-wlp-000-11")
    data["constraints"] = []  # epoxy stack + BEOL no longer declared impossible
    lines = _problems(tmp_path, data)
    assert any(
        "impossible option combination" in line
        and "insulating=epoxy" in line
        and "device_process=beol" in line
        and "thermal_budget" in line
        for line in lines
    )


def test_declared_impossible_combination_is_refused_with_its_reason() -> None:
    with pytest.raises(RecipeError, match=r"impossible option combination.*organic panel"):
        find("fcbga-thermal-001-19").expand({"substrate": "organic"})


# -- every kind of bad file: one line, FILE:LINE: path: reason -----------------------------


def _one_line(tmp_path: Path, text: str) -> str:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    lines = check_file(p)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{p}:")
    return lines[0]


BASE = recipe_data  # alias for readability below


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda d: d["steps"][-1].update(spped=1), " steps.7.spped: unknown key"),
        (lambda d: d["steps"][-1].update(tool="toaster"), "unknown tool kind 'toaster'"),
        (lambda d: d["steps"][-1].update(operation="cut"), "no operation 'cut'"),
        (lambda d: d["steps"][-1]["params"].update(feed="500 mm/s"), "'feed' = 500 mm/s"),
        (
            lambda d: d["steps"][-1]["params"].update(feed="10 kg"),
            "'kg' is a mass, expected a speed",
        ),
        (lambda d: d["steps"][-1]["params"].update(feed="10 furlong"), "unknown unit 'furlong'"),
        (lambda d: d["steps"][-1]["params"].update(feed="10"), "missing unit"),
        (lambda d: d["steps"][-1]["params"].update(feed="10 µm"), "is a length, expected a speed"),
        (lambda d: d["steps"][-1].update(id="heat-layer"), "duplicate step id 'heat-layer'"),
        (lambda d: d.pop("title"), ":1: title: missing key"),
        (
            lambda d: d["steps"][-1].update(spc={"kerf_bogus": {}}),
            " steps.7.spc.kerf_bogus: dice reports no result 'kerf_bogus' to chart",
        ),
        (
            lambda d: d["steps"][-1].update(spc={"kerf_offset": {"action": "explode"}}),
            " steps.7.spc.kerf_offset.action: ",
        ),
        (
            lambda d: d["steps"][-1].update(spc={"kerf_offset": {"baseline": 3}}),
            " steps.7.spc.kerf_offset.baseline: ",
        ),
    ],
)
def test_bad_recipe_gives_one_clear_line(tmp_path: Path, mutate: Any, expect: str) -> None:
    data = BASE("stacked-wlp-000-11")
    mutate(data)
    line = _one_line(tmp_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert expect in line


def test_a_chart_on_a_step_s_result_takes_the_defaults(tmp_path: Path) -> None:
    from controller.recipes import ChartPlan, ToolStepPlan, load

    data = BASE("stacked-wlp-000-11")
    data["steps"][-1]["spc"] = {"kerf_offset": {"action": "inhibit"}, "chipping_back": {}}
    step = load(write(tmp_path, data)).expand({}).step("dice")
    assert isinstance(step, ToolStepPlan)
    assert step.spc == (
        ChartPlan("kerf_offset", "µm", "nelson", "inhibit", 20, True),
        ChartPlan("chipping_back", "µm", "nelson", "warn", 20, True),
    )


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    line = _one_line(tmp_path, "id: x\nversion: 1\nsteps: [a, b\ntitle: y\n")
    assert ":4: (top): YAML syntax" in line


def test_control_character_is_one_line(tmp_path: Path) -> None:
    line = _one_line(tmp_path, "id: x\nversion: 1\ntitle: a\x07b\n")
    assert "control characters are not allowed" in line and "\n" not in line


def test_duplicate_key_names_its_line(tmp_path: Path) -> None:
    line = _one_line(tmp_path, "id: x\nversion: 1\nid: y\n")
    assert ":3: id: duplicate key 'id'" in line


# -- property-based: mutations never crash, always produce FILE:LINE lines -----------------

VALID = [r.path for r in catalog()]
SCALARS = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), st.none(),
    st.text(max_size=12), st.sampled_from(["5 kW", "10 kg", "3", "AU", "SILICONE", "-1 µm"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_recipes_give_clear_errors(tmp_path: Path, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(VALID))
    doc = yaml.safe_load(path.read_text())
    target = data.draw(st.sampled_from(_paths(doc)[1:]))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    parent = doc
    for key in target[:-1]:
        parent = parent[key]
    last = target[-1]
    if action == "replace":
        parent[last] = data.draw(SCALARS)
    elif action == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"x_{data.draw(st.text('abc', min_size=1, max_size=3))}"] = data.draw(SCALARS)
    out = tmp_path / "mutant.yaml"
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    lines = check_file(out)  # must not raise
    assert all(line.startswith(f"{out}:") and LINE.match(line) for line in lines), lines


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(0, 4000), junk=st.text(max_size=8))
def test_broken_yaml_never_crashes(tmp_path: Path, cut: int, junk: str) -> None:
    text = VALID[0].read_text()
    out = tmp_path / "broken.yaml"
    out.write_text(text[:cut] + junk + text[cut + len(junk) :])
    lines = check_file(out)
    assert all(line.startswith(f"{out}:") and "\n" not in line for line in lines), lines


def test_recipe_combinations_start_with_the_defaults() -> None:
    r = find("stacked-wlp-000-11").recipe
    combos = list(combinations(r))
    assert combos[0] == {n: str(o.default_value()) for n, o in r.options.items()}
    assert len(combos) == 3 * 2 * 4 * 4 * 2
