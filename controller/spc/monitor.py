"""A chart's points against its frozen limits: what the engine calls on each new result.

`evaluate_point` is the hot path: the chart definition, its limits, the plotted values of
the last `definition.window - 1` points and the new piece's values in; the new point with
everything it violates out, in O(window). `evaluate_series` does a whole series at once (the
`spc show` view, a replay) and gives the same points; `ocap` turns a point into the chart's
action.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from controller.spc.charts import (
    ChartDefinition,
    ChartKey,
    ChartType,
    ControlLimits,
    OcapAction,
    check_sample,
)
from controller.spc.rules import Violation, check_point, evaluate

SPREAD_RULE = "R1"  # rule id of a moving range / range above its upper control limit


@dataclass(frozen=True, slots=True)
class SpreadViolation:
    """The piece's moving range (I-MR) or range (X̄-R) is above its upper control limit."""

    index: int
    spread: float
    limit: float
    text: str
    rule: str = SPREAD_RULE


@dataclass(frozen=True, slots=True)
class ChartPoint:
    index: int  # position in the chart's series, 0-based (the baseline's points included)
    value: float  # the plotted statistic: the value, or the subgroup mean
    spread: float | None  # moving range (None on the first point) or subgroup range
    violations: tuple[Violation, ...] = ()
    spread_violation: SpreadViolation | None = None

    @property
    def in_control(self) -> bool:
        return not self.violations and self.spread_violation is None

    @property
    def rule_ids(self) -> tuple[str, ...]:
        spread = (self.spread_violation.rule,) if self.spread_violation else ()
        return (*(v.rule.value for v in self.violations), *spread)

    @property
    def texts(self) -> tuple[str, ...]:
        spread = (self.spread_violation.text,) if self.spread_violation else ()
        return (*(v.text for v in self.violations), *spread)


def plotted(definition: ChartDefinition, sample: Sequence[float], where: str) -> float:
    check_sample(definition, sample, where)
    return sample[0] if len(sample) == 1 else math.fsum(sample) / len(sample)


def _spread(
    definition: ChartDefinition, sample: Sequence[float], previous: float | None
) -> float | None:
    if definition.chart_type is ChartType.INDIVIDUALS:
        return None if previous is None else abs(sample[0] - previous)
    return max(sample) - min(sample)


def _spread_violation(
    definition: ChartDefinition, limits: ControlLimits, index: int, spread: float | None
) -> SpreadViolation | None:
    if not definition.check_spread or spread is None or spread <= limits.spread_ucl:
        return None
    name = limits.spread_name
    return SpreadViolation(
        index,
        spread,
        limits.spread_ucl,
        f"{SPREAD_RULE}: point {index + 1} {name} {spread:.4g} above the {name} upper"
        f" control limit {limits.spread_ucl:.4g}",
    )


def evaluate_point(
    definition: ChartDefinition,
    limits: ControlLimits,
    recent: Sequence[float],
    sample: Sequence[float],
    index: int,
) -> ChartPoint:
    """The new piece's point at `index`, given the plotted values just before it (oldest
    first; at least `min(index, definition.window - 1)` of them)."""
    limits.check(definition)
    value = plotted(definition, sample, f"point {index + 1}")
    violations = check_point(recent, value, limits.zones, definition.rules, index)
    spread = _spread(definition, sample, recent[-1] if index > 0 and recent else None)
    return ChartPoint(
        index, value, spread, violations, _spread_violation(definition, limits, index, spread)
    )


def evaluate_series(
    definition: ChartDefinition, limits: ControlLimits, samples: Sequence[Sequence[float]]
) -> list[ChartPoint]:
    """Every point of a series (index 0 first) with its violations."""
    limits.check(definition)
    values = [plotted(definition, s, f"point {i + 1}") for i, s in enumerate(samples)]
    by_index: dict[int, list[Violation]] = {}
    for v in evaluate(values, limits.zones, definition.rules):
        by_index.setdefault(v.index, []).append(v)
    points = []
    for i, (sample, value) in enumerate(zip(samples, values, strict=True)):
        spread = _spread(definition, sample, values[i - 1] if i > 0 else None)
        points.append(
            ChartPoint(
                i,
                value,
                spread,
                tuple(by_index.get(i, ())),
                _spread_violation(definition, limits, i, spread),
            )
        )
    return points


@dataclass(frozen=True, slots=True)
class OcapDecision:
    """What the engine does about a point that violated a rule of its chart."""

    key: ChartKey
    action: OcapAction
    index: int
    rules: tuple[str, ...]
    texts: tuple[str, ...]

    @property
    def reason(self) -> str:
        """One line for a hold or inhibit reason: `SPC <chart>: <first rule text> (+n more)`."""
        more = f" (+{len(self.texts) - 1} more)" if len(self.texts) > 1 else ""
        return f"SPC {self.key}: {self.texts[0]}{more}"


def ocap(definition: ChartDefinition, point: ChartPoint) -> OcapDecision | None:
    """The chart's action for the point, or None when the point is in control."""
    if point.in_control:
        return None
    return OcapDecision(definition.key, definition.action, point.index, point.rule_ids, point.texts)
