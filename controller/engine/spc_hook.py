"""SPC in the step transaction: each chart a tool step declares gets the piece's result as a
point, judged by the chart's frozen limits; a violation is recorded and published, and its
OCAP action holds the lot or inhibits the tool in the same transaction (docs/spc.md).

A chart's series starts at its phase I: the first `baseline` points are collected unjudged,
then frozen into limits (`spc.phase_one`) that judge every later point; `fabline spc
baseline` starts a new series. The rules read only the last `window - 1` plotted values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
from sqlalchemy.orm import Session

from controller import spc
from controller.events import EventBase, SpcViolation, SpcViolationData
from controller.genealogy import spc_store
from controller.genealogy.spc_models import SpcChart, SpcLimits
from controller.genealogy.spc_models import SpcViolation as ViolationRow
from controller.genealogy.station_models import ToolInhibit
from controller.lots.lifecycle import HoldReason
from controller.recipes import ChartPlan, ToolStepPlan

log = structlog.get_logger("fabline.engine")

ENGINE = "spc"  # who froze phase I limits and raised an inhibit


@dataclass
class SpcOutcome:
    """What the step's charts decided: events to publish, a hold, inhibits written."""

    events: list[EventBase] = field(default_factory=list)
    hold: HoldReason | None = None
    inhibited: bool = False  # a chart inhibits the step's tool (written now, or in force)
    decisions: list[spc.OcapDecision] = field(default_factory=list)


def may_inhibit(step: ToolStepPlan) -> bool:
    """The step has a chart whose action inhibits its tool (the runner then keeps the tool
    until the commit says, so no other lot starts a job on it in between)."""
    return any(c.action == spc.OcapAction.INHIBIT.value for c in step.spc)


def definition(
    recipe_id: str, step: ToolStepPlan, chart: ChartPlan, tool_id: str
) -> spc.ChartDefinition:
    return spc.ChartDefinition(
        spc.ChartKey(recipe_id, step.template, chart.result, tool_id),
        rule_set=spc.RuleSet(chart.rules),
        action=spc.OcapAction(chart.action),
        baseline_points=chart.baseline,
        check_spread=chart.spread,
        unit=chart.unit,
    )


def definition_of(row: SpcChart) -> spc.ChartDefinition:
    """A stored chart's definition (as its recipe last declared it)."""
    return spc.ChartDefinition(
        spc.ChartKey(row.recipe_id, row.step_id, row.result, row.tool_id),
        chart_type=spc.ChartType(row.chart_type),
        subgroup_size=row.subgroup_size,
        rule_set=spc.RuleSet(row.rule_set),
        action=spc.OcapAction(row.action),
        baseline_points=row.baseline_points,
        check_spread=row.check_spread,
        unit=row.unit,
    )


def limits_of(d: spc.ChartDefinition, row: SpcLimits) -> spc.ControlLimits:
    return spc.ControlLimits(
        d.chart_type, d.subgroup_size, row.center, row.sigma, spc.LimitsSource(row.source),
        row.basis,
    )  # fmt: skip


def series_start(row: SpcChart, limits: SpcLimits | None) -> int:
    """The index of the chart's current series' first point."""
    return limits.since if limits is not None else row.phase_start


def _chart(s: Session, d: spc.ChartDefinition) -> spc_store.ChartState:
    """The chart's state, made on its first point; the recipe's declaration is the chart's."""
    k = d.key
    key = (k.recipe_id, k.step_id, k.result, k.tool_id)
    declared = {
        "chart_type": d.chart_type.value, "subgroup_size": d.subgroup_size,
        "rule_set": d.rule_set.value, "action": d.action.value,
        "baseline_points": d.baseline_points, "check_spread": d.check_spread, "unit": d.unit,
    }  # fmt: skip
    state = spc_store.chart_state(s, key)
    if state is None:
        spc_store.add_chart(
            s, SpcChart(recipe_id=k.recipe_id, step_id=k.step_id, result=k.result,
                        tool_id=k.tool_id, **declared)  # type: ignore[arg-type]
        )  # fmt: skip
        state = spc_store.chart_state(s, key)
        assert state is not None
    elif state.declared != declared:
        spc_store.set_declared(s, state.chart_id, declared)
    return state


def record(
    s: Session,
    *,
    lot_id: str,
    recipe_id: str,
    step: ToolStepPlan,
    tool_id: str,
    run_id: int,
    job_id: str,
    results: Mapping[str, float],
) -> SpcOutcome:
    """Add the step's results to its charts and act on what the rules say."""
    out = SpcOutcome()
    for plan in step.spc:
        value = results.get(plan.result)
        if value is None or not math.isfinite(value):
            continue  # not reported: the spec check holds the lot for it
        d = definition(recipe_id, step, plan, tool_id)
        state = _chart(s, d)
        new = NewPoint(state.chart_id, value, lot_id, run_id, job_id)
        judged = _add_point(s, d, state, new)
        decision = spc.ocap(d, judged[0]) if judged is not None else None
        if decision is not None and judged is not None:
            _act(s, out, d, decision, judged[0], new, judged[1], step, tool_id)
    return out


@dataclass(frozen=True)
class NewPoint:
    chart_id: int
    value: float
    lot_id: str
    run_id: int
    job_id: str


def _add_point(
    s: Session, d: spc.ChartDefinition, state: spc_store.ChartState, new: NewPoint
) -> tuple[spc.ChartPoint, int] | None:
    """Store the point: judged by the current limits (returned, with its index), or, in
    phase I, collected and, as the baseline's last, frozen into the limits."""
    chart_id, value, limits_row = new.chart_id, new.value, state.limits
    start = limits_row.since if limits_row is not None else state.phase_start
    last = spc_store.recent(s, chart_id, start, d.window - 1)
    # the series' last point is the chart's last (a new series starts after it)
    idx = last[-1][0] + 1 if last else spc_store.next_index(s, chart_id)
    values = [v for _, v in last]
    where = {"chart_id": chart_id, "idx": idx, "value": value, "lot_id": new.lot_id,
             "step_run_id": new.run_id, "job_id": new.job_id}  # fmt: skip
    if limits_row is None:  # phase I: collect the baseline
        spc_store.insert_point(s, **where, spread=abs(value - values[-1]) if values else None,
                               limits_id=None)  # fmt: skip
        if idx - start + 1 == d.baseline_points:
            before = [[p.value] for p in spc_store.points(s, chart_id, start) if p.idx < idx]
            try:
                frozen = spc.phase_one(d, [*before, [value]])
            except spc.SpcError as e:  # no variation: an engineer sets the limits
                log.warning("spc.no_limits", chart=str(d.key), error=str(e))
                return None
            spc_store.add_limits(
                s, SpcLimits(chart_id=chart_id, center=frozen.center, sigma=frozen.sigma,
                             source=frozen.source.value, basis=frozen.basis, since=start,
                             frozen_by=ENGINE),
            )  # fmt: skip
        return None
    limits = limits_of(d, limits_row)
    point = spc.evaluate_point(d, limits, values, [value], idx - start)
    spc_store.insert_point(s, **where, spread=point.spread, limits_id=limits_row.id)
    return point, idx


def _act(
    s: Session,
    out: SpcOutcome,
    d: spc.ChartDefinition,
    decision: spc.OcapDecision,
    point: spc.ChartPoint,
    new: NewPoint,
    idx: int,
    step: ToolStepPlan,
    tool_id: str,
) -> None:
    chart_id, lot_id = new.chart_id, new.lot_id
    start = idx - point.index
    out.decisions.append(decision)
    action = decision.action.value
    rows = [
        ViolationRow(chart_id=chart_id, idx=idx, rule=v.rule.value, first_idx=start + v.first,
                     text=v.text, action=action, lot_id=lot_id)
        for v in point.violations
    ]  # fmt: skip
    if point.spread_violation is not None:
        sv = point.spread_violation
        rows.append(ViolationRow(chart_id=chart_id, idx=idx, rule=sv.rule, first_idx=idx - 1,
                                 text=sv.text, action=action, lot_id=lot_id))  # fmt: skip
    ids = spc_store.add_violations(s, rows)
    data = SpcViolationData(
        chart=str(d.key), point=point.index + 1, value=point.value, unit=d.unit,
        rules=list(decision.rules), texts=list(decision.texts), action=action,
    )  # fmt: skip
    out.events.append(SpcViolation(lot_id=lot_id, step_id=step.id, tool_id=tool_id, data=data))
    if decision.action.holds_lot and out.hold is None:
        out.hold = HoldReason("spc", decision.reason)
    if decision.action.inhibits_tool:
        out.inhibited = True
        if spc_store.open_inhibits(s, tool_id, str(d.key)):
            return  # this chart's inhibit is still in force
        s.add(ToolInhibit(tool_id=tool_id, reason=decision.reason, by=ENGINE, source="spc",
                          ref=str(d.key), violation_id=ids[0] if ids else None))  # fmt: skip
