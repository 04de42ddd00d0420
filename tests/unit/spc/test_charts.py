"""Chart definitions and frozen limits: the published constants, hand-computed phase I limits,
limits that never move with the live series, and refusals that name the chart."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.spc import (
    CONSTANTS,
    ChartDefinition,
    ChartKey,
    ChartType,
    LimitsSource,
    OcapAction,
    RuleSet,
    SpcError,
    engineer_limits,
    phase_one,
)
from controller.spc.rules import NELSON, WESTERN_ELECTRIC

KEY = ChartKey("stacked-wlp-000-11", "dice", "kerf_offset", "DICE-1")


def imr(n: int = 5, **kw: object) -> ChartDefinition:
    return ChartDefinition(KEY, baseline_points=n, **kw)  # type: ignore[arg-type]


def xbar(size: int, n: int = 5) -> ChartDefinition:
    return ChartDefinition(KEY, ChartType.XBAR_R, size, baseline_points=n)


@pytest.mark.parametrize("n", sorted(CONSTANTS))
def test_the_constants_table_is_self_consistent(n: int) -> None:
    c = CONSTANTS[n]
    # A2 = 3/(d2·√n), and D3 + D4 = 2 where D3 > 0 (D3 = 1 − 3d3/d2, D4 = 1 + 3d3/d2)
    assert c.a2 == pytest.approx(3 / (c.d2 * math.sqrt(n)), rel=2e-3)
    if c.d3_lower > 0:
        assert c.d3_lower + c.d4_upper == pytest.approx(2.0, abs=2e-3)
    assert CONSTANTS[2].d2 == 1.128 and CONSTANTS[5].d4_upper == 2.114


def test_individuals_phase_one_by_hand() -> None:
    limits = phase_one(imr(), [[10], [12], [11], [13], [12]])
    # x̄ = 11.6; moving ranges 2, 1, 2, 1 → MR̄ = 1.5; σ = 1.5/1.128
    assert limits.center == pytest.approx(11.6)
    assert limits.sigma == pytest.approx(1.5 / 1.128)
    assert limits.ucl == pytest.approx(11.6 + 2.66 * 1.5, rel=1e-3)  # X̄ ± 2.66·MR̄
    assert limits.lcl == pytest.approx(11.6 - 2.66 * 1.5, rel=1e-3)
    assert limits.spread_center == pytest.approx(1.5)
    assert limits.spread_ucl == pytest.approx(3.267 * 1.5)
    assert limits.spread_lcl == 0.0
    assert limits.zone(1) == pytest.approx((11.6 - 1.5 / 1.128, 11.6 + 1.5 / 1.128))
    assert (limits.source, limits.basis) == (LimitsSource.PHASE_I, 5)


def test_xbar_r_phase_one_by_hand() -> None:
    subgroups = [[1, 2, 3], [2, 3, 4], [1, 3, 5], [2, 2, 5], [3, 4, 5]]
    limits = phase_one(xbar(3), subgroups)
    # means 2 3 3 3 4 → X̿ = 3; ranges 2 2 4 3 2 → R̄ = 2.6
    assert limits.center == pytest.approx(3.0)
    assert limits.ucl == pytest.approx(3.0 + 1.023 * 2.6, rel=1e-3)  # X̿ + A2·R̄
    assert limits.lcl == pytest.approx(3.0 - 1.023 * 2.6, rel=1e-3)
    assert limits.spread_center == pytest.approx(2.6)
    assert limits.spread_ucl == pytest.approx(2.574 * 2.6)
    assert limits.sigma_plot == pytest.approx(2.6 / 1.693 / math.sqrt(3))


def test_range_chart_lower_limit_from_n_7() -> None:
    subgroups = [[0, 1, 2, 3, 4, 5, 6]] * 5
    limits = phase_one(xbar(7), subgroups)
    assert limits.spread_lcl == pytest.approx(0.076 * 6)


@given(
    base=st.lists(st.integers(-1000, 1000), min_size=10, max_size=10).filter(
        lambda xs: len(set(xs)) > 1
    ),
    live=st.lists(st.floats(-1e4, 1e4), max_size=50),
)
def test_limits_come_from_the_baseline_only(base: list[int], live: list[float]) -> None:
    d = imr(10)
    frozen = phase_one(d, [[x / 10] for x in base])
    assert phase_one(d, [[x / 10] for x in base] + [[x] for x in live]) == frozen


def test_engineer_limits() -> None:
    limits = engineer_limits(xbar(4), center=10.0, sigma=2.0)
    assert (limits.ucl, limits.lcl) == (13.0, 7.0)  # 3σ/√4
    assert limits.source is LimitsSource.ENGINEER and limits.basis == 0
    assert limits.spread_center == pytest.approx(2.059 * 2.0)
    with pytest.raises(SpcError, match="sigma > 0"):
        engineer_limits(imr(), center=1.0, sigma=0.0)
    with pytest.raises(SpcError, match="finite"):
        engineer_limits(imr(), center=math.nan, sigma=1.0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: ChartDefinition(KEY, ChartType.INDIVIDUALS, 3),
            "i-mr chart has subgroup size 1, not 3",
        ),
        (lambda: ChartDefinition(KEY, ChartType.XBAR_R, 1), "xbar-r subgroup size 1 outside 2–10"),
        (
            lambda: ChartDefinition(KEY, ChartType.XBAR_R, 11),
            "xbar-r subgroup size 11 outside 2–10",
        ),
        (lambda: ChartDefinition(KEY, baseline_points=4), "baseline of 4 points is too short"),
        (lambda: ChartKey("r", "s", "", "T"), "result '' must be non-empty"),
        (lambda: ChartKey("r", "a/b", "x", "T"), "step_id 'a/b'"),
    ],
)
def test_bad_definitions_are_refused(make: object, message: str) -> None:
    with pytest.raises(SpcError, match=message):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("definition", "samples", "message"),
    [
        (imr(5), [[1.0]] * 4, "phase I needs 5 points, have 4"),
        (imr(5), [[1.0]] * 5, "no variation"),
        (imr(5), [[1.0], [2.0], [1.0, 2.0], [1.0], [3.0]], "baseline point 3 has 2 values"),
        (imr(5), [[1.0], [2.0], [math.inf], [1.0], [3.0]], "baseline point 3 has a non-finite"),
        (xbar(3), [[1, 2, 3]] * 4 + [[1, 2]], "baseline point 5 has 2 values"),
    ],
)
def test_bad_baselines_are_refused(
    definition: ChartDefinition, samples: list[list[float]], message: str
) -> None:
    with pytest.raises(SpcError, match=message) as e:
        phase_one(definition, samples)
    assert str(KEY) in str(e.value)


def test_limits_must_match_their_chart() -> None:
    limits = phase_one(imr(), [[1], [2], [3], [2], [1]])
    with pytest.raises(SpcError, match="limits are for i-mr n=1, the chart is xbar-r n=3"):
        limits.check(xbar(3))


def test_chart_key_text_round_trip() -> None:
    assert str(KEY) == "stacked-wlp-000-11/dice/kerf_offset@DICE-1"
    assert ChartKey.parse(str(KEY)) == KEY
    with pytest.raises(SpcError, match="expected RECIPE/STEP/RESULT@TOOL"):
        ChartKey.parse("stacked-wlp-000-11/dice@DICE-1")


def test_rule_sets_and_actions() -> None:
    assert RuleSet.NELSON.rules == NELSON and len(NELSON) == 8
    assert RuleSet.WESTERN_ELECTRIC.rules == WESTERN_ELECTRIC and len(WESTERN_ELECTRIC) == 4
    assert imr().window == 15 and imr(rule_set=RuleSet.WESTERN_ELECTRIC).window == 8
    assert [a.warns for a in OcapAction] == [False, True, True, True]
    assert [a.holds_lot for a in OcapAction] == [False, False, True, True]
    assert [a.inhibits_tool for a in OcapAction] == [False, False, False, True]
