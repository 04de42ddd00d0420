"""A tool step of several jobs: one per work piece, or batches of pieces (controller/engine/
pieces.py), run at once on as many tools of the kind as are free, in slot order.

Every job keeps the step contract of a single one: its intent (a step run with its job id and
pieces) commits before it is sent, its results (each piece's own) and events commit when it
ends, one transaction per job, and after a crash each job is re-attached by its job id —
jobs already done are not run again. The step's genealogy, the lot's move to the next step
and the spec verdict over every piece commit once its last job is in. Hold and pause take
effect between jobs (jobs already running finish and are recorded); abort stops every
running job; a job that stops the lot (alarm, refusal, unreachable tool) lets the others
finish but starts no more.
"""

from __future__ import annotations

import asyncio
import dataclasses
from asyncio import FIRST_COMPLETED
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.orm import Session

from controller.engine import journal
from controller.engine.pieces import PieceJob, mean_results
from controller.engine.progress import StepBegan, StepDone
from controller.genealogy import store
from controller.genealogy.models import StepRun, utcnow
from controller.lots.lifecycle import HoldReason
from controller.recipes import ToolStepPlan, tool_warnings
from controller.recipes.history import plain
from drivers.base import JobResult, ToolDriver
from drivers.errors import JobNotFound, ToolError
from drivers.interface import piece_job_id

if TYPE_CHECKING:
    from controller.engine.runner import LotRunner, _Context

log = structlog.get_logger("fabline.engine")

Results = Mapping[str, float]


@dataclasses.dataclass
class _Done:
    """What one job left for the step's finish."""

    per_piece: dict[str, Results]
    tool_id: str
    verdicts: list[tool_warnings.Verdict]
    run_id: int


class PieceSteps:
    def __init__(
        self, runner: LotRunner, ctx: _Context, step: ToolStepPlan, jobs: list[PieceJob]
    ) -> None:
        self.runner = runner
        self.ctx = ctx
        self.step = step
        self.jobs = jobs
        self.waiting: set[asyncio.Task[_Done | None]] = set()  # not sent yet: cancellable
        self.began = False
        self.next_number = 0

    async def run(self) -> None:
        r, ctx, step = self.runner, self.ctx, self.step
        ctx.prior = None  # this step's runs are read here, every piece's
        lot_id = r.lot_id
        runs = await r.db.run(lambda s: store.step_runs_of(s, lot_id, step.index))
        latest: dict[str, StepRun] = {}
        for run in runs:
            latest[run.piece or ""] = run
        self.next_number = max((run.attempt for run in runs), default=0)
        done: dict[str, _Done] = await self._done_before(latest)
        todo: list[tuple[PieceJob, StepRun | None, int | None]] = []
        for job in self.jobs:
            prior = latest.get(job.key)
            if job.key in done:
                continue
            pinned = journal.pinned_run(prior)
            todo.append((job, pinned, None if pinned else self._number()))
        tools = self._tools()
        if tools and not runs:  # track-in of the step: the tool reads the lot's carriers
            why = await r.carrier_problem(ctx, r.engine.pool.drivers[tools[0]])
            if why is not None:
                await r._stop(ctx, step, HoldReason("carrier", f"step {step.id}: {why}"))
                return
        tasks = [
            asyncio.create_task(self._job(job, pinned, n, tools[i % len(tools)] if tools else None))
            for i, (job, pinned, n) in enumerate(todo)
        ]
        stopped = False
        pending: set[asyncio.Task[_Done | None]] = set(tasks)
        try:
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=FIRST_COMPLETED)
                for t in finished:
                    if t.cancelled() or t.exception() is not None or t.result() is not None:
                        continue  # raised below, after every job has ended
                    if not stopped:
                        stopped = True  # the lot stopped: jobs not sent yet are not sent
                        for w in list(self.waiting):
                            w.cancel()
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for (job, _, _), outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, _Done):
                done[job.key] = outcome
            elif isinstance(outcome, BaseException) and not isinstance(
                outcome, asyncio.CancelledError
            ):
                raise outcome
        ctx.lot = await r.db.run(lambda s: store.get_lot(s, lot_id))
        if stopped or any(job.key not in done for job in self.jobs):
            return
        await self._finish(done)

    def _tools(self) -> list[str]:
        """The tools of the step's kind set up for it and not inhibited, by id: the jobs go
        round them in slot order (job k prefers tool k mod n), so the same lot on the same
        line runs each piece on the same tool — and a seeded simulated run measures the
        same — whatever finishes first. A job whose tool is inhibited while it waits takes
        another (pool.py)."""
        step, pool = self.step, self.runner.engine.pool
        return sorted(
            d.tool_id
            for d in pool.drivers.values()
            if d.kind == step.tool
            and not pool.held_out(d.tool_id)
            and d.setup_problem(step.operation, step.values) is None
        )

    def _number(self) -> int:
        """The next run number of the step (job ids and runs are numbered per step, in slot
        order for a first pass, so a rerun with the same seed measures the same)."""
        self.next_number += 1
        return self.next_number

    async def _done_before(self, latest: Mapping[str, StepRun]) -> dict[str, _Done]:
        """Jobs of this step finished before a restart, with their pieces' results."""
        finished = {run.id: key for key, run in latest.items() if run.state == "done"}
        if not finished:
            return {}
        lot_id = self.runner.lot_id
        rows = await self.runner.db.run(lambda s: store.run_pieces(s, lot_id))
        out: dict[str, _Done] = {}
        for run_id, name, _pos, results in rows:
            key = finished.get(run_id)
            if key is None:
                continue
            tool = latest[key].tool_id or ""
            out.setdefault(key, _Done({}, tool, [], run_id)).per_piece[name] = {
                k: float(v) for k, v in plain(results).items() if not isinstance(v, str)
            }
        return out

    async def _job(
        self, job: PieceJob, pinned: StepRun | None, number: int | None, tool: str | None
    ) -> _Done | None:
        r, ctx = self.runner, self.ctx
        step = job.step
        task = asyncio.current_task()
        assert task is not None
        self.waiting.add(task)
        try:
            attempt = await r.attempt(
                ctx,
                step,
                tuple(job.names),
                pinned=pinned,
                number=(lambda: number) if number is not None else self._number,
                tool=tool,
            )
        finally:
            self.waiting.discard(task)
        if attempt is None:
            return None
        driver = attempt.driver
        try:
            if not attempt.reattached and not await r._start(ctx, step, attempt):
                return None
            if not self.began:
                self.began = True
                total = len(ctx.expansion.steps)
                tools = f"{driver.tool_id} (+{len(self.jobs) - 1} jobs)"
                r.engine.notify(StepBegan(r.lot_id, step.index, total, step.id, tools))
            result = await r._wait(ctx, step, attempt)
            if result is None:
                return None
            per_piece = await self._pieces(driver, job, result)
        finally:
            r.engine.pool.give_back(driver)
        verdicts = tool_warnings.classify(step, result.warnings)
        ids = {n: u.id for n, u in ctx.material.active.items() if u.id is not None}
        run_id, tool_id, lot_id = attempt.run_id, driver.tool_id, r.lot_id
        ctx.lot = await r.db.run(
            lambda s: journal.commit_job(
                s,
                lot_id,
                step,
                tool_id,
                run_id,
                result,
                per_piece,
                ids,
                verdicts,
                ctx.recipe.recipe.id,
            )
        )
        return _Done(per_piece, tool_id, list(verdicts), run_id)

    async def _pieces(
        self, driver: ToolDriver, job: PieceJob, result: JobResult
    ) -> dict[str, Results]:
        """Each piece's own results: a batch's pieces are the tool's jobs `<job id>/<n>`."""
        if len(job.units) <= 1:
            return {name: result.results for name in job.names}
        out: dict[str, Results] = {}
        for n, name in enumerate(job.names, start=1):
            try:
                out[name] = (await driver.result(piece_job_id(result.job_id, n))).results
            except (JobNotFound, ToolError) as e:  # a tool that keeps no pieces: the batch's
                log.warning("engine.piece_results_missing", job_id=result.job_id, error=str(e))
                out[name] = result.results
        return out

    async def _finish(self, done: Mapping[str, _Done]) -> None:
        r, ctx, step = self.runner, self.ctx, self.step
        per_piece: dict[str, Results] = {}
        tools: dict[str, str] = {}
        runs: dict[str, int] = {}
        verdicts: list[tool_warnings.Verdict] = []
        for job in self.jobs:  # slot order
            d = done[job.key]
            for name in job.names:
                if name in d.per_piece:
                    per_piece[name] = d.per_piece[name]
                    tools[name] = d.tool_id
                    runs[name] = d.run_id
            verdicts += d.verdicts
        warned = tool_warnings.hold_reason(step, verdicts)
        steps = ctx.expansion.steps
        area = r.settings.areas.at(steps, step.index + 1, ctx.lot.area)
        # feeds later steps: each piece its own measurements, the lot the mean
        ctx.history.record(step.index, mean_results(per_piece), utcnow(), per_piece)
        lot_id = r.lot_id

        def tx(s: Session) -> journal.Committed:
            return journal.finish_step(
                s, lot_id, step, ctx.material, ctx.recipe, per_piece, tools, runs, warned, area
            )

        committed = await r.db.run(tx)
        ctx.lot = committed.lot
        ctx.material.apply(committed.change, committed.new_ids)
        for name in committed.split_off:  # out of spec, now in a held child lot
            ctx.material.active.pop(name, None)
        r.steps_run += 1
        r.engine.notify(StepDone(r.lot_id, step.index, step.id))
