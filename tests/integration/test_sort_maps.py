"""Incoming wafer-sort maps as a user gives them: `fabline run --sort-map/--sort-yield` on the
embedded line, then `fabline die-map`: the packages at known-bad positions are rejects with
the sort bin as reason, a stack rejects the union of its layers' bad dies, and a bad map is
refused before the lot exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.genealogy import e142
from controller.lots import sort_maps
from drivers.interfaces.dicing import die_positions
from tests.controller.test_cli import fabline

WLCSP_GRID = die_positions("ROUND", 300.0, 0.0, 4.0, 4.0)  # wlcsp-002-42: 300 mm at 4 mm
STACK_GRID = die_positions("ROUND", 200.0, 0.0, 5.0, 5.0)  # stacked-wlp-000-11: 200 mm at 5 mm


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sort-maps")


def _write_map(path: Path, grid: list[tuple[int, int]], bad: dict[tuple[int, int], str]) -> Path:
    """A tester's E142 map of a wafer: good, or reject with the failing test as reason."""
    rows = [
        {"package": f"d{x}-{y}", "x": x, "y": y, "bin": "reject" if (x, y) in bad else "good",
         "reason": bad.get((x, y))}
        for x, y in grid
    ]  # fmt: skip
    path.write_text(e142.die_map_xml({"name": "UP-" + path.stem, "kind": "wafer"}, rows))
    return path


def _die_map(home: Path, unit: str, *db: str) -> dict[str, Any]:
    out = fabline("die-map", unit, "--format", "json", *db, home=home)
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _sort_rejects(doc: dict[str, Any]) -> dict[tuple[int, int], str]:
    return {
        (d["x"], d["y"]): d["reason"]
        for d in doc["dies"]
        if d["bin"] == "reject" and d["reason"].startswith("wafer sort")
    }


def test_a_wlcsp_lot_rejects_its_known_bad_dies_from_a_file_and_from_the_upstream(
    home: Path,
) -> None:
    # codes: one letter per (bin, reason), sorted: leakage A, open B
    bad = {WLCSP_GRID[10]: "open", WLCSP_GRID[2000]: "leakage", WLCSP_GRID[4100]: "open"}
    path = _write_map(home / "w01.xml", WLCSP_GRID, bad)
    run = fabline("run", "wlcsp-002-42", "--lot", "SM1", "--wafers", "2", "--sort-map",
                  f"W01={path}", "--sort-yield", "0.9", "--sort-seed", "5", home=home,
                  timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr

    w1 = _die_map(home, "SM1-W01")
    assert _sort_rejects(w1) == {
        WLCSP_GRID[10]: "wafer sort bin B",
        WLCSP_GRID[2000]: "wafer sort bin A",
        WLCSP_GRID[4100]: "wafer sort bin B",
    }
    assert w1["bins"]["reject"]["reasons"]["wafer sort bin B"] == 2
    # W02 had no file: the simulated upstream's map, the same for the same seed
    want = sort_maps.generate("SM1-W02", 1, WLCSP_GRID, 0.9, 5)
    got = _sort_rejects(_die_map(home, "SM1-W02"))
    assert got == {(x, y): f"wafer sort bin {code}" for x, y, code in want.bad}
    assert 300 < len(got) < 520  # ~10 % of 4101

    # the E142 map says it too, and a package's trace names its bin
    xml = fabline("die-map", "SM1-W01", home=home)
    assert 'BinQuality="Fail" BinDescription="reject: wafer sort bin B"' in xml.stdout
    x, y = WLCSP_GRID[10]
    trace = fabline("trace", f"SM1-W01-X{x:03d}Y{y:03d}", "--json", home=home)
    assert trace.returncode == 0, trace.stderr
    assert json.loads(trace.stdout)["nodes"][0]["bin"] == "reject: wafer sort bin B"


def test_a_stack_rejects_the_union_of_its_layers_bad_dies(home: Path, db_url: str) -> None:
    """On SQLite and PostgreSQL: the maps travel in the units' JSON attributes."""
    lower = {STACK_GRID[5]: "open", STACK_GRID[600]: "open"}
    upper = {STACK_GRID[600]: "open", STACK_GRID[700]: "short"}  # one shared, one its own
    run = fabline(
        "run", "stacked-wlp-000-11", "--lot", "SM2",
        "--sort-map", f"W01={_write_map(home / 'lower.xml', STACK_GRID, lower)}",
        "--sort-map", f"W01:2={_write_map(home / 'upper.xml', STACK_GRID, upper)}",
        "--db", db_url, home=home, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = _die_map(home, "SM2-STK01", "--db", db_url)
    assert _sort_rejects(doc) == {
        STACK_GRID[5]: "wafer sort bin A (layer 1)",
        STACK_GRID[600]: "wafer sort bin A (layer 1)",
        STACK_GRID[700]: "wafer sort bin B (layer 2)",  # short: B after open A
    }
    assert doc["total"] == len(STACK_GRID)
    # the layers were not diced themselves: die-map shows each one's incoming map
    w1 = _die_map(home, "SM2-W01", "--db", db_url)
    assert _sort_rejects(w1) == {p: "wafer sort bin A" for p in lower}
    assert {d["package"] for d in w1["dies"]} == {None} and w1["total"] == len(STACK_GRID)
    layer2 = _die_map(home, "SM2-BLA001", "--db", db_url)  # the blank bonded on as layer 2
    assert _sort_rejects(layer2) == {
        STACK_GRID[600]: "wafer sort bin A", STACK_GRID[700]: "wafer sort bin B"
    }  # fmt: skip


def test_a_stack_of_generated_layers_rejects_the_union_of_their_maps(home: Path) -> None:
    run = fabline("run", "stacked-wlp-000-11", "--lot", "SM4", "-o", "layers=three",
                  "--sort-yield", "0.9", "--sort-seed", "2", home=home, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    want: dict[tuple[int, int], str] = {}
    for layer in (1, 2, 3):  # each layer its own map; the lowest layer bad names the reason
        for x, y, code in sort_maps.generate("SM4-W01", layer, STACK_GRID, 0.9, 2).bad:
            want.setdefault((x, y), f"wafer sort bin {code} (layer {layer})")
    assert _sort_rejects(_die_map(home, "SM4-STK01")) == want
    assert 0.2 * len(STACK_GRID) < len(want) < 0.35 * len(STACK_GRID)  # 1 - 0.9³ = 27 %


def test_a_map_that_does_not_fit_is_refused_naming_the_file_and_no_lot_is_made(
    home: Path,
) -> None:
    broken = home / "broken.json"
    broken.write_text('{"dimension": {"x": 2, "y": 1}, "dies": [{"x": 0, "y": 0, "bin": 2},'
                      ' {"x": 5, "y": 0, "bin": "good"}]}')  # fmt: skip
    run = fabline("run", "wlcsp-002-42", "--lot", "SM3", "--sort-map", f"W01={broken}",
                  home=home)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {broken} (W01): dies[1] at (5, 0) is outside the dimension 2 x 1"
    ]
    off = _write_map(home / "off.xml", [(0, 0), *WLCSP_GRID[:3]], {(0, 0): "open"})
    run = fabline("run", "wlcsp-002-42", "--lot", "SM3", "--sort-map", f"W01={off}", home=home)
    assert run.returncode == 2
    assert f"error: {off} (W01): position (0, 0) is not on the die grid of SM3-W01" in run.stderr
    assert fabline("lot", "show", "SM3", home=home).returncode != 0
