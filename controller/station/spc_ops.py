"""What people do with SPC charts, and what they see of them: the charts of a station's
tools with their limits and last violation; one chart's points (judged again by the frozen
limits they were judged by), capability against the recipe's spec; a new baseline (engineer:
phase I again from the next pieces, or limits set by hand); clearing a chart (technician:
its open violations acknowledged, the tool inhibit it raised released). Each action checks
the actor's scope and writes its audit row with its effect (controller/lots/audit.py).

The chart logic is controller/spc; controller/engine/spc_hook.py adds the points.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller import spc
from controller.access import Actor, Scope
from controller.engine.spc_hook import definition_of, limits_of, series_start
from controller.genealogy import spc_store
from controller.genealogy.db import Database
from controller.genealogy.models import RecipeVersion, utcnow
from controller.genealogy.spc_models import SpcChart, SpcLimits
from controller.lots import audit
from controller.recipes import load_text
from controller.recipes.model import RepeatStep, Step, ToolStep
from drivers.errors import FablineError, NotFound, ParameterError, SpcError, shown
from drivers.units import to_unit

T = TypeVar("T")


@dataclass(frozen=True)
class ChartSummary:
    """One chart as `spc list` shows it."""

    name: str
    tool_id: str
    chart_type: str
    rule_set: str
    action: str
    baseline: int
    points: int  # in its current series
    limits: spc.ControlLimits | None  # None: phase I collects the baseline
    open_violations: int
    last_violation: str | None
    inhibiting: bool  # an inhibit it raised is in force


@dataclass(frozen=True)
class ChartDetail:
    """One chart's current series as `spc show` draws it."""

    summary: ChartSummary
    definition: spc.ChartDefinition
    values: list[float]  # the series, oldest first
    first_index: int  # the stored index of values[0]
    points: list[spc.ChartPoint]  # judged by the limits (empty in phase I)
    spec: spc.SpecLimits | None
    capability: spc.Capability | None


class LimitsView(BaseModel):
    center: float
    sigma: float
    ucl: float
    lcl: float
    source: str


class ChartView(BaseModel):
    """A chart as the API and `spc list --json` give it."""

    chart: str
    tool: str
    type: str
    rules: str
    action: str
    baseline: int
    points: int
    limits: LimitsView | None
    open_violations: int
    last_violation: str | None
    inhibiting: bool

    @classmethod
    def of(cls, s: ChartSummary) -> ChartView:
        lim = s.limits
        return cls(
            chart=s.name, tool=s.tool_id, type=s.chart_type, rules=s.rule_set, action=s.action,
            baseline=s.baseline, points=s.points,
            limits=None if lim is None else LimitsView(
                center=lim.center, sigma=lim.sigma, ucl=lim.ucl, lcl=lim.lcl,
                source=lim.source.value,
            ),
            open_violations=s.open_violations, last_violation=s.last_violation,
            inhibiting=s.inhibiting,
        )  # fmt: skip


class PointViolations(BaseModel):
    point: int  # 1-based, in the current series
    rules: list[str]
    texts: list[str]


class CapabilityView(BaseModel):
    n: int
    mean: float
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


class ChartDetailView(ChartView):
    """A chart's current series as the API and `spc show --json` give it."""

    unit: str
    first_index: int
    values: list[float]
    violations: list[PointViolations]
    lsl: float | None
    usl: float | None
    capability: CapabilityView | None

    @classmethod
    def of_detail(cls, d: ChartDetail) -> ChartDetailView:
        cap = d.capability
        return cls(
            **ChartView.of(d.summary).model_dump(),
            unit=d.definition.unit, first_index=d.first_index, values=d.values,
            violations=[
                PointViolations(point=p.index + 1, rules=list(p.rule_ids), texts=list(p.texts))
                for p in d.points if not p.in_control
            ],
            lsl=d.spec.lsl if d.spec else None, usl=d.spec.usl if d.spec else None,
            capability=None if cap is None else CapabilityView(
                n=cap.n, mean=cap.mean, cp=cap.cp, cpk=cap.cpk, pp=cap.pp, ppk=cap.ppk
            ),
        )  # fmt: skip


def chart_svg(d: ChartDetail) -> str:
    """The chart as a standalone SVG (controller/spc/render.py); refused in phase I."""
    if d.summary.limits is None:
        raise SpcError(f"chart {d.summary.name}: no limits yet (phase I), nothing to draw")
    return spc.render_svg(d.definition, d.summary.limits, d.points, d.spec)


def _chart(s: Session, name: str) -> SpcChart:
    key = spc.ChartKey.parse(name)
    row = spc_store.chart(s, (key.recipe_id, key.step_id, key.result, key.tool_id))
    if row is None:
        raise NotFound(f"no SPC chart {shown(name)!r} (see `fabline spc list`)")
    return row


def _summary(s: Session, row: SpcChart) -> ChartSummary:
    assert row.id is not None
    d = definition_of(row)
    limits_row = spc_store.current_limits(s, row.id)
    start = series_start(row, limits_row)
    count = len(spc_store.points(s, row.id, start))
    open_ = spc_store.violations(s, row.id, open_only=True)
    every = spc_store.violations(s, row.id)
    return ChartSummary(
        name=str(d.key), tool_id=row.tool_id, chart_type=row.chart_type,
        rule_set=row.rule_set, action=row.action, baseline=row.baseline_points, points=count,
        limits=limits_of(d, limits_row) if limits_row is not None else None,
        open_violations=len(open_), last_violation=every[-1].text if every else None,
        inhibiting=bool(spc_store.open_inhibits(s, row.tool_id, str(d.key))),
    )  # fmt: skip


def list_charts(
    s: Session, tool_id: str | None = None, recipe_id: str | None = None
) -> list[ChartSummary]:
    return [_summary(s, row) for row in spc_store.charts(s, tool_id, recipe_id)]


def _walk(steps: list[Step]) -> list[ToolStep]:
    out: list[ToolStep] = []
    for st in steps:
        if isinstance(st, RepeatStep):
            out += _walk(st.steps)
        elif isinstance(st, ToolStep):
            out.append(st)
    return out


def recipe_spec(s: Session, row: SpcChart, unit: str) -> spc.SpecLimits | None:
    """The spec of the chart's result as the newest stored version of its recipe writes it
    (None if it has none, or a limit that depends on the lot's options)."""
    text = s.scalars(
        select(col(RecipeVersion.text))
        .where(col(RecipeVersion.recipe_id) == row.recipe_id)
        .order_by(col(RecipeVersion.version).desc())
        .limit(1)
    ).first()
    if text is None:
        return None
    try:
        recipe = load_text(text, Path(f"{row.recipe_id}.yaml")).recipe
    except FablineError:
        return None
    for step in _walk(recipe.steps):
        limit = step.spec.get(row.result) if step.id == row.step_id else None
        if limit is None:
            continue
        bounds: list[float | None] = []
        for raw in (limit.min, limit.max):
            if raw is None:
                bounds.append(None)
            elif isinstance(raw, str) and "${" in raw:
                return None
            else:
                bounds.append(to_unit(raw if isinstance(raw, str) else float(raw), unit))
        try:
            return spc.SpecLimits(bounds[0], bounds[1])
        except SpcError:
            return None
    return None


def chart_detail(s: Session, name: str, last: int | None = None) -> ChartDetail:
    row = _chart(s, name)
    assert row.id is not None
    summary = _summary(s, row)
    d = definition_of(row)
    limits_row = spc_store.current_limits(s, row.id)
    start = series_start(row, limits_row)
    series = spc_store.points(s, row.id, start)
    values = [p.value for p in series]
    points = (
        spc.evaluate_series(d, summary.limits, [[v] for v in values])
        if summary.limits is not None
        else []
    )
    shown_from = max(0, len(values) - last) if last else 0
    spec = recipe_spec(s, row, d.unit)
    cap = None
    if spec is not None and len(values) >= 2:
        try:
            cap = spc.capability([[v] for v in values], spec)
        except SpcError:
            cap = None
    return ChartDetail(
        summary, d, values[shown_from:], (series[shown_from].idx if series[shown_from:] else start),
        points[shown_from:], spec, cap,
    )  # fmt: skip


class SpcService:
    """The SPC actions of a station (or of the command line on the station's database).
    `released(tool_id)` is told after an inhibit was released here: a station lets the
    tool back into its pool."""

    def __init__(
        self,
        db: Database,
        station: str,
        released: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.station = station
        self.released = released

    async def _audited(
        self, actor: Actor, action: str, target: str, tool_id: str | None,
        work: Callable[[], Awaitable[T]],
    ) -> T:  # fmt: skip
        return await audit.attempted(self.db, self.station, actor, action, target, work, tool_id)

    async def baseline(
        self, name: str, actor: Actor, center: float | None = None, sigma: float | None = None
    ) -> str:
        """New limits for the chart from its next point on: set by hand (`center` and
        `sigma`, the short-term sigma of one value), or phase I again over the next
        baseline pieces. The points so far keep the limits they were judged by."""
        tool = spc.ChartKey.parse(name).tool_id

        async def work() -> str:
            actor.require(Scope.SPC_LIMITS, f"set the limits of SPC chart {shown(name)}")
            if (center is None) != (sigma is None):
                raise ParameterError("give both --center and --sigma, or neither (phase I)")

            def tx(s: Session) -> str:
                row = _chart(s, name)
                assert row.id is not None
                d = definition_of(row)
                nxt = spc_store.next_index(s, row.id)
                if center is not None and sigma is not None:
                    limits = spc.engineer_limits(d, center=center, sigma=sigma)
                    spc_store.supersede_limits(s, row.id)
                    spc_store.add_limits(
                        s, SpcLimits(chart_id=row.id, center=limits.center, sigma=limits.sigma,
                                     source=limits.source.value, basis=0, since=nxt,
                                     frozen_by=actor.name),
                    )  # fmt: skip
                    text = (
                        f"{d.key}: limits set by hand from point {nxt + 1}: centre"
                        f" {limits.center:.4g}, UCL {limits.ucl:.4g}, LCL {limits.lcl:.4g}"
                    )
                else:
                    spc_store.supersede_limits(s, row.id)
                    row.phase_start = nxt
                    text = f"{d.key}: phase I again over the next {d.baseline_points} points"
                self._ok(s, actor, "spc_baseline", str(d.key), row.tool_id, text)
                return text

            return await self.db.run(tx)

        return await self._audited(actor, "spc_baseline", name, tool, work)

    async def clear(self, name: str, note: str, actor: Actor) -> str:
        """Acknowledge the chart's open violations and release the tool inhibits it raised."""
        tool = spc.ChartKey.parse(name).tool_id

        async def work() -> str:
            actor.require(Scope.INHIBIT, f"clear SPC chart {shown(name)} and release its tool")
            if not note.strip():
                raise ParameterError("say what was done to clear the chart (--note)")

            def tx(s: Session) -> tuple[str, bool]:
                row = _chart(s, name)
                assert row.id is not None
                key = str(definition_of(row).key)
                acknowledged = spc_store.acknowledge(s, row.id, actor.name, note)
                inhibits = spc_store.open_inhibits(s, row.tool_id, key)
                now = utcnow()
                for i in inhibits:
                    i.released_at, i.released_by, i.release_note = now, actor.name, note
                s.flush()
                text = f"{key}: {acknowledged} violation(s) acknowledged"
                if inhibits:
                    text += f", {row.tool_id} inhibit {', '.join(str(i.id) for i in inhibits)}"
                    text += " released"
                self._ok(s, actor, "spc_clear", key, row.tool_id, text)
                return text, bool(inhibits)

            text, released = await self.db.run(tx)
            if released and self.released is not None:
                await self.released(tool)
            return text

        return await self._audited(actor, "spc_clear", name, tool, work)

    def _ok(self, s: Session, actor: Actor, action: str, target: str, tool: str, msg: str) -> None:
        audit.record(
            s, station=self.station, actor=actor, action=action, target=shown(target, 128),
            result="ok", message=msg, tool_id=tool,
        )  # fmt: skip
