"""Points against frozen limits: the per-point path equals the series path, the spread chart
flags a jump, and OCAP turns a violation into the chart's action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.spc import (
    ChartDefinition,
    ChartKey,
    ChartType,
    OcapAction,
    RuleSet,
    SpcError,
    engineer_limits,
    evaluate_point,
    evaluate_series,
    ocap,
)

KEY = ChartKey("wlcsp-002-24", "trace-cu", "thickness", "PLAT-1")


@pytest.mark.parametrize(
    "definition",
    [
        ChartDefinition(KEY, baseline_points=5),
        ChartDefinition(KEY, rule_set=RuleSet.WESTERN_ELECTRIC, baseline_points=5),
        ChartDefinition(KEY, ChartType.XBAR_R, 3, baseline_points=5),
    ],
)
@given(data=st.data())
def test_point_by_point_equals_the_series(definition: ChartDefinition, data: st.DataObject) -> None:
    n = definition.subgroup_size
    samples = data.draw(
        st.lists(st.lists(st.integers(-30, 30), min_size=n, max_size=n), max_size=60)
    )
    samples = [[float(v) for v in s] for s in samples]
    limits = engineer_limits(definition, center=0.0, sigma=10.0)
    series = evaluate_series(definition, limits, samples)
    values: list[float] = []
    for i, sample in enumerate(samples):
        recent = values[-(definition.window - 1) :]
        point = evaluate_point(definition, limits, recent, sample, i)
        assert point == series[i]
        values.append(point.value)


def test_a_jump_trips_the_moving_range_chart() -> None:
    d = ChartDefinition(KEY, baseline_points=5)
    limits = engineer_limits(d, center=8.0, sigma=0.1)  # MR̄ = 0.1128, UCL 0.3685
    points = evaluate_series(d, limits, [[8.0], [8.05], [7.95], [8.25], [8.0]])
    assert [p.spread_violation is not None for p in points] == [False, False, False, False, False]
    points = evaluate_series(d, limits, [[8.0], [8.05], [7.8], [8.0]])  # MR 0.25 then 0.2
    assert points[0].spread is None and points[2].spread == pytest.approx(0.25)
    points = evaluate_series(d, limits, [[7.85], [8.25]])  # MR 0.4 > 0.3685
    sv = points[1].spread_violation
    assert sv is not None and sv.rule == "R1"
    assert sv.text == "R1: point 2 MR 0.4 above the MR upper control limit 0.3685"
    assert points[1].rule_ids == ("R1",) and not points[1].in_control


def test_subgroup_range_and_mean() -> None:
    d = ChartDefinition(KEY, ChartType.XBAR_R, 3, baseline_points=5)
    limits = engineer_limits(d, center=8.0, sigma=0.1)
    inside, beyond = evaluate_series(d, limits, [[7.9, 8.0, 8.5], [7.9, 8.1, 8.6]])
    assert inside.value == pytest.approx(8.1333333) and inside.spread == pytest.approx(0.6)
    assert inside.violations == ()  # UCL 8 + 3·0.1/√3 = 8.173
    assert inside.spread_violation is not None  # R UCL = 2.574 · 1.693 · 0.1 = 0.436
    assert beyond.value == pytest.approx(8.2)
    assert [v.rule for v in beyond.violations] == ["N1", "N5"]  # and 2 of 2 beyond 2σ


def test_ocap_decision_carries_the_chart_action_and_reason() -> None:
    d = ChartDefinition(KEY, action=OcapAction.INHIBIT, baseline_points=5)
    limits = engineer_limits(d, center=8.0, sigma=0.1)
    ok, bad = evaluate_series(d, limits, [[8.0], [8.5]])
    assert ocap(d, ok) is None
    decision = ocap(d, bad)
    assert decision is not None
    assert decision.action is OcapAction.INHIBIT and decision.index == 1
    assert decision.rules == ("N1", "R1")
    assert decision.reason == (
        "SPC wlcsp-002-24/trace-cu/thickness@PLAT-1: N1: point 2 beyond the upper control"
        " limit (3σ) (+1 more)"
    )


def test_bad_samples_are_refused_with_the_point() -> None:
    d = ChartDefinition(KEY, ChartType.XBAR_R, 3, baseline_points=5)
    limits = engineer_limits(d, center=8.0, sigma=0.1)
    with pytest.raises(SpcError, match=r"wlcsp-002-24/trace-cu/thickness@PLAT-1: point 8 has 2"):
        evaluate_point(d, limits, [8.0] * 7, [8.0, 8.1], 7)
