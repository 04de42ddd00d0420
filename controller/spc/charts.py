"""Control chart definitions and their frozen limits.

A chart watches one measured result of one recipe step on one tool (`ChartKey`). It is an
individuals / moving-range chart (one value per piece) or an X̄-R chart (a subgroup of n
values per piece, e.g. several sites on a wafer). Its limits are a value object,
`ControlLimits`, made once — from the first N points (phase I) or by an engineer — and then
stored; nothing here recomputes them from the live series, so a slow drift cannot widen the
limits it is being judged against.

Sigma is the short-term (within) sigma of one value: MR̄/d2 for an individuals chart (moving
ranges of 2), R̄/d2(n) for an X̄-R chart. The plotted statistic's sigma is σ/√n, so the X̄
limits are X̿ ± 3σ/√n = X̿ ± A2·R̄; the range chart's are D3·R̄ and D4·R̄ (constants of the
normal distribution, ASTM STP 15D / Montgomery, Introduction to SQC, appendix VI).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from controller.spc.rules import NELSON, WESTERN_ELECTRIC, RuleId, Zones, window
from drivers.errors import SpcError


@dataclass(frozen=True, slots=True)
class SubgroupConstants:
    d2: float  # E[R]/σ for a subgroup of n
    d3_lower: float  # D3: lower range-chart limit factor on R̄
    d4_upper: float  # D4: upper range-chart limit factor on R̄
    a2: float  # X̄ limits are X̿ ± A2·R̄ (= 3/(d2·√n))


CONSTANTS: dict[int, SubgroupConstants] = {
    2: SubgroupConstants(1.128, 0.0, 3.267, 1.880),
    3: SubgroupConstants(1.693, 0.0, 2.574, 1.023),
    4: SubgroupConstants(2.059, 0.0, 2.282, 0.729),
    5: SubgroupConstants(2.326, 0.0, 2.114, 0.577),
    6: SubgroupConstants(2.534, 0.0, 2.004, 0.483),
    7: SubgroupConstants(2.704, 0.076, 1.924, 0.419),
    8: SubgroupConstants(2.847, 0.136, 1.864, 0.373),
    9: SubgroupConstants(2.970, 0.184, 1.816, 0.337),
    10: SubgroupConstants(3.078, 0.223, 1.777, 0.308),
}
MAX_SUBGROUP = max(CONSTANTS)
MIN_BASELINE = 5  # fewer points cannot estimate a sigma worth freezing


class ChartType(StrEnum):
    INDIVIDUALS = "i-mr"  # one value per piece; spread = moving range of 2
    XBAR_R = "xbar-r"  # n values per piece; spread = subgroup range


class RuleSet(StrEnum):
    WESTERN_ELECTRIC = "western-electric"
    NELSON = "nelson"

    @property
    def rules(self) -> tuple[RuleId, ...]:
        return WESTERN_ELECTRIC if self is RuleSet.WESTERN_ELECTRIC else NELSON


class OcapAction(StrEnum):
    """What a violation does (out-of-control action plan), weakest first; each includes the
    ones before it: INHIBIT also holds the lot whose piece tripped the rule."""

    NONE = "none"  # recorded and published only
    WARN = "warn"  # also shown to the operator (lots, tool status, station page)
    HOLD = "hold"  # also holds the lot between steps, with the violation as reason
    INHIBIT = "inhibit"  # also inhibits the tool: no new jobs until a technician releases it

    @property
    def warns(self) -> bool:
        return self is not OcapAction.NONE

    @property
    def holds_lot(self) -> bool:
        return self in (OcapAction.HOLD, OcapAction.INHIBIT)

    @property
    def inhibits_tool(self) -> bool:
        return self is OcapAction.INHIBIT


@dataclass(frozen=True, slots=True)
class ChartKey:
    recipe_id: str
    step_id: str  # the step's template id as written in the recipe
    result: str  # the result name of the tool interface, e.g. kerf_offset
    tool_id: str

    def __post_init__(self) -> None:
        for name in ("recipe_id", "step_id", "result", "tool_id"):
            v = getattr(self, name)
            if not v or "/" in v or "@" in v:
                raise SpcError(f"chart key {name} {v!r} must be non-empty, without '/' or '@'")

    def __str__(self) -> str:
        return f"{self.recipe_id}/{self.step_id}/{self.result}@{self.tool_id}"

    @classmethod
    def parse(cls, text: str) -> ChartKey:
        """`recipe/step/result@tool`, the form `str()` gives and the CLI takes."""
        path, at, tool = text.partition("@")
        parts = path.split("/")
        if not at or len(parts) != 3:
            raise SpcError(f"chart {text!r}: expected RECIPE/STEP/RESULT@TOOL")
        return cls(parts[0], parts[1], parts[2], tool)


@dataclass(frozen=True, slots=True)
class ChartDefinition:
    key: ChartKey
    chart_type: ChartType = ChartType.INDIVIDUALS
    subgroup_size: int = 1  # values per piece: 1 for I-MR, 2..10 for X̄-R
    rule_set: RuleSet = RuleSet.NELSON
    action: OcapAction = OcapAction.WARN
    baseline_points: int = 20  # phase I: points (I-MR) or subgroups (X̄-R) the limits use
    check_spread: bool = True  # also flag a moving range / range above its upper limit
    unit: str = ""

    def __post_init__(self) -> None:
        n = self.subgroup_size
        if self.chart_type is ChartType.INDIVIDUALS and n != 1:
            raise SpcError(f"chart {self.key}: an i-mr chart has subgroup size 1, not {n}")
        if self.chart_type is ChartType.XBAR_R and n not in CONSTANTS:
            raise SpcError(f"chart {self.key}: xbar-r subgroup size {n} outside 2–{MAX_SUBGROUP}")
        if self.baseline_points < MIN_BASELINE:
            raise SpcError(
                f"chart {self.key}: baseline of {self.baseline_points} points is too short"
                f" (at least {MIN_BASELINE})"
            )

    @property
    def rules(self) -> tuple[RuleId, ...]:
        return self.rule_set.rules

    @property
    def window(self) -> int:
        """Plotted points the engine keeps per chart to check a new one (new one included)."""
        return max(window(self.rules), 2)


class LimitsSource(StrEnum):
    PHASE_I = "phase-i"  # computed once from the first `basis` points of the series
    ENGINEER = "engineer"  # set by an engineer


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Frozen limits of one chart. `sigma` is the short-term sigma of one value."""

    chart_type: ChartType
    subgroup_size: int
    center: float
    sigma: float
    source: LimitsSource
    basis: int = 0  # points or subgroups phase I used; 0 when set by an engineer

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center) and math.isfinite(self.sigma) and self.sigma > 0):
            raise SpcError(
                f"control limits need a finite centre and sigma > 0,"
                f" got centre {self.center!r}, sigma {self.sigma!r}"
            )

    @property
    def sigma_plot(self) -> float:
        """Sigma of the plotted statistic: σ for individuals, σ/√n for subgroup means."""
        return self.sigma / math.sqrt(self.subgroup_size)

    @property
    def ucl(self) -> float:
        return self.center + 3.0 * self.sigma_plot

    @property
    def lcl(self) -> float:
        return self.center - 3.0 * self.sigma_plot

    @property
    def zones(self) -> Zones:
        return Zones(self.center, self.sigma_plot)

    def zone(self, k: float) -> tuple[float, float]:
        """The centre line ± k sigma of the plotted statistic."""
        return self.center - k * self.sigma_plot, self.center + k * self.sigma_plot

    @property
    def spread_name(self) -> str:
        return "MR" if self.chart_type is ChartType.INDIVIDUALS else "R"

    @property
    def _spread_constants(self) -> SubgroupConstants:
        return CONSTANTS[2 if self.chart_type is ChartType.INDIVIDUALS else self.subgroup_size]

    @property
    def spread_center(self) -> float:
        """MR̄ or R̄ that the sigma implies: d2·σ."""
        return self._spread_constants.d2 * self.sigma

    @property
    def spread_ucl(self) -> float:
        return self._spread_constants.d4_upper * self.spread_center

    @property
    def spread_lcl(self) -> float:
        return self._spread_constants.d3_lower * self.spread_center

    def check(self, definition: ChartDefinition) -> None:
        if (self.chart_type, self.subgroup_size) != (
            definition.chart_type,
            definition.subgroup_size,
        ):
            raise SpcError(
                f"chart {definition.key}: limits are for {self.chart_type} n={self.subgroup_size},"
                f" the chart is {definition.chart_type} n={definition.subgroup_size}"
            )


def check_sample(definition: ChartDefinition, sample: Sequence[float], where: str) -> None:
    """A piece's values: as many as the subgroup size, all finite."""
    if len(sample) != definition.subgroup_size:
        raise SpcError(
            f"chart {definition.key}: {where} has {len(sample)} values,"
            f" the subgroup size is {definition.subgroup_size}"
        )
    for v in sample:
        if not math.isfinite(v):
            raise SpcError(f"chart {definition.key}: {where} has a non-finite value {v!r}")


def phase_one(definition: ChartDefinition, samples: Sequence[Sequence[float]]) -> ControlLimits:
    """Limits from the first `definition.baseline_points` samples (later ones are ignored)."""
    n_base = definition.baseline_points
    if len(samples) < n_base:
        raise SpcError(
            f"chart {definition.key}: phase I needs {n_base} points, have {len(samples)}"
        )
    base = samples[:n_base]
    for i, sample in enumerate(base):
        check_sample(definition, sample, f"baseline point {i + 1}")
    if definition.chart_type is ChartType.INDIVIDUALS:
        xs = [s[0] for s in base]
        center = math.fsum(xs) / len(xs)
        spread = math.fsum(abs(b - a) for a, b in itertools.pairwise(xs)) / (len(xs) - 1)
        d2 = CONSTANTS[2].d2
    else:
        center = math.fsum(math.fsum(s) / len(s) for s in base) / len(base)
        spread = math.fsum(max(s) - min(s) for s in base) / len(base)
        d2 = CONSTANTS[definition.subgroup_size].d2
    if spread <= 0:
        raise SpcError(
            f"chart {definition.key}: the {n_base} baseline points have no variation"
            " (every moving range / range is 0): set the limits by hand"
        )
    return ControlLimits(
        definition.chart_type,
        definition.subgroup_size,
        center,
        spread / d2,
        LimitsSource.PHASE_I,
        n_base,
    )


def engineer_limits(definition: ChartDefinition, *, center: float, sigma: float) -> ControlLimits:
    """Limits an engineer sets: the centre line and the short-term sigma of one value."""
    return ControlLimits(
        definition.chart_type, definition.subgroup_size, center, sigma, LimitsSource.ENGINEER
    )
