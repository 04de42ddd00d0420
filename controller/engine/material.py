"""A lot's material in memory, and what a step's genealogy declaration does to it.

`Material` mirrors the lot's active units (loaded from the database when a runner starts,
updated after each committed step). `plan_change` turns a step's `merge`/`split`/`consume`
declaration and its results into a `Change` (controller/genealogy/write.py): new units,
edges, units that end, bins — rows written in the step's completion transaction. Pure: no
database, no tools.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.events import (
    ConsumeData,
    GenealogyConsume,
    GenealogyMerge,
    GenealogySplit,
    MergeData,
    SplitData,
)
from controller.genealogy.store import NewUnit
from controller.genealogy.write import Change, EdgeRow
from controller.lots import sort_maps
from controller.lots.inputs import input_prefix
from controller.recipes.expand import ToolStepPlan
from controller.recipes.model import Merge, Split
from drivers.errors import GenealogyError
from drivers.interfaces.dicing import die_positions

SORT_BIN = "sort_bin"  # a package's attribute: rejected by its wafer's incoming sort map
KIND_PREFIX = {"stack": "STK", "assembly": "ASM", "strip": "S", "panel": "P", "wafer": "W"}


@dataclass
class UnitView:
    name: str
    kind: str
    id: int | None = None
    slot: int | None = None
    source: str | None = None  # the recipe input it came from
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Material:
    lot_id: str
    active: dict[str, UnitView] = field(default_factory=dict)  # name -> unit, lot order
    supply_counts: dict[str, int] = field(default_factory=dict)  # input -> units drawn
    sources: dict[str, str] = field(default_factory=dict)  # supply input -> its source lot unit

    def of_kind(self, kind: str) -> list[UnitView]:
        return [u for u in self.active.values() if u.kind == kind]

    def from_source(self, source: str) -> list[UnitView]:
        return [u for u in self.active.values() if u.source == source]

    def apply(self, change: Change, ids: Mapping[str, int]) -> None:
        for row in change.units:
            attributes = row.get("attributes", {})
            self.active[row["name"]] = UnitView(
                row["name"],
                row["kind"],
                ids.get(row["name"]),
                row.get("slot"),
                attributes.get("input"),
                attributes,
            )
        for name in change.ended:
            self.active.pop(name, None)

    def processed(self) -> list[UnitView]:
        """The physical items a lot step works on: every active unit."""
        return list(self.active.values())


def plan_change(
    material: Material,
    step: ToolStepPlan,
    results: Mapping[str, float],
    consumables: Mapping[str, str],
    inputs: Mapping[str, Any],
    per_piece: Mapping[str, Mapping[str, float]] | None = None,
    piece_consumables: Mapping[str, Mapping[str, str]] | None = None,
) -> Change:
    """What the step did to the genealogy. `consumables` maps the step's consumable names to
    the consumable lots loaded on the tool; `inputs` is the recipe's input declarations;
    `per_piece`, when the step ran per work piece: each piece's (unit name's) own results,
    whose defects stay with that piece; `piece_consumables`: the consumable lots of the tool
    each piece ran on (pieces of one step may run on several tools)."""
    change = Change()
    g = step.genealogy
    if g.merge is not None:
        _merge(material, step, g.merge, inputs, change)
    if g.split is not None:
        _split(material, step, g.split, change)
    # what comes out of the step: consumption and defects attach to these, not to parts
    # merged away in it
    processed = [u for u in material.processed() if u.name not in change.ended]
    processed += [_view(row) for row in change.units if row["name"] not in change.ended]
    lots_of = {u.name: consumables for u in processed}
    if piece_consumables:  # each piece from the tool it ran on
        for u in processed:
            lots_of[u.name] = piece_consumables.get(u.name) or piece_consumables.get(
                str(u.attributes.get("from")), consumables
            )
    drawn: dict[tuple[str, str], int] = {}
    for cname in consumables:
        for u in processed:
            lot_name = lots_of[u.name].get(cname)
            if lot_name is not None:
                change.edges.append(EdgeRow(lot_name, u.name, "consume"))
                drawn[(cname, lot_name)] = drawn.get((cname, lot_name), 0) + 1
    for (cname, lot_name), n in drawn.items():
        change.events.append(
            GenealogyConsume(data=ConsumeData(consumable=cname, consumable_lot=lot_name, units=n))
        )
    if per_piece:
        _piece_defects(step, per_piece, processed, change)
    else:
        _defects(step, results, processed, change)
    return change


def _view(row: NewUnit) -> UnitView:
    attributes = row.get("attributes", {})
    return UnitView(row["name"], row["kind"], None, row.get("slot"), attributes.get("input"),
                    attributes)  # fmt: skip


def _merge(
    material: Material,
    step: ToolStepPlan,
    spec: Merge,
    inputs: Mapping[str, Any],
    change: Change,
) -> None:
    into_kind = spec.into
    per = int(spec.per)  # a ${...} reference is resolved to a number by the expansion
    sources: list[str] = list(spec.from_)
    targets = material.of_kind(into_kind)
    merged = 0
    if not targets:  # the first merge creates one `into` unit per unit of the first source
        anchors = _available(material, sources[0], inputs, step, change, None)
        merged = len(anchors)  # each anchor is the first part of its new target
        for a in anchors:
            suffix = f"{a.slot:02d}" if a.slot is not None else a.name.rsplit("-", 1)[-1]
            prefix = KIND_PREFIX.get(into_kind, into_kind[:3].upper())
            unit = NewUnit(
                name=f"{material.lot_id}-{prefix}{suffix}",
                kind=into_kind,
                created_step=step.index,
                slot=a.slot,
                attributes={"from": a.name, **sort_maps.stacked_from(a.attributes)},
            )
            change.units.append(unit)
            change.edges.append(EdgeRow(a.name, unit["name"], "merge"))
            change.ended[a.name] = "merged"
        targets = [_view(u) for u in change.units if u["kind"] == into_kind]
        sources = sources[1:]
    for target in targets:
        for source in sources:
            parts = _available(material, source, inputs, step, change, per)
            for part in parts:
                change.edges.append(EdgeRow(part.name, target.name, "merge"))
                change.ended[part.name] = "merged"
                merged += 1
                # a wafer bonded on as the next layer: its sort map joins the target's
                layered = per == 1 and part.kind == "wafer"
                if layered and sort_maps.merged_layer(target.attributes, part.attributes):
                    change.attributes[target.name] = target.attributes
                    if "sort_map" in part.attributes:
                        change.attributes[part.name] = part.attributes
            if per > 1 and parts:  # parts placed on sites: remember which went where
                sites = target.attributes.setdefault("sites", {})
                sites[source] = [*sites.get(source, []), *(p.name for p in parts)]
                change.attributes[target.name] = target.attributes
    change.events.append(
        GenealogyMerge(data=MergeData(into=into_kind, units=len(targets), parts=merged))
    )


def _available(
    material: Material,
    source: str,
    inputs: Mapping[str, Any],
    step: ToolStepPlan,
    change: Change,
    count: int | None,
) -> list[UnitView]:
    """Units of `source` (an input or a unit kind) not yet used; supply inputs are drawn new."""
    spec = inputs.get(source)
    if spec is not None and spec.supply:
        n = count or 1
        out = []
        for _ in range(n):
            k = material.supply_counts.get(source, 0) + 1
            material.supply_counts[source] = k
            name = f"{material.lot_id}-{input_prefix(source)}{k:03d}"
            row = NewUnit(
                name=name, kind=spec.kind, created_step=step.index, attributes={"input": source}
            )
            change.units.append(row)
            if source in material.sources:  # drawn from its upstream lot
                change.edges.append(EdgeRow(material.sources[source], name, "split"))
            out.append(_view(row))
        return out
    pool = material.from_source(source) if spec is not None else material.of_kind(source)
    pool = [u for u in pool if u.name not in change.ended]
    return pool if count is None else pool[:count]


def _split(material: Material, step: ToolStepPlan, spec: Split, change: Change) -> None:
    parents = material.of_kind(spec.from_) + [
        _view(u) for u in change.units if u["kind"] == spec.from_
    ]
    if not parents:
        raise GenealogyError(f"step {step.id}: nothing of kind {spec.from_} to split")
    v = step.values
    grid_params = step.op.die_grid
    if grid_params is None:
        raise GenealogyError(f"step {step.id}: a split needs an operation that cuts dies")
    try:
        shape = str(v[grid_params.shape])
        grid = die_positions(
            shape,
            float(v[grid_params.width]),
            float(v[grid_params.length]),
            float(v[grid_params.die_x]),
            float(v[grid_params.die_y]),
        )
    except KeyError as e:
        raise GenealogyError(f"step {step.id}: the cut's {e} is not set") from None
    rect = shape == "RECT"
    on_grid = set(grid)
    for parent in parents:
        kids: list[str] = []
        known_bad = sort_maps.bad_dies(parent.attributes)  # incoming wafer-sort maps
        off = sorted(set(known_bad) - on_grid)
        if off:  # refused at lot creation when the cut was known then
            raise GenealogyError(
                f"step {step.id}: {parent.name}'s wafer-sort map has position {off[0]},"
                f" which is not on the die grid ({len(grid)} dies)"
            )
        # parts placed on the parent's sites (chips on a strip) go into the package cut there
        placed = {
            i: names[i]
            for names in parent.attributes.get("sites", {}).values()
            for i in range(min(len(names), len(grid)))
        }
        for k, (x, y) in enumerate(grid):
            pos = {"unit_x": x, "unit_y": y} if rect else {"die_x": x, "die_y": y}
            if parent.kind == "assembly":  # a wafer on its panel: both positions
                pos |= {"unit_x": x, "unit_y": y}
            name = f"{parent.name}-X{x:03d}Y{y:03d}"
            if k in placed:
                change.edges.append(EdgeRow(placed[k], name, "merge"))
            attributes: dict[str, Any] = {"from": parent.name}
            sort_reason = known_bad.get((x, y))
            if sort_reason is not None:  # known bad: rejected, and later defects pass it by
                attributes[SORT_BIN] = sort_reason
                change.bins[name] = ("reject", sort_reason)
            change.units.append(
                NewUnit(
                    name=name,
                    kind=spec.into,
                    created_step=step.index,
                    bin="good",
                    slot=parent.slot,
                    attributes=attributes,
                    **pos,  # type: ignore[typeddict-item]
                )
            )
            change.edges.append(EdgeRow(parent.name, name, "split"))
            if sort_reason is None:
                kids.append(name)
        change.ended[parent.name] = "split"
        defects = parent.attributes.get("defects", {})
        at_edge = set(parent.attributes.get("edge_defects", ()))
        for reason, n in defects.items():
            if reason in at_edge:  # run-out, edge chipping: the outermost dies
                chosen = _outermost(kids, grid, int(n), f"{parent.name}/{reason}")
            else:
                chosen = _pick(kids, int(n), f"{parent.name}/{reason}")
            for name in chosen:
                change.bins[name] = ("reject", reason)
        change.events.append(
            GenealogySplit(
                data=SplitData(
                    parent=parent.name,
                    into=spec.into,
                    count=len(grid),
                    die_map=f"fabline die-map {parent.name}",
                )
            )
        )


def _defects(
    step: ToolStepPlan, results: Mapping[str, float], processed: Sequence[UnitView], change: Change
) -> None:
    """Spread defect counts a tool reports over the units it processed: packages get a
    reject bin now; wafers and stacks carry the count until they are diced."""
    counted = [(r.name, r.defect, r.at_edge) for r in step.op.results if r.defect]
    for key, reason, at_edge in counted:
        n = round(results.get(key, 0.0))
        if n <= 0 or not processed:
            continue
        packages = [u for u in processed if u.kind in ("package", "die")]
        if packages:
            # a die its wafer's sort map rejected keeps that reason
            good = [u.name for u in packages if SORT_BIN not in u.attributes]
            for name in _pick(good, n, f"{step.id}/{key}"):
                change.bins.setdefault(name, ("reject", reason))
            continue
        share, extra = divmod(n, len(processed))
        for i, u in enumerate(processed):
            d = u.attributes.setdefault("defects", {})
            d[reason] = d.get(reason, 0) + share + (1 if i < extra else 0)
            if at_edge and reason not in u.attributes.setdefault("edge_defects", []):
                u.attributes["edge_defects"].append(reason)
            change.attributes[u.name] = u.attributes


def _piece_defects(
    step: ToolStepPlan,
    per_piece: Mapping[str, Mapping[str, float]],
    processed: Sequence[UnitView],
    change: Change,
) -> None:
    """Each piece's defect counts stay with that piece: a package (a unit at its boat
    position) is rejected; a wafer, stack or strip carries the count to its dicing. A piece
    merged away in the step hands its count to what it became."""
    by_name = {u.name: u for u in processed}
    became = {str(u.attributes.get("from")): u for u in processed if u.attributes.get("from")}
    counted = [(r.name, r.defect, r.at_edge) for r in step.op.results if r.defect]
    for piece, results in per_piece.items():
        u = by_name.get(piece) or became.get(piece)
        if u is None:
            continue
        for key, reason, at_edge in counted:
            n = round(results.get(key, 0.0))
            if n <= 0 or reason is None:
                continue
            if u.kind in ("package", "die"):
                change.bins.setdefault(u.name, ("reject", reason))
                continue
            d = u.attributes.setdefault("defects", {})
            d[reason] = d.get(reason, 0) + n
            if at_edge:
                edge = u.attributes.setdefault("edge_defects", [])
                if reason not in edge:
                    edge.append(reason)
            change.attributes[u.name] = u.attributes


def _outermost(
    names: Sequence[str], grid: Sequence[tuple[int, int]], n: int, salt: str
) -> list[str]:
    """The n dies farthest from the centre of the grid (ties in hash order)."""
    if not grid:
        return []
    cx = (min(x for x, _ in grid) + max(x for x, _ in grid)) / 2
    cy = (min(y for _, y in grid) + max(y for _, y in grid)) / 2

    def key(i: int) -> tuple[float, bytes]:
        x, y = grid[i]
        tie = hashlib.blake2b(f"{salt}/{names[i]}".encode(), digest_size=8).digest()
        return (-((x - cx) ** 2 + (y - cy) ** 2), tie)

    ranked = sorted(range(min(len(names), len(grid))), key=key)
    return [names[i] for i in ranked[: max(0, n)]]


def _pick(names: Sequence[str], n: int, salt: str) -> list[str]:
    """n names chosen reproducibly (hash order), so a rerun bins the same packages."""
    ranked = sorted(
        names, key=lambda nm: hashlib.blake2b(f"{salt}/{nm}".encode(), digest_size=8).digest()
    )
    return ranked[: min(n, len(ranked))]
