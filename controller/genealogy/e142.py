"""Die maps as SEMI E142-style substrate maps (XML) and as plain JSON.

Input is what `trace.die_map` returns — a header `{"name", "kind", "lot"}` and one row per
position `{"package", "x", "y", "bin", "reason"}` — optionally with header keys `pitch`
(`{"x": 4.9, "y": 5.3, "units": "mm"}`) and `shape` (`ROUND` / `RECT`), which `load_die_map`
adds from the dicing step's setpoints. Rows without a package (a wafer's incoming sort map
before it is diced) are written without the DeviceIdMap overlay.

XML: namespace `urn:semi-org:xsd.E142-1.V1005.SubstrateMap` (the E142-1 XML schema's), written
with the stdlib ElementTree. The subset fabline writes, and `parse_die_map_xml` reads back:

    MapData
      Layouts
        Layout LayoutId="Substrate" TopLevel="true" DefaultUnits
          Dimension X="1" Y="1"
          ChildLayouts/ChildLayout LayoutId="Devices"
        Layout LayoutId="Devices" DefaultUnits
          Dimension X=columns Y=rows         (positions 0..X-1 and 0..Y-1)
          StepSize X Y                       (the die pitch, when known)
      Substrates
        Substrate SubstrateType=Wafer|Panel|Strip SubstrateId=unit name
          LotId, GoodDevices
      SubstrateMaps
        SubstrateMap SubstrateType SubstrateId LayoutSpecifier="Substrate/Devices"
                     SubstrateSide="TopSide" OriginLocation="UpperLeft" AxisDirection="DownRight"
          Overlay MapName="BinCodeMap" MapVersion="1"
            BinCodeMap BinType="ASCII" NullBin="."
              BinDefinitions
                BinDefinition BinCode BinCount BinQuality=Pass|Fail BinDescription
              BinCode × rows                  (row y; character x = that die's bin code)
          Overlay MapName="DeviceIdMap" MapVersion="1"
            DeviceIdMap
              DeviceId X Y BinCode  → text: the package unit's name

Positions are the saw's (column, row) from the work piece's upper-left edge (`die_positions`),
hence OriginLocation UpperLeft / AxisDirection DownRight. Bin codes: `1` for good, then one
character per (bin, reason) pair — `A`, `B`, ... in sorted order — so the definitions carry the
count per reject reason; BinDescription is `good` or `reject: <reason>`. `.` marks a position
without a die (outside a round wafer). Not implemented: Orientation, reference devices,
multiple layouts or substrates per document, DeviceDataMap / TransferMap overlays, the
hexadecimal/decimal BinTypes. The per-die DeviceId elements (fabline's way of tying each
position to its package in the genealogy) follow E142's DeviceIdMap overlay in name only.
The parser uses ElementTree on expat, which resolves no external entities and (expat ≥ 2.4)
limits entity expansion; it is meant for maps fabline wrote or a trusted system sent.

JSON: `{"substrate", "lot", "kind", "substrate_type", "dimension": {"x", "y"[, "pitch"]},
"bins": {bin: {"count", "reasons": {reason: count}}}, "total", "dies": [{"x", "y", "package",
"bin", "reason"}]}`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, text
from sqlalchemy.orm import Session

from controller.genealogy import trace
from drivers.errors import E142Error

NS = "urn:semi-org:xsd.E142-1.V1005.SubstrateMap"
NULL_BIN = "."
GOOD_CODE = "1"
CODES = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz023456789"
KIND_TYPES = {
    "wafer": "Wafer",
    "stack": "Wafer",
    "panel": "Panel",
    "assembly": "Panel",
    "strip": "Strip",
}
TOP, DEVICES = "Substrate", "Devices"
_Q = f"{{{NS}}}"

DICING_SETUP = text("""
SELECT sr.setpoints
FROM unit p JOIN edge e ON e.parent_id = p.id
JOIN step_run sr ON sr.id = e.step_run_id
WHERE p.name = :name AND e.kind = 'split'
LIMIT 1
""").columns(setpoints=JSON)  # decoded on SQLite too (psycopg decodes json by itself)


@dataclass(frozen=True)
class BinDef:
    code: str
    bin: str
    reason: str | None
    count: int

    @property
    def quality(self) -> str:
        return "Pass" if self.bin == "good" else "Fail"

    @property
    def description(self) -> str:
        return self.bin if self.reason is None else f"{self.bin}: {self.reason}"


# -- from the database ----------------------------------------------------------------------


def load_die_map(s: Session, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`trace.die_map`, with the die pitch and work shape of the dicing step when known."""
    header, rows = trace.die_map(s, name)
    setpoints = s.execute(DICING_SETUP, {"name": name}).scalar()
    if isinstance(setpoints, Mapping):
        x, ux = _setpoint(setpoints.get("die_x"))
        y, _ = _setpoint(setpoints.get("die_y"))
        if isinstance(x, int | float) and isinstance(y, int | float) and x > 0 and y > 0:
            header["pitch"] = {"x": float(x), "y": float(y), "units": ux or "mm"}
        shape, _ = _setpoint(setpoints.get("work_shape"))
        if isinstance(shape, str):
            header["shape"] = shape
    return header, rows


def _setpoint(v: Any) -> tuple[Any, str | None]:
    """A stored setpoint is {"value": v, "unit": u} (engine) or a bare value."""
    if isinstance(v, Mapping):
        unit = v.get("unit")
        return v.get("value"), unit if isinstance(unit, str) and unit else None
    return v, None


# -- shared ---------------------------------------------------------------------------------


def substrate_type(header: Mapping[str, Any]) -> str:
    kind = str(header.get("kind") or "")
    shape = header.get("shape")
    if shape == "ROUND":
        return "Wafer"
    if shape == "RECT":
        return "Strip" if kind == "strip" else "Panel"
    return KIND_TYPES.get(kind, "Wafer")


def bin_definitions(rows: Iterable[Mapping[str, Any]]) -> list[BinDef]:
    """One definition per (bin, reason): good first, then the rest in sorted order."""
    counts = Counter((str(r["bin"] or "good"), r["reason"] or None) for r in rows)
    keys = sorted(counts, key=lambda k: (k != ("good", None), k[0], k[1] or ""))
    if len(keys) - (("good", None) in counts) > len(CODES):
        raise E142Error(f"{len(keys)} bins: more than the {len(CODES) + 1} ASCII bin codes")
    out, free = [], iter(CODES)
    for bin_, reason in keys:
        if ":" in bin_:
            raise E142Error(f"bin {bin_!r}: a bin name cannot contain ':'")
        code = GOOD_CODE if (bin_, reason) == ("good", None) else next(free)
        out.append(BinDef(code, bin_, reason, counts[(bin_, reason)]))
    return out


def _grid(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    if not rows:
        raise E142Error("an empty die map")
    seen: set[tuple[int, int]] = set()
    for r in rows:
        x, y = r["x"], r["y"]
        if not isinstance(x, int) or not isinstance(y, int) or x < 0 or y < 0:
            raise E142Error(f"{r['package']}: position ({x}, {y}) is not a grid position")
        if (x, y) in seen:
            raise E142Error(f"two dies at ({x}, {y})")
        seen.add((x, y))
    return max(r["x"] for r in rows) + 1, max(r["y"] for r in rows) + 1


# -- XML ------------------------------------------------------------------------------------


def die_map_xml(header: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """The die map as an E142-style MapData document (see the module docstring)."""
    cols, nrows = _grid(rows)
    defs = bin_definitions(rows)
    code_of = {(d.bin, d.reason): d.code for d in defs}
    sub_type = substrate_type(header)
    name = str(header["name"])
    pitch = header.get("pitch")
    units = _e142_units(pitch["units"]) if pitch else "mm"

    root = ET.Element("MapData", xmlns=NS)
    layouts = ET.SubElement(root, "Layouts")
    top = ET.SubElement(layouts, "Layout", LayoutId=TOP, DefaultUnits=units, TopLevel="true")
    ET.SubElement(top, "Dimension", X="1", Y="1")
    ET.SubElement(ET.SubElement(top, "ChildLayouts"), "ChildLayout", LayoutId=DEVICES)
    devices = ET.SubElement(layouts, "Layout", LayoutId=DEVICES, DefaultUnits=units)
    ET.SubElement(devices, "Dimension", X=str(cols), Y=str(nrows))
    if pitch:
        ET.SubElement(devices, "StepSize", X=_num(pitch["x"]), Y=_num(pitch["y"]))

    substrate = ET.SubElement(
        ET.SubElement(root, "Substrates"), "Substrate", SubstrateType=sub_type, SubstrateId=name
    )
    if header.get("lot"):
        ET.SubElement(substrate, "LotId").text = str(header["lot"])
    good = sum(d.count for d in defs if d.quality == "Pass")
    ET.SubElement(substrate, "GoodDevices").text = str(good)

    smap = ET.SubElement(
        ET.SubElement(root, "SubstrateMaps"),
        "SubstrateMap",
        SubstrateType=sub_type,
        SubstrateId=name,
        LayoutSpecifier=f"{TOP}/{DEVICES}",
        SubstrateSide="TopSide",
        OriginLocation="UpperLeft",
        AxisDirection="DownRight",
    )
    overlay = ET.SubElement(smap, "Overlay", MapName="BinCodeMap", MapVersion="1")
    bcm = ET.SubElement(overlay, "BinCodeMap", BinType="ASCII", NullBin=NULL_BIN)
    bdefs = ET.SubElement(bcm, "BinDefinitions")
    for d in defs:
        ET.SubElement(
            bdefs,
            "BinDefinition",
            BinCode=d.code,
            BinCount=str(d.count),
            BinQuality=d.quality,
            BinDescription=d.description,
        )
    grid = [[NULL_BIN] * cols for _ in range(nrows)]
    for r in rows:
        grid[r["y"]][r["x"]] = code_of[(str(r["bin"] or "good"), r["reason"] or None)]
    for line in grid:
        ET.SubElement(bcm, "BinCode").text = "".join(line)

    if all(r["package"] is not None for r in rows):  # diced: which die became which package
        overlay = ET.SubElement(smap, "Overlay", MapName="DeviceIdMap", MapVersion="1")
        ids = ET.SubElement(overlay, "DeviceIdMap")
        for r in sorted(rows, key=lambda r: (r["y"], r["x"])):
            el = ET.SubElement(
                ids, "DeviceId", X=str(r["x"]), Y=str(r["y"]), BinCode=grid[r["y"]][r["x"]]
            )
            el.text = str(r["package"])
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _num(v: float) -> str:
    return f"{float(v):g}"


def _e142_units(unit: str) -> str:
    return {"µm": "micron", "um": "micron"}.get(unit, unit)


def parse_die_map_xml(xml: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read an E142 map of the subset above back: (header, rows in row-major order). The header
    has name, lot, substrate_type, dimension {x, y} and pitch (or None); each row package (None
    without a DeviceIdMap), x, y, bin, reason, code (the BinCode character) and quality (the
    definition's BinQuality, None when it has none). Raises E142Error on a structural mismatch."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise E142Error(f"not XML: {e}") from None
    if root.tag != f"{_Q}MapData":
        raise E142Error(f"root element is {root.tag}, not {{{NS}}}MapData")
    smap = _one(root, "SubstrateMaps/SubstrateMap")
    name = _attr(smap, "SubstrateId")
    sub_type = _attr(smap, "SubstrateType")
    if (smap.get("OriginLocation"), smap.get("AxisDirection")) != ("UpperLeft", "DownRight"):
        raise E142Error("only OriginLocation UpperLeft with AxisDirection DownRight is read")
    layout_id = _attr(smap, "LayoutSpecifier").split("/")[-1]
    layout = next(
        (el for el in root.iterfind(f"{_Q}Layouts/{_Q}Layout") if el.get("LayoutId") == layout_id),
        None,
    )
    if layout is None:
        raise E142Error(f"no Layout {layout_id!r} for the SubstrateMap")
    dim = _one(layout, "Dimension")
    cols, nrows = _int(dim, "X"), _int(dim, "Y")
    step = layout.find(f"{_Q}StepSize")
    pitch = None
    if step is not None:
        pitch = {
            "x": _float(step, "X"),
            "y": _float(step, "Y"),
            "units": layout.get("DefaultUnits") or "mm",
        }

    bcm = next(
        (
            el
            for el in smap.iterfind(f"{_Q}Overlay/{_Q}BinCodeMap")
            if el.get("BinType", "ASCII") == "ASCII"
        ),
        None,
    )
    if bcm is None:
        raise E142Error(f"{name}: no ASCII BinCodeMap overlay")
    null = bcm.get("NullBin", NULL_BIN)
    defs: dict[str, BinDef] = {}
    quality: dict[str, str | None] = {}  # Pass / Fail, when the definition says
    for el in bcm.iterfind(f"{_Q}BinDefinitions/{_Q}BinDefinition"):
        code = _attr(el, "BinCode")
        if len(code) != 1 or code == null or code in defs:
            raise E142Error(f"{name}: bin code {code!r} is not one unique character")
        bin_, _, reason = _attr(el, "BinDescription").partition(": ")
        defs[code] = BinDef(code, bin_, reason or None, _int(el, "BinCount"))
        quality[code] = el.get("BinQuality")
    lines = [el.text or "" for el in bcm.iterfind(f"{_Q}BinCode")]
    if len(lines) != nrows:
        raise E142Error(f"{name}: {len(lines)} BinCode rows, Dimension Y is {nrows}")
    found: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    where: dict[tuple[int, int], dict[str, Any]] = {}
    for y, line in enumerate(lines):
        if len(line) != cols:
            raise E142Error(f"{name}: BinCode row {y} has {len(line)} columns, not {cols}")
        for x, code in enumerate(line):
            if code == null:
                continue
            d = defs.get(code)
            if d is None:
                raise E142Error(f"{name}: bin code {code!r} at ({x}, {y}) is not defined")
            found[code] += 1
            row: dict[str, Any] = {"package": None, "x": x, "y": y, "bin": d.bin,
                                   "reason": d.reason, "code": code,
                                   "quality": quality[code]}  # fmt: skip
            rows.append(row)
            where[(x, y)] = row
    for code, d in defs.items():
        if found[code] != d.count:
            raise E142Error(f"{name}: bin {code} counts {d.count}, the map has {found[code]}")
    ids = smap.find(f"{_Q}Overlay/{_Q}DeviceIdMap")
    if ids is not None:
        for el in ids.iterfind(f"{_Q}DeviceId"):
            pos = (_int(el, "X"), _int(el, "Y"))
            die = where.get(pos)
            if die is None or die["package"] is not None:
                raise E142Error(f"{name}: DeviceId at {pos} is on no die or on one twice")
            id_code = el.get("BinCode")
            if id_code is not None and id_code != lines[pos[1]][pos[0]]:
                raise E142Error(f"{name}: DeviceId at {pos} has another bin code than the map")
            die["package"] = (el.text or "").strip()
        missing = [(r["x"], r["y"]) for r in rows if r["package"] is None]
        if missing:
            raise E142Error(f"{name}: {len(missing)} dies without a DeviceId, first {missing[0]}")
    substrate = next(
        (
            el
            for el in root.iterfind(f"{_Q}Substrates/{_Q}Substrate")
            if el.get("SubstrateId") == name and el.get("SubstrateType") == sub_type
        ),
        None,
    )
    lot = substrate.findtext(f"{_Q}LotId") if substrate is not None else None
    header = {
        "name": name,
        "lot": lot,
        "substrate_type": sub_type,
        "dimension": {"x": cols, "y": nrows},
        "pitch": pitch,
    }
    return header, rows


def _one(parent: ET.Element, path: str) -> ET.Element:
    found = parent.findall("/".join(_Q + p for p in path.split("/")))
    if len(found) != 1:
        raise E142Error(f"expected one {path} in {parent.tag.removeprefix(_Q)}, found {len(found)}")
    return found[0]


def _attr(el: ET.Element, name: str) -> str:
    v = el.get(name)
    if v is None:
        raise E142Error(f"{el.tag.removeprefix(_Q)} has no {name}")
    return v


def _int(el: ET.Element, name: str) -> int:
    try:
        return int(_attr(el, name))
    except ValueError:
        raise E142Error(f"{el.tag.removeprefix(_Q)} {name}={el.get(name)!r}") from None


def _float(el: ET.Element, name: str) -> float:
    try:
        return float(_attr(el, name))
    except ValueError:
        raise E142Error(f"{el.tag.removeprefix(_Q)} {name}={el.get(name)!r}") from None


# -- JSON -----------------------------------------------------------------------------------


def die_map_json(header: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The die map as a plain, JSON-serialisable dict (see the module docstring)."""
    cols, nrows = _grid(rows)
    dimension: dict[str, Any] = {"x": cols, "y": nrows}
    if header.get("pitch"):
        dimension["pitch"] = dict(header["pitch"])
    bins: dict[str, dict[str, Any]] = {}
    for d in bin_definitions(rows):
        entry = bins.setdefault(d.bin, {"count": 0, "reasons": {}})
        entry["count"] += d.count
        if d.reason is not None:
            entry["reasons"][d.reason] = d.count
    return {
        "substrate": header["name"],
        "lot": header.get("lot"),
        "kind": header.get("kind"),
        "substrate_type": substrate_type(header),
        "dimension": dimension,
        "bins": bins,
        "total": len(rows),
        "dies": [
            {
                "x": r["x"],
                "y": r["y"],
                "package": r["package"],
                "bin": r["bin"] or "good",
                "reason": r["reason"],
            }
            for r in rows
        ],
    }
