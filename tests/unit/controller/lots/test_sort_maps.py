"""Incoming wafer-sort maps (controller/lots/sort_maps.py): both formats `fabline die-map`
writes read back (a bad document refused with one line naming it and the place in it),
seeded generation, the check against the die grid at lot creation, and the maps carried
through a stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from controller.genealogy import e142
from controller.lots import sort_maps
from controller.lots.request import LotRequest, plan
from drivers.errors import E142Error, ParameterError
from drivers.interfaces.dicing import die_positions
from tests.unit.controller.rows import tiny_recipe

HEADER = {"name": "UP-W7", "kind": "wafer", "lot": "UP"}
# a 3 x 2 map with a hole at (2, 1): two bins besides good
ROWS: list[dict[str, Any]] = [
    {"package": "p00", "x": 0, "y": 0, "bin": "good", "reason": None},
    {"package": "p10", "x": 1, "y": 0, "bin": "reject", "reason": "open"},
    {"package": "p20", "x": 2, "y": 0, "bin": "good", "reason": None},
    {"package": "p01", "x": 0, "y": 1, "bin": "reject", "reason": "short"},
    {"package": "p11", "x": 1, "y": 1, "bin": "good", "reason": None},
]
WLCSP = "wlcsp-002-42"  # 300 mm wafers cut at 4 mm: 4101 dies
GRID = die_positions("ROUND", 300.0, 0.0, 4.0, 4.0)
STACKED = "stacked-wlp-000-11"  # 200 mm at 5 mm; `layers` wafers per stack


def _xml(rows: list[dict[str, Any]] = ROWS) -> str:
    return e142.die_map_xml(HEADER, rows)


def _json(rows: list[dict[str, Any]] = ROWS) -> str:
    return json.dumps(e142.die_map_json(HEADER, rows))


def _refused(text: str, *said: str) -> str:
    with pytest.raises(E142Error) as e:
        sort_maps.parse(text, "maps/w7.xml")
    message = str(e.value)
    assert message.startswith("maps/w7.xml: ") and "\n" not in message
    for part in said:
        assert part in message
    return message


# -- reading ---------------------------------------------------------------------------------


def test_an_e142_map_fabline_wrote_reads_back_with_its_bin_codes() -> None:
    m, positions = sort_maps.parse(_xml(), "w7.xml")
    # codes: good "1", then one letter per (bin, reason) in sorted order
    assert m.bad == [(1, 0, "A"), (0, 1, "B")]
    assert (m.source, m.substrate, m.dies) == ("w7.xml", "UP-W7", 5)
    assert positions == {(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)}


def test_an_e142_map_says_good_by_bin_quality_whatever_its_description() -> None:
    xml = _xml().replace('BinQuality="Pass" BinDescription="good"',
                         'BinQuality="Pass" BinDescription="bin 1: pass"')  # fmt: skip
    assert sort_maps.parse(xml, "w7.xml")[0].bad == [(1, 0, "A"), (0, 1, "B")]
    # without BinQuality a die is good when its bin is "good"
    assert sort_maps.parse(xml.replace('BinQuality="Fail" ', ""), "w7")[0].bad == [
        (1, 0, "A"), (0, 1, "B"),
    ]  # fmt: skip


def test_a_json_map_fabline_wrote_reads_back_with_its_bins() -> None:
    m, positions = sort_maps.parse(_json(), "w7.json")
    assert m.bad == [(1, 0, "reject"), (0, 1, "reject")]
    assert (m.substrate, m.dies, len(positions)) == ("UP-W7", 5, 5)
    tester = {"dimension": {"x": 2, "y": 1},
              "dies": [{"x": 0, "y": 0, "bin": "good"}, {"x": 1, "y": 0, "bin": 7}]}  # fmt: skip
    assert sort_maps.parse(json.dumps(tester), "t")[0].bad == [(1, 0, "7")]


def test_a_malformed_xml_map_is_refused_naming_the_file_and_the_place() -> None:
    good = _xml()
    _refused("<MapData", "not XML", "line 1")
    _refused("<MapData/>", "root element is MapData")
    _refused(good.replace("<BinCode>1A1</BinCode>", "<BinCode>1A</BinCode>"),
             "BinCode row 0 has 2 columns, not 3")  # fmt: skip
    _refused(good.replace("<BinCode>1A1</BinCode>", "<BinCode>1Z1</BinCode>"),
             "bin code 'Z' at (1, 0) is not defined")  # fmt: skip
    _refused(good.replace('BinCount="3"', 'BinCount="4"'), "bin 1 counts 4, the map has 3")
    _refused(good.replace('Y="2"', 'Y="3"', 1), "2 BinCode rows, Dimension Y is 3")
    _refused(good.replace('OriginLocation="UpperLeft"', 'OriginLocation="LowerLeft"'),
             "OriginLocation")  # fmt: skip


def test_a_malformed_json_map_is_refused_naming_the_file_and_the_place() -> None:
    doc = json.loads(_json())
    _refused('{"dimension": ', "not JSON", "line 1 column 15")
    _refused(json.dumps({"dies": doc["dies"]}), "dimension: Field required")
    _refused(json.dumps(doc | {"dies": [{"x": 0, "y": "a", "bin": "good"}]}), "dies[0].y:")
    _refused(json.dumps(doc | {"dies": [{"x": -1, "y": 0, "bin": "good"}]}), "dies[0].x:")
    _refused(json.dumps(doc | {"dies": [{"x": 3, "y": 0, "bin": "good"}]}),
             "dies[0] at (3, 0) is outside the dimension 3 x 2")  # fmt: skip
    twice = [{"x": 0, "y": 0, "bin": "good"}, {"x": 0, "y": 0, "bin": "good"}]
    _refused(json.dumps(doc | {"dies": twice}), "dies[1]: two dies at (0, 0)")
    _refused(json.dumps(doc | {"dies": [{"x": 0, "y": 0, "bin": "a b"}]}),
             "dies[0]: bin 'a b' is not")  # fmt: skip
    _refused(json.dumps(doc | {"dies": []}), "no dies")
    _refused('{"dies": ' + "[" * 100_000, "nested deeper than the parser takes")
    _refused("  \n", "neither an E142 XML map")
    _refused("[1, 2]", "neither an E142 XML map")


# -- generating ------------------------------------------------------------------------------


def test_a_generated_map_is_the_same_for_the_same_seed_and_another_for_another() -> None:
    a = sort_maps.generate("L1-W01", 1, GRID, 0.9, seed=7)
    assert a == sort_maps.generate("L1-W01", 1, GRID, 0.9, seed=7)
    assert a.bad != sort_maps.generate("L1-W01", 1, GRID, 0.9, seed=8).bad
    assert a.bad != sort_maps.generate("L1-W02", 1, GRID, 0.9, seed=7).bad
    assert a.bad != sort_maps.generate("L1-W01", 2, GRID, 0.9, seed=7).bad
    assert (a.source, a.dies) == ("generated: yield 0.9, seed 7", 4101)
    assert 0.87 < 1 - len(a.bad) / a.dies < 0.93
    assert sort_maps.generate("L1-W01", 1, GRID, 1.0, seed=7).bad == []


def test_generated_fails_crowd_the_edge() -> None:
    m = sort_maps.generate("L1-W01", 1, GRID, 0.8, seed=1)
    bad = {(x, y) for x, y, _ in m.bad}
    mid = 37.0  # the grid's centre in columns and rows

    def ring(lo: float, hi: float) -> float:
        dies = [
            p for p in GRID if lo <= ((p[0] + 0.5 - mid) ** 2 + (p[1] + 0.5 - mid) ** 2) ** 0.5 < hi
        ]
        return sum(p in bad for p in dies) / len(dies)

    assert ring(30, 40) > 2 * ring(0, 20)
    assert {code for _, _, code in m.bad} == {"2", "3"}


# -- at lot creation -------------------------------------------------------------------------


def _map_text(bad: dict[tuple[int, int], str], dies: list[tuple[int, int]] = GRID) -> str:
    return json.dumps(
        {"substrate": "UP-W7", "dimension": {"x": 75, "y": 75},
         "dies": [{"x": x, "y": y, "bin": bad.get((x, y), "good")} for x, y in dies]}
    )  # fmt: skip


def test_a_map_is_stored_on_its_wafer_and_the_others_get_none() -> None:
    text = _map_text({GRID[0]: "7", GRID[100]: "9"})
    p = plan(LotRequest(lot_id="L1", recipe=WLCSP, inputs={"wafers": 2}, sort_maps={"W02": text}))
    w1, w2 = p.inputs["wafers"]
    assert dict(w1.attributes) == {}
    assert w2.attributes["sort_map"] == {
        "source": "sort map W02", "substrate": "UP-W7", "dies": 4101,
        "bad": [(*GRID[0], "7"), (*GRID[100], "9")],
    }  # fmt: skip
    assert w2.attributes["sort_grid"] == ["ROUND", 300.0, 0.0, 4.0, 4.0]  # the cut it fits
    # the full unit name works as well
    p = plan(LotRequest(lot_id="L1", recipe=WLCSP, sort_maps={"L1-W01": text}))
    assert p.inputs["wafers"][0].attributes["sort_map"]["dies"] == 4101


def test_a_yield_gives_every_wafer_without_a_map_a_generated_one() -> None:
    text = _map_text({GRID[0]: "7"})
    p = plan(
        LotRequest(lot_id="L1", recipe=WLCSP, inputs={"wafers": 2}, sort_maps={"W01": text},
                   sort_yield=0.95, sort_seed=4)
    )  # fmt: skip
    w1, w2 = p.inputs["wafers"]
    assert w1.attributes["sort_map"]["source"] == "sort map W01"
    assert w2.attributes["sort_map"] == sort_maps.generate("L1-W02", 1, GRID, 0.95, 4).model_dump()


def test_a_stack_gets_a_map_per_layer() -> None:
    grid = die_positions("ROUND", 200.0, 0.0, 5.0, 5.0)
    text = _map_text({grid[3]: "X"}, grid)
    p = plan(
        LotRequest(lot_id="S1", recipe=STACKED, options={"layers": "three"},
                   sort_maps={"W01:3": text}, sort_yield=0.9)
    )  # fmt: skip
    a = p.inputs["wafers"][0].attributes
    assert a["sort_map"] == sort_maps.generate("S1-W01", 1, grid, 0.9, 0).model_dump()
    assert set(a["sort_layers"]) == {"2", "3"}
    assert a["sort_layers"]["3"]["bad"] == [(*grid[3], "X")]


@pytest.mark.parametrize(
    ("recipe", "maps", "said"),
    [
        (WLCSP, {"W02": "{}"}, "sort map 'W02': lot L1 has no wafer 'W02' (wafers: L1-W01)"),
        (WLCSP, {"W01:2": "{}"}, "layer '2' is not 1..1 (this recipe stacks no wafers)"),
        (STACKED, {"W01:3": "{}"}, "sort map 'W01:3': layer '3' is not 1..2"),
        (STACKED, {"W01:x": "{}"}, "layer 'x' is not 1..2"),
        (WLCSP, {"W01": "{}"}, "sort map W01: dimension: Field required"),
        (WLCSP, {"W01": "{}", "L1-W01": "{}"}, "sort map 'L1-W01': layer 1 of L1-W01 given twice"),
        (STACKED, {"W01": "{}", "W01:1": "{}"}, "layer 1 of L1-W01 given twice"),
        (
            WLCSP,
            {"W01": _map_text({}, [(0, 0), (37, 37), (74, 0)])},
            "sort map W01: position (0, 0) is not on the die grid of L1-W01"
            " (4101 dies, step dice) and 1 more",
        ),
    ],
)
def test_a_map_that_does_not_fit_the_lot_is_refused(
    recipe: str, maps: dict[str, str], said: str
) -> None:
    with pytest.raises((ParameterError, E142Error)) as e:
        plan(LotRequest(lot_id="L1", recipe=recipe, sort_maps=maps))
    assert said in str(e.value)


def test_an_error_names_the_file_a_label_gives() -> None:
    with pytest.raises(E142Error, match=r"^w1\.json \(W01\): not JSON"):
        plan(
            LotRequest(lot_id="L1", recipe=WLCSP, sort_maps={"W01": "{"}),
            labels={"W01": "w1.json (W01)"},
        )


def test_a_recipe_that_dices_nothing_takes_no_map() -> None:
    request = LotRequest(lot_id="L1", recipe="unit-flow", sort_yield=0.9)
    with pytest.raises(ParameterError, match="recipe unit-flow dices nothing"):
        plan(request, recipe=tiny_recipe())


@pytest.mark.parametrize("value", [0, -0.1, 1.01, float("nan")])
def test_a_yield_outside_0_to_1_is_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="sort_yield"):
        LotRequest(lot_id="L1", recipe=WLCSP, sort_yield=value)


# -- through a stack -------------------------------------------------------------------------


def _m(*bad: tuple[int, int, str]) -> dict[str, Any]:
    return sort_maps.SortMap(source="f", dies=10, bad=list(bad)).model_dump()


def test_a_stack_carries_its_layers_maps_and_rejects_their_union() -> None:
    wafer = {"input": "wafers", "sort_map": _m((0, 0, "2"), (1, 1, "3")),
             "sort_layers": {"2": _m((1, 1, "2"), (2, 2, "7"))}}  # fmt: skip
    stack = sort_maps.stacked_from(wafer)
    assert stack["layers"] == 1 and stack["sort_maps"][0]["layer"] == 1
    blank: dict[str, Any] = {"input": "blanks"}
    assert sort_maps.merged_layer(stack, blank)
    assert blank["sort_map"] == wafer["sort_layers"]["2"]  # the layer records its own map
    assert sort_maps.bad_dies(stack) == {
        (0, 0): "wafer sort bin 2 (layer 1)",
        (1, 1): "wafer sort bin 3 (layer 1)",  # bad on both: the lowest layer names it
        (2, 2): "wafer sort bin 7 (layer 2)",
    }
    # a layer with its own map brings it; a stack without maps takes none
    own: dict[str, Any] = {"sort_map": _m((5, 5, "4"))}
    assert sort_maps.merged_layer(stack, own) and stack["layers"] == 3
    assert sort_maps.bad_dies(stack)[(5, 5)] == "wafer sort bin 4 (layer 3)"
    assert not sort_maps.merged_layer({"from": "L1-W01"}, own)
    assert sort_maps.stacked_from({"input": "wafers"}) == {}


def test_a_wafer_rejects_its_own_map_without_a_layer() -> None:
    assert sort_maps.bad_dies({"sort_map": _m((3, 4, "B"))}) == {(3, 4): "wafer sort bin B"}
    assert sort_maps.bad_dies({}) == {}


def test_an_undiced_wafer_shows_its_incoming_map_as_a_die_map() -> None:
    attributes = {"sort_map": _m((2, 2, "7")), "sort_grid": ["ROUND", 20.0, 20.0, 4.0, 4.0]}
    shown = sort_maps.incoming_die_map("L1-W01", "wafer", "L1", attributes)
    assert shown is not None
    header, rows = shown
    assert header == {"name": "L1-W01", "kind": "wafer", "lot": "L1", "shape": "ROUND",
                      "pitch": {"x": 4.0, "y": 4.0, "units": "mm"}}  # fmt: skip
    assert [(r["x"], r["y"], r["bin"], r["reason"]) for r in rows] == [
        (1, 2, "good", None), (2, 1, "good", None), (2, 2, "reject", "wafer sort bin 7"),
        (2, 3, "good", None), (3, 2, "good", None),
    ]  # fmt: skip
    # written without packages (no DeviceIdMap), and read back as the same map
    xml = e142.die_map_xml(header, rows)
    assert "DeviceIdMap" not in xml and 'StepSize X="4" Y="4"' in xml
    back, _ = sort_maps.parse(xml, "back")
    assert back.bad == [(2, 2, "A")]
    assert sort_maps.incoming_die_map("L1-W01", "wafer", "L1", {"sort_map": _m()}) is None
    assert sort_maps.incoming_die_map("L1-W01", "wafer", "L1", {"sort_grid": ["RECT"]}) is None
