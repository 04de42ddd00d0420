"""Lot operations: split, merge, scrap and rework, each one function over the open Session of
one transaction (the lot service runs them; every front door calls the service).

Each moves the lots by the lifecycle table (controller/lots/lifecycle.py), writes its MES
events with the lots' sequence numbers, and records the genealogy: a `lot_link` from parent
to child (split), from each lot merged to the lot kept (merge) or from the lot to itself
(rework, with the step it left and the one it re-entered at), naming the units that moved, so
a trace reads a moved unit's earlier steps from the lot it came from. A lot a live controller
drives is refused: an operation happens between jobs, on a lot held, paused or queued.

Units are a lot's genealogy units as they are at its next step (wafers, panels, stacks,
strips, packages): per-piece processing is not built, so a split is by unit names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.events import (
    LotMerged,
    LotMergedData,
    LotMergedInto,
    LotReworked,
    LotScrapped,
    LotSplit,
    LotSplitData,
    ReworkData,
    ScrapData,
    UnitsScrapped,
)
from controller.genealogy import store
from controller.genealogy.models import Lot, LotLink, Unit, utcnow
from controller.lots import areas, lifecycle
from controller.lots.inputs import ID_RULE, LOT_ID
from controller.lots.lease import driven
from controller.recipes.expand import Expansion
from drivers.errors import LotStateError, ParameterError, shown

SCRAP_BIN = "scrapped"  # the bin a scrapped unit gets: die maps and traces show it
MAX_LISTED = 5  # unit names a refusal lists


@dataclass(frozen=True)
class Done:
    """What an operation did, in one line for every front door."""

    message: str
    lots: tuple[str, ...]  # the lots that may run on (a front door takes them up)


def locked(s: Session, lot_id: str, action: str) -> Lot:
    """The lot, locked for the transaction, if the table allows `action` and no live
    controller drives it."""
    lot = store.get_lot(s, lot_id, for_update=True)
    lifecycle.check(lot, action)
    if driven(s, lot):
        raise LotStateError(
            f"lot {lot.id} is driven by controller {lot.owner}: hold it first ({action} happens"
            " between jobs)"
        )
    return lot


def active_units(
    s: Session, lot: Lot, names: Sequence[str], have: Sequence[Unit] | None = None
) -> list[Unit]:
    """The lot's active units named (all of them for no names), from `have` if given (the
    lot's active units, read once); ParameterError naming the first names it lacks."""
    if have is None:
        have = [u for u in store.lot_units(s, lot.id) if u.state == "active"]
    if not names:
        return list(have)
    by_name = {u.name: u for u in have}
    missing = [n for n in dict.fromkeys(names) if n not in by_name]
    if missing:
        listed = ", ".join(shown(n) for n in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        theirs = ", ".join(u.name for u in have[:MAX_LISTED]) or "none"
        raise ParameterError(
            f"lot {lot.id} has no active unit {listed}{more} (its units: {theirs}"
            + (f" … {len(have)} in all)" if len(have) > MAX_LISTED else ")")
        )
    return [by_name[n] for n in dict.fromkeys(names)]


def _ids(units: Sequence[Unit]) -> list[int]:
    return [u.id for u in units if u.id is not None]


def _move(s: Session, units: Sequence[Unit], to_lot: str) -> None:
    ids = _ids(units)
    for i in range(0, len(ids), 5000):
        s.execute(update(Unit).where(col(Unit.id).in_(ids[i : i + 5000])).values(lot_id=to_lot))


# -- split -------------------------------------------------------------------------------------


def split(s: Session, lot_id: str, child_id: str, names: Sequence[str]) -> tuple[Lot, Lot]:
    """Move the named units of `lot_id` into a new lot `child_id` with the parent's recipe,
    options, state (and hold) and next step."""
    if not names:
        raise ParameterError(f"split of lot {lot_id}: name the units that go to {child_id}")
    parent = locked(s, lot_id, "split")
    if not LOT_ID.match(child_id):
        raise ParameterError(f"lot id {shown(child_id)!r}: 1-32 {ID_RULE}")
    existing = s.get(Lot, child_id)
    if existing is not None:
        raise LotStateError(f"lot {child_id} already exists ({existing.state})")
    every = active_units(s, parent, ())
    moving = active_units(s, parent, names, every)
    if len(moving) == len(every):
        raise ParameterError(
            f"split of lot {parent.id}: every unit would move to {child_id};"
            " a split leaves at least one unit in the lot"
        )
    child = Lot(
        id=child_id,
        recipe_id=parent.recipe_id,
        recipe_version=parent.recipe_version,
        recipe_hash=parent.recipe_hash,
        options=dict(parent.options),
        state=parent.state,
        hold_reason=parent.hold_reason,
        hold_kind=parent.hold_kind,
        hold_code=parent.hold_code,
        priority=parent.priority,
        next_step=parent.next_step,
        step_count=parent.step_count,
        station=parent.station,
        area=parent.area,
        supplies=dict(parent.supplies),
    )
    s.add(child)
    s.flush()
    _move(s, moving, child.id)
    unit_names = [u.name for u in moving]
    data = LotSplitData(
        parent=parent.id,
        child=child.id,
        units=unit_names,
        next_step=parent.next_step,
        state=parent.state,
    )
    s.add(LotLink(kind="split", parent_lot=parent.id, child_lot=child.id,
                  step_index=parent.next_step, units=_ids(moving)))  # fmt: skip
    lifecycle.operate(s, parent, "split", [LotSplit(lot_id=parent.id, data=data)])
    store.add_events(s, child.station, [LotSplit(lot_id=child.id, data=data)], child)
    s.flush()  # the child's sequence number, before anything reads its row again
    return parent, child


# -- merge -------------------------------------------------------------------------------------


def merge(s: Session, into_id: str, others: Sequence[str]) -> tuple[Lot, list[str]]:
    """Move every active unit of `others` into lot `into_id`: same recipe version and options,
    same next step, same state. The lots merged are final (`merged`)."""
    if not others:
        raise ParameterError(f"merge into lot {into_id}: name the lots to merge into it")
    if into_id in others or len(set(others)) != len(others):
        raise ParameterError(f"merge into lot {into_id}: each lot once, and not itself")
    into = locked(s, into_id, "merge")
    merged: list[tuple[Lot, list[Unit]]] = []
    for other_id in others:
        other = locked(s, other_id, "merge_into")
        for what, mine, theirs in (
            ("recipe", f"{into.recipe_id} v{into.recipe_version}",
             f"{other.recipe_id} v{other.recipe_version}"),
            ("recipe content", into.recipe_hash, other.recipe_hash),
            ("options", str(dict(into.options)), str(dict(other.options))),
            ("next step", str(into.next_step + 1), str(other.next_step + 1)),
            ("state", into.state, other.state),
        ):  # fmt: skip
            if mine != theirs:
                raise LotStateError(
                    f"lot {other.id} cannot merge into lot {into.id}: {what} {theirs} is not {mine}"
                )
        merged.append((other, active_units(s, other, ())))
    units: list[str] = []
    for other, moving in merged:
        _move(s, moving, into.id)
        names = [u.name for u in moving]
        units += names
        data = LotMergedData(into=into.id, lots=[other.id], units=names, next_step=into.next_step)
        s.add(LotLink(kind="merge", parent_lot=other.id, child_lot=into.id,
                      step_index=into.next_step, units=_ids(moving)))  # fmt: skip
        lifecycle.apply(s, other, "merge_into", events=[LotMergedInto(lot_id=other.id, data=data)])
    data = LotMergedData(into=into.id, lots=list(others), units=units, next_step=into.next_step)
    lifecycle.operate(s, into, "merge", [LotMerged(lot_id=into.id, data=data)])
    return into, units


# -- scrap -------------------------------------------------------------------------------------


def scrap(s: Session, lot_id: str, names: Sequence[str], code: str, reason: str) -> Lot:
    """Scrap the named units of the lot (none named: the whole lot). Scrapped units leave the
    lot's counts and its next steps; their bin says scrapped, with the code and reason. A
    scrap of every unit the lot still has scraps the lot."""
    lot = locked(s, lot_id, "scrap_units" if names else "scrap")
    every = active_units(s, lot, ())
    going = active_units(s, lot, names, every)
    whole = len(going) == len(every)
    if whole:
        lifecycle.check(lot, "scrap")
    ids = _ids(going)
    last = lot.next_step - 1  # the last step they went through
    for i in range(0, len(ids), 5000):
        s.execute(
            update(Unit)
            .where(col(Unit.id).in_(ids[i : i + 5000]))
            .values(state="scrapped", bin=SCRAP_BIN, bin_reason=reason, ended_step=last)
        )
    data = ScrapData(
        code=code, reason=reason, units=[u.name for u in going], remaining=len(every) - len(going)
    )
    if whole:
        lifecycle.apply(s, lot, "scrap", events=[LotScrapped(lot_id=lot.id, data=data)])
    else:
        lifecycle.operate(s, lot, "scrap_units", [UnitsScrapped(lot_id=lot.id, data=data)])
    return lot


# -- rework ------------------------------------------------------------------------------------


def rework(s: Session, lot_id: str, route_id: str, exp: Expansion, comment: str | None) -> Lot:
    """Send the lot back to the step its recipe's rework route `route_id` names: it is queued
    there (its hold cleared), and the steps from there run again."""
    lot = locked(s, lot_id, "rework")
    r = exp.recipe
    route = r.rework_route(route_id)
    if route is None:
        known = ", ".join(x.id for x in r.rework_routes) or "none"
        raise ParameterError(
            f"recipe {r.id} v{r.version} has no rework route {shown(route_id)!r} (routes: {known})"
        )
    last = exp.steps[lot.next_step - 1] if 0 < lot.next_step <= len(exp.steps) else None
    if last is None or last.template not in route.at:
        after = f"after step {last.id}" if last is not None else "before its first step"
        raise LotStateError(
            f"lot {lot.id} is {after}: rework route {route.id} applies after {', '.join(route.at)}"
        )
    back = [i for i, st in enumerate(exp.steps[: lot.next_step]) if st.template == route.to]
    if not back:
        raise LotStateError(
            f"lot {lot.id}: step {route.to} of rework route {route.id} is not in its flow"
            " before this point (the lot's options leave it out)"
        )
    to = back[-1]
    units = active_units(s, lot, ())
    newer = [u for u in units if u.created_step >= to]
    if newer:
        raise LotStateError(
            f"lot {lot.id}: its {newer[0].kind}s were made at step {newer[0].created_step + 1},"
            f" after {exp.steps[to].id} where rework route {route.id} re-enters"
        )
    for st in exp.steps[to : lot.next_step]:
        if st.genealogy.merge or st.genealogy.split:
            raise LotStateError(
                f"lot {lot.id}: rework route {route.id} would run step {st.id} again, which"
                " changes genealogy"
            )
    _leave_open_run(s, lot, f"rework route {route.id}")
    reason = route.reason + (f": {comment}" if comment else "")
    data = ReworkData(route=route.id, from_index=last.index, from_step=last.id, to_index=to,
                      to_step=exp.steps[to].id, reason=reason)  # fmt: skip
    s.add(LotLink(kind="rework", parent_lot=lot.id, child_lot=lot.id, step_index=last.index,
                  to_step=to, units=_ids(units), reason=reason))  # fmt: skip
    area = areas.load(s).first(exp.steps[to:])
    event = LotReworked(lot_id=lot.id, step_id=exp.steps[to].id, data=data)
    lifecycle.apply(s, lot, "rework", events=[event], next_step=to, area=area, hold_code=None)
    return lot


def _leave_open_run(s: Session, lot: Lot, why: str) -> None:
    """A run of the lot's next step that never finished (its start failed, or it waits for a
    confirmation) is closed: the lot will not come back to it as it was."""
    run = store.open_step_run(s, lot.id, lot.next_step)
    if run is not None and run.state in ("started", "failed", "waiting"):
        run.state, run.message, run.ended_at = "aborted", why, utcnow()
