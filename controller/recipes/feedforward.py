"""Feed-forward at run time: a step's setpoints computed from what earlier steps of the lot
measured (formulas in docs/recipes.md, bound to steps by `expand`).

`resolve` returns the step with its fed-forward setpoints replaced by the measured values, or
raises FeedForwardError with the reason the lot must hold (a measurement missing or not a
number, a setpoint the tool would refuse). `setpoints` is what the step run records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from controller.recipes.expand import (
    ExternalStepPlan,
    PlannedStep,
    Source,
    ToolStepPlan,
    fed_values,
    refusal,
)
from controller.recipes.history import History
from drivers.errors import FablineError, FeedForwardError
from drivers.units import Quantity, format_quantity, to_unit


def measured_total(
    source: Source, history: History, piece: str | None = None
) -> tuple[float, dict[str, float]]:
    """The source's total over its runs, in its unit, and each run's value (for the record):
    the piece's own measurement where a run measured it, else the lot's."""
    total, seen = 0.0, {}
    for index, step_id in zip(source.indices, source.ids, strict=True):
        raw = history.result(index, source.ref.result, piece)
        label = f"{step_id}.{source.ref.result}"
        if raw is None:
            raise FeedForwardError(f"no measured {label} to feed forward (step not done)")
        try:
            value = raw if isinstance(raw, int | float) else to_unit(str(raw), source.unit)
        except FablineError:
            raise FeedForwardError(
                f"{label} = {raw!r} is not a quantity in {source.unit}"
            ) from None
        seen[label] = float(value)
        total += float(value)
    return total, seen


def resolve(step: PlannedStep, history: History) -> PlannedStep:
    """The step with its fed-forward parameters computed from the lot's measurements (the
    mean over its pieces), and `pieces`: the step as each piece's own job runs it, for every
    piece an earlier step measured on its own. A refusal names the piece."""
    if not isinstance(step, ToolStepPlan) or not step.feed_forward:
        return step
    resolved = _resolved(step, history, None)
    sources = [i for fp in step.feed_forward.values() for src in fp.sources for i in src.indices]
    pieces = {}
    for piece in history.pieces_measured(sources):
        try:
            pieces[piece] = _resolved(step, history, piece)
        except FeedForwardError as e:
            raise FeedForwardError(f"piece {piece}: {e}") from None
    return dataclasses.replace(resolved, pieces=pieces) if pieces else resolved


def for_job(step: ToolStepPlan, pieces: Sequence[str]) -> ToolStepPlan:
    """The step as a job of these pieces runs it: one piece's own (`resolve`), else the
    lot's (a batch job runs one set of setpoints)."""
    return step.pieces.get(pieces[0], step) if len(pieces) == 1 else step


def _resolved(step: ToolStepPlan, history: History, piece: str | None) -> ToolStepPlan:
    op = step.op
    inputs: dict[str, dict[str, float]] = {}
    totals: dict[Source, float] = {}
    for name, fp in step.feed_forward.items():
        inputs[name] = {}
        for source in fp.sources:
            totals[source], seen = measured_total(source, history, piece)
            inputs[name] |= seen
    values = fed_values(op, step.feed_forward, step.values, totals.__getitem__)
    reason = refusal(op, values, step.feed_forward)
    if reason is not None:
        shown = ", ".join(
            f"{n} = {format_quantity(round(float(values[n]), 4), f.unit)}"
            for n, f in step.feed_forward.items()
        )
        raise FeedForwardError(f"fed-forward setpoints ({shown}) refused: {reason}")
    params = dict(step.params)
    for name, f in step.feed_forward.items():
        params[name] = format_quantity(round(float(values[name]), 4), f.unit)
    return dataclasses.replace(step, values=values, params=params, fed_inputs=inputs)


def setpoints(step: ToolStepPlan) -> dict[str, dict[str, Any]]:
    """A step's setpoints as recorded with its run: value and unit, and for a fed-forward
    parameter its formula, the value planned in the recipe and the measurements it used."""
    units = {p.name: p.unit for p in step.op.params}
    out: dict[str, dict[str, Any]] = {}
    for k, v in step.values.items():
        entry: dict[str, Any] = {"value": v, "unit": units.get(k, "")}
        fed = step.feed_forward.get(k)
        if fed is not None:
            entry |= {
                "formula": fed.text,
                "planned": round(fed.planned, 6),
                "inputs": dict(step.fed_inputs.get(k, {})),
            }
        out[k] = entry
    return out


def simulated_returns(step: ExternalStepPlan, lot_id: str) -> dict[str, str]:
    """What a simulated partner returns for an external step: a returned field with a spec at
    its midpoint, with its unit; any other field a recognisable placeholder."""
    out: dict[str, str] = {}
    for f in step.returns:
        lo, hi = step.spec.get(f, (None, None))
        unit = step.return_units.get(f)
        if lo is not None and hi is not None and unit is not None:
            out[f] = str(Quantity((lo + hi) / 2.0, unit))
        else:
            out[f] = f"SIM-{lot_id}-{step.template}-{f}"
    return out
