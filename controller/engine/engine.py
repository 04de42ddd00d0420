"""The recipe engine: lots move through their expanded recipes on pooled tools.

For every tool step a runner
  1. takes a tool of the step's kind from the pool (priority, then age),
  2. persists the intent — a step run with its job id — before sending anything,
  3. starts the job and waits for it (re-attaching by job id after a link loss or a crash),
  4. commits in one transaction the step's results, its genealogy changes and its MES events.
An alarm, a result out of spec, a refusal, or a tool still unreachable after the retry budget
holds the lot with the reason. Steps are not rewindable: pause and hold take effect between
steps; abort stops the tool's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.orm import Session

from controller.engine.lotspec import LotSpec
from controller.engine.material import Change, Material, UnitView, plan_change
from controller.engine.pool import NoToolFits, ToolPool
from controller.events import event
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot, StepRun, utcnow
from controller.recipes import (
    Expansion,
    LoadedRecipe,
    PlannedStep,
    feedforward,
    load_text,
    tool_warnings,
)
from controller.recipes.gate import gate
from controller.recipes.history import History
from drivers.base import Job, JobResult, ToolDriver
from drivers.errors import (
    FablineError,
    GarbledReply,
    JobAborted,
    JobNotFound,
    ParameterError,
    ToolAlarm,
    ToolError,
    ToolOffline,
    ToolTimeout,
)
from drivers.interface import ToolState
from drivers.interfaces import interface_for
from drivers.units import Quantity, format_quantity

log = structlog.get_logger("fabline.engine")

LINK_ERRORS = (ToolOffline, ToolTimeout, GarbledReply)
ME = f"{socket.gethostname()}:{os.getpid()}"


class LotBusy(FablineError):
    """Another live controller is driving the lot."""


@dataclass
class Outcome:
    lot_id: str
    state: str
    hold_reason: str | None = None
    steps_run: int = 0
    units: dict[str, int] = field(default_factory=dict)


Notify = Callable[[str, str, dict[str, Any]], None]
"""(lot id, what happened, details): 'step', 'progress', 'done', 'state'."""


def _quiet(lot_id: str, what: str, info: dict[str, Any]) -> None:
    pass


@dataclass
class EngineSettings:
    station: str = "station-1"
    retry_budget: float = 30.0  # seconds a tool may stay unreachable before the lot holds
    request_poll: float = 0.25  # how often a running job checks for an abort request
    auto_confirm: bool = False  # confirm external steps at once with simulated data
    allow_draft: bool = False


class Engine:
    def __init__(
        self,
        db: Database,
        drivers: Sequence[ToolDriver],
        settings: EngineSettings | None = None,
        notify: Notify = _quiet,
    ) -> None:
        self.db = db
        self.pool = ToolPool(drivers)
        self.settings = settings or EngineSettings()
        self.notify = notify
        # parsed and expanded recipes by (content hash, options): every lot of a recipe
        # version would otherwise parse and check the same YAML again
        self._expansions: dict[tuple[str, str], tuple[LoadedRecipe, Expansion]] = {}

    def expansion(
        self, recipe_hash: str, text: str, name: str, options: Mapping[str, object]
    ) -> tuple[LoadedRecipe, Expansion]:
        opts = {k: str(v) for k, v in options.items()}
        key = (recipe_hash, json.dumps(opts, sort_keys=True))
        found = self._expansions.get(key)
        if found is None:
            loaded = load_text(text, Path(name))
            found = self._expansions[key] = (loaded, loaded.expand(opts))
        return found

    async def connect(self) -> dict[str, str | None]:
        """Connect every tool; a tool that is down now is retried when a step needs it."""

        async def one(d: ToolDriver) -> str | None:
            try:
                await d.connect()
                return None
            except ToolError as e:
                log.warning("engine.tool_unreachable", tool_id=d.tool_id, error=str(e))
                return str(e)

        drivers = list(self.pool.drivers.values())
        errors = await asyncio.gather(*(one(d) for d in drivers))
        return {d.tool_id: e for d, e in zip(drivers, errors, strict=True)}

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.pool.drivers.values()))

    async def monitor_tools(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Report each tool's state (SEMI E10) and its alarms to the MES as they change."""
        seen: dict[str, tuple[str, tuple[int, ...]]] = {}
        while not stop.is_set():
            for d in list(self.pool.drivers.values()):
                events = await self._tool_events(d, seen)
                if events:
                    await self.db.run(
                        functools.partial(
                            store.add_events, station=self.settings.station, events=events
                        )
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def _tool_events(
        self, d: ToolDriver, seen: dict[str, tuple[str, tuple[int, ...]]]
    ) -> list[dict[str, Any]]:
        try:
            st = await d.status()
            codes = tuple(a.code for a in st.alarms)
            if st.alarms:
                state, e10 = "alarm", "UNSCHEDULED_DOWN"
            elif st.state is ToolState.RUNNING:
                state, e10 = "busy", "PRODUCTIVE"
            else:
                state, e10 = "idle", "STANDBY"
            raw, job = st.state.name, st.job_id
        except ToolError:
            state, e10, raw, job, codes = "offline", "UNSCHEDULED_DOWN", None, None, ()
        before_state, before_codes = seen.get(d.tool_id, ("", ()))
        seen[d.tool_id] = (state, codes)
        out = []
        for code in codes:
            if code not in before_codes:
                a = d.interface.alarm(code)
                out.append(
                    event(
                        "alarm_set",
                        tool_id=d.tool_id,
                        data={"code": code, "name": a.name, "text": a.text},
                    )
                )
        for code in before_codes:
            if code not in codes:
                a = d.interface.alarm(code)
                out.append(
                    event(
                        "alarm_cleared",
                        tool_id=d.tool_id,
                        data={"code": code, "name": a.name, "text": a.text},
                    )
                )
        if state != before_state:
            out.append(
                event(
                    "tool_state",
                    tool_id=d.tool_id,
                    data={
                        "state": state,
                        "e10": e10,
                        "tool_state": raw,
                        "job_id": job,
                        "alarms": list(codes),
                    },
                )
            )
        return out

    # -- lots -----------------------------------------------------------------------------

    async def create_lot(self, spec: LotSpec) -> Lot:
        """Validate the recipe for the options and record the lot with its input units."""
        loaded = spec.recipe
        if loaded.recipe.status != "approved" and not self.settings.allow_draft:
            raise ParameterError(
                f"recipe {loaded.recipe.id} v{loaded.recipe.version} is {loaded.recipe.status};"
                " only approved recipes run (or pass --allow-draft)"
            )
        exp = loaded.expand(spec.options)  # RecipeError on an impossible combination
        station = self.settings.station

        def tx(s: Session) -> Lot:
            r = loaded.recipe
            store.save_recipe(
                s,
                hash=loaded.hash,
                recipe_id=r.id,
                version=r.version,
                status=r.status,
                text=loaded.text,
            )
            if s.get(Lot, spec.lot_id) is not None:
                raise ParameterError(f"lot {spec.lot_id!r} already exists")
            lot = Lot(
                id=spec.lot_id,
                recipe_id=r.id,
                recipe_version=r.version,
                recipe_hash=loaded.hash,
                options=dict(exp.options),
                state="queued",
                priority=spec.priority,
                step_count=len(exp.steps),
                station=station,
            )
            s.add(lot)
            s.flush()
            rows = [
                {
                    "name": u.name,
                    "kind": r.inputs[name].kind,
                    "lot_id": lot.id,
                    "slot": u.slot,
                    "created_step": -1,
                    "state": "active",
                    "attributes": {"input": name, **u.attributes},
                }
                for name, units in spec.inputs.items()
                for u in units
            ]
            rows += [
                {
                    "name": source,
                    "kind": "supply",
                    "lot_id": lot.id,
                    "created_step": -1,
                    "state": "supply",
                    "material": r.inputs[name].kind,
                    "attributes": {"supply_for": name},
                }
                for name, source in spec.supplies.items()
            ]
            store.insert_units(s, rows)
            counts = {name: len(units) for name, units in spec.inputs.items()}
            ev = event(
                "lot_created",
                lot_id=lot.id,
                data={
                    "recipe_id": r.id,
                    "recipe_version": r.version,
                    "recipe_hash": loaded.hash,
                    "options": dict(exp.options),
                    "inputs": counts,
                    "steps": len(exp.steps),
                    "units": [row["name"] for row in rows],
                },
            )
            store.add_events(s, station, [ev], lot)
            return lot

        lot = await self.db.run(tx)
        log.info("engine.lot_created", lot_id=lot.id, recipe=loaded.recipe.id)
        return lot

    async def run_lot(self, lot_id: str) -> Outcome:
        """Drive a lot until it completes, holds, waits, pauses or aborts."""
        return await LotRunner(self, lot_id).run()

    async def run_lots(self, lot_ids: Sequence[str]) -> list[Outcome]:
        return list(await asyncio.gather(*(self.run_lot(i) for i in lot_ids)))


@dataclass
class _Begun:
    """A tool step whose intent is committed and whose tool is held: its job goes out next."""

    step_index: int
    driver: ToolDriver
    run_id: int
    job_id: str
    step: PlannedStep | None = None  # with its fed-forward setpoints, as the intent recorded


@dataclass
class _Intent:
    """Writes a tool step's intent (its step run, with the job id, and the track-in and
    step-started events) inside a transaction, unless a hold/pause/abort request takes
    effect first."""

    runner: LotRunner
    ctx: _Context
    step: PlannedStep
    driver: ToolDriver
    attempt: int
    job_id: str

    def __call__(self, s: Session, lot: Lot) -> int | None:
        """The new step run's id, or None when a request stopped the lot instead."""
        step, driver = self.step, self.driver
        if self.runner._take_request(s, lot, step):
            return None
        setpoints = feedforward.setpoints(step)  # hook: fed-forward values with their inputs
        r = self.ctx.recipe
        run_id = store.add_step_run(
            s,
            lot_id=lot.id,
            step_index=step.index,
            step_id=step.id,
            attempt=self.attempt,
            kind="tool",
            tool_id=driver.tool_id,
            tool_kind=driver.kind,
            operation=step.operation,
            job_id=self.job_id,
            recipe_id=r.recipe.id,
            recipe_hash=r.hash,
            state="started",
            setpoints=setpoints,
        )
        store.set_lot(lot, state="running", owner=ME)
        info = {
            "step_index": step.index,
            "operation": step.operation,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "role": step.role,
        }
        store.add_events(
            s,
            lot.station,
            [
                event("track_in", lot_id=lot.id, tool_id=driver.tool_id, step_id=step.id,
                      data=info),
                event("step_started", lot_id=lot.id, tool_id=driver.tool_id, step_id=step.id,
                      data={**info, "setpoints": setpoints}),
            ],
            lot,
        )  # fmt: skip
        return run_id


@dataclass
class _Context:
    lot: Lot
    recipe: LoadedRecipe
    expansion: Expansion
    material: Material
    # the newest run of the lot's next step when the runner claimed it; later steps have
    # none (this runner is the first to reach them)
    prior: StepRun | None = None
    begun: _Begun | None = None
    history: History = field(default_factory=History)  # measurements and end times so far


class LotRunner:
    def __init__(self, engine: Engine, lot_id: str) -> None:
        self.engine = engine
        self.db = engine.db
        self.lot_id = lot_id
        self.settings = engine.settings
        self.steps_run = 0

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> Outcome:
        ctx = await self._claim()
        try:
            exp = ctx.expansion
            ctx.history = await self.db.run(self._history)  # hook: process-control history
            while True:
                lot = ctx.lot
                if lot.state in ("held", "aborted", "completed", "scrapped", "waiting", "paused"):
                    break
                if lot.next_step >= len(exp.steps):
                    await self._complete(ctx)
                    break
                step = exp.steps[lot.next_step]
                structlog.contextvars.bind_contextvars(lot_id=self.lot_id, step_id=step.id)
                gated = await self._gate(ctx, step)  # hook: Q-time, feed-forward, interlocks
                if gated is None:
                    continue
                step = gated
                if step.kind == "external":
                    await self._external(ctx, step)
                else:
                    await self._tool_step(ctx, step)
        finally:
            structlog.contextvars.unbind_contextvars("lot_id", "step_id")
            if ctx.begun is not None:  # stopped before its job went out; resume re-attaches
                self.engine.pool.give_back(ctx.begun.driver)
            await self.db.run(lambda s: self._disown(s))
        units = await self.db.run(lambda s: store.count_units(s, self.lot_id))
        lot = ctx.lot
        self.engine.notify(self.lot_id, "state", {"state": lot.state, "reason": lot.hold_reason})
        return Outcome(self.lot_id, lot.state, lot.hold_reason, self.steps_run, units)

    async def _claim(self) -> _Context:
        def tx(s: Session) -> tuple[Lot, str, list[Any], dict[str, int], StepRun | None]:
            lot = store.get_lot(s, self.lot_id, for_update=True)
            if lot.owner and lot.owner != ME and _alive(lot.owner):
                raise LotBusy(f"lot {lot.id} is being driven by controller {lot.owner}")
            if lot.state in ("held", "aborted", "completed", "scrapped", "waiting"):
                return lot, store.recipe_text(s, lot.recipe_hash), [], {}, None
            store.set_lot(lot, owner=ME, state="queued" if lot.state == "paused" else lot.state)
            every = store.lot_units(s, lot.id, active_only=False)
            counts: dict[str, int] = {}  # supply units drawn so far, to keep numbering on
            for u in every:
                src = u.attributes.get("input")
                if src and u.created_step >= 0:
                    counts[src] = counts.get(src, 0) + 1
            active = [u for u in every if u.state in ("active", "supply")]
            prior = store.open_step_run(s, lot.id, lot.next_step)
            return lot, store.recipe_text(s, lot.recipe_hash), active, counts, prior

        lot, text, units, supply_counts, prior = await self.db.run(tx)
        loaded, exp = self.engine.expansion(
            lot.recipe_hash,
            text,
            f"<lot {lot.id}: {lot.recipe_id} v{lot.recipe_version}>",
            lot.options,
        )
        material = Material(lot.id, supply_counts=supply_counts)
        for u in units:
            if u.state == "supply":
                material.sources[u.attributes["supply_for"]] = u.name
                continue
            material.active[u.name] = UnitView(
                u.name, u.kind, u.id, u.slot, u.attributes.get("input"), dict(u.attributes)
            )
        return _Context(lot, loaded, exp, material, prior)

    def _history(self, s: Session) -> History:
        return History.from_records(
            store.step_runs(s, self.lot_id), store.lot_events(s, self.lot_id)
        )

    async def _gate(self, ctx: _Context, step: PlannedStep) -> PlannedStep | None:
        """Before a step starts (controller/recipes/gate.py): an expired queue time holds the
        lot, an unneeded rework step is skipped, fed-forward setpoints are computed and the
        interlocks on them checked. The step to run, or None if the lot held or moved on."""
        if ctx.begun is not None and ctx.begun.step_index == step.index and ctx.begun.step:
            return ctx.begun.step  # gated when the previous step's commit wrote this intent
        if ctx.prior is not None and ctx.prior.state == "started":
            try:  # re-attaching to a job already sent: only its setpoints matter
                return feedforward.resolve(step, ctx.history)
            except FablineError:
                return step
        g = gate(ctx.expansion, step, ctx.history, utcnow())
        if g.clear:
            return g.step

        def tx(s: Session) -> Lot:
            lot = store.get_lot(s, self.lot_id, for_update=True)
            evs = [event(t, lot_id=lot.id, step_id=step.id, data=d) for t, d in g.events]
            if g.hold:
                store.set_lot(lot, state="held", hold_reason=g.hold)
                evs.append(event("hold", lot_id=lot.id, step_id=step.id, data={"reason": g.hold}))
            elif g.skip:
                store.set_lot(lot, next_step=step.index + 1)
                evs.append(
                    event("step_skipped", lot_id=lot.id, step_id=step.id, data={"reason": g.skip})
                )
            store.add_events(s, lot.station, evs, lot)
            return lot

        ctx.lot = await self.db.run(tx)
        if g.hold:
            log.warning("engine.lot_stopped", state="held", reason=g.hold)
        return None if g.hold or g.skip else g.step

    def _disown(self, s: Session) -> None:
        lot = store.get_lot(s, self.lot_id, for_update=True)
        if lot.owner == ME:
            store.set_lot(lot, owner=None)

    async def _complete(self, ctx: _Context) -> None:
        def tx(s: Session) -> Lot:
            lot = store.get_lot(s, self.lot_id, for_update=True)
            store.set_lot(lot, state="completed", request=None, request_reason=None)
            units = store.count_units(s, lot.id)
            store.add_events(
                s, lot.station, [event("lot_completed", lot_id=lot.id, data={"units": units})], lot
            )
            return lot

        ctx.lot = await self.db.run(tx)

    # -- requests from other processes (hold, pause, abort) ---------------------------------

    def _take_request(self, s: Session, lot: Lot, step: PlannedStep) -> str | None:
        """Apply a pending hold/pause/abort request between steps; return the new state."""
        if not lot.request:
            return None
        req, reason = lot.request, lot.request_reason or "requested"
        state = {"hold": "held", "pause": "paused", "abort": "aborted"}[req]
        store.set_lot(
            lot,
            state=state,
            hold_reason=reason if state != "paused" else None,
            request=None,
            request_reason=None,
        )
        if req in ("hold", "abort"):
            store.add_events(
                s,
                lot.station,
                [event(req, lot_id=lot.id, step_id=step.id, data={"reason": reason})],
                lot,
            )
        return state

    # -- external steps ---------------------------------------------------------------------

    async def _external(self, ctx: _Context, step: PlannedStep) -> None:
        auto = self.settings.auto_confirm

        def tx(s: Session) -> Lot:
            lot = store.get_lot(s, self.lot_id, for_update=True)
            if self._take_request(s, lot, step):
                return lot
            prior = store.open_step_run(s, lot.id, step.index)
            if prior is not None and prior.state == "waiting":
                store.set_lot(lot, state="waiting")
                return lot
            r = ctx.recipe
            data = feedforward.simulated_returns(step, lot.id)  # hook: typed returns
            store.add_step_run(
                s,
                lot_id=lot.id,
                step_index=step.index,
                step_id=step.id,
                kind="external",
                attempt=(prior.attempt + 1) if prior else 1,
                recipe_id=r.recipe.id,
                recipe_hash=r.hash,
                state="confirmed" if auto else "waiting",
                setpoints={"external": step.external, "returns": list(step.returns)},
                results=data if auto else {},
                ended_at=utcnow() if auto else None,
            )
            evs = [
                event(
                    "external_waiting",
                    lot_id=lot.id,
                    step_id=step.id,
                    data={"external": step.external, "returns": list(step.returns)},
                )
            ]
            if auto:
                evs.append(
                    event(
                        "external_confirmed",
                        lot_id=lot.id,
                        step_id=step.id,
                        data={"returned": data, "by": "simulated partner"},
                    )
                )
                store.set_lot(lot, state="running", next_step=step.index + 1, owner=ME)
            else:
                store.set_lot(lot, state="waiting")
            store.add_events(s, lot.station, evs, lot)
            return lot

        ctx.lot = await self.db.run(tx)
        self.engine.notify(
            self.lot_id,
            "step",
            {"step": step, "total": len(ctx.expansion.steps), "tool": "external"},
        )
        if auto:
            self.steps_run += 1
            # hook: the returned data feeds later setpoints
            ctx.history.record(
                step.index, feedforward.simulated_returns(step, ctx.lot.id), utcnow()
            )

    # -- tool steps -------------------------------------------------------------------------

    async def _tool_step(self, ctx: _Context, step: PlannedStep) -> None:
        assert step.tool is not None and step.operation is not None
        begun, ctx.begun = ctx.begun, None
        prior, ctx.prior = ctx.prior, None
        reattach = prior if prior is not None and prior.state == "started" else None
        if begun is not None:
            driver = begun.driver  # the previous step's commit wrote this one's intent
        else:
            operation = step.operation
            try:
                driver = await self.engine.pool.take(
                    step.tool,
                    priority=ctx.lot.priority,
                    since=ctx.lot.created_at.timestamp(),
                    tool_id=reattach.tool_id if reattach else None,
                    fits=lambda d: d.setup_problem(operation, step.values) is None,
                )
            except NoToolFits as e:
                await self._hold(ctx, step, f"step {step.id}: {e} ({self._setups(step)})")
                return
        try:
            done = await self._run_on(ctx, step, driver, prior, reattach, begun)
        finally:
            self.engine.pool.give_back(driver)  # free again before the database commit
        if done is not None:
            await self._commit(ctx, step, driver, *done)

    def _setups(self, step: PlannedStep) -> str:
        """What each tool of the step's kind lacks, for the hold reason."""
        parts = []
        for d in self.engine.pool.drivers.values():
            if d.kind == step.tool:
                why = d.setup_problem(step.operation or "", step.values)
                parts.append(f"{d.tool_id}: {why}" if why else d.tool_id)
        return "; ".join(parts)

    async def _run_on(
        self,
        ctx: _Context,
        step: PlannedStep,
        driver: ToolDriver,
        prior: StepRun | None,
        reattach: StepRun | None,
        begun: _Begun | None,
    ) -> tuple[int, JobResult] | None:
        """Start (or re-attach to) the step's job and wait for it; None if the lot stopped."""
        if reattach is not None:
            run_id, job_id = reattach.id, reattach.job_id
            assert run_id is not None and job_id is not None
            log.info("engine.reattach", job_id=job_id, tool_id=driver.tool_id)
        else:
            if begun is not None:
                run_id, job_id = begun.run_id, begun.job_id
            else:
                intent = self._intent(ctx, step, driver, prior)

                def tx(s: Session) -> tuple[Lot, int | None]:
                    lot = store.get_lot(s, self.lot_id, for_update=True)
                    return lot, intent(s, lot)

                ctx.lot, run_id_or_none = await self.db.run(tx)
                if run_id_or_none is None:
                    return None  # a hold/pause/abort request took effect instead
                run_id, job_id = run_id_or_none, intent.job_id
            if not await self._start(ctx, step, driver, run_id, job_id):
                return None
        info = {
            "step": step,
            "total": len(ctx.expansion.steps),
            "tool": driver.tool_id,
            "job_id": job_id,
        }
        self.engine.notify(self.lot_id, "step", info)
        result = await self._wait(
            ctx, step, driver, run_id, job_id, reattached=reattach is not None
        )
        return None if result is None else (run_id, result)

    def _intent(
        self, ctx: _Context, step: PlannedStep, driver: ToolDriver, prior: StepRun | None
    ) -> _Intent:
        attempt = (prior.attempt + 1) if prior else 1
        # the nonce keeps ids unique on a tool across databases; simulators seed without it
        job_id = f"{self.lot_id[:12]}-{step.index:03d}-{attempt}#{secrets.token_hex(2)}"
        return _Intent(self, ctx, step, driver, attempt, job_id)

    async def _start(
        self, ctx: _Context, step: PlannedStep, driver: ToolDriver, run_id: int, job_id: str
    ) -> bool:
        op = interface_for(driver.kind).operation(step.operation or "")
        params: dict[str, object] = {}
        for p in op.params:
            if p.name in step.values:
                v = step.values[p.name]
                params[p.name] = v if p.is_choice else Quantity(float(v), p.unit)
        job = Job(job_id, op.name, params)
        deadline = time.monotonic() + self.settings.retry_budget
        pause = 0.1
        while True:
            try:
                await driver.start(job)
                return True
            except LINK_ERRORS as e:
                if time.monotonic() + pause > deadline:
                    reason = (
                        f"tool {driver.tool_id} unreachable for"
                        f" {self.settings.retry_budget:g} s at step {step.id}: {e}"
                    )
                    await self._fail(ctx, step, run_id, "failed", reason, driver.tool_id)
                    return False
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
            except (ToolError, ParameterError) as e:  # refused: busy, alarm, not set up, ...
                await self._fail(
                    ctx, step, run_id, "failed", f"step {step.id} refused: {e}", driver.tool_id
                )
                return False

    async def _wait(
        self,
        ctx: _Context,
        step: PlannedStep,
        driver: ToolDriver,
        run_id: int,
        job_id: str,
        *,
        reattached: bool,
    ) -> JobResult | None:
        def progress(pct: float, _state: Any) -> None:
            self.engine.notify(self.lot_id, "progress", {"step": step, "percent": pct})

        watcher = asyncio.create_task(self._watch_abort(driver, job_id))
        deadline = time.monotonic() + self.settings.retry_budget
        try:
            while True:
                try:
                    return await driver.wait(job_id, on_progress=progress)
                except LINK_ERRORS as e:
                    if time.monotonic() > deadline:
                        # the job may still run: keep the step run open to re-attach on release
                        await self._hold(
                            ctx,
                            step,
                            f"tool {driver.tool_id} unreachable for"
                            f" {self.settings.retry_budget:g} s during step"
                            f" {step.id} (job {job_id}): {e}",
                        )
                        return None
                    await asyncio.sleep(0.2)
        except ToolAlarm as e:
            await self._fail(
                ctx,
                step,
                run_id,
                "alarm",
                f"alarm {e.code} {e.text} on {driver.tool_id} during step {step.id} (job {job_id})",
                driver.tool_id,
                alarm=e,
            )
        except JobAborted:
            await self._fail(
                ctx,
                step,
                run_id,
                "aborted",
                f"job {job_id} aborted on {driver.tool_id} during step {step.id}",
                driver.tool_id,
                lot_state="aborted",
            )
        except JobNotFound:
            why = "after a restart" if reattached else "while it ran"
            await self._fail(
                ctx,
                step,
                run_id,
                "lost",
                f"{driver.tool_id} has no record of job"
                f" {job_id} {why}: an engineer must check the material of step"
                f" {step.id} before release",
                driver.tool_id,
            )
        finally:
            watcher.cancel()
        return None

    async def _watch_abort(self, driver: ToolDriver, job_id: str) -> None:
        """While a job runs, an abort request (from any process) stops the tool's job."""
        while True:
            await asyncio.sleep(self.settings.request_poll)
            req = await self.db.run(lambda s: store.get_lot(s, self.lot_id).request)
            if req == "abort":
                try:
                    st = await driver.status()
                    if st.job_id == job_id:
                        await driver.abort()
                except ToolError as e:
                    log.warning("engine.abort_failed", error=str(e))
                return

    # -- outcomes ---------------------------------------------------------------------------

    async def _commit(
        self, ctx: _Context, step: PlannedStep, driver: ToolDriver, run_id: int, result: JobResult
    ) -> None:
        """Record the step's results, genealogy and events in one transaction. When the next
        step is a tool step and a tool for it is free right now, its intent is written in
        the same transaction (one commit per step instead of two)."""
        op = interface_for(driver.kind).operation(step.operation or "")
        units = {r.name: r.unit for r in op.results}
        results = {k: {"value": v, "unit": units.get(k, "")} for k, v in result.results.items()}
        out_of_spec = _spec_violations(step, result.results, units)
        verdicts = tool_warnings.classify(step, result.warnings)  # hook: tool warnings
        warned = tool_warnings.hold_reason(step, verdicts)
        ctx.history.record(step.index, result.results, utcnow())  # hook: for feed-forward
        steps = ctx.expansion.steps
        last = step.index + 1 >= len(steps)
        stop = out_of_spec or warned or last
        intent = None if stop else self._next_intent(ctx, steps[step.index + 1])

        def tx(s: Session) -> tuple[Lot, Change, dict[str, int], int | None]:
            store.finish_step_run(s, run_id, expect=("started",), state="done", results=results)
            lot = store.get_lot(s, self.lot_id, for_update=True)
            loaded = {c: store.consumable_lot(s, driver.tool_id, c) for c in step.consume}
            change = plan_change(
                ctx.material,
                step,
                result.results,
                {c: name for c, (name, _) in loaded.items()},
                ctx.recipe.recipe.inputs,
            )
            known = dict(loaded.values())
            ids = _write_change(s, ctx, change, run_id, step.index, known)
            evs = [
                event(
                    "step_completed",
                    lot_id=lot.id,
                    tool_id=driver.tool_id,
                    step_id=step.id,
                    data={
                        "job_id": result.job_id,
                        "operation": step.operation,
                        "setpoints": {k: str(v) for k, v in step.params.items()},
                        "results": results,
                        "in_spec": not out_of_spec,
                    },
                ),
                event(
                    "track_out",
                    lot_id=lot.id,
                    tool_id=driver.tool_id,
                    step_id=step.id,
                    data={"step_index": step.index, "job_id": result.job_id},
                ),
            ]
            evs += [
                event(t, lot_id=lot.id, tool_id=driver.tool_id, step_id=step.id, data=d)
                for t, d in change.events
            ]
            evs += [
                event("tool_warning", lot_id=lot.id, tool_id=driver.tool_id, step_id=step.id,
                      data=v.data())
                for v in verdicts
            ]  # fmt: skip
            changes: dict[str, Any] = {"next_step": step.index + 1}
            reason = (
                f"out of spec at step {step.id}: {'; '.join(out_of_spec)}"
                if out_of_spec
                else warned
            )
            if reason:
                changes |= {"state": "held", "hold_reason": reason}
                evs.append(event("hold", lot_id=lot.id, step_id=step.id, data={"reason": reason}))
            store.set_lot(lot, **changes)
            store.add_events(s, lot.station, evs, lot)
            return lot, change, ids, (intent(s, lot) if intent is not None else None)

        try:
            ctx.lot, change, ids, next_run = await self.db.run(tx)
        except BaseException:
            if intent is not None:
                self.engine.pool.give_back(intent.driver)
            raise
        ctx.material.apply(change, ids)
        if intent is not None:
            if next_run is None:  # a request stopped the lot between the steps
                self.engine.pool.give_back(intent.driver)
            else:
                ctx.begun = _Begun(
                    intent.step.index, intent.driver, next_run, intent.job_id, intent.step
                )
        self.steps_run += 1
        self.engine.notify(
            self.lot_id, "done", {"step": step, "results": result.results, "last": last}
        )

    def _next_intent(self, ctx: _Context, step: PlannedStep) -> _Intent | None:
        """The intent for `step` if it is a tool step and a tool for it is free right now."""
        if step.kind != "tool" or step.tool is None:
            return None
        kind, operation = step.tool, step.operation or ""
        g = gate(ctx.expansion, step, ctx.history, utcnow())  # hook: as the loop would
        if not g.clear:
            return None  # the loop records it, holds or skips
        step = g.step
        try:
            driver = self.engine.pool.take_now(
                kind, fits=lambda d: d.setup_problem(operation, step.values) is None
            )
        except NoToolFits:
            return None  # the step itself holds the lot, with what each tool lacks
        return None if driver is None else self._intent(ctx, step, driver, None)

    async def _fail(
        self,
        ctx: _Context,
        step: PlannedStep,
        run_id: int,
        run_state: str,
        reason: str,
        tool_id: str,
        *,
        alarm: ToolAlarm | None = None,
        lot_state: str = "held",
    ) -> None:
        def tx(s: Session) -> Lot:
            store.finish_step_run(s, run_id, expect=("started",), state=run_state, message=reason)
            lot = store.get_lot(s, self.lot_id, for_update=True)
            store.set_lot(
                lot, state=lot_state, hold_reason=reason, request=None, request_reason=None
            )
            evs = []
            kind = "abort" if lot_state == "aborted" else "hold"
            evs.append(
                event(
                    kind, lot_id=lot.id, tool_id=tool_id, step_id=step.id, data={"reason": reason}
                )
            )
            store.add_events(s, lot.station, evs, lot)
            return lot

        ctx.lot = await self.db.run(tx)
        log.warning("engine.lot_stopped", state=lot_state, reason=reason)

    async def _hold(self, ctx: _Context, step: PlannedStep, reason: str) -> None:
        def tx(s: Session) -> Lot:
            lot = store.get_lot(s, self.lot_id, for_update=True)
            store.set_lot(lot, state="held", hold_reason=reason)
            store.add_events(
                s,
                lot.station,
                [event("hold", lot_id=lot.id, step_id=step.id, data={"reason": reason})],
                lot,
            )
            return lot

        ctx.lot = await self.db.run(tx)


def _spec_violations(
    step: PlannedStep, results: Mapping[str, float], units: Mapping[str, str]
) -> list[str]:
    out = []
    for name, (lo, hi) in step.spec.items():
        v = results.get(name)
        unit = units.get(name, "")
        if v is None:
            out.append(f"{name} not reported")
        elif lo is not None and v < lo:
            out.append(f"{name} {format_quantity(v, unit)} < {format_quantity(lo, unit)}")
        elif hi is not None and v > hi:
            out.append(f"{name} {format_quantity(v, unit)} > {format_quantity(hi, unit)}")
    return out


def _write_change(
    s: Session,
    ctx: _Context,
    change: Change,
    run_id: int,
    step_index: int,
    known: Mapping[str, int],
) -> dict[str, int]:
    """Write a step's genealogy change; return the ids of the new units. `known` gives the
    ids of units outside the lot already looked up (the step's consumable lots)."""
    if not change:
        return {}
    lot_id = ctx.lot.id
    for row in change.units:
        row["lot_id"] = lot_id
    new_ids = store.insert_units(s, change.units)
    ids = {name: u.id for name, u in ctx.material.active.items() if u.id is not None}
    ids |= new_ids
    ids.update(known)
    # parts merged earlier (chips on a strip) and consumable lots are not active lot units
    ids |= store.ids_by_name(s, {p for p, _, _ in change.edges if p not in ids})
    store.insert_edges(
        s,
        [
            {"parent_id": ids[p], "child_id": ids[c], "kind": k, "step_run_id": run_id}
            for p, c, k in change.edges
        ],
    )
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


def _alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine: trust its lease
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True
