"""Forward and backward trace, and die maps — each one SQL statement.

Backward: a package up through every edge to its dies, wafers, stacks, panels and consumable
lots, joined with the step runs each ancestor went through (its lot's steps between the one
that created it and the one that ended it): tools, setpoints, results. Forward: a wafer or a
consumable lot down to everything made from it. Ids are cast explicitly: psycopg would bind
small ints as int2 and the recursive CTE's types would not match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from controller.genealogy import store
from drivers.errors import FablineError


class UnitNotFound(FablineError):
    pass


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
       sr.setpoints, sr.results, sr.ended_at
FROM up
JOIN unit u ON u.id = up.id
LEFT JOIN step_run sr ON sr.lot_id = u.lot_id
     AND sr.step_index > u.created_step
     AND (u.ended_step IS NULL OR sr.step_index <= u.ended_step)
     AND sr.state IN ('done', 'confirmed')
ORDER BY up.depth, u.id, sr.step_index
""")

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
        return d


def _position(row: Any) -> dict[str, int]:
    keys = ("slot", "die_x", "die_y", "unit_x", "unit_y")
    return {k: getattr(row, k) for k in keys if getattr(row, k) is not None}


def _unit_id(s: Session, name: str) -> int:
    unit = store.unit_by_name(s, name)
    if unit is None or unit.id is None:
        raise UnitNotFound(f"no unit {name!r}")
    return unit.id


def backward(s: Session, name: str) -> list[Node]:
    """Every ancestor of a unit (itself first) with the steps each went through."""
    uid = _unit_id(s, name)
    nodes: dict[tuple[int, int], Node] = {}
    for r in s.execute(BACKWARD, {"uid": uid}):
        key = (r.id, r.depth)
        node = nodes.get(key)
        if node is None:
            node = nodes[key] = Node(
                r.id,
                r.name,
                r.kind,
                r.lot_id,
                r.depth,
                r.edge_kind,
                r.via,
                _position(r),
                r.bin,
                r.bin_reason,
                r.material,
            )
        if r.step_id is not None:
            node.steps.append(
                {
                    "step": r.step_id,
                    "index": r.step_index,
                    "tool": r.tool_id,
                    "operation": r.operation,
                    "job_id": r.job_id,
                    "setpoints": r.setpoints,
                    "results": r.results,
                    "at": str(r.ended_at),
                }
            )
    return list(nodes.values())


def forward(s: Session, name: str) -> list[Node]:
    """A unit (itself first) and everything made from it."""
    uid = _unit_id(s, name)
    return [
        Node(
            r.id,
            r.name,
            r.kind,
            r.lot_id,
            r.depth,
            r.edge_kind,
            r.via,
            _position(r),
            r.bin,
            r.bin_reason,
        )
        for r in s.execute(FORWARD, {"uid": uid})
    ]


def die_map(s: Session, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the diced unit, one entry per position: package, x, y, bin)."""
    uid = _unit_id(s, name)
    unit = store.unit_by_name(s, name)
    assert unit is not None
    rows = [
        {
            "package": r.name,
            "x": r.die_x if r.die_x is not None else r.unit_x,
            "y": r.die_y if r.die_y is not None else r.unit_y,
            "bin": r.bin or "good",
            "reason": r.bin_reason,
        }
        for r in s.execute(DIE_MAP, {"uid": uid})
    ]
    if not rows:
        raise UnitNotFound(f"{name} has not been diced (no die map)")
    return {"name": unit.name, "kind": unit.kind, "lot": unit.lot_id}, rows
