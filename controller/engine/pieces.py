"""Which jobs a lot's tool step becomes: one per work piece, or batches of pieces.

A work piece is what a tool takes at that point of the flow: a wafer, a stack, a wafer on
its panel (assembly), a panel or a strip — each active unit of those kinds, in slot order.
An operation that runs per piece (drivers/interface.py `Pieces`) gets one job per piece; a
batch operation takes up to the recipe's value of its count parameter per job (the carrier's
capacity: a rack, a boat of 40 units), and each job's count is set to the pieces it holds.
Once a lot is singulated, its packages ride in boats: a batch step whose recipe sets the
count (`work_pieces: 40`) runs one job per boat of that many packages; any other step on
packages is one job for the whole lot, as its parameters describe (`units`, `sites`).
Pure: no database, no tools.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.engine.material import Material, UnitView
from controller.recipes import feedforward
from controller.recipes.expand import ToolStepPlan

PIECE_KINDS = frozenset({"wafer", "stack", "assembly", "panel", "strip"})
"""Unit kinds a tool takes one at a time (or several of in a batch): work pieces."""


@dataclass(frozen=True)
class PieceJob:
    """One job of a step: the units it processes (in load order) and the step as it runs
    them (a piece's own fed-forward setpoints, a batch's count of pieces). `key` names the
    job among the step's jobs (its first piece); a job for the whole lot has no units and
    the key ""."""

    key: str
    units: tuple[UnitView, ...]
    step: ToolStepPlan

    @property
    def batch(self) -> bool:
        return len(self.units) > 1

    @property
    def names(self) -> list[str]:
        return [u.name for u in self.units]


def plan_jobs(
    material: Material, step: ToolStepPlan, principal: str | None = None
) -> list[PieceJob]:
    """The jobs of `step` for the lot's material as it stands before the step. `principal`:
    the recipe's first input, the material its steps work on; units of its other inputs
    (panels waiting for their wafers) are not pieces until a merge makes them part of one."""
    op = step.op
    count = op.pieces.count
    pieces = [u for u in _pieces(material, step) if u.source in (None, principal)]
    if pieces:
        size = 1 if count is None else max(1, int(float(step.values.get(count, 1))))
    elif count is not None and count in step.params:  # packages in boats of that many
        pieces = _ordered(u for u in material.processed() if u.kind not in PIECE_KINDS)
        size = max(1, int(float(step.values[count])))
    else:
        return [PieceJob("", (), step)]
    if not pieces:
        return [PieceJob("", (), step)]
    jobs = []
    for i in range(0, len(pieces), size):
        group = tuple(pieces[i : i + size])
        own = feedforward.for_job(step, [u.name for u in group])
        if count is not None:
            own = dataclasses.replace(own, values={**own.values, count: float(len(group))})
        jobs.append(PieceJob(group[0].name, group, own))
    return jobs


def _pieces(material: Material, step: ToolStepPlan) -> list[UnitView]:
    """The step's work pieces: for a merge, what it merges into (existing targets, or each
    unit of its first source that becomes one); otherwise every active work piece."""
    merge = step.genealogy.merge
    if merge is not None:
        targets = material.of_kind(merge.into)
        if not targets:
            first = merge.from_[0]
            targets = material.from_source(first) or material.of_kind(first)
        return _ordered(u for u in targets if u.kind in PIECE_KINDS)
    return _ordered(u for u in material.processed() if u.kind in PIECE_KINDS)


def _ordered(units: object) -> list[UnitView]:
    """Slot order (units without a slot after, by name): the order a carrier is unloaded."""
    seq: Sequence[UnitView] = list(units)  # type: ignore[call-overload]
    return sorted(seq, key=lambda u: (u.slot is None, u.slot or 0, u.name))


def mean_results(per_piece: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The step's results over its pieces, for what reads one value per step (feed-forward,
    SPC): the mean of each result."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for results in per_piece.values():
        for k, v in results.items():
            sums[k] = sums.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}
