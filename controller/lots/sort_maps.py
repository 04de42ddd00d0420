"""Incoming wafer-sort maps: which dies of a wafer are known bad before packaging starts.

A map comes with a wafer (`fabline run --sort-map W01=FILE`, a dispatch's `sort_maps`) in the
formats `fabline die-map` writes (controller/genealogy/e142.py): E142-style XML — a die is
good when its BinDefinition's BinQuality is `Pass` (without a BinQuality: when its bin is
`good`), its sort bin is the BinCode character — or JSON, where a die is good when its `bin`
is `good` and its sort bin is its `bin` otherwise. Or the simulated upstream generates one
(`--sort-yield 0.93`): seeded by the seed, the wafer's name and the layer, so the same seed
gives the same map; edge dies fail more often, as they do on a real wafer.

`attach` checks every map against the die grid of the recipe's dicing step (known from the
expansion) when the lot is created, and stores it on the wafer unit's attributes:
`sort_map` (the wafer's own) and `sort_layers` (layer number -> map: the wafers a stack built
on this one receives, recipe 000). The engine carries the maps through merges
(`stacked_from`, `merged_layer`) and bins the dies at the dicing split (`bad_dies`): a die
that any layer's map marks bad is rejected with the reason `wafer sort bin <code>` (and the
layer, in a stack) — a stack's good map is the AND of its layers' good maps. Before dicing,
`fabline die-map` shows a unit's incoming map (`incoming_die_map`, from `sort_grid`: the cut).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.genealogy import e142
from controller.lots.inputs import InputUnit
from controller.recipes import Expansion, LoadedRecipe
from controller.recipes.expand import ToolStepPlan
from drivers.errors import E142Error, ParameterError, shown
from drivers.interfaces.dicing import die_positions

GOOD = "good"
MAX_CODE = 16  # characters of a sort bin code (the reason column takes any length)
EDGE_WEIGHT = 3.0  # a die at the rim fails 1 + 3 times as often as one at the centre
Position = tuple[int, int]


class Cut(NamedTuple):
    """The die grid a dicing step cuts (drivers/interfaces/dicing.py `die_positions`)."""

    shape: str
    width: float  # mm
    length: float  # mm
    die_x: float  # mm
    die_y: float  # mm


class SortMap(BaseModel):
    """A wafer's sort result as stored on its unit: where it came from and its bad dies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str  # the file or dispatch key it came from, or how it was generated
    substrate: str | None = None  # the map's own substrate id
    dies: int  # positions the map covers
    bad: list[tuple[int, int, str]] = Field(default_factory=list)  # x, y, sort bin code


class _JsonDie(BaseModel):
    model_config = ConfigDict(extra="ignore")

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    bin: str | int


class _JsonDimension(BaseModel):
    model_config = ConfigDict(extra="ignore")

    x: int = Field(ge=1)
    y: int = Field(ge=1)


class _JsonMap(BaseModel):
    model_config = ConfigDict(extra="ignore")

    substrate: str | None = None
    dimension: _JsonDimension
    dies: list[_JsonDie]


# -- reading ------------------------------------------------------------------------------


def parse(text: str, where: str) -> tuple[SortMap, set[Position]]:
    """A map document (XML or JSON) -> the map and every position it covers. `where` names
    the document in errors (a file, or `sort_maps[W01]`); every error is one E142Error line
    `<where>: <what and where in it>`."""
    body = text.lstrip("\ufeff \t\r\n")
    try:
        if body.startswith("<"):
            return _parse_xml(body, where)
        if body.startswith("{"):
            return _parse_json(body, where)
    except E142Error as e:
        raise E142Error(f"{where}: {e}") from None
    raise E142Error(f"{where}: neither an E142 XML map ('<') nor a JSON map ('{{')")


def _parse_xml(text: str, where: str) -> tuple[SortMap, set[Position]]:
    header, rows = e142.parse_die_map_xml(text)
    bad: list[tuple[int, int, str]] = []
    for r in rows:
        good = r["quality"] == "Pass" if r["quality"] else r["bin"] == GOOD
        if not good:
            bad.append((r["x"], r["y"], str(r["code"])))
    positions = {(r["x"], r["y"]) for r in rows}
    return SortMap(source=where, substrate=header["name"], dies=len(rows), bad=bad), positions


def _parse_json(text: str, where: str) -> tuple[SortMap, set[Position]]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise E142Error(f"not JSON: {e}") from None
    except RecursionError:
        raise E142Error("not a map: nested deeper than the parser takes") from None
    try:
        doc = _JsonMap.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise E142Error(f"{loc.lstrip('.') or 'the document'}: {first['msg']}") from None
    seen: set[Position] = set()
    bad: list[tuple[int, int, str]] = []
    for i, d in enumerate(doc.dies):
        pos = (d.x, d.y)
        if d.x >= doc.dimension.x or d.y >= doc.dimension.y:
            raise E142Error(
                f"dies[{i}] at {pos} is outside the dimension {doc.dimension.x} x {doc.dimension.y}"
            )
        if pos in seen:
            raise E142Error(f"dies[{i}]: two dies at {pos}")
        seen.add(pos)
        code = str(d.bin)
        if not code or len(code) > MAX_CODE or not code.isprintable() or " " in code:
            raise E142Error(f"dies[{i}]: bin {shown(code)!r} is not 1-{MAX_CODE} printable"
                            " characters without spaces")  # fmt: skip
        if code != GOOD:
            bad.append((d.x, d.y, code))
    if not seen:
        raise E142Error("no dies")
    return SortMap(source=where, substrate=doc.substrate, dies=len(seen), bad=bad), seen


# -- generating ---------------------------------------------------------------------------


def generate(
    unit: str, layer: int, grid: Sequence[Position], sort_yield: float, seed: int
) -> SortMap:
    """The simulated upstream's sort map for a wafer: each die fails with a probability that
    grows towards the rim (1 + 3 (r/R)^4, scaled so the expected yield is `sort_yield`).
    Bin 2: a functional fail, bin 3: a fail in the outer ring (r > 0.8 R)."""
    if not grid:
        return SortMap(source=_generated(sort_yield, seed), dies=0)
    cx = (max(x for x, _ in grid) + 1) / 2
    cy = (max(y for _, y in grid) + 1) / 2
    radius = [math.hypot(x + 0.5 - cx, y + 0.5 - cy) for x, y in grid]
    rim = max(radius) or 1.0
    weight = [1 + EDGE_WEIGHT * (r / rim) ** 4 for r in radius]
    scale = (1 - sort_yield) * len(grid) / sum(weight)
    rng = random.Random(f"{seed}/{unit}/{layer}")  # a str seed is hashed stably (sha512)
    bad = [
        (x, y, "3" if r > 0.8 * rim else "2")
        for (x, y), r, w in zip(grid, radius, weight, strict=True)
        if rng.random() < min(1.0, w * scale)
    ]
    return SortMap(source=_generated(sort_yield, seed), dies=len(grid), bad=sorted(bad))


def _generated(sort_yield: float, seed: int) -> str:
    return f"generated: yield {sort_yield:g}, seed {seed}"


# -- at lot creation ----------------------------------------------------------------------


def split_cut(step: ToolStepPlan) -> Cut | None:
    """What a split step cuts (shape, width, length, die x, die y in mm), or None when its cut
    is not known before the lot runs."""
    params = step.op.die_grid
    if params is None:
        return None
    v = step.values
    try:
        return Cut(
            str(v[params.shape]),
            float(v[params.width]),
            float(v[params.length]),
            float(v[params.die_x]),
            float(v[params.die_y]),
        )
    except (KeyError, TypeError, ValueError):
        return None  # fed forward: checked at the split instead


def attach(
    lot_id: str,
    recipe: LoadedRecipe,
    expansion: Expansion,
    inputs: Mapping[str, list[InputUnit]],
    maps: Mapping[str, str],
    sort_yield: float | None,
    seed: int,
    labels: Mapping[str, str] | None = None,
) -> dict[str, list[InputUnit]]:
    """The input units with their sort maps in their attributes. `maps`: key -> document,
    where the key is a wafer (`W01` or `L1-W01`) or a layer of the stack built on it
    (`W01:2`). Refuses a key naming no wafer or layer, a bad document, and a position that
    is not on the die grid, before anything is recorded. `labels`: key -> how errors name
    the document (the CLI: its file), else `sort map <key>`."""
    out = {name: list(units) for name, units in inputs.items()}
    if not maps and sort_yield is None:
        return out
    r = recipe.recipe
    splits = [s for s in expansion.steps if isinstance(s, ToolStepPlan) and s.genealogy.split]
    if not splits:
        raise ParameterError(f"recipe {r.id} dices nothing: a wafer-sort map has no dies to bin")
    cut = split_cut(splits[0])
    if cut is None and sort_yield is not None:
        raise ParameterError(
            f"recipe {r.id}: the die grid of step {splits[0].id} is known only when the lot"
            " runs, so no sort map can be generated for it (give the maps)"
        )
    grid = die_positions(*cut) if cut is not None else None
    on_grid = set(grid) if grid is not None else None
    wafers = {
        u.name: name
        for name, spec in r.inputs.items()
        if spec.kind == "wafer" and not spec.supply
        for u in out.get(name, [])
    }
    if not wafers:
        raise ParameterError(f"recipe {r.id} takes no wafers: a wafer-sort map has nowhere to go")
    layers = 1 + sum(
        1
        for s in expansion.steps
        if isinstance(s, ToolStepPlan)
        and s.genealogy.merge is not None
        and any(
            r.inputs[f].kind == "wafer" and r.inputs[f].supply
            for f in s.genealogy.merge.from_
            if f in r.inputs
        )
    )
    keys: dict[str, tuple[str, int]] = {}  # every key checked before any map is read
    for key in maps:
        unit, layer = _key(key, lot_id, wafers, layers)
        if (unit, layer) in keys.values():
            raise ParameterError(f"sort map {shown(key)!r}: layer {layer} of {unit} given twice")
        keys[key] = (unit, layer)
    given: dict[tuple[str, int], SortMap] = {}
    for key, text in maps.items():
        unit, layer = keys[key]
        where = (labels or {}).get(key) or f"sort map {key}"
        sort_map, positions = parse(text, where)
        if on_grid is not None:
            off = sorted(positions - on_grid)
            if off:
                raise ParameterError(
                    f"{where}: position {off[0]} is not on the die grid of {unit}"
                    f" ({len(on_grid)} dies, step {splits[0].id})"
                    + (f" and {len(off) - 1} more" if len(off) > 1 else "")
                )
        given[(unit, layer)] = sort_map
    for units in out.values():
        for i, u in enumerate(units):
            if u.name not in wafers:
                continue
            per_layer: dict[int, SortMap] = {}
            for layer in range(1, layers + 1):
                m = given.get((u.name, layer))
                if m is None and sort_yield is not None and grid is not None:
                    m = generate(u.name, layer, grid, sort_yield, seed)
                if m is not None:
                    per_layer[layer] = m
            if not per_layer:
                continue
            attributes = dict(u.attributes)
            if 1 in per_layer:
                attributes["sort_map"] = per_layer.pop(1).model_dump()
            if per_layer:
                attributes["sort_layers"] = {str(k): m.model_dump() for k, m in per_layer.items()}
            if cut is not None:  # for the die map of the incoming map before dicing
                attributes["sort_grid"] = list(cut)
            units[i] = InputUnit(u.name, u.slot, attributes)
    return out


def _key(key: str, lot_id: str, wafers: Mapping[str, str], layers: int) -> tuple[str, int]:
    """`W01`, `L1-W01`, `W01:2` -> (wafer unit name, layer)."""
    name, sep, layer_text = key.partition(":")
    unit = name if name in wafers else f"{lot_id}-{name}"
    if unit not in wafers:
        known = ", ".join(sorted(wafers)[:5]) + (" ..." if len(wafers) > 5 else "")
        raise ParameterError(f"sort map {shown(key)!r}: lot {lot_id} has no wafer {shown(name)!r}"
                             f" (wafers: {known})")  # fmt: skip
    if not sep:
        return unit, 1
    if not layer_text.isdigit() or not 1 <= int(layer_text) <= layers:
        raise ParameterError(
            f"sort map {shown(key)!r}: layer {shown(layer_text)!r} is not 1..{layers}"
            + (" (this recipe stacks no wafers)" if layers == 1 else "")
        )
    return unit, int(layer_text)


# -- in the engine: through merges to the dicing split ------------------------------------


def stacked_from(anchor: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes a unit made on `anchor` (a stack on its lowest wafer) takes over: the
    wafer's map as layer 1 and the maps planned for the layers bonded onto it."""
    out: dict[str, Any] = {}
    if "sort_map" in anchor:
        out["sort_maps"] = [{**anchor["sort_map"], "layer": 1}]
    if "sort_layers" in anchor:
        out["sort_layers"] = dict(anchor["sort_layers"])
    if out and "sort_grid" in anchor:
        out["sort_grid"] = anchor["sort_grid"]
    if out:
        out["layers"] = 1
    return out


def merged_layer(target: dict[str, Any], part: dict[str, Any]) -> bool:
    """A wafer bonded onto `target` as its next layer: the layer's map (its own, else the
    one planned for that layer) joins the target's maps and is recorded on the part too.
    True when `target` changed."""
    if "layers" not in target:
        return False
    target["layers"] = layer = int(target["layers"]) + 1
    sort_map = part.get("sort_map") or target.get("sort_layers", {}).get(str(layer))
    if sort_map is not None:
        part["sort_map"] = sort_map
        if "sort_grid" in target:
            part["sort_grid"] = target["sort_grid"]
        target["sort_maps"] = [*target.get("sort_maps", []), {**sort_map, "layer": layer}]
    return True


def bad_dies(unit: Mapping[str, Any]) -> dict[Position, str]:
    """Position -> reject reason of every die a unit's sort maps mark bad: the union over its
    layers (the lowest layer's bin names the reason)."""
    maps: Iterable[Mapping[str, Any]] = unit.get("sort_maps") or (
        [unit["sort_map"]] if "sort_map" in unit else []
    )
    stacked = int(unit.get("layers", 1)) > 1
    out: dict[Position, str] = {}
    for m in maps:
        for x, y, code in m.get("bad", []):
            reason = f"wafer sort bin {code}"
            if stacked:
                reason += f" (layer {m.get('layer', 1)})"
            out.setdefault((int(x), int(y)), reason)
    return out


def incoming_die_map(
    name: str, kind: str, lot: str | None, attributes: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """A unit's incoming sort map as a die map (the header and rows `fabline die-map` writes,
    without packages) before it is diced; None when it has none."""
    cut = attributes.get("sort_grid")
    bad = bad_dies(attributes)
    if cut is None or not ("sort_map" in attributes or "sort_maps" in attributes):
        return None
    c = Cut(*cut)
    header = {"name": name, "kind": kind, "lot": lot, "shape": c.shape,
              "pitch": {"x": c.die_x, "y": c.die_y, "units": "mm"}}  # fmt: skip
    rows = [
        {"package": None, "x": x, "y": y, "bin": "reject" if (x, y) in bad else GOOD,
         "reason": bad.get((x, y))}
        for x, y in die_positions(*c)
    ]  # fmt: skip
    return header, rows
