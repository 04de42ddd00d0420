"""Forward and backward trace, and die maps — each one SQL statement.

Backward: a package up through every edge to its dies, wafers, stacks, panels and consumable
lots, joined with the step runs each ancestor went through (its lot's steps between the one
that created it and the one that ended it): tools, setpoints, results. Forward: a wafer or a
consumable lot down to everything made from it. Ids are cast explicitly: psycopg would bind
small ints as int2 and the recursive CTE's types would not match.

PostgreSQL and the forward trace: the planner cannot know how many rows a recursive CTE yields;
it assumes 10 iterations, each with the average fan-out of `edge.parent_id` (~2,300 children
per parent where stacks of 2,500 dies are diced), so it expects ~230,000 rows where a wafer
has ~2,500. On that estimate a plain `JOIN unit` becomes a hash join over a sequential scan of
the whole unit table (~380 ms at 1M packages, growing with the table), on a smaller table the
recursive step itself scans all edges once per level, and the inflated cost switches JIT
compilation on (+15..110 ms a query). FORWARD_PG therefore reads the edges and the units
through LATERAL subqueries with OFFSET 0 (an optimisation fence PostgreSQL cannot flatten into
a hash join: one index probe per row, ~9 ms for 2,500 packages at any table size), and
forward() turns JIT off for that statement. SQLite already probes the indexes row by row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, DateTime, text
from sqlalchemy.orm import Session
from sqlmodel import col, select

from controller.genealogy import lineage
from controller.genealogy.models import LotLink, Unit
from drivers.errors import UnitNotFound

BACKWARD = text("""
WITH RECURSIVE up(id, via, edge_kind, depth) AS (
    SELECT CAST(:uid AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS VARCHAR(8)), 0
  UNION
    SELECT e.parent_id, e.child_id, e.kind, up.depth + 1
    FROM edge e JOIN up ON e.child_id = up.id
)
SELECT up.depth, up.edge_kind, up.via, u.id, u.name, u.kind, u.lot_id, u.slot,
       u.die_x, u.die_y, u.unit_x, u.unit_y, u.bin, u.bin_reason, u.material,
       sr.step_index, sr.step_id, sr.tool_id, sr.operation, sr.job_id, sr.state,
       sr.setpoints, sr.results, sr.ended_at, sr.piece_count, rp.position,
       rp.results AS piece_results
FROM up
JOIN unit u ON u.id = up.id
LEFT JOIN step_run sr ON sr.lot_id = u.lot_id
     AND sr.step_index > u.created_step
     AND (u.ended_step IS NULL OR sr.step_index <= u.ended_step)
     AND sr.state IN ('done', 'confirmed')
     AND (sr.piece_count = 0 OR EXISTS (
         SELECT 1 FROM run_piece x WHERE x.step_run_id = sr.id AND x.unit_id = u.id))
LEFT JOIN run_piece rp ON rp.step_run_id = sr.id AND rp.unit_id = u.id
ORDER BY up.depth, u.id, sr.step_index, sr.attempt
""").columns(  # typed, so SQLite hands back dicts like PostgreSQL does, not JSON text
    setpoints=JSON, results=JSON, piece_results=JSON, ended_at=DateTime(timezone=True)
)

FORWARD = text("""
WITH RECURSIVE down(id, via, edge_kind, depth) AS (
    SELECT CAST(:uid AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS VARCHAR(8)), 0
  UNION
    SELECT e.child_id, e.parent_id, e.kind, down.depth + 1
    FROM edge e JOIN down ON e.parent_id = down.id
)
SELECT down.depth, down.edge_kind, down.via, u.id, u.name, u.kind, u.lot_id, u.slot,
       u.die_x, u.die_y, u.unit_x, u.unit_y, u.bin, u.bin_reason, u.state
FROM down JOIN unit u ON u.id = down.id
ORDER BY down.depth, u.id
""")

FORWARD_PG = text("""
WITH RECURSIVE down(id, via, edge_kind, depth) AS (
    SELECT CAST(:uid AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS VARCHAR(8)), 0
  UNION
    SELECT e.child_id, e.parent_id, e.kind, down.depth + 1
    FROM down CROSS JOIN LATERAL (
        SELECT edge.child_id, edge.parent_id, edge.kind
        FROM edge WHERE edge.parent_id = down.id OFFSET 0
    ) e
)
SELECT down.depth, down.edge_kind, down.via, u.id, u.name, u.kind, u.lot_id, u.slot,
       u.die_x, u.die_y, u.unit_x, u.unit_y, u.bin, u.bin_reason, u.state
FROM down CROSS JOIN LATERAL (
    SELECT unit.id, unit.name, unit.kind, unit.lot_id, unit.slot, unit.die_x, unit.die_y,
           unit.unit_x, unit.unit_y, unit.bin, unit.bin_reason, unit.state
    FROM unit WHERE unit.id = down.id OFFSET 0
) u
ORDER BY down.depth, u.id
""")

UNIT_ID = text("SELECT id FROM unit WHERE name = :name")
UNIT_HEADER = text("SELECT id, name, kind, lot_id FROM unit WHERE name = :name")

DIE_MAP = text("""
SELECT u.name, u.die_x, u.die_y, u.unit_x, u.unit_y, u.bin, u.bin_reason
FROM edge e JOIN unit u ON u.id = e.child_id
WHERE e.parent_id = CAST(:uid AS BIGINT) AND e.kind = 'split'
ORDER BY u.id
""")


@dataclass
class Node:
    id: int
    name: str
    kind: str
    lot_id: str | None
    depth: int
    edge_kind: str | None  # how it relates to the unit it was reached from
    via: int | None  # the unit it was reached from
    position: dict[str, int] = field(default_factory=dict)
    bin: str | None = None
    bin_reason: str | None = None
    material: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)  # split, merge, rework

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "lot": self.lot_id,
            "depth": self.depth,
            "relation": self.edge_kind,
        }
        if self.position:
            d["position"] = self.position
        if self.bin:
            d["bin"] = self.bin if not self.bin_reason else f"{self.bin}: {self.bin_reason}"
        if self.material:
            d["material"] = self.material
        if self.steps:
            d["steps"] = self.steps
        if self.operations:
            d["operations"] = self.operations
        return d


def _position(
    slot: int | None, die_x: int | None, die_y: int | None, unit_x: int | None, unit_y: int | None
) -> dict[str, int]:
    pos: dict[str, int] = {}
    if slot is not None:
        pos["slot"] = slot
    if die_x is not None:
        pos["die_x"] = die_x
    if die_y is not None:
        pos["die_y"] = die_y
    if unit_x is not None:
        pos["unit_x"] = unit_x
    if unit_y is not None:
        pos["unit_y"] = unit_y
    return pos


def _unit_id(s: Session, name: str) -> int:
    uid = s.execute(UNIT_ID, {"name": name}).scalar()
    if uid is None:
        raise UnitNotFound(f"no unit {name!r}")
    return int(uid)


@contextmanager
def _jit_off(s: Session) -> Iterator[None]:
    """PostgreSQL: no JIT compilation for the statements inside (see the module docstring);
    the setting is transaction-local and restored afterwards. Other databases: nothing."""
    if s.get_bind().dialect.name != "postgresql":
        yield
        return
    before = s.execute(text("SELECT current_setting('jit')")).scalar()
    if before == "off":
        yield
        return
    s.execute(text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        s.execute(text("SELECT set_config('jit', :v, true)"), {"v": before})


def _node(r: Any) -> Node:
    """A Node from the leading columns BACKWARD and FORWARD share (by position: named access
    costs several µs a row, which adds up over the 2,500 packages of a forward trace):
    depth, edge_kind, via, id, name, kind, lot_id, slot, die_x, die_y, unit_x, unit_y, bin,
    bin_reason."""
    return Node(
        r[3], r[4], r[5], r[6], r[0], r[1], r[2], _position(r[7], r[8], r[9], r[10], r[11]),
        r[12], r[13],
    )  # fmt: skip


def backward(s: Session, name: str) -> list[Node]:
    """Every ancestor of a unit (itself first) with the steps each went through."""
    uid = _unit_id(s, name)
    nodes: dict[tuple[int, int], Node] = {}
    for r in s.execute(BACKWARD, {"uid": uid}):
        node = nodes.get((r.id, r.depth))
        if node is None:
            node = nodes[(r.id, r.depth)] = _node(r)
            node.material = r.material
        if r.step_id is not None:
            step = lineage.step_entry(r)
            if r.piece_results is not None:  # a job of several pieces: this unit's own
                step["results"] = r.piece_results
            if r.piece_count and r.piece_count > 1 and r.position is not None:
                step["piece"] = {"position": r.position, "of": r.piece_count}
            node.steps.append(step)
    found = list(nodes.values())
    _lot_operations(s, found)
    return found


def _lot_operations(s: Session, nodes: list[Node]) -> None:
    """Units a split or merge moved between lots: their steps from each lot they were in
    (controller/genealogy/lineage.py); every node: the lot operations it went through."""
    links = lineage.links(s, {n.lot_id for n in nodes if n.lot_id})
    if not links:
        return
    moved = {n.id: lineage.moves_of(links, n.id) for n in nodes}
    ids = [uid for uid, moves in moved.items() if moves]
    units = {u.id: u for u in s.scalars(select(Unit).where(col(Unit.id).in_(ids)))} if ids else {}
    for n in nodes:
        moves = moved[n.id]
        if moves:
            n.steps = lineage.unit_steps(s, units[n.id], moves, n.steps)
        loops = [k for k in links if k.kind == "rework" and n.id in (k.units or [])]
        n.operations = [lineage.describe(k) for k in sorted([*moves, *loops], key=_link_order)]
        if loops:  # a step run again reads after the steps before it, not next to its first run
            n.steps.sort(key=lambda st: lineage.step_time(st["at"]))


def _link_order(link: LotLink) -> int:
    return link.id or 0


def forward(s: Session, name: str) -> list[Node]:
    """A unit (itself first) and everything made from it."""
    uid = _unit_id(s, name)
    pg = s.get_bind().dialect.name == "postgresql"
    with _jit_off(s):
        rows = s.execute(FORWARD_PG if pg else FORWARD, {"uid": uid}).all()
    return [_node(r) for r in rows]


def die_map(s: Session, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the diced unit, one entry per position: package, x, y, bin)."""
    unit = s.execute(UNIT_HEADER, {"name": name}).first()
    if unit is None:
        raise UnitNotFound(f"no unit {name!r}")
    rows = [
        {
            "package": r.name,
            "x": r.die_x if r.die_x is not None else r.unit_x,
            "y": r.die_y if r.die_y is not None else r.unit_y,
            "bin": r.bin or "good",
            "reason": r.bin_reason,
        }
        for r in s.execute(DIE_MAP, {"uid": unit.id})
    ]
    if not rows:
        raise UnitNotFound(f"{name} has not been diced (no die map)")
    return {"name": unit.name, "kind": unit.kind, "lot": unit.lot_id}, rows
