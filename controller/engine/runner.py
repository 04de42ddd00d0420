"""A lot runner: the loop that takes a lot through its expanded recipe, and the policy of one
step attempt on a tool.

For every tool step the runner
  1. takes a tool of the step's kind from the pool (priority, then age),
  2. persists the intent — a step run with its job id — before sending anything,
  3. starts the job (retrying a lost link within the retry budget) and waits for it,
  4. commits in one transaction the step's results, genealogy and MES events.
A job whose start the runner could not confirm is never started twice: a resend the tool
refuses as a duplicate is attached by the driver, and before a new attempt of such a step
the tool is asked for the earlier job, which is collected if it ran. An alarm, a result out
of spec, a refusal or a tool unreachable past the retry budget holds the lot with a reason
of its kind. Steps are not rewindable: hold and pause take effect between steps; abort stops
the tool's job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.orm import Session

from controller.engine import journal, spc_hook
from controller.engine.journal import Intent
from controller.engine.lot_watch import LotWatch
from controller.engine.material import Material, UnitView
from controller.engine.piece_steps import PieceSteps
from controller.engine.pieces import PIECE_KINDS, plan_jobs
from controller.engine.progress import LotStopped, StepBegan, StepDone, StepProgress
from controller.genealogy import lineage, store
from controller.genealogy.models import Lot, StepRun, utcnow
from controller.lots import carriers, lease, lifecycle
from controller.lots.lease import ME
from controller.lots.lifecycle import STOPPED, HoldReason, LotState
from controller.recipes import (
    Expansion,
    ExternalStepPlan,
    LoadedRecipe,
    PlannedStep,
    ToolStepPlan,
    feedforward,
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
    NoToolFits,
    ParameterError,
    ToolAlarm,
    ToolError,
    ToolOffline,
    ToolTimeout,
)
from drivers.interface import JobState
from drivers.units import Quantity

if TYPE_CHECKING:
    from controller.engine.engine import Engine, Outcome

log = structlog.get_logger("fabline.engine")

LINK_ERRORS = (ToolOffline, ToolTimeout, GarbledReply)


@dataclass(frozen=True)
class Attempt:
    """One attempt at a tool step: the step as it runs (fed-forward setpoints resolved), its
    tool (held from the pool), its step run and job id, and whether the job may already have
    run (re-attached: collect it, never start it)."""

    step: ToolStepPlan
    driver: ToolDriver
    run_id: int
    job_id: str
    reattached: bool
    pieces: tuple[str, ...] = ()  # the job's work pieces (none: the whole lot)


@dataclass
class _Context:
    lot: Lot
    recipe: LoadedRecipe
    expansion: Expansion
    material: Material
    # the newest run of the lot's next step when the runner claimed it; later steps have
    # none (this runner is the first to reach them)
    prior: StepRun | None = None
    begun: Attempt | None = None  # the next step's intent, written by the last commit
    history: History = field(default_factory=History)  # measurements, end times, waivers


def _principal(ctx: _Context) -> str | None:
    """The recipe's first input: what its steps work on (controller/engine/pieces.py)."""
    return next(iter(ctx.recipe.recipe.inputs), None)


class LotRunner:
    def __init__(self, engine: Engine, lot_id: str) -> None:
        self.engine = engine
        self.db = engine.db
        self.lot_id = lot_id
        self.settings = engine.settings
        self.steps_run = 0
        self._abort_reason: HoldReason | None = None  # the request that stopped a job
        self.watch = LotWatch(
            engine.db, lot_id, engine.wakeup(lot_id), engine.settings.request_poll
        )

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> Outcome:
        from controller.engine.engine import Outcome

        try:
            ctx = await self._claim()
        except BaseException:
            # a lease taken for this runner (a station's pickup) is not driven by anyone:
            # give it back, or at least stop renewing it (the database may be what failed)
            with contextlib.suppress(Exception):
                await self.db.run(lambda s: journal.disown(s, self.lot_id))
            lease.forget({self.lot_id})
            raise
        try:
            exp = ctx.expansion
            ctx.history = await self.db.run(self._history)
            while ctx.lot.state not in STOPPED and ctx.lot.owner == ME:  # not handed over
                if ctx.lot.next_step >= len(exp.steps):
                    ctx.lot = await self.db.run(lambda s: journal.complete(s, self.lot_id))
                    break
                planned = exp.steps[ctx.lot.next_step]
                structlog.contextvars.bind_contextvars(lot_id=self.lot_id, step_id=planned.id)
                step = await self._gate(ctx, planned)
                if step is None:
                    continue  # held, or skipped: the loop looks at the lot again
                if isinstance(step, ExternalStepPlan):
                    await self._external(ctx, step)
                else:
                    await self._tool_step(ctx, step)
        finally:
            structlog.contextvars.unbind_contextvars("lot_id", "step_id")
            if ctx.begun is not None:  # stopped before its job went out; resume re-attaches
                self.engine.pool.give_back(ctx.begun.driver)
            await self.db.run(lambda s: journal.disown(s, self.lot_id))
        units = await self.db.run(lambda s: store.count_units(s, self.lot_id))
        lot = ctx.lot
        self.engine.notify(LotStopped(self.lot_id, lot.state, lot.hold_reason))
        return Outcome(self.lot_id, lot.state, lot.hold_reason, self.steps_run, units,
                       lot.hold_kind)  # fmt: skip

    async def _claim(self) -> _Context:
        claimed = await self.db.run(
            lambda s: journal.claim(s, self.lot_id, self.engine.settings.station)
        )
        lot = claimed.lot
        loaded, exp = self.engine.expansions.get(
            lot.recipe_hash,
            claimed.recipe_text,
            f"<lot {lot.id}: {lot.recipe_id} v{lot.recipe_version}>",
            lot.options,
        )
        material = Material(
            lot.id, supply_counts=claimed.supply_counts, sources=dict(lot.supplies or {})
        )
        for u in claimed.units:
            if u.state == "supply":
                material.sources.setdefault(u.attributes["supply_for"], u.name)
                continue
            material.active[u.name] = UnitView(
                u.name, u.kind, u.id, u.slot, u.attributes.get("input"), dict(u.attributes)
            )
        return _Context(lot, loaded, exp, material, claimed.prior)

    def _history(self, s: Session) -> History:
        # a child lot's history starts with its parent's measurements before the split
        runs = lineage.lineage_runs(s, self.lot_id)
        pieces = store.pieces_of_runs(s, [r.id for r in runs if r.id is not None])
        return History.from_records(runs, store.lot_events(s, self.lot_id), pieces)

    async def _gate(self, ctx: _Context, step: PlannedStep) -> PlannedStep | None:
        """Before a step starts (controller/recipes/gate.py): an expired queue time holds the
        lot, an unneeded rework step is skipped, fed-forward setpoints are computed and the
        interlocks on them checked. The step to run, or None if the lot held or moved on."""
        begun = ctx.begun
        if begun is not None and begun.step.index == step.index:
            return begun.step  # gated when the previous step's commit wrote its intent
        if ctx.prior is not None and ctx.prior.state == "started":
            try:  # re-attaching to a job already sent: only its setpoints matter
                return feedforward.resolve(step, ctx.history)
            except FablineError:
                return step
        g = gate(ctx.expansion, step, ctx.history, utcnow())
        if g.clear:
            return g.step
        ctx.lot = await self.db.run(lambda s: journal.gate(s, self.lot_id, step, g))
        if g.hold is not None:
            log.warning("engine.lot_stopped", state="held", kind=g.hold[0], reason=g.hold[1])
        return None if g.hold or g.skip else g.step

    # -- external steps ---------------------------------------------------------------------

    async def _external(self, ctx: _Context, step: ExternalStepPlan) -> None:
        auto = self.settings.auto_confirm
        ctx.lot = await self.db.run(
            lambda s: journal.external(s, self.lot_id, step, ctx.recipe, auto)
        )
        total = len(ctx.expansion.steps)
        self.engine.notify(StepBegan(self.lot_id, step.index, total, step.id, "external"))
        if auto and ctx.lot.next_step > step.index:
            self.steps_run += 1
            # the returned data feeds later setpoints
            ctx.history.record(
                step.index, feedforward.simulated_returns(step, self.lot_id), utcnow()
            )
            self.engine.notify(StepDone(self.lot_id, step.index, step.id))

    # -- tool steps -------------------------------------------------------------------------

    async def _tool_step(self, ctx: _Context, step: ToolStepPlan) -> None:
        jobs = plan_jobs(ctx.material, step, _principal(ctx))
        if len(jobs) > 1 or jobs[0].batch:
            await PieceSteps(self, ctx, step, jobs).run()
            return
        job = jobs[0]
        attempt = await self._next_attempt(ctx, job.step, tuple(job.names))
        if attempt is None:
            return  # the lot stopped: held, or a request took effect
        step = attempt.step  # as its job runs it (a piece's own fed-forward setpoints)
        why = None if attempt.reattached else await self.carrier_problem(ctx, attempt.driver)
        if why is not None:  # the job never goes out: its run fails, the lot holds
            self.engine.pool.give_back(attempt.driver)
            await self._stop(ctx, step, HoldReason("carrier", f"step {step.id}: {why}"),
                             attempt, "failed")  # fmt: skip
            return
        # a chart that may inhibit the tool decides in the commit: until then no other lot
        # may start a job on it
        keep = spc_hook.may_inhibit(step)
        result: JobResult | None = None
        try:
            total = len(ctx.expansion.steps)
            tool = attempt.driver.tool_id
            if not attempt.reattached and not await self._start(ctx, step, attempt):
                return
            self.engine.notify(StepBegan(self.lot_id, step.index, total, step.id, tool))
            result = await self._wait(ctx, step, attempt)
        finally:
            if result is None or not keep:
                self.engine.pool.give_back(attempt.driver)  # free again before the commit
        if result is not None:
            per_piece = {job.names[0]: result.results} if job.units else None
            try:
                await self._commit(ctx, step, attempt, result, per_piece)
            finally:
                if keep:
                    self.engine.pool.give_back(attempt.driver)

    async def _next_attempt(
        self, ctx: _Context, step: ToolStepPlan, pieces: tuple[str, ...]
    ) -> Attempt | None:
        """A single-job step's attempt: the one the last commit wrote, else `attempt`."""
        begun, ctx.begun = ctx.begun, None
        if begun is not None:
            return begun
        prior, ctx.prior = ctx.prior, None
        return await self.attempt(ctx, step, pieces, pinned=journal.pinned_run(prior), prior=prior)

    async def attempt(
        self,
        ctx: _Context,
        step: ToolStepPlan,
        pieces: tuple[str, ...],
        *,
        pinned: StepRun | None,
        prior: StepRun | None = None,
        number: Callable[[], int] | None = None,
        tool: str | None = None,
    ) -> Attempt | None:
        """A job's tool and run: re-attached to the job a pinned run left on its tool (see
        `journal.pinned_run`), or a new run whose intent is committed here, numbered by
        `number` (else after `prior`), on `tool` by preference (another of the kind while
        that one is inhibited). None if the lot stopped."""
        try:
            driver = await self._take_tool(ctx, step, pinned.tool_id if pinned else None, tool)
        except NoToolFits as e:
            reason = HoldReason("no_tool", f"step {step.id}: {e} ({self._setups(step)})")
            await self._stop(ctx, step, reason)
            return None
        if driver is None:
            return None
        try:
            if pinned is not None:
                assert pinned.id is not None and pinned.job_id is not None
                if pinned.state == "started":
                    log.info("engine.reattach", job_id=pinned.job_id, tool_id=driver.tool_id)
                    return Attempt(step, driver, pinned.id, pinned.job_id, True, pieces)
                found = await self._ask_tool(ctx, step, driver, pinned)
                if found is None:
                    self.engine.pool.give_back(driver)
                    return None
                if found:
                    return Attempt(step, driver, pinned.id, pinned.job_id, True, pieces)
            held_out = self.engine.pool.held_out(driver.tool_id)
            if not held_out:
                intent = self._intent(step, driver, prior, pieces, number() if number else None)
                run_id = await self._write_intent(ctx, intent)
        except BaseException:
            self.engine.pool.give_back(driver)
            raise
        if held_out:  # the tool never took the job and is inhibited now: another runs it
            self.engine.pool.give_back(driver)
            return await self.attempt(
                ctx, step, pieces, pinned=None, prior=prior, number=number, tool=tool
            )
        if run_id is None:
            self.engine.pool.give_back(driver)
            return None
        return Attempt(step, driver, run_id, intent.job_id, False, pieces)

    async def _write_intent(self, ctx: _Context, intent: Intent) -> int | None:
        def tx(s: Session) -> tuple[Lot, int | None]:
            lot = store.get_lot(s, self.lot_id, for_update=True)
            return lot, journal.write_intent(s, lot, intent, ctx.recipe)

        ctx.lot, run_id = await self.db.run(tx)
        return run_id

    async def _take_tool(
        self, ctx: _Context, step: ToolStepPlan, tool_id: str | None, prefer: str | None = None
    ) -> ToolDriver | None:
        """A tool for the step (exactly `tool_id`, or `prefer` unless it is held out),
        waiting in line; None if a hold, pause or abort request arrived meanwhile (it is
        applied: a lot waiting for a tool stops at once)."""
        operation = step.operation
        take = asyncio.ensure_future(
            self.engine.pool.take(
                step.tool,
                priority=ctx.lot.priority,
                since=ctx.lot.created_at.timestamp(),
                tool_id=tool_id,
                fits=lambda d: d.setup_problem(operation, step.values) is None,
                prefer=prefer,
            )
        )
        if take.done():
            return take.result()
        watch = asyncio.ensure_future(self._request_arrives())
        try:
            await asyncio.wait([take, watch], return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (another job of the step stopped the lot)
            if take.done() and not take.cancelled() and take.exception() is None:
                self.engine.pool.give_back(take.result())  # taken just now: not ours to keep
            raise
        finally:
            watch.cancel()
            if not take.done():
                take.cancel()
            await asyncio.gather(take, watch, return_exceptions=True)
        if not take.cancelled():
            return take.result()  # the tool, or NoToolFits raised

        def tx(s: Session) -> Lot:
            lot = store.get_lot(s, self.lot_id, for_update=True)
            journal.take_request(s, lot, step)
            return lot

        ctx.lot = await self.db.run(tx)
        return None

    async def _request_arrives(self) -> None:
        """Returns once the lot has a hold, pause or abort request (woken at once from this
        process, polled every `request_poll` seconds for other processes')."""
        while not (await self.watch.next_read()).request:
            pass

    async def _ask_tool(
        self, ctx: _Context, step: ToolStepPlan, driver: ToolDriver, run: StepRun
    ) -> bool | None:
        """Has the tool the job of an attempt whose start was never confirmed? True: it ran
        (or runs) and is re-attached; False: the tool never took it; None: the tool cannot
        be asked, and the lot is held."""
        assert run.id is not None and run.job_id is not None
        try:
            known = await driver.job_progress(run.job_id)
        except ToolError as e:
            why = f"cannot tell whether job {run.job_id} of step {step.id} ran on {driver.tool_id}"
            await self._stop(ctx, step, HoldReason("unreachable", f"{why}: {e}"))
            return None
        if known.state in (JobState.UNKNOWN, JobState.SETUP):
            return False
        run_id = run.id
        ctx.lot = await self.db.run(lambda s: journal.reopen(s, self.lot_id, run_id))
        log.info("engine.found_unconfirmed_job", job_id=run.job_id, state=known.state.name)
        return True

    async def carrier_problem(self, ctx: _Context, driver: ToolDriver) -> str | None:
        """At track-in the tool's load port reads each carrier the lot's pieces are in: a
        tag or slot map that differs from the lot's record is the reason to hold the lot
        (kind `carrier`), naming the carrier and slot. A tool that cannot read carriers
        (GEM) is trusted."""
        by_carrier: dict[str, list[tuple[str, int | None]]] = {}
        for u in ctx.material.active.values():
            carrier = u.attributes.get("carrier")
            if carrier and u.kind in PIECE_KINDS:
                by_carrier.setdefault(str(carrier), []).append((u.name, u.slot))
        for carrier, units in by_carrier.items():
            try:
                read = await driver.read_carrier(carrier, carriers.expected(units))
            except ToolError as e:
                return f"carrier {carrier} could not be read at {driver.tool_id}: {e}"
            if read is not None:
                why = carriers.check(carrier, units, read.carrier_id, read.slots, driver.tool_id)
                if why is not None:
                    return why
        return None

    def _setups(self, step: ToolStepPlan) -> str:
        """What each tool of the step's kind lacks, for the hold reason."""
        parts = []
        for d in self.engine.pool.drivers.values():
            if d.kind == step.tool:
                why = d.setup_problem(step.operation, step.values)
                parts.append(f"{d.tool_id}: {why}" if why else d.tool_id)
        return "; ".join(parts)

    def _intent(
        self,
        step: ToolStepPlan,
        driver: ToolDriver,
        prior: StepRun | None,
        pieces: tuple[str, ...] = (),
        attempt: int | None = None,
    ) -> Intent:
        if attempt is None:
            attempt = (prior.attempt + 1) if prior else 1
        # the nonce keeps ids unique on a tool across databases; simulators seed without it
        job_id = f"{self.lot_id[:12]}-{step.index:03d}-{attempt}#{secrets.token_hex(2)}"
        return Intent(step, driver.tool_id, driver.kind, attempt, job_id, pieces)

    async def _start(self, ctx: _Context, step: ToolStepPlan, attempt: Attempt) -> bool:
        driver = attempt.driver
        params: dict[str, object] = {}
        for p in step.op.params:
            if p.name in step.values:
                v = step.values[p.name]
                params[p.name] = v if p.is_choice else Quantity(float(v), p.unit)
        job = Job(attempt.job_id, step.op.name, params, recipe=ctx.recipe.recipe.id)
        if not lease.fresh(self.lot_id):  # paused past its safe window: still the owner?
            lot_id = self.lot_id
            await self.db.run(lambda s: lease.confirm(s, lot_id))  # LeaseLost: nothing sent
        deadline = time.monotonic() + self.settings.retry_budget
        pause = 0.1
        while True:
            try:
                await driver.start(job)
                return True
            except LINK_ERRORS as e:
                if time.monotonic() + pause > deadline:
                    why = (
                        f"tool {driver.tool_id} unreachable for"
                        f" {self.settings.retry_budget:g} s at step {step.id}: {e}"
                    )
                    await self._stop(
                        ctx, step, HoldReason("unreachable", why), attempt, run_state="failed"
                    )
                    return False
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
            except (ToolError, ParameterError) as e:  # refused: busy, alarm, not set up, ...
                why = f"step {step.id} refused: {e}"
                await self._stop(ctx, step, HoldReason("refused", why), attempt, "failed")
                return False

    async def _wait(self, ctx: _Context, step: ToolStepPlan, attempt: Attempt) -> JobResult | None:
        driver, job_id = attempt.driver, attempt.job_id

        def progress(pct: float, _state: JobState) -> None:
            self.engine.notify(StepProgress(self.lot_id, step.index, pct))

        watcher = asyncio.create_task(self._watch_abort(driver, job_id))
        deadline = time.monotonic() + self.settings.retry_budget
        where = f"{driver.tool_id} during step {step.id} (job {job_id})"
        try:
            while True:
                try:
                    return await driver.wait(job_id, on_progress=progress)
                except LINK_ERRORS as e:
                    if time.monotonic() > deadline:
                        # the job may still run: the run stays open to re-attach on release
                        why = (
                            f"tool {driver.tool_id} unreachable for"
                            f" {self.settings.retry_budget:g} s during step"
                            f" {step.id} (job {job_id}): {e}"
                        )
                        await self._stop(ctx, step, HoldReason("unreachable", why))
                        return None
                    await asyncio.sleep(0.2)
        except ToolAlarm as e:
            why = f"alarm {e.code} {e.text} on {where}"
            await self._stop(ctx, step, HoldReason("alarm", why), attempt, "alarm")
        except JobAborted:
            stopped = f"job {job_id} stopped on {driver.tool_id} during step {step.id}"
            asked = self._abort_reason
            reason = (
                HoldReason(asked.kind, f"{asked.text} ({stopped})")
                if asked
                else HoldReason("operator", f"{stopped}: aborted on the tool")
            )
            await self._stop(ctx, step, reason, attempt, "aborted", abort=True)
        except JobNotFound:
            why = "after a restart" if attempt.reattached else "while it ran"
            text = (
                f"{driver.tool_id} has no record of job {job_id} {why}: an engineer must"
                f" check the material of step {step.id} before release"
            )
            await self._stop(ctx, step, HoldReason("lost_job", text), attempt, "lost")
        finally:
            watcher.cancel()
        return None

    async def _watch_abort(self, driver: ToolDriver, job_id: str) -> None:
        """While a job runs, an abort request (from any process) stops the tool's job."""
        while True:
            lot = await self.watch.next_read()
            asked = lifecycle.requested(lot)
            # aborted already: another job of the step took the request; this one stops too
            if (asked is not None and asked[0] == "abort") or lot.state == LotState.ABORTED:
                if asked is not None:
                    self._abort_reason = asked[1]
                try:
                    st = await driver.status()
                    if st.job_id == job_id:
                        await driver.abort()
                except ToolError as e:
                    log.warning("engine.abort_failed", error=str(e))
                return

    # -- outcomes ---------------------------------------------------------------------------

    async def _commit(
        self,
        ctx: _Context,
        step: ToolStepPlan,
        attempt: Attempt,
        result: JobResult,
        per_piece: dict[str, Mapping[str, float]] | None,
    ) -> None:
        """Record the step in one transaction; when the next step is a tool step and a tool
        for it is free right now, its intent is written in the same transaction."""
        steps = ctx.expansion.steps
        last = step.index + 1 >= len(steps)
        verdicts = tool_warnings.classify(step, result.warnings)
        held = bool(journal.piece_violations(step, per_piece or {"": result.results})) or bool(
            tool_warnings.hold_reason(step, verdicts)
        )
        ctx.history.record(step.index, result.results, utcnow(), per_piece)  # feeds later steps
        area = self.settings.areas.at(steps, step.index + 1, ctx.lot.area)
        leaves = area != ctx.lot.area  # handed over to the area of the next step
        reshapes = step.genealogy.merge is not None or step.genealogy.split is not None
        intent = (
            None
            if held or last or leaves or reshapes
            else self._next_intent(ctx, steps[step.index + 1])
        )
        tool_id = attempt.driver.tool_id

        def tx(s: Session) -> journal.Committed:
            return journal.commit(
                s, self.lot_id, step, tool_id, attempt.run_id, result, ctx.material,
                ctx.recipe, intent[1] if intent else None, verdicts, area, per_piece,
            )  # fmt: skip

        try:
            done = await self.db.run(tx)
        except BaseException:
            if intent is not None:
                self.engine.pool.give_back(intent[0])
            raise
        ctx.lot = done.lot
        ctx.material.apply(done.change, done.new_ids)
        if done.spc.inhibited:  # before the tool is given back: no new job starts on it
            self.engine.pool.hold_out(tool_id)
        for d in done.spc.decisions:
            log.warning("engine.spc_violation", chart=str(d.key), action=d.action.value,
                        reason=d.reason)  # fmt: skip
        if done.spc.decisions:
            self.engine.on_spc(tool_id)
        if intent is not None:
            driver, next_intent = intent
            if done.next_run is None:  # a request stopped the lot between the steps
                self.engine.pool.give_back(driver)
            else:
                ctx.begun = Attempt(
                    next_intent.step, driver, done.next_run, next_intent.job_id, False,
                    next_intent.pieces,
                )  # fmt: skip
        self.steps_run += 1
        self.engine.notify(StepDone(self.lot_id, step.index, step.id))

    def _next_intent(self, ctx: _Context, planned: PlannedStep) -> tuple[ToolDriver, Intent] | None:
        """The intent for the next step if it is a tool step that passes its checks as it
        stands (else the loop records what they decide) and a tool for it is free now."""
        if not isinstance(planned, ToolStepPlan):
            return None
        g = gate(ctx.expansion, planned, ctx.history, utcnow())
        step = g.step
        if not g.clear or not isinstance(step, ToolStepPlan):
            return None
        jobs = plan_jobs(ctx.material, step, _principal(ctx))
        if len(jobs) > 1 or jobs[0].batch:
            return None  # a step of several jobs writes each job's intent itself
        pieces = tuple(jobs[0].names)
        step = jobs[0].step
        operation = step.operation
        try:
            driver = self.engine.pool.take_now(
                step.tool, fits=lambda d: d.setup_problem(operation, step.values) is None
            )
        except NoToolFits:
            return None  # the step itself holds the lot, with what each tool lacks
        return None if driver is None else (driver, self._intent(step, driver, None, pieces))

    async def _stop(
        self,
        ctx: _Context,
        step: PlannedStep,
        reason: HoldReason,
        attempt: Attempt | None = None,
        run_state: str = "failed",
        *,
        abort: bool = False,
    ) -> None:
        """Hold the lot (abort it, with `abort`), ending the attempt's run in `run_state`
        when the attempt is over; a run left open is re-attached on release."""
        run = (attempt.run_id, run_state) if attempt is not None else None
        tool = attempt.driver.tool_id if attempt is not None else None
        ctx.lot = await self.db.run(
            lambda s: journal.stop(s, self.lot_id, step, reason, tool_id=tool, run=run, abort=abort)
        )
        state = LotState.ABORTED if abort else LotState.HELD
        log.warning("engine.lot_stopped", state=state, kind=reason.kind, reason=reason.text)
