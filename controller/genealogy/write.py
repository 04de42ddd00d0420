"""Writing one step's genealogy: the change a step made to a lot's material, as rows.

`Change` is what the engine's planning (controller/engine/material.py) decided a step did —
new units, edges between units, units that end, bins and attributes — and `write_change`
writes it inside the step's commit transaction. The genealogy benchmark calls the same
function (bench/genealogy.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from controller.events import EventBase
from controller.genealogy import store
from controller.genealogy.store import NewUnit


class EdgeRow(NamedTuple):
    parent: str  # unit names; ids are looked up when written
    child: str
    kind: str  # merge, split, consume


@dataclass
class Change:
    units: list[NewUnit] = field(default_factory=list)
    edges: list[EdgeRow] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)  # name -> merged/split/consumed
    bins: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> bin, why
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> attributes
    events: list[EventBase] = field(default_factory=list)  # genealogy events, lot/step unset

    def __bool__(self) -> bool:
        return bool(self.units or self.edges or self.ended or self.bins or self.attributes)


def write_change(
    s: Session,
    lot_id: str,
    change: Change,
    run_id: int | None,
    step_index: int,
    known: Mapping[str, int],
    run_of: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Write a step's genealogy change; return the ids of the new units. `known` gives ids
    already at hand (the lot's active units, the step's consumable lots), so only parts
    merged earlier (chips on a strip) are looked up by name. `run_of`: for a step of several
    jobs, the run of each piece (an edge names the run of its child, else of its parent)."""
    if not change:
        return {}
    runs = run_of or {}
    for row in change.units:
        row["lot_id"] = lot_id
    new_ids = store.insert_units(s, change.units)
    ids = {**known, **new_ids}
    ids |= store.ids_by_name(s, {e.parent for e in change.edges if e.parent not in ids})
    store.insert_edges(
        s,
        [
            {"parent_id": ids[e.parent], "child_id": ids[e.child], "kind": e.kind,
             "step_run_id": runs.get(e.child) or runs.get(e.parent) or run_id}
            for e in change.edges
        ],
    )  # fmt: skip
    by_state: dict[str, list[int]] = {}
    for name, state in change.ended.items():
        by_state.setdefault(state, []).append(ids[name])
    for state, unit_ids in by_state.items():
        store.end_units(s, unit_ids, state, step_index)
    store.set_bins(s, {ids[n]: b for n, b in change.bins.items() if n in ids})
    for name, attributes in change.attributes.items():
        if name in ids:
            store.set_attributes(s, ids[name], attributes)
    return new_ids
