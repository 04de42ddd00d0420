"""The one lot service every front door calls: create, hold, pause, release, abort, confirm,
and the lot operations split, merge, scrap and rework (controller/lots/operations.py).

A lot a live controller drives (a runner in this process or another) gets hold, pause and
abort as requests its runner applies — hold and pause between steps, abort at once, stopping
the running job. A lot nobody drives changes here directly; an abort still stops a job the
lot left running on a tool (`stop_job`). Every change and its MES event are one transaction
(controller/lots/lifecycle.py).

Every method takes an optional `actor` (controller/access): who acts, with which role, with
which reason code and comment. With an actor the service checks the role's scope (and, for
a release, the least role the hold's code allows) and writes the audit row and its MES event
in the same transaction as the effect; a denied or refused action is audited too. Without
one (the engine's own calls, tests) nothing is checked or audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from sqlalchemy.orm import Session

from controller.access import Actor, HoldCodes, Role, Scope, ScrapCodes, article
from controller.events import ExternalConfirmed, ExternalConfirmedData, LotCreated, LotCreatedData
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot, utcnow
from controller.lots import areas, audit, lease, lifecycle, operations
from controller.lots.lease import ME, driven
from controller.lots.lifecycle import HoldReason, LotState
from controller.lots.request import LotPlan, LotRequest, plan
from controller.recipes import LoadedRecipe
from controller.recipes.cache import Expansions
from controller.recipes.expand import Expansion
from drivers.base import ToolDriver
from drivers.errors import FablineError, Forbidden, LotStateError, ParameterError, ToolError, shown
from drivers.interface import ToolState
from drivers.units import format_quantity, to_unit

log = structlog.get_logger("fabline.lots")
T = TypeVar("T")

StopJob = Callable[[str, str], Awaitable[str]]
"""(tool id, job id) -> what happened: stop a job a lot left running on a tool."""


async def _cannot_stop(tool_id: str, job_id: str) -> str:
    return f"job {job_id} on {tool_id} not stopped (no line to reach it)"


class LotService:
    def __init__(
        self,
        db: Database,
        *,
        station: str,
        stop_job: StopJob = _cannot_stop,
        expansions: Expansions | None = None,
        allow_draft: bool = False,
        wake: Callable[[str], None] = lambda lot_id: None,
        holds: HoldCodes | None = None,
        scrap_codes: ScrapCodes | None = None,
    ) -> None:
        self.db = db
        self.holds = holds or HoldCodes()
        self.scrap_codes = scrap_codes or ScrapCodes()
        self.station = station
        self.stop_job = stop_job
        self.expansions = expansions
        self.allow_draft = allow_draft
        self.wake = wake  # a request for a lot this process drives: its runner looks now

    # -- create -------------------------------------------------------------------------

    async def create(
        self,
        request: LotRequest,
        *,
        owner: str | None = ME,
        station: str | None = None,
        recipe: LoadedRecipe | None = None,
        actor: Actor | None = None,
    ) -> Lot:
        """Record the lot with its input units. It is owned by this process from the start
        (it runs it next) or by nobody (`owner=None`: `station` picks it up)."""

        async def work() -> Lot:
            if actor is not None:
                actor.require(Scope.DISPATCH, f"dispatch lot {shown(request.lot_id)}")
            p = plan(request, allow_draft=self.allow_draft, recipe=recipe)
            if self.expansions is not None:  # the runner finds the same expansion
                self.expansions.put(p.recipe, p.expansion)
            at = station or self.station

            def tx(s: Session) -> Lot:
                lot = _create(s, p, at, owner)
                r = p.recipe.recipe
                self._audit_ok(s, actor, "dispatch", lot, f"dispatched: {r.id} v{r.version}")
                return lot

            return await self.db.run(tx)

        lot = await self._audited(actor, "dispatch", request.lot_id, work)
        log.info("lots.created", lot_id=lot.id, recipe=lot.recipe_id)
        return lot

    # -- the audit trail ------------------------------------------------------------------

    def _audit_ok(self, s: Session, actor: Actor | None, action: str, lot: Lot, text: str) -> None:
        if actor is not None:
            audit.record(
                s, station=self.station, actor=actor, action=action, target=lot.id,
                result="ok", message=text, lot=lot,
            )  # fmt: skip

    async def _audited(
        self, actor: Actor | None, action: str, target: str, work: Callable[[], Awaitable[T]]
    ) -> T:
        return await audit.attempted(self.db, self.station, actor, action, target, work)

    def _code(self, actor: Actor | None) -> str | None:
        """The actor's hold reason code, checked against the station's codes."""
        if actor is None or actor.reason_code is None:
            return None
        if self.holds.get(actor.reason_code) is None:
            known = ", ".join(c.code for c in self.holds.codes)
            raise ParameterError(f"unknown hold code {shown(actor.reason_code)!r} (codes: {known})")
        return actor.reason_code

    # -- hold, pause, abort, release, confirm ------------------------------------------

    async def hold(self, lot_id: str, reason: HoldReason, actor: Actor | None = None) -> str:
        return await self._stop(lot_id, "hold", reason, actor, Scope.HOLD)

    async def pause(self, lot_id: str, reason: HoldReason, actor: Actor | None = None) -> str:
        return await self._stop(lot_id, "pause", reason, actor, Scope.PAUSE)

    async def abort(self, lot_id: str, reason: HoldReason, actor: Actor | None = None) -> str:
        """At once: a driven lot's runner stops its job; otherwise a job the lot left
        running on a tool is stopped here, then the lot is aborted with `reason`."""

        async def work() -> str:
            if actor is not None:
                actor.require(Scope.ABORT, f"abort lot {shown(lot_id)}")
            self._code(actor)

            def read(s: Session) -> tuple[Lot, bool]:
                lot = store.get_lot(s, lot_id)
                return lot, driven(s, lot)

            lot, is_driven = await self.db.run(read)
            lifecycle.check(lot, "abort")
            note = ""
            if not is_driven:
                job = await self.db.run(lambda s: _open_job(s, lot_id))
                if job is not None:
                    note = "; " + await self.stop_job(*job)
            return await self._stop_tx(lot_id, "abort", reason, actor, note)

        return await self._audited(actor, "abort", lot_id, work)

    async def _stop(
        self, lot_id: str, action: str, reason: HoldReason, actor: Actor | None, scope: Scope
    ) -> str:
        async def work() -> str:
            if actor is not None:
                actor.require(scope, f"{action} lot {shown(lot_id)}")
            return await self._stop_tx(lot_id, action, reason, actor)

        return await self._audited(actor, action, lot_id, work)

    async def _stop_tx(
        self, lot_id: str, action: str, reason: HoldReason, actor: Actor | None, note: str = ""
    ) -> str:
        code = self._code(actor) if action in ("hold", "abort") else None

        def tx(s: Session) -> tuple[str, bool]:
            lot = store.get_lot(s, lot_id, for_update=True)
            if driven(s, lot):
                lifecycle.ask(lot, action, reason)
                if code is not None:  # the hold the runner applies carries the operator's code
                    store.set_lot(lot, hold_code=code)
                when = "now (the running job is stopped)" if action == "abort" else "between steps"
                message = (
                    f"lot {lot.id}: {action} requested from controller {lot.owner};"
                    f" takes effect {when}"
                )
                self._audit_ok(s, actor, action, lot, message)
                return message, lot.owner == ME
            if action == "abort":
                _abort_open_run(s, lot, reason.text)
            if action in ("hold", "abort"):
                lifecycle.apply(s, lot, action, reason=reason, hold_code=code)
            else:
                lifecycle.apply(s, lot, action, reason=reason)
            message = f"lot {lot.id}: {lot.state}{note}"
            self._audit_ok(s, actor, action, lot, message)
            return message, False

        message, here = await self.db.run(tx)
        if here:
            self.wake(lot_id)
        return message

    def release_role(self, lot: Lot) -> tuple[Role, str]:
        """The least role that releases this lot, and why (a paused lot: an operator)."""
        if lot.state == LotState.PAUSED:
            return Role.OPERATOR, "a pause"
        return self.holds.release_role(lot.hold_kind, lot.hold_code)

    async def release(
        self, lot_id: str, note: str | None = None, actor: Actor | None = None
    ) -> str:
        def tx(s: Session) -> str:
            lot = store.get_lot(s, lot_id, for_update=True)
            if actor is not None and lot.state in (LotState.HELD, LotState.PAUSED):
                role, why = self.release_role(lot)
                if not actor.role.at_least(role):
                    raise Forbidden(
                        f"lot {lot.id}: {why} is released by {article(role)} or above;"
                        f" {actor.name} is {article(actor.role)}"
                    )
            was = lot.hold_reason or "paused"
            lifecycle.apply(s, lot, "release", note=note, hold_code=None)
            message = f"lot {lot.id}: released (was: {was})"
            self._audit_ok(s, actor, "release", lot, message)
            return message

        async def work() -> str:
            if actor is not None:
                actor.require(Scope.RELEASE, f"release lot {shown(lot_id)}")
            return await self.db.run(tx)

        return await self._audited(actor, "release", lot_id, work)

    async def confirm(
        self,
        lot_id: str,
        data: Mapping[str, str],
        by: str = "operator",
        actor: Actor | None = None,
    ) -> str:
        """Confirm the external step a lot waits at, with the returned material's data."""

        def tx(s: Session) -> str:
            if actor is not None:
                actor.require(Scope.CONFIRM, f"confirm lot {shown(lot_id)}")
            lot = store.get_lot(s, lot_id, for_update=True)
            run = store.open_step_run(s, lot.id, lot.next_step)
            if lot.state != LotState.WAITING or run is None or run.state != "waiting":
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
            outside = _outside_spec(run.step_id, run.setpoints.get("spec", {}), data)
            run.state, run.results, run.ended_at = "confirmed", dict(data), utcnow()
            confirmed = ExternalConfirmed(
                lot_id=lot.id,
                step_id=run.step_id,
                data=ExternalConfirmedData(returned=dict(data), by=by),
            )
            lifecycle.apply(s, lot, "confirm", events=[confirmed], next_step=lot.next_step + 1)
            message = f"lot {lot.id}: step {run.step_id} confirmed"
            if outside:  # the material is back, and not as ordered: an engineer decides
                reason = f"out of spec at step {run.step_id}: {'; '.join(outside)}"
                why = HoldReason("out_of_spec", reason)
                lifecycle.apply(s, lot, "hold", reason=why, step_id=run.step_id)
                message += f", and held: {reason}"
            self._audit_ok(s, actor, "confirm", lot, message)
            return message

        return await self._audited(actor, "confirm", lot_id, lambda: self.db.run(tx))

    # -- split, merge, scrap, rework ----------------------------------------------------------

    async def split(
        self,
        lot_id: str,
        units: Sequence[str],
        child_id: str | None = None,
        actor: Actor | None = None,
    ) -> operations.Done:
        """Move `units` of a lot nobody drives into a new child lot (`child_id`, else the
        parent's id with the next free `.N`) at the same step, in the same state."""

        def tx(s: Session) -> operations.Done:
            child = child_id or _next_child(s, lot_id)
            parent, new = operations.split(s, lot_id, child, units)
            message = (
                f"lot {parent.id}: {len(set(units))} unit(s) split into lot {new.id}"
                f" ({new.state}, {_position(new)})"
            )
            self._audit_ok(s, actor, "split", parent, message)
            return operations.Done(message, _queued(parent, new))

        return await self._operation(actor, Scope.SPLIT, "split", lot_id, tx)

    async def merge(
        self, into_id: str, others: Sequence[str], actor: Actor | None = None
    ) -> operations.Done:
        """Merge lots with the same recipe version, options, next step and state into
        `into_id`; they end `merged`."""

        def tx(s: Session) -> operations.Done:
            into, units = operations.merge(s, into_id, others)
            message = (
                f"lot {into.id}: merged {', '.join(others)} ({len(units)} unit(s));"
                f" {into.state}, {_position(into)}"
            )
            self._audit_ok(s, actor, "merge", into, message)
            return operations.Done(message, _queued(into))

        return await self._operation(actor, Scope.SPLIT, "merge", into_id, tx)

    async def scrap(
        self,
        lot_id: str,
        units: Sequence[str],
        code: str | None,
        comment: str | None = None,
        actor: Actor | None = None,
    ) -> operations.Done:
        """Scrap some units of a lot (none named: the whole lot) with a scrap code."""

        def tx(s: Session) -> operations.Done:
            if not code:
                raise ParameterError(
                    f"scrap of lot {shown(lot_id)} needs a reason code"
                    f" (codes: {self.scrap_codes.names()})"
                )
            known = self.scrap_codes.get(code)
            if known is None:
                raise ParameterError(
                    f"unknown scrap code {shown(code)!r} (codes: {self.scrap_codes.names()})"
                )
            reason = f"{known.code}: {comment or known.text}"
            lot = operations.scrap(s, lot_id, units, known.code, reason)
            whole = lot.state == LotState.SCRAPPED
            what = "lot scrapped" if whole else f"{len(set(units))} unit(s)"
            message = f"lot {lot.id}: {what} ({reason})"
            self._audit_ok(s, actor, "scrap", lot, message)
            return operations.Done(message, ())

        return await self._operation(actor, Scope.SCRAP, "scrap", lot_id, tx)

    async def rework(
        self,
        lot_id: str,
        route: str,
        *,
        units: Sequence[str] = (),
        child_id: str | None = None,
        comment: str | None = None,
        actor: Actor | None = None,
    ) -> operations.Done:
        """Send the lot back by its recipe's rework route `route` (queued at the route's
        step); with `units`, those are split into a child lot first and the child is sent."""

        def tx(s: Session) -> operations.Done:
            target, note = lot_id, ""
            if units:
                target = child_id or _next_child(s, lot_id)
                operations.split(s, lot_id, target, units)
                note = f" (split from {lot_id}: {len(set(units))} unit(s))"
            exp = self._expansion(s, target)
            lot = operations.rework(s, target, route, exp, comment)
            message = (
                f"lot {lot.id}{note}: rework route {route}, queued at step"
                f" {lot.next_step + 1}/{lot.step_count} {exp.steps[lot.next_step].id}"
            )
            self._audit_ok(s, actor, "rework", lot, message)
            return operations.Done(message, _queued(lot))

        return await self._operation(actor, Scope.REWORK, "rework", lot_id, tx)

    def _expansion(self, s: Session, lot_id: str) -> Expansion:
        lot = store.get_lot(s, lot_id)
        cache = self.expansions or Expansions()
        label = f"<lot {lot.id}: {lot.recipe_id} v{lot.recipe_version}>"
        text = store.recipe_text(s, lot.recipe_hash)
        return cache.get(lot.recipe_hash, text, label, lot.options)[1]

    async def _operation(
        self,
        actor: Actor | None,
        scope: Scope,
        action: str,
        lot_id: str,
        tx: Callable[[Session], operations.Done],
    ) -> operations.Done:
        async def work() -> operations.Done:
            if actor is not None:
                actor.require(scope, f"{action} lot {shown(lot_id)}")
            return await self.db.run(tx)

        done = await self._audited(actor, action, lot_id, work)
        log.info(f"lots.{action}", lot_id=lot_id, message=done.message)
        return done


def _next_child(s: Session, lot_id: str) -> str:
    """`<lot>.1`, `<lot>.2`, ...: the first id no lot has."""
    n = 1
    while s.get(Lot, f"{lot_id}.{n}") is not None:
        n += 1
    return f"{lot_id}.{n}"


def _position(lot: Lot) -> str:
    if lot.next_step >= lot.step_count:
        return "after its last step"
    return f"next step {lot.next_step + 1}/{lot.step_count}"


def _queued(*lots: Lot) -> tuple[str, ...]:
    return tuple(lot.id for lot in lots if lot.state == LotState.QUEUED)


def _outside_spec(
    step_id: str, spec: Mapping[str, Mapping[str, Any]], data: Mapping[str, str]
) -> list[str]:
    """Returned fields outside the step's spec (limits recorded with its run); a value that
    is not a quantity in the field's unit is refused, naming step, field and unit."""
    out: list[str] = []
    for name, lim in spec.items():
        unit, lo, hi = str(lim.get("unit", "")), lim.get("min"), lim.get("max")
        try:
            v = to_unit(data[name], unit)
        except FablineError as e:
            raise ParameterError(
                f"step {step_id}: {name} {shown(data[name])!r} is not a quantity in {unit} ({e})"
            ) from None
        if lo is not None and v < lo:
            out.append(f"{name} {format_quantity(v, unit)} < {format_quantity(lo, unit)}")
        elif hi is not None and v > hi:
            out.append(f"{name} {format_quantity(v, unit)} > {format_quantity(hi, unit)}")
    return out


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


def _create(s: Session, p: LotPlan, station: str, owner: str | None) -> Lot:
    r = p.recipe.recipe
    store.save_recipe(
        s,
        hash=p.recipe.hash,
        recipe_id=r.id,
        version=r.version,
        status=r.status,
        text=p.recipe.text,
    )
    existing = s.get(Lot, p.lot_id)
    if existing is not None:
        raise LotStateError(f"lot {p.lot_id} already exists ({existing.state})")
    line = areas.load(s)  # as the line's stations recorded them: the same for every door
    line.check(p.expansion.steps)
    lot = Lot(
        id=p.lot_id,
        recipe_id=r.id,
        recipe_version=r.version,
        recipe_hash=p.recipe.hash,
        options=dict(p.expansion.options),
        state=LotState.QUEUED.value,
        priority=p.priority,
        step_count=len(p.expansion.steps),
        station=station,
        owner=owner,
        lease_expires=lease.db_now(s) + lease.TTL if owner else None,  # until its runner claims
        area=line.first(p.expansion.steps),
        supplies=dict(p.supplies),
    )
    s.add(lot)
    s.flush()
    rows = [
        store.NewUnit(
            name=u.name,
            kind=r.inputs[name].kind,
            lot_id=lot.id,
            slot=u.slot,
            attributes={"input": name, **u.attributes},
        )
        for name, units in p.inputs.items()
        for u in units
    ]
    taken = store.ids_by_name(s, [row["name"] for row in rows])
    if taken:
        raise ParameterError(
            f"unit ids already used by other lots: {', '.join(sorted(taken)[:5])}"
            + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        )
    # an upstream lot is one unit, however many lots draw on it
    known = store.units_by_name(s, list(p.supplies.values()))
    for name, source in p.supplies.items():
        unit = known.get(source)
        if unit is not None and unit.kind != "supply":
            raise ParameterError(
                f"supply {name}={source}: {source} is a {unit.kind}, not an upstream lot"
            )
    rows += [
        store.NewUnit(
            name=source,
            kind="supply",
            lot_id=lot.id,
            state="supply",
            material=r.inputs[name].kind,
            attributes={"supply_for": name},
        )
        for name, source in p.supplies.items()
        if source not in known
    ]
    store.insert_units(s, rows)
    created = LotCreated(
        lot_id=lot.id,
        data=LotCreatedData(
            recipe_id=r.id,
            recipe_version=r.version,
            recipe_hash=p.recipe.hash,
            options=dict(p.expansion.options),
            inputs={name: len(units) for name, units in p.inputs.items()},
            steps=len(p.expansion.steps),
            units=[row["name"] for row in rows],
            carriers=_carrier_slots(p),
        ),
    )
    store.add_events(s, station, [created], lot)
    return lot


def _carrier_slots(p: LotPlan) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for units in p.inputs.values():
        for u in units:
            carrier = u.attributes.get("carrier")
            if carrier:
                out.setdefault(str(carrier), {})[str(u.slot)] = u.name
    return out


def _open_job(s: Session, lot_id: str) -> tuple[str, str] | None:
    """(tool id, job id) of a job the lot may have running, if any."""
    lot = store.get_lot(s, lot_id)
    run = store.open_step_run(s, lot.id, lot.next_step)
    if run is not None and run.state == "started" and run.tool_id and run.job_id:
        return run.tool_id, run.job_id
    return None


def _abort_open_run(s: Session, lot: Lot, why: str) -> None:
    run = store.open_step_run(s, lot.id, lot.next_step)
    if run is not None and run.state in ("started", "waiting"):
        run.state, run.message, run.ended_at = "aborted", why, utcnow()
