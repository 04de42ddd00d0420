"""Lot administration from any process: hold, pause, abort, release, confirm.

If a live controller drives the lot, hold, pause and abort become requests it applies
between steps (abort also stops the running job at once). Otherwise they apply directly.
Every change writes its MES event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from controller.engine.engine import ME, _alive
from controller.events import event
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot, StepRun, utcnow
from drivers.base import ToolDriver
from drivers.errors import LotStateError, ParameterError, ToolError
from drivers.interface import ToolState

FINAL = ("completed", "aborted", "scrapped")
ACTION_STATE = {"hold": "held", "pause": "paused", "abort": "aborted"}

StopJob = Callable[[str, str], Awaitable[str]]
"""(tool id, job id) -> what happened: stop a job a lot left running on a tool."""


def driven(lot: Lot) -> bool:
    """A live controller (this process's runner included) drives the lot: hold, pause and
    abort must go to it as requests, or it would run on as if nothing happened."""
    return bool(lot.owner) and (lot.owner == ME or _alive(lot.owner or ""))


async def request(db: Database, lot_id: str, action: str, reason: str | None) -> str:
    """hold / pause / abort; returns what happened, for the operator."""
    if action not in ACTION_STATE:
        raise ParameterError(f"unknown action {action!r}")

    def tx(s: Session) -> str:
        lot = store.get_lot(s, lot_id, for_update=True)
        _check(lot, action)
        why = reason or f"{action} requested"
        if driven(lot):
            store.set_lot(lot, request=action, request_reason=why)
            when = "now (the running job is stopped)" if action == "abort" else "between steps"
            return (
                f"lot {lot.id}: {action} requested from controller {lot.owner}; takes effect {when}"
            )
        _apply(s, lot, action, why)
        return f"lot {lot.id}: {ACTION_STATE[action]}"

    return await db.run(tx)


def _check(lot: Lot, action: str) -> None:
    if lot.state in FINAL:
        raise LotStateError(f"lot {lot.id} is {lot.state}: nothing to {action}")
    if action == "hold" and lot.state == "held":
        raise LotStateError(f"lot {lot.id} is already held ({lot.hold_reason})")


def _apply(s: Session, lot: Lot, action: str, why: str) -> None:
    state = ACTION_STATE[action]
    store.set_lot(
        lot,
        state=state,
        hold_reason=why if state != "paused" else None,
        request=None,
        request_reason=None,
    )
    if action == "abort":
        _abort_open_run(s, lot, why)
    if action in ("hold", "abort"):
        store.add_events(s, lot.station, [event(action, lot_id=lot.id, data={"reason": why})], lot)


async def abort(db: Database, lot_id: str, reason: str | None, stop_job: StopJob) -> str:
    """Abort at once with the reason given. A live controller stops its running job itself;
    with none, a job the lot left running on a tool is stopped here (`stop_job`)."""
    why = reason or "abort requested"
    lot = await db.run(lambda s: store.get_lot(s, lot_id))
    _check(lot, "abort")
    if driven(lot):
        return await request(db, lot_id, "abort", why)
    note = ""
    job = await open_job(db, lot_id)
    if job is not None:
        note = "; " + await stop_job(*job)

    def tx(s: Session) -> str:
        lot = store.get_lot(s, lot_id, for_update=True)
        _check(lot, "abort")
        if driven(lot):  # a controller took the lot meanwhile: it stops the job
            store.set_lot(lot, request="abort", request_reason=why)
            return f"lot {lot.id}: abort requested from controller {lot.owner}"
        _apply(s, lot, "abort", why)
        return f"lot {lot.id}: aborted{note}"

    return await db.run(tx)


async def stop_job_on(driver: ToolDriver, job_id: str) -> str:
    """Stop `job_id` if `driver`'s tool is still running it; say what happened."""
    tool = driver.tool_id
    try:
        st = await driver.status()
        if st.job_id != job_id or st.state not in (ToolState.RUNNING, ToolState.SETUP):
            return f"job {job_id} is not running on {tool}"
        await driver.abort()
        return f"job {job_id} stopped on {tool}"
    except ToolError as e:
        return f"could not reach {tool} to stop job {job_id} ({e})"


def _abort_open_run(s: Session, lot: Lot, why: str) -> StepRun | None:
    run = store.open_step_run(s, lot.id, lot.next_step)
    if run is not None and run.state in ("started", "waiting"):
        run.state, run.message, run.ended_at = "aborted", why, utcnow()
        return run
    return None


async def open_job(db: Database, lot_id: str) -> tuple[str, str] | None:
    """(tool id, job id) of a job the lot may have running, if any."""

    def tx(s: Session) -> tuple[str, str] | None:
        lot = store.get_lot(s, lot_id)
        run = store.open_step_run(s, lot.id, lot.next_step)
        if run is not None and run.state == "started" and run.tool_id and run.job_id:
            return run.tool_id, run.job_id
        return None

    return await db.run(tx)


async def release(db: Database, lot_id: str, note: str | None = None) -> str:
    def tx(s: Session) -> str:
        lot = store.get_lot(s, lot_id, for_update=True)
        if lot.state not in ("held", "paused"):
            raise LotStateError(f"lot {lot.id} is {lot.state}: only held or paused lots release")
        was = lot.hold_reason
        store.set_lot(lot, state="queued", hold_reason=None, request=None, request_reason=None)
        store.add_events(
            s, lot.station, [event("release", lot_id=lot.id, data={"was": was, "note": note})], lot
        )
        return f"lot {lot.id}: released (was: {was or 'paused'}); `fabline resume {lot.id}` runs it"

    return await db.run(tx)


async def confirm(db: Database, lot_id: str, data: Mapping[str, Any], by: str = "operator") -> str:
    """Confirm the external step a lot waits at, with the returned material's data."""

    def tx(s: Session) -> str:
        lot = store.get_lot(s, lot_id, for_update=True)
        run = store.open_step_run(s, lot.id, lot.next_step)
        if lot.state != "waiting" or run is None or run.state != "waiting":
            raise LotStateError(f"lot {lot.id} is {lot.state}, not waiting at an external step")
        wanted = list(run.setpoints.get("returns", []))
        missing = [f for f in wanted if f not in data]
        extra = [f for f in data if f not in wanted]
        if missing or extra:
            raise ParameterError(
                f"step {run.step_id} returns {', '.join(wanted) or 'nothing'}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        run.state, run.results, run.ended_at = "confirmed", dict(data), utcnow()
        store.set_lot(lot, state="queued", next_step=lot.next_step + 1)
        store.add_events(
            s,
            lot.station,
            [
                event(
                    "external_confirmed",
                    lot_id=lot.id,
                    step_id=run.step_id,
                    data={"returned": dict(data), "by": by},
                )
            ],
            lot,
        )
        return f"lot {lot.id}: step {run.step_id} confirmed; `fabline resume {lot.id}` continues"

    return await db.run(tx)
