"""Every transaction a lot runner writes, one function each, run inside `Database.run`.

Intent before send: a tool step's run (with its job id) and its track-in events commit
before the job goes to the tool. One transaction per step: a step's results, its genealogy,
its events and — when the next step's tool is free — the next step's intent commit
together. State changes go through the lifecycle (controller/lots/lifecycle.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from controller.engine import spc_hook
from controller.engine.material import Material, plan_change
from controller.engine.spc_hook import SpcOutcome
from controller.events import (
    EventBase,
    ExternalConfirmed,
    ExternalConfirmedData,
    ExternalWaiting,
    ExternalWaitingData,
    HandedOver,
    HandOverData,
    LotCompleted,
    LotCompletedData,
    Quantity,
    Setpoint,
    StepCompleted,
    StepCompletedData,
    StepInfo,
    StepSkipped,
    StepSkippedData,
    StepStarted,
    StepStartedData,
    ToolWarning,
    TrackIn,
    TrackOut,
    TrackOutData,
    WarningData,
)
from controller.genealogy import store
from controller.genealogy.models import Lot, StepRun, Unit, utcnow
from controller.genealogy.write import Change, write_change
from controller.lots import lease, lifecycle, operations
from controller.lots.lease import ME, driven_elsewhere
from controller.lots.lifecycle import HoldReason, LotState
from controller.recipes import (
    ExternalStepPlan,
    LoadedRecipe,
    PlannedStep,
    ToolStepPlan,
    feedforward,
    tool_warnings,
)
from controller.recipes.gate import Gate
from drivers.base import JobResult
from drivers.units import format_quantity


@dataclass(frozen=True)
class Claimed:
    """A lot as its runner takes it: the row, its recipe text, its units, and the newest
    run of its next step (to re-attach to, or to ask the tool about)."""

    lot: Lot
    recipe_text: str
    units: list[Unit]
    supply_counts: dict[str, int]  # supply units drawn so far, to keep their numbering
    prior: StepRun | None


def claim(s: Session, lot_id: str, station: str) -> Claimed:
    """Take the lot's lease (refused while another controller holds it) and read what its
    runner needs; a lot in a state that does not run is read, not taken."""
    lot = store.get_lot(s, lot_id, for_update=True)
    if driven_elsewhere(lot, lease.db_now(s)):
        lease.take(s, lot, station)  # raises LotBusy, naming the holder and its lease
    text = store.recipe_text(s, lot.recipe_hash)
    if lot.state in (LotState.PAUSED, LotState.QUEUED, LotState.RUNNING):
        if lot.state == LotState.PAUSED:  # resuming a paused lot releases it
            lifecycle.apply(s, lot, "release", note="resumed")
        lease.take(s, lot, station)
    else:
        return Claimed(lot, text, [], {}, None)
    every = store.lot_units(s, lot.id, active_only=False)
    counts: dict[str, int] = {}
    for u in every:
        src = u.attributes.get("input")
        if src and u.created_step >= 0:
            counts[src] = counts.get(src, 0) + 1
    active = [u for u in every if u.state in ("active", "supply")]
    return Claimed(lot, text, active, counts, store.open_step_run(s, lot.id, lot.next_step))


def disown(s: Session, lot_id: str) -> None:
    lease.give_back(s, lot_id)


def take_request(s: Session, lot: Lot, step: PlannedStep) -> bool:
    """Apply a pending hold/pause/abort request at a step boundary; whether one applied."""
    asked = lifecycle.requested(lot)
    if asked is None:
        return False
    action, reason = asked
    lifecycle.apply(s, lot, action, reason=reason, step_id=step.id)
    return True


@dataclass(frozen=True)
class Intent:
    """A tool step's job about to go out: the tool, which run of the step it is, the job id,
    and its work pieces (none: a job for the whole lot)."""

    step: ToolStepPlan
    tool_id: str
    tool_kind: str
    attempt: int
    job_id: str
    pieces: tuple[str, ...] = ()


def write_intent(s: Session, lot: Lot, intent: Intent, recipe: LoadedRecipe) -> int | None:
    """The step run and its track-in events; None when a request stopped the lot instead
    (or another job of the step already did: no job starts on a held lot)."""
    step = intent.step
    if take_request(s, lot, step):
        return None
    if lot.state not in (LotState.QUEUED, LotState.RUNNING):
        return None
    recorded = feedforward.setpoints(step)  # fed-forward values carry formula and inputs
    points = {k: Setpoint.model_validate(v) for k, v in recorded.items()}
    run_id = store.add_step_run(
        s,
        lot_id=lot.id,
        step_index=step.index,
        step_id=step.id,
        attempt=intent.attempt,
        kind="tool",
        tool_id=intent.tool_id,
        tool_kind=intent.tool_kind,
        operation=step.operation,
        job_id=intent.job_id,
        recipe_id=recipe.recipe.id,
        recipe_hash=recipe.hash,
        state="started",
        setpoints=recorded,
        piece=intent.pieces[0] if intent.pieces else None,
        piece_count=len(intent.pieces),
    )
    info = StepInfo(
        step_index=step.index,
        operation=step.operation,
        job_id=intent.job_id,
        attempt=intent.attempt,
        role=step.role,
        pieces=list(intent.pieces),
    )
    where = {"lot_id": lot.id, "tool_id": intent.tool_id, "step_id": step.id}
    lifecycle.apply(
        s,
        lot,
        "track_in",
        events=[
            TrackIn(**where, data=info),
            StepStarted(**where, data=StepStartedData(**info.model_dump(), setpoints=points)),
        ],
        owner=ME,
    )
    return run_id


def pinned_run(prior: StepRun | None) -> StepRun | None:
    """The run whose job may be on its tool: one left started, or one whose start failed
    (the tool may have taken it). A new attempt re-attaches to it or asks the tool first."""
    if prior is not None and prior.state in ("started", "failed") and prior.job_id:
        return prior
    return None


def reopen(s: Session, lot_id: str, run_id: int) -> Lot:
    """A run marked failed whose job the tool turns out to have: started again."""
    store.reopen_step_run(s, run_id)
    lot = store.get_lot(s, lot_id, for_update=True)
    store.set_lot(lot, state=LotState.RUNNING.value, owner=ME)
    return lot


def piece_violations(step: ToolStepPlan, per_piece: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Every piece's results out of spec, each naming its piece (a piece never passes on
    the strength of the others)."""
    out = []
    for piece, results in per_piece.items():
        bad = spec_violations(step, results)
        if bad:  # a lot of one piece reads as before: the step's values
            named = piece and len(per_piece) > 1
            out.append(f"{piece}: {', '.join(bad)}" if named else "; ".join(bad))
    return out


def quantities(step: ToolStepPlan, results: Mapping[str, float]) -> dict[str, Quantity]:
    units = {r.name: r.unit for r in step.op.results}
    return {k: Quantity(value=v, unit=units.get(k, "")) for k, v in results.items()}


def piece_rows(
    run_id: int,
    per_piece: Mapping[str, Mapping[str, float]],
    ids: Mapping[str, int],
    step: ToolStepPlan,
) -> list[store.PieceRow]:
    """The run's pieces (unit names in load order) with their own results."""
    return [
        store.PieceRow(
            step_run_id=run_id,
            unit_id=ids[name],
            position=n,
            results={k: q.model_dump() for k, q in quantities(step, results).items()},
        )
        for n, (name, results) in enumerate(per_piece.items(), start=1)
        if name in ids
    ]


def spec_violations(step: ToolStepPlan, results: Mapping[str, float]) -> list[str]:
    units = {r.name: r.unit for r in step.op.results}
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


@dataclass(frozen=True)
class Committed:
    lot: Lot
    change: Change
    new_ids: dict[str, int]
    next_run: int | None  # the next step's run, when its intent was written too
    spc: SpcOutcome = field(default_factory=SpcOutcome)  # what the step's SPC charts decided
    split_off: tuple[str, ...] = ()  # pieces moved to a held child lot (out of spec)


@dataclass
class _JobRecord:
    """A job's run and pieces written, its lot locked, its events (`before` the step's
    genealogy events, `after` them) and the hold an SPC chart asks for."""

    lot: Lot
    before: list[EventBase]
    after: list[EventBase]
    spc: SpcOutcome


def _record_job(
    s: Session,
    lot_id: str,
    step: ToolStepPlan,
    tool_id: str,
    run_id: int,
    result: JobResult,
    per_piece: Mapping[str, Mapping[str, float]] | None,
    ids: Mapping[str, int],
    verdicts: Sequence[tool_warnings.Verdict],
    recipe_id: str,
) -> _JobRecord:
    """What every job commits: its run done with its results, its pieces with their own,
    step_completed and track_out, its warnings and each piece's SPC points."""
    results = quantities(step, result.results)
    store.finish_step_run(
        s,
        run_id,
        expect=("started",),
        state="done",
        results={k: q.model_dump() for k, q in results.items()},
    )
    if per_piece:
        store.add_run_pieces(s, piece_rows(run_id, per_piece, ids, step))
    lot = store.get_lot(s, lot_id, for_update=True)
    where = {"lot_id": lot.id, "tool_id": tool_id, "step_id": step.id}
    measured = per_piece or {"": result.results}
    pieces = (
        {name: quantities(step, r) for name, r in measured.items()} if len(measured) > 1 else {}
    )
    before: list[EventBase] = [
        StepCompleted(
            **where,
            data=StepCompletedData(
                job_id=result.job_id,
                operation=step.operation,
                setpoints={k: str(v) for k, v in step.params.items()},
                results=results,
                in_spec=not piece_violations(step, measured),
                pieces=pieces,
            ),
        ),
        TrackOut(**where, data=TrackOutData(step_index=step.index, job_id=result.job_id)),
    ]
    after: list[EventBase] = [ToolWarning(**where, data=WarningData(**v.data())) for v in verdicts]
    spc = SpcOutcome()
    for piece_results in measured.values():
        charted = spc_hook.record(
            s, lot_id=lot.id, recipe_id=recipe_id, step=step, tool_id=tool_id,
            run_id=run_id, job_id=result.job_id, results=piece_results,
        )  # fmt: skip
        after += charted.events
        spc = SpcOutcome(
            [*spc.events, *charted.events],
            spc.hold or charted.hold,
            spc.inhibited or charted.inhibited,
            [*spc.decisions, *charted.decisions],
        )
    return _JobRecord(lot, before, after, spc)


def commit(
    s: Session,
    lot_id: str,
    step: ToolStepPlan,
    tool_id: str,
    run_id: int,
    result: JobResult,
    material: Material,
    recipe: LoadedRecipe,
    next_intent: Intent | None,
    verdicts: Sequence[tool_warnings.Verdict] = (),
    area: str | None = None,
    per_piece: Mapping[str, Mapping[str, float]] | None = None,
) -> Committed:
    """A step of one job: its record (`_record_job`), the step's genealogy and events, and
    the next step's intent if given. A result out of spec, an SPC violation whose chart
    holds, or a warning the recipe holds on, holds the lot after the step. `per_piece`: the
    job's work pieces with their own results."""
    known = {name: u.id for name, u in material.active.items() if u.id is not None}
    job = _record_job(
        s, lot_id, step, tool_id, run_id, result, per_piece, known, verdicts, recipe.recipe.id
    )
    lot = job.lot
    loaded = {c: store.consumable_lot(s, tool_id, c) for c in step.consume}
    change = plan_change(
        material, step, result.results, {c: n for c, (n, _) in loaded.items()},
        recipe.recipe.inputs, per_piece,
    )  # fmt: skip
    known |= {name: uid for name, uid in loaded.values()}
    new_ids = write_change(s, lot.id, change, run_id, step.index, known)
    where = {"lot_id": lot.id, "tool_id": tool_id, "step_id": step.id}
    events = [*job.before, *(e.model_copy(update=where) for e in change.events), *job.after]
    store.set_lot(lot, next_step=step.index + 1)
    store.add_events(s, lot.station, events, lot)
    next_run = None
    out_of_spec = piece_violations(step, per_piece or {"": result.results})
    warned = tool_warnings.hold_reason(step, verdicts)
    if out_of_spec:
        reason = f"out of spec at step {step.id}: {'; '.join(out_of_spec)}"
        lifecycle.apply(s, lot, "hold", reason=HoldReason("out_of_spec", reason), step_id=step.id)
    elif job.spc.hold is not None:
        lifecycle.apply(s, lot, "hold", reason=job.spc.hold, step_id=step.id, tool_id=tool_id)
    elif warned is not None:
        lifecycle.apply(s, lot, "hold", reason=HoldReason("warning", warned), step_id=step.id)
    elif area is not None and area != lot.area:
        hand_over(s, lot, area)
    elif next_intent is not None:
        next_run = write_intent(s, lot, next_intent, recipe)
    return Committed(lot, change, new_ids, next_run, job.spc)


def commit_job(
    s: Session,
    lot_id: str,
    step: ToolStepPlan,
    tool_id: str,
    run_id: int,
    result: JobResult,
    per_piece: Mapping[str, Mapping[str, float]],
    ids: Mapping[str, int],
    verdicts: Sequence[tool_warnings.Verdict] = (),
    recipe_id: str = "",
) -> Lot:
    """One job of a step of several: its record (`_record_job`; a chart that holds holds
    the lot now: no more jobs start). The step's genealogy and its spec verdict wait for its
    last job (`finish_step`)."""
    job = _record_job(s, lot_id, step, tool_id, run_id, result, per_piece, ids, verdicts, recipe_id)
    lot = job.lot
    store.add_events(s, lot.station, [*job.before, *job.after], lot)
    if job.spc.hold is not None and lot.state in (LotState.QUEUED, LotState.RUNNING):
        lifecycle.apply(s, lot, "hold", reason=job.spc.hold, step_id=step.id, tool_id=tool_id)
    return lot


def finish_step(
    s: Session,
    lot_id: str,
    step: ToolStepPlan,
    material: Material,
    recipe: LoadedRecipe,
    per_piece: Mapping[str, Mapping[str, float]],
    tools: Mapping[str, str],
    runs: Mapping[str, int],
    warned: str | None,
    area: str | None,
) -> Committed:
    """The last job of a step of several is in: the step's genealogy (each piece's defects
    its own, each piece consuming from the tool it ran on), the lot on to the next step, and
    a hold when a piece is out of spec or a warning the recipe holds on was raised."""
    lot = store.get_lot(s, lot_id, for_update=True)
    by_tool = {
        t: {c: store.consumable_lot(s, t, c) for c in step.consume} for t in set(tools.values())
    }
    first = next(iter(by_tool.values()), {})
    change = plan_change(
        material, step, {}, {c: n for c, (n, _) in first.items()}, recipe.recipe.inputs,
        per_piece,
        {p: {c: n for c, (n, _) in by_tool[t].items()} for p, t in tools.items()},
    )  # fmt: skip
    known = {name: u.id for name, u in material.active.items() if u.id is not None}
    for loaded in by_tool.values():
        known |= {name: uid for name, uid in loaded.values()}
    last = max(runs.values(), default=None)
    new_ids = write_change(s, lot.id, change, last, step.index, known, runs)
    where = {"lot_id": lot.id, "step_id": step.id}
    store.set_lot(lot, next_step=step.index + 1)
    store.add_events(s, lot.station, [e.model_copy(update=where) for e in change.events], lot)
    out_of_spec = piece_violations(step, per_piece)
    failing = [p for p, r in per_piece.items() if spec_violations(step, r)]
    reshaped = bool(change.ended)  # pieces merged or diced: nothing left to split off
    split_off: tuple[str, ...] = ()
    if lot.state not in (LotState.QUEUED, LotState.RUNNING):
        pass  # a request took effect between the jobs: the lot stays as it was asked
    elif out_of_spec:
        n = len(out_of_spec)
        reason = f"out of spec at step {step.id} ({n} of {len(per_piece)} pieces): "
        reason += "; ".join(out_of_spec)
        hold = HoldReason("out_of_spec", reason)
        if step.out_of_spec == "split" and len(failing) < len(per_piece) and not reshaped:
            lot = split_failing(s, lot, step, failing, hold)
            split_off = tuple(failing)
        else:
            lifecycle.apply(s, lot, "hold", reason=hold, step_id=step.id)
    elif warned is not None:
        lifecycle.apply(s, lot, "hold", reason=HoldReason("warning", warned), step_id=step.id)
    elif area is not None and area != lot.area:
        hand_over(s, lot, area)
    return Committed(lot, change, new_ids, None, split_off=split_off)


def split_failing(
    s: Session, lot: Lot, step: ToolStepPlan, failing: Sequence[str], hold: HoldReason
) -> Lot:
    """The recipe's `out_of_spec: split`: the failing pieces go to a new child lot, held with
    the reason, by the lot operation an operator would use (its events and lot link); the
    lot runs on with the rest. In the trail: held, split, released by the engine."""
    lifecycle.apply(s, lot, "hold", reason=hold, step_id=step.id)
    station = lot.station
    lease.give_up(lot)  # a lot operation happens on a lot no controller drives
    store.write_lots(s)
    child_id = _child_id(s, lot.id)
    parent, _child = operations.split(s, lot.id, child_id, failing)
    note = f"out-of-spec pieces {', '.join(failing)} split to held lot {child_id}"
    lifecycle.apply(s, parent, "release", note=note)
    lease.take(s, parent, station)
    return parent


def _child_id(s: Session, lot_id: str) -> str:
    """A new lot id for pieces split off `lot_id`: LOT.X1, LOT.X2, ... (32 characters)."""
    k = 1
    while True:
        suffix = f".X{k}"
        candidate = lot_id[: 32 - len(suffix)] + suffix
        if s.get(Lot, candidate) is None:
            return candidate
        k += 1


def hand_over(s: Session, lot: Lot, area: str) -> None:
    """The lot's next step is in another area: it goes back to the queue, of that area, with
    no owner, for the station serving it to pick up (controller/lots/areas.py)."""
    data = HandOverData(from_area=lot.area, to_area=area, from_station=lot.station,
                        next_step=lot.next_step)  # fmt: skip
    lifecycle.apply(s, lot, "hand_over", events=[HandedOver(lot_id=lot.id, data=data)], area=area)
    lease.give_up(lot)


def external(
    s: Session, lot_id: str, step: ExternalStepPlan, recipe: LoadedRecipe, auto: bool
) -> Lot:
    """Reach a step outside the line: the lot waits for its confirmation (or, on a simulated
    line, a simulated partner confirms it at once)."""
    lot = store.get_lot(s, lot_id, for_update=True)
    if take_request(s, lot, step):
        return lot
    prior = store.open_step_run(s, lot.id, step.index)
    if prior is not None and prior.state == "waiting":
        if lot.state != LotState.WAITING:
            lifecycle.apply(s, lot, "wait")
        return lot
    data = feedforward.simulated_returns(step, lot.id)
    store.add_step_run(
        s,
        lot_id=lot.id,
        step_index=step.index,
        step_id=step.id,
        kind="external",
        attempt=(prior.attempt + 1) if prior else 1,
        recipe_id=recipe.recipe.id,
        recipe_hash=recipe.hash,
        state="confirmed" if auto else "waiting",
        setpoints=external_setpoints(step),
        results=data if auto else {},
        ended_at=utcnow() if auto else None,
    )
    waiting = ExternalWaiting(
        lot_id=lot.id,
        step_id=step.id,
        data=ExternalWaitingData(external=step.external, returns=list(step.returns)),
    )
    lifecycle.apply(s, lot, "wait", events=[waiting])
    if auto:
        confirmed = ExternalConfirmed(
            lot_id=lot.id,
            step_id=step.id,
            data=ExternalConfirmedData(returned=data, by="simulated partner"),
        )
        lifecycle.apply(s, lot, "confirm", events=[confirmed], next_step=step.index + 1)
        store.set_lot(lot, owner=ME)
    return lot


def external_setpoints(step: ExternalStepPlan) -> dict[str, Any]:
    """What an external step's run records: the work order, the fields it returns and, for
    those with a spec, its limits and unit (checked when the material is confirmed)."""
    out: dict[str, Any] = {"external": step.external, "returns": list(step.returns)}
    spec = {
        name: {"min": lo, "max": hi, "unit": step.return_units.get(name, "")}
        for name, (lo, hi) in step.spec.items()
        if name in step.returns
    }
    if spec:
        out["spec"] = spec
    return out


def stop(
    s: Session,
    lot_id: str,
    step: PlannedStep,
    reason: HoldReason,
    *,
    tool_id: str | None = None,
    run: tuple[int, str] | None = None,
    abort: bool = False,
) -> Lot:
    """Hold (or abort) the lot at `step`; `run`: (run id, state) ends the step's run too."""
    if run is not None:
        run_id, run_state = run
        store.finish_step_run(s, run_id, expect=("started",), state=run_state, message=reason.text)
    lot = store.get_lot(s, lot_id, for_update=True)
    action = "abort" if abort else "hold"
    if lot.state == LotState.ABORTED or (lot.state == LotState.HELD and not abort):
        return lot  # another job of the step already stopped the lot: its reason stands
    lifecycle.apply(s, lot, action, reason=reason, step_id=step.id, tool_id=tool_id)
    return lot


def gate(s: Session, lot_id: str, step: PlannedStep, g: Gate) -> Lot:
    """What the checks before a step decided (controller/recipes/gate.py): its queue-time
    events, then a hold, or the step skipped (a rework step that is not needed)."""
    lot = store.get_lot(s, lot_id, for_update=True)
    where = {"lot_id": lot.id, "step_id": step.id}
    store.add_events(s, lot.station, [e.model_copy(update=where) for e in g.events], lot)
    if g.hold is not None:
        kind, text = g.hold
        lifecycle.apply(s, lot, "hold", reason=HoldReason(kind, text), step_id=step.id)
    elif g.skip is not None:
        skipped = StepSkipped(**where, data=StepSkippedData(reason=g.skip))
        store.set_lot(lot, next_step=step.index + 1)
        store.add_events(s, lot.station, [skipped], lot)
    return lot


def complete(s: Session, lot_id: str) -> Lot:
    lot = store.get_lot(s, lot_id, for_update=True)
    done = LotCompleted(lot_id=lot.id, data=LotCompletedData(units=store.count_units(s, lot.id)))
    lifecycle.apply(s, lot, "complete", events=[done])
    return lot
