"""Die maps as E142-style XML and JSON, from a small genealogy written through the store."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from controller.genealogy import e142, store, trace
from controller.genealogy.db import Database
from controller.genealogy.models import Lot
from drivers.interfaces.dicing import die_positions

LOT = "L-E142"
HASH = "e" * 32
STACK, STRIP, BARE = f"{LOT}-STK01", f"{LOT}-S01", f"{LOT}-STK02"
ROUND_GRID = die_positions("ROUND", 50, 50, 5, 5)  # 44 dies in columns 1..8, rows 1..8
RECT_GRID = die_positions("RECT", 70, 240, 15, 15)  # 4 × 16
REJECTS = {(4, 1): "missing ball", (2, 2): "missing ball", (8, 5): "missing ball",
           (1, 4): "open bump", (5, 8): "open bump", (6, 6): None}  # fmt: skip
Q = f"{{{e142.NS}}}"


def _dice(
    s: Session,
    parent: str,
    parent_id: int,
    grid: list[tuple[int, int]],
    *,
    rect: bool,
    setpoints: dict[str, Any],
    step: int,
    rejects: dict[tuple[int, int], str | None],
) -> None:
    """A dicing step's genealogy, written as the engine's _write_change writes it."""
    run_id = store.add_step_run(
        s, lot_id=LOT, step_index=step, step_id=f"dice-{step}", kind="tool", tool_id="DICE-1",
        tool_kind="dicing", operation="dice", job_id=f"J-{step}", recipe_id="r",
        recipe_hash=HASH, state="done", setpoints=setpoints,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    for x, y in grid:
        pos = {"unit_x": x, "unit_y": y} if rect else {"die_x": x, "die_y": y}
        rows.append({"name": f"{parent}-X{x:03d}Y{y:03d}", "kind": "package", "lot_id": LOT,
                     "slot": 1, "bin": "good", "created_step": step, "state": "active",
                     "attributes": {"from": parent}, **pos})  # fmt: skip
    ids = store.insert_units(s, rows)
    store.insert_edges(
        s,
        [
            {"parent_id": parent_id, "child_id": ids[r["name"]], "kind": "split",
             "step_run_id": run_id}
            for r in rows
        ],
    )  # fmt: skip
    store.end_units(s, [parent_id], "split", step)
    store.set_bins(
        s, {ids[f"{parent}-X{x:03d}Y{y:03d}"]: ("reject", r) for (x, y), r in rejects.items()}
    )


def _populate(s: Session) -> None:
    store.save_recipe(s, hash=HASH, recipe_id="r", version=1, status="released", text="{}")
    s.add(Lot(id=LOT, recipe_id="r", recipe_version=1, recipe_hash=HASH, state="running"))
    s.flush()
    parents = store.insert_units(
        s,
        [
            {"name": n, "kind": k, "lot_id": LOT, "slot": 1, "created_step": 0,
             "state": "active", "attributes": {}}
            for n, k in ((STACK, "stack"), (STRIP, "strip"), (BARE, "stack"))
        ],
    )  # fmt: skip
    mm = {"unit": "mm"}
    _dice(s, STACK, parents[STACK], ROUND_GRID, rect=False, step=1, rejects=REJECTS,
          setpoints={"work_shape": {"value": "ROUND", "unit": ""}, "die_x": {"value": 5.0, **mm},
                     "die_y": {"value": 5.0, **mm}})  # fmt: skip
    _dice(s, STRIP, parents[STRIP], RECT_GRID, rect=True, step=2, rejects={(0, 0): "bridged"},
          setpoints={"work_shape": {"value": "RECT", "unit": ""}, "die_x": {"value": 15.0, **mm},
                     "die_y": {"value": 15.0, **mm}})  # fmt: skip
    _dice(s, BARE, parents[BARE], ROUND_GRID, rect=False, step=3, rejects={}, setpoints={})


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("e142") / "genealogy.db"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    database.run_sync(_populate)
    yield database
    database.close()


def _load(db: Database, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return db.run_sync(lambda s: e142.load_die_map(s, name))


def _positions(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((r["x"], r["y"], r["package"], r["bin"], r["reason"]) for r in rows)


def test_load_die_map_adds_pitch_and_shape_from_the_dicing_step(db: Database) -> None:
    header, rows = _load(db, STACK)
    assert header == {"name": STACK, "kind": "stack", "lot": LOT, "shape": "ROUND",
                      "pitch": {"x": 5.0, "y": 5.0, "units": "mm"}}  # fmt: skip
    assert len(rows) == len(ROUND_GRID)
    bare, _ = _load(db, BARE)  # a dicing step that stored no setpoints
    assert "pitch" not in bare and "shape" not in bare


def test_xml_has_the_e142_structure(db: Database) -> None:
    header, rows = _load(db, STACK)
    root = ET.fromstring(e142.die_map_xml(header, rows))
    assert root.tag == f"{Q}MapData"
    assert [c.tag for c in root] == [f"{Q}Layouts", f"{Q}Substrates", f"{Q}SubstrateMaps"]

    layouts = {el.get("LayoutId"): el for el in root.iterfind(f"{Q}Layouts/{Q}Layout")}
    assert set(layouts) == {"Substrate", "Devices"}
    assert layouts["Substrate"].get("TopLevel") == "true"
    child = layouts["Substrate"].find(f"{Q}ChildLayouts/{Q}ChildLayout")
    assert child is not None and child.get("LayoutId") == "Devices"
    dim = layouts["Devices"].find(f"{Q}Dimension")
    step = layouts["Devices"].find(f"{Q}StepSize")
    assert dim is not None and step is not None
    cols, nrows = int(dim.get("X", "")), int(dim.get("Y", ""))
    assert (cols, nrows) == (9, 9)  # positions 0..8: column 0 and row 0 hold no whole die
    assert (step.get("X"), step.get("Y"), layouts["Devices"].get("DefaultUnits")) == (
        "5",
        "5",
        "mm",
    )

    substrate = root.find(f"{Q}Substrates/{Q}Substrate")
    assert substrate is not None
    assert (substrate.get("SubstrateType"), substrate.get("SubstrateId")) == ("Wafer", STACK)
    assert substrate.findtext(f"{Q}LotId") == LOT
    assert substrate.findtext(f"{Q}GoodDevices") == str(len(ROUND_GRID) - len(REJECTS))

    smap = root.find(f"{Q}SubstrateMaps/{Q}SubstrateMap")
    assert smap is not None and smap.get("SubstrateId") == STACK
    assert smap.get("LayoutSpecifier") == "Substrate/Devices"
    bcm = smap.find(f"{Q}Overlay/{Q}BinCodeMap")
    assert bcm is not None and bcm.get("BinType") == "ASCII"
    null = bcm.get("NullBin")
    defs = {
        d.get("BinCode"): (d.get("BinDescription"), d.get("BinQuality"), int(d.get("BinCount", "")))
        for d in bcm.iterfind(f"{Q}BinDefinitions/{Q}BinDefinition")
    }
    assert defs == {
        "1": ("good", "Pass", 38),
        "A": ("reject", "Fail", 1),
        "B": ("reject: missing ball", "Fail", 3),
        "C": ("reject: open bump", "Fail", 2),
    }
    lines = [el.text or "" for el in bcm.iterfind(f"{Q}BinCode")]
    assert len(lines) == nrows and all(len(line) == cols for line in lines)
    on_map = {(x, y): c for y, line in enumerate(lines) for x, c in enumerate(line) if c != null}
    assert set(on_map) == set(ROUND_GRID)
    assert Counter(on_map.values()) == {code: n for code, (_, _, n) in defs.items()}
    assert on_map[(4, 1)] == "B" and on_map[(1, 4)] == "C" and on_map[(6, 6)] == "A"

    ids = smap.findall(f"{Q}Overlay/{Q}DeviceIdMap/{Q}DeviceId")
    by_pos = {(int(el.get("X", "")), int(el.get("Y", ""))): el for el in ids}
    assert len(ids) == len(by_pos) == len(ROUND_GRID)
    for r in rows:
        el = by_pos[(r["x"], r["y"])]
        assert el.text == r["package"] and el.get("BinCode") == on_map[(r["x"], r["y"])]


def test_xml_round_trips(db: Database) -> None:
    for name in (STACK, STRIP, BARE):
        header, rows = _load(db, name)
        back_header, back_rows = e142.parse_die_map_xml(e142.die_map_xml(header, rows))
        assert _positions(back_rows) == _positions(rows)
        assert back_header["name"] == name and back_header["lot"] == LOT
        assert back_header["pitch"] == header.get("pitch")
        want = {"x": max(r["x"] for r in rows) + 1, "y": max(r["y"] for r in rows) + 1}
        assert back_header["dimension"] == want


def test_a_strip_is_a_strip_with_unit_positions(db: Database) -> None:
    header, rows = _load(db, STRIP)
    assert sorted((r["x"], r["y"]) for r in rows) == sorted(RECT_GRID)
    back_header, _ = e142.parse_die_map_xml(e142.die_map_xml(header, rows))
    assert back_header["substrate_type"] == "Strip"
    assert back_header["dimension"] == {"x": 4, "y": 16}
    assert back_header["pitch"] == {"x": 15.0, "y": 15.0, "units": "mm"}


def test_trace_die_map_header_alone_still_renders(db: Database) -> None:
    header, rows = db.run_sync(lambda s: trace.die_map(s, STACK))  # what the CLI passes
    xml = e142.die_map_xml(header, rows)
    assert "StepSize" not in xml
    back_header, back_rows = e142.parse_die_map_xml(xml)
    assert back_header["pitch"] is None and back_header["substrate_type"] == "Wafer"
    assert _positions(back_rows) == _positions(rows)


def test_json_has_every_die_and_counts_the_bins(db: Database) -> None:
    header, rows = _load(db, STACK)
    doc = e142.die_map_json(header, rows)
    assert json.loads(json.dumps(doc)) == doc
    assert (doc["substrate"], doc["lot"], doc["kind"], doc["substrate_type"]) == (
        STACK,
        LOT,
        "stack",
        "Wafer",
    )
    assert doc["dimension"] == {"x": 9, "y": 9, "pitch": {"x": 5.0, "y": 5.0, "units": "mm"}}
    assert doc["total"] == len(doc["dies"]) == len(ROUND_GRID)
    assert _positions(doc["dies"]) == _positions(rows)
    assert {(d["x"], d["y"]) for d in doc["dies"]} == set(ROUND_GRID)
    assert doc["bins"] == {
        "good": {"count": len(ROUND_GRID) - len(REJECTS), "reasons": {}},
        "reject": {"count": len(REJECTS), "reasons": {"missing ball": 3, "open bump": 2}},
    }
    for d in doc["dies"]:
        assert set(d) == {"x", "y", "package", "bin", "reason"}
        if (d["x"], d["y"]) in REJECTS:
            assert (d["bin"], d["reason"]) == ("reject", REJECTS[(d["x"], d["y"])])
        else:
            assert (d["bin"], d["reason"]) == ("good", None)


def _tamper(xml: str, old: str, new: str) -> str:
    assert old in xml
    return xml.replace(old, new, 1)


def test_parse_refuses_an_inconsistent_map(db: Database) -> None:
    header, rows = _load(db, STACK)
    xml = e142.die_map_xml(header, rows)
    bad = {
        "count": _tamper(xml, 'BinCount="38"', 'BinCount="37"'),
        "row length": _tamper(xml, "<BinCode>.........</BinCode>", "<BinCode>........</BinCode>"),
        "undefined code": _tamper(xml, "<BinCode>.........</BinCode>",
                                  "<BinCode>Z........</BinCode>"),
        "namespace": _tamper(xml, e142.NS, "urn:example:other"),
        "device off the map": _tamper(xml, 'DeviceId X="4" Y="1"', 'DeviceId X="0" Y="0"'),
        "not xml": xml[:200],
    }  # fmt: skip
    for label, text in bad.items():
        with pytest.raises(e142.E142Error):
            e142.parse_die_map_xml(text)
            pytest.fail(label)


def test_bin_codes_and_refusals() -> None:
    rows = [{"package": f"P{i}", "x": i, "y": 0, "bin": "reject", "reason": f"r{i:02d}"}
            for i in range(len(e142.CODES) + 1)]  # fmt: skip
    with pytest.raises(e142.E142Error, match="bin codes"):
        e142.die_map_xml({"name": "W", "kind": "wafer", "lot": None}, rows)
    twice = [{"package": "A", "x": 0, "y": 0, "bin": "good", "reason": None}] * 2
    with pytest.raises(e142.E142Error, match="two dies"):
        e142.die_map_json({"name": "W", "kind": "wafer", "lot": None}, twice)
    defs = e142.bin_definitions(
        [{"bin": "reject", "reason": "b"}, {"bin": "good", "reason": None},
         {"bin": "reject", "reason": "a"}, {"bin": None, "reason": None}]
    )  # fmt: skip
    assert [(d.code, d.description, d.count) for d in defs] == [
        ("1", "good", 2),
        ("A", "reject: a", 1),
        ("B", "reject: b", 1),
    ]
