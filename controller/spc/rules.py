"""Run rules over a control chart's plotted points: Western Electric (4) and Nelson (8).

Each rule is one of seven patterns with its parameters (`RULES`). A rule *fires at point i*
when the pattern holds over the points ending at i and point i is part of it: a run of 12
points above the centre line fires Nelson 2 at its 9th, 10th, 11th and 12th point. Zones are
measured from the centre line in units of the plotted statistic's sigma; "beyond kσ" is
strictly beyond, and a point exactly on the centre line is on neither side (it ends a run).
Near the start of a series a "k of m" rule counts over the points there are.

Two implementations, kept apart on purpose and tested equal on random series:
- `evaluate` scans a whole series once per rule (running counts): charts, reports, replay;
- `check_point` looks only at the last `window(rules)` points: what the engine calls for each
  new result, O(window) and independent of the series length.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from drivers.errors import SpcError


class RuleId(StrEnum):
    WE1 = "WE1"
    WE2 = "WE2"
    WE3 = "WE3"
    WE4 = "WE4"
    N1 = "N1"
    N2 = "N2"
    N3 = "N3"
    N4 = "N4"
    N5 = "N5"
    N6 = "N6"
    N7 = "N7"
    N8 = "N8"


class Pattern(Enum):
    BEYOND = "beyond"  # one point beyond `level`σ
    K_OF_M = "k-of-m"  # `k` of `m` points beyond `level`σ on the same side as the last
    SAME_SIDE = "same-side"  # `length` points in a row on one side of the centre line
    TREND = "trend"  # `length` points in a row steadily increasing or decreasing
    ALTERNATING = "alternating"  # `length` points in a row alternating up and down
    WITHIN = "within"  # `length` points in a row within `level`σ (either side)
    OUTSIDE = "outside"  # `length` points in a row beyond `level`σ (either side)


@dataclass(frozen=True, slots=True)
class Rule:
    id: RuleId
    pattern: Pattern
    length: int  # points the pattern spans, the new one included
    level: float = 0.0  # zone boundary in σ
    k: int = 0  # for K_OF_M
    summary: str = ""

    @property
    def window(self) -> int:
        return self.length


RULES: dict[RuleId, Rule] = {
    r.id: r
    for r in (
        Rule(RuleId.WE1, Pattern.BEYOND, 1, 3.0, summary="1 point beyond 3σ"),
        Rule(RuleId.WE2, Pattern.K_OF_M, 3, 2.0, 2, "2 of 3 points beyond 2σ, same side"),
        Rule(RuleId.WE3, Pattern.K_OF_M, 5, 1.0, 4, "4 of 5 points beyond 1σ, same side"),
        Rule(RuleId.WE4, Pattern.SAME_SIDE, 8, summary="8 points in a row on one side"),
        Rule(RuleId.N1, Pattern.BEYOND, 1, 3.0, summary="1 point beyond 3σ"),
        Rule(RuleId.N2, Pattern.SAME_SIDE, 9, summary="9 points in a row on one side"),
        Rule(RuleId.N3, Pattern.TREND, 6, summary="6 points in a row increasing or decreasing"),
        Rule(RuleId.N4, Pattern.ALTERNATING, 14, summary="14 points in a row alternating"),
        Rule(RuleId.N5, Pattern.K_OF_M, 3, 2.0, 2, "2 of 3 points beyond 2σ, same side"),
        Rule(RuleId.N6, Pattern.K_OF_M, 5, 1.0, 4, "4 of 5 points beyond 1σ, same side"),
        Rule(RuleId.N7, Pattern.WITHIN, 15, 1.0, summary="15 points in a row within 1σ"),
        Rule(RuleId.N8, Pattern.OUTSIDE, 8, 1.0, summary="8 points in a row beyond 1σ"),
    )
}

WESTERN_ELECTRIC: tuple[RuleId, ...] = (RuleId.WE1, RuleId.WE2, RuleId.WE3, RuleId.WE4)
NELSON: tuple[RuleId, ...] = tuple(RuleId(f"N{i}") for i in range(1, 9))


@dataclass(frozen=True, slots=True)
class Zones:
    """Centre line and sigma of the plotted statistic (σ/√n on an X̄ chart)."""

    center: float
    sigma: float

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise SpcError(f"zones need sigma > 0, got {self.sigma!r}")


@dataclass(frozen=True, slots=True)
class Violation:
    """Rule `rule` fired at point `index` (0-based in the chart's series); `first` is the
    index where the pattern starts; `text` is one line for an operator (points 1-based)."""

    rule: RuleId
    index: int
    first: int
    text: str


def window(rules: Iterable[RuleId]) -> int:
    """Points `check_point` needs: the new one and `window - 1` before it."""
    return max((RULES[r].window for r in rules), default=1)


# -- texts --------------------------------------------------------------------------------


def _side_word(side: int) -> str:
    return "above" if side > 0 else "below"


def _violation(rule: Rule, index: int, first: int, side: int) -> Violation:
    pts = f"points {first + 1}–{index + 1}"
    p = rule.pattern
    if p is Pattern.BEYOND:
        limit = "upper" if side > 0 else "lower"
        text = f"point {index + 1} beyond the {limit} control limit ({rule.level:g}σ)"
    elif p is Pattern.K_OF_M:
        text = (
            f"{rule.k} of {index - first + 1} points ({pts}) more than {rule.level:g}σ"
            f" {_side_word(side)} the centre line"
        )
    elif p is Pattern.SAME_SIDE:
        text = f"{rule.length} points in a row ({pts}) {_side_word(side)} the centre line"
    elif p is Pattern.TREND:
        way = "increasing" if side > 0 else "decreasing"
        text = f"{rule.length} points in a row ({pts}) steadily {way}"
    elif p is Pattern.ALTERNATING:
        text = f"{rule.length} points in a row ({pts}) alternating up and down"
    elif p is Pattern.WITHIN:
        text = f"{rule.length} points in a row ({pts}) within {rule.level:g}σ of the centre line"
    else:
        text = (
            f"{rule.length} points in a row ({pts}) more than {rule.level:g}σ from the"
            " centre line, either side"
        )
    return Violation(rule.id, index, first, f"{rule.id}: {text}")


def _side(d: float) -> int:
    return 1 if d > 0 else -1 if d < 0 else 0


# -- batch: one scan of the whole series per rule --------------------------------------------


def evaluate(values: Sequence[float], zones: Zones, rules: Iterable[RuleId]) -> list[Violation]:
    """Every violation of `rules` in the series, ordered by point, then by rule."""
    c, s = zones.center, zones.sigma
    d = [v - c for v in values]
    found: list[Violation] = []
    for rid in rules:
        found.extend(_SCANS[RULES[rid].pattern](RULES[rid], values, d, s))
    order = {r: i for i, r in enumerate(RuleId)}
    found.sort(key=lambda v: (v.index, order[v.rule]))
    return found


def _scan_beyond(r: Rule, x: Sequence[float], d: Sequence[float], s: float) -> list[Violation]:
    lim = r.level * s
    return [_violation(r, i, i, _side(di)) for i, di in enumerate(d) if di > lim or di < -lim]


def _scan_k_of_m(r: Rule, x: Sequence[float], d: Sequence[float], s: float) -> list[Violation]:
    lim = r.level * s
    out = []
    up = [0]  # prefix counts of points beyond +lim / -lim
    down = [0]
    for di in d:
        up.append(up[-1] + (di > lim))
        down.append(down[-1] + (di < -lim))
    for i, di in enumerate(d):
        lo = max(0, i - r.length + 1)
        if di > lim and up[i + 1] - up[lo] >= r.k:
            out.append(_violation(r, i, lo, 1))
        elif di < -lim and down[i + 1] - down[lo] >= r.k:
            out.append(_violation(r, i, lo, -1))
    return out


def _scan_runs(r: Rule, x: Sequence[float], d: Sequence[float], s: float) -> list[Violation]:
    """SAME_SIDE, WITHIN and OUTSIDE: a run of points sharing a per-point property."""
    lim = r.level * s
    out = []
    run, prev = 0, 0
    for i, di in enumerate(d):
        if r.pattern is Pattern.SAME_SIDE:
            key = _side(di)
        elif r.pattern is Pattern.WITHIN:
            key = 1 if -lim < di < lim else 0
        else:
            key = 1 if di > lim or di < -lim else 0
        run = run + 1 if key != 0 and key == prev else (1 if key != 0 else 0)
        prev = key
        if run >= r.length:
            out.append(_violation(r, i, i - r.length + 1, key))
    return out


def _scan_trend(r: Rule, x: Sequence[float], d: Sequence[float], s: float) -> list[Violation]:
    out = []
    run, prev = 0, 0  # consecutive steps in direction `prev`
    for i in range(1, len(x)):
        step = 1 if x[i] > x[i - 1] else -1 if x[i] < x[i - 1] else 0
        run = run + 1 if step != 0 and step == prev else (1 if step != 0 else 0)
        prev = step
        if run >= r.length - 1:
            out.append(_violation(r, i, i - r.length + 1, step))
    return out


def _scan_alternating(r: Rule, x: Sequence[float], d: Sequence[float], s: float) -> list[Violation]:
    out = []
    run, prev = 0, 0  # consecutive steps alternating in sign, the last in direction `prev`
    for i in range(1, len(x)):
        step = 1 if x[i] > x[i - 1] else -1 if x[i] < x[i - 1] else 0
        run = run + 1 if step != 0 and step == -prev else (1 if step != 0 else 0)
        prev = step
        if run >= r.length - 1:
            out.append(_violation(r, i, i - r.length + 1, 0))
    return out


_SCANS = {
    Pattern.BEYOND: _scan_beyond,
    Pattern.K_OF_M: _scan_k_of_m,
    Pattern.SAME_SIDE: _scan_runs,
    Pattern.WITHIN: _scan_runs,
    Pattern.OUTSIDE: _scan_runs,
    Pattern.TREND: _scan_trend,
    Pattern.ALTERNATING: _scan_alternating,
}


# -- incremental: the last `window` points only ---------------------------------------------


def check_point(
    recent: Sequence[float], value: float, zones: Zones, rules: Iterable[RuleId], index: int
) -> tuple[Violation, ...]:
    """What the new point `value` (at `index` in the series) violates, given the points just
    before it (`recent`, oldest first; only the last `window(rules) - 1` are read)."""
    rules = tuple(rules)
    k = window(rules)
    if len(recent) < min(index, k - 1):
        raise SpcError(
            f"point {index + 1}: need the {min(index, k - 1)} points before it, got {len(recent)}"
        )
    w = [*recent[max(0, len(recent) - (k - 1)) :], value]
    c, s = zones.center, zones.sigma
    out = []
    for rid in rules:
        r = RULES[rid]
        hit = _CHECKS[r.pattern](r, w, c, s)
        if hit is not None:
            span, side = hit
            out.append(_violation(r, index, index - span + 1, side))
    return tuple(out)


# Each check returns (points in the pattern, side) if the rule fires at the last point of `w`.
Hit = tuple[int, int] | None


def _check_beyond(r: Rule, w: Sequence[float], c: float, s: float) -> Hit:
    di, lim = w[-1] - c, r.level * s
    return (1, 1) if di > lim else (1, -1) if di < -lim else None


def _check_k_of_m(r: Rule, w: Sequence[float], c: float, s: float) -> Hit:
    lim = r.level * s
    last = w[-1] - c
    side = 1 if last > lim else -1 if last < -lim else 0
    if side == 0:
        return None
    tail = w[-r.length :]
    n = sum(1 for v in tail if (v - c > lim if side > 0 else v - c < -lim))
    return (len(tail), side) if n >= r.k else None


def _check_same_side(r: Rule, w: Sequence[float], c: float, s: float) -> Hit:
    side = _side(w[-1] - c)
    if side == 0 or len(w) < r.length:
        return None
    for v in w[-r.length :]:
        if _side(v - c) != side:
            return None
    return (r.length, side)


def _check_within(r: Rule, w: Sequence[float], c: float, s: float) -> Hit:
    lim = r.level * s
    if len(w) < r.length:
        return None
    for v in w[-r.length :]:
        if not -lim < v - c < lim:
            return None
    return (r.length, 1)


def _check_outside(r: Rule, w: Sequence[float], c: float, s: float) -> Hit:
    lim = r.level * s
    if len(w) < r.length:
        return None
    for v in w[-r.length :]:
        if -lim <= v - c <= lim:
            return None
    return (r.length, 1)


def _check_trend(r: Rule, w: Sequence[float], c: float, s: float) -> Hit:
    if len(w) < r.length:
        return None
    tail = w[-r.length :]
    if all(a < b for a, b in itertools.pairwise(tail)):
        return (r.length, 1)
    if all(a > b for a, b in itertools.pairwise(tail)):
        return (r.length, -1)
    return None


def _check_alternating(r: Rule, w: Sequence[float], c: float, s: float) -> Hit:
    if len(w) < r.length:
        return None
    tail = w[-r.length :]
    prev = 0
    for a, b in itertools.pairwise(tail):
        step = 1 if b > a else -1 if b < a else 0
        if step == 0 or step == prev:
            return None
        prev = step
    return (r.length, 0)


_CHECKS = {
    Pattern.BEYOND: _check_beyond,
    Pattern.K_OF_M: _check_k_of_m,
    Pattern.SAME_SIDE: _check_same_side,
    Pattern.WITHIN: _check_within,
    Pattern.OUTSIDE: _check_outside,
    Pattern.TREND: _check_trend,
    Pattern.ALTERNATING: _check_alternating,
}
