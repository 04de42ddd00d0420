"""Lot lineage: what the lot operations (controller/lots/operations.py) recorded in `lot_link`,
read back for traces and for the process-control history of a child lot.

A unit moved by a split or a merge went through its earlier steps in the lot it came from: a
backward trace reads those from that lot up to the move, and from its lot now only after the
move (a merged unit never went through the kept lot's earlier steps). A child lot's fed-forward
setpoints and queue times see its parent's measurements before the split. Rework loops of a
unit's lot are listed on its trace node, so the repeated steps read as the loop they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session
from sqlmodel import col, select

from controller.genealogy.models import LotLink, RunPiece, StepRun, Unit

DONE = ("done", "confirmed")


def _utc(when: datetime | None) -> datetime:
    """SQLite hands back naive datetimes for aware columns: they are UTC."""
    if when is None:
        return datetime.max.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def links(s: Session, lot_ids: Iterable[str]) -> list[LotLink]:
    """Every link into these lots and, on up, into the lots they came from, oldest first."""
    found: dict[int, LotLink] = {}
    wanted, seen = set(lot_ids), set[str]()
    while wanted - seen:
        batch = sorted(wanted - seen)
        seen |= wanted
        for link in s.scalars(select(LotLink).where(col(LotLink.child_lot).in_(batch))):
            if link.id is not None:
                found[link.id] = link
            wanted.add(link.parent_lot)
    return [found[k] for k in sorted(found)]


def of_lot(s: Session, lot_id: str) -> list[LotLink]:
    """The links a lot is in, either end, oldest first (`lot show`)."""
    q = select(LotLink).where(
        (col(LotLink.parent_lot) == lot_id) | (col(LotLink.child_lot) == lot_id)
    )
    return list(s.scalars(q.order_by(col(LotLink.id))))


def lineage_runs(s: Session, lot_id: str) -> list[StepRun]:
    """The lot's step runs, and before them those its split ancestors ran before each split
    (what a child lot's process control reads as its history)."""
    runs = list(
        s.scalars(select(StepRun).where(col(StepRun.lot_id) == lot_id).order_by(col(StepRun.id)))
    )
    lot, seen = lot_id, {lot_id}
    while True:
        q = select(LotLink).where(col(LotLink.child_lot) == lot, col(LotLink.kind) == "split")
        link = s.scalars(q).first()
        if link is None or link.parent_lot in seen:
            return runs
        q2 = select(StepRun).where(col(StepRun.lot_id) == link.parent_lot)
        before = _utc(link.created_at)
        earlier = [r for r in s.scalars(q2.order_by(col(StepRun.id))) if _utc(r.ended_at) <= before]
        runs = earlier + runs
        lot = link.parent_lot
        seen.add(lot)


def moves_of(all_links: Sequence[LotLink], unit_id: int) -> list[LotLink]:
    """The splits and merges that moved this unit, oldest first."""
    return [k for k in all_links if k.kind in ("split", "merge") and unit_id in (k.units or [])]


class RunRow(Protocol):
    """A step run as the trace queries and the ORM both give it (read only)."""

    @property
    def step_id(self) -> str | None: ...

    @property
    def step_index(self) -> int | None: ...

    @property
    def tool_id(self) -> str | None: ...

    @property
    def operation(self) -> str | None: ...

    @property
    def job_id(self) -> str | None: ...

    @property
    def setpoints(self) -> Any: ...

    @property
    def results(self) -> Any: ...

    @property
    def ended_at(self) -> Any: ...


def step_entry(r: RunRow, lot: str | None = None) -> dict[str, Any]:
    """A step run as a trace node lists it; `lot` names the lot it ran in when the unit
    came from another lot (split, merge)."""
    entry = {
        "step": r.step_id,
        "index": r.step_index,
        "tool": r.tool_id,
        "operation": r.operation,
        "job_id": r.job_id,
        "setpoints": r.setpoints,
        "results": r.results,
        "at": str(r.ended_at),
    }
    if lot is not None:
        entry["lot"] = lot
    return entry


def unit_steps(
    s: Session, unit: Unit, moves: Sequence[LotLink], own: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The steps a moved unit went through: in each lot it was in, the runs between its
    arrival there and its leaving (its creation and end bound them as usual)."""
    out: list[dict[str, Any]] = []
    since = datetime.min.replace(tzinfo=UTC)
    # runs of several pieces: only this unit's, with its own results
    mine = {
        p.step_run_id: p.results
        for p in s.scalars(select(RunPiece).where(col(RunPiece.unit_id) == unit.id))
    }
    for link in moves:
        until = _utc(link.created_at)
        q = select(StepRun).where(
            col(StepRun.lot_id) == link.parent_lot, col(StepRun.state).in_(DONE)
        )
        for r in s.scalars(q.order_by(col(StepRun.step_index), col(StepRun.id))):
            if r.piece_count and r.id not in mine:
                continue  # another piece's job
            if r.step_index > unit.created_step and since <= _utc(r.ended_at) <= until:
                entry = step_entry(r, r.lot_id)
                if r.id in mine:
                    entry["results"] = mine[r.id]
                out.append(entry)
        since = until
    out += [st for st in own if step_time(st["at"]) >= since]
    return out


def step_time(text: str) -> datetime:
    """When a trace's step entry ended (`at`, as the trace writes it)."""
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def describe(link: LotLink) -> dict[str, Any]:
    """A link as a trace node lists it."""
    d: dict[str, Any] = {"kind": link.kind, "from_lot": link.parent_lot, "to_lot": link.child_lot}
    if link.kind == "rework" and link.to_step is not None:  # steps 1-based, as shown
        d["from_step"], d["to_step"] = link.step_index + 1, link.to_step + 1
    else:
        d["next_step"] = link.step_index + 1
    if link.reason:
        d["reason"] = link.reason
    d["when"] = str(link.created_at)
    return d
