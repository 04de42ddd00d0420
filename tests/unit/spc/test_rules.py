"""Run rules on constructed sequences: each fires on a pattern built to trip it and never on
one built not to; the incremental check equals the batch scan; rules are affine-invariant."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.spc import NELSON, RULES, WESTERN_ELECTRIC, RuleId, SpcError, Zones
from controller.spc.rules import check_point, evaluate, window

Z = Zones(0.0, 1.0)  # values below are in σ from the centre line
ALL = tuple(RuleId)


def fired(values: list[float], rule: RuleId, zones: Zones = Z) -> list[int]:
    return [v.index for v in evaluate(values, zones, [rule])]


def incremental(values: list[float], zones: Zones, rules: tuple[RuleId, ...]) -> list[tuple]:
    out = []
    for i, x in enumerate(values):
        out += [
            (v.rule, v.index, v.first, v.text) for v in check_point(values[:i], x, zones, rules, i)
        ]
    return out


# values strictly inside a zone band, away from every boundary
inside_1 = st.floats(-0.9, 0.9).filter(lambda v: v != 0.0)  # within 1σ, off the centre line
band = st.floats(0.05, 2.95)  # one side, within 3σ


@pytest.mark.parametrize("rule", [RuleId.N1, RuleId.WE1])
@given(
    before=st.lists(st.floats(-2.9, 2.9), max_size=20),
    out=st.floats(3.0001, 50),
    sign=st.sampled_from([1, -1]),
)
def test_beyond_3_sigma_fires_on_the_point(
    rule: RuleId, before: list[float], out: float, sign: int
) -> None:
    values = [*before, sign * out]
    assert fired(values, rule) == [len(before)]


@given(st.lists(st.floats(-3.0, 3.0), max_size=60))
def test_nothing_within_3_sigma_is_beyond(values: list[float]) -> None:
    assert fired(values, RuleId.N1) == []  # exactly 3σ is not beyond


@pytest.mark.parametrize(("rule", "length"), [(RuleId.N2, 9), (RuleId.WE4, 8)])
@given(extra=st.integers(0, 10), side=st.sampled_from([1, -1]), data=st.data())
def test_run_on_one_side_fires_from_its_nth_point(
    rule: RuleId, length: int, extra: int, side: int, data: st.DataObject
) -> None:
    run = [
        side * v
        for v in data.draw(st.lists(band, min_size=length + extra, max_size=length + extra))
    ]
    values = [-side * 1.0, *run]  # a point on the other side first
    assert fired(values, rule) == list(range(length, len(values)))


@pytest.mark.parametrize(("rule", "length"), [(RuleId.N2, 9), (RuleId.WE4, 8)])
@given(runs=st.lists(st.integers(1, 7), min_size=1, max_size=12), data=st.data())
def test_runs_shorter_than_the_rule_or_broken_by_the_centre_line_never_fire(
    rule: RuleId, length: int, runs: list[int], data: st.DataObject
) -> None:
    values: list[float] = []
    side = 1
    for n in runs:
        values += [side * v for v in data.draw(st.lists(band, min_size=n, max_size=n))]
        side = data.draw(st.sampled_from([-side, 0]))  # flip side, or sit on the centre line
        if side == 0:
            values.append(0.0)
            side = 1
    assert fired(values, rule) == []


@given(
    start=st.floats(-2.5, 0),
    steps=st.lists(st.floats(0.01, 0.1), min_size=5, max_size=20),
    down=st.booleans(),
)
def test_six_points_steadily_moving_fire_n3(start: float, steps: list[float], down: bool) -> None:
    values = [start]
    for s in steps:
        values.append(values[-1] + s)
    if down:
        values = [-v for v in values]
    assert fired(values, RuleId.N3) == list(range(5, len(values)))
    word = "decreasing" if down else "increasing"
    assert word in evaluate(values, Z, [RuleId.N3])[0].text


@given(st.lists(st.integers(-5, 5), max_size=60))
def test_n3_needs_five_strict_steps_in_one_direction(ints: list[int]) -> None:
    values = [float(v) for v in ints]
    expect = []
    for i in range(5, len(values)):
        w = values[i - 5 : i + 1]
        diffs = [b - a for a, b in itertools.pairwise(w)]
        if all(d > 0 for d in diffs) or all(d < 0 for d in diffs):
            expect.append(i)
    assert fired(values, RuleId.N3) == expect


@given(n=st.integers(14, 40), amp=st.floats(0.1, 2.5), data=st.data())
def test_fourteen_alternating_points_fire_n4(n: int, amp: float, data: st.DataObject) -> None:
    first = data.draw(st.sampled_from([1, -1]))
    values = [first * amp * (-1) ** i for i in range(n)]
    assert fired(values, RuleId.N4) == list(range(13, n))


@given(n=st.integers(2, 13), amp=st.floats(0.1, 2.5))
def test_thirteen_alternating_points_or_a_repeat_do_not_fire_n4(n: int, amp: float) -> None:
    values = [amp * (-1) ** i for i in range(n)]
    assert fired(values, RuleId.N4) == []
    broken = [*values, values[-1], *(amp * (-1) ** i for i in range(n))]  # a tie breaks it
    assert fired(broken, RuleId.N4) == []


@pytest.mark.parametrize(
    ("rule", "k", "m", "level"),
    [
        (RuleId.N5, 2, 3, 2.0),
        (RuleId.WE2, 2, 3, 2.0),
        (RuleId.N6, 4, 5, 1.0),
        (RuleId.WE3, 4, 5, 1.0),
    ],
)
@given(side=st.sampled_from([1, -1]), data=st.data())
def test_k_of_m_beyond_a_zone_fires_when_the_last_point_completes_it(
    rule: RuleId, k: int, m: int, level: float, side: int, data: st.DataObject
) -> None:
    # m points: the last beyond the zone, k-1 others beyond (same side), the rest inside
    others = data.draw(st.permutations([True] * (k - 1) + [False] * (m - k)))
    out = st.floats(level + 0.01, 2.99)
    inside = st.floats(-level + 0.01, level - 0.01)
    window_ = [side * data.draw(out) if o else data.draw(inside) for o in others]
    values = [0.1, *window_, side * data.draw(out)]
    assert len(values) - 1 in fired(values, rule)


@pytest.mark.parametrize(
    ("rule", "k", "m", "level"), [(RuleId.N5, 2, 3, 2.0), (RuleId.N6, 4, 5, 1.0)]
)
@given(data=st.data())
def test_k_of_m_never_fires_with_fewer_than_k_on_one_side(
    rule: RuleId, k: int, m: int, level: float, data: st.DataObject
) -> None:
    # every window of m holds at most k-1 points beyond the zone on each side
    out = st.floats(level + 0.01, 2.99)
    inside = st.floats(-level + 0.01, level - 0.01)
    values: list[float] = []
    for _ in range(data.draw(st.integers(1, 8))):
        block = [
            data.draw(out) * s
            for s in data.draw(st.permutations([1] * (k - 1) + [-1] * (k - 1)))[: k - 1]
        ]
        values += [*block, *(data.draw(inside) for _ in range(m))]  # m calm points clear the window
    assert fired(values, rule) == []


@given(n=st.integers(15, 40), data=st.data())
def test_fifteen_points_hugging_the_centre_fire_n7(n: int, data: st.DataObject) -> None:
    values = data.draw(st.lists(inside_1, min_size=n, max_size=n))
    assert fired(values, RuleId.N7) == list(range(14, n))


@given(st.lists(inside_1, min_size=14, max_size=14), st.sampled_from([1.0, -1.0, 1.5]))
def test_a_point_on_or_beyond_1_sigma_breaks_n7(values: list[float], edge: float) -> None:
    assert fired([*values, edge, *values], RuleId.N7) == []


@given(n=st.integers(8, 30), data=st.data())
def test_eight_points_beyond_1_sigma_either_side_fire_n8(n: int, data: st.DataObject) -> None:
    values = [
        s * v
        for s, v in zip(
            data.draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n)),
            data.draw(st.lists(st.floats(1.01, 2.99), min_size=n, max_size=n)),
            strict=True,
        )
    ]
    assert fired(values, RuleId.N8) == list(range(7, n))


@given(st.lists(st.floats(1.01, 2.99), min_size=7, max_size=7), st.floats(-1.0, 1.0))
def test_a_point_within_1_sigma_breaks_n8(values: list[float], calm: float) -> None:
    assert fired([*values, calm, *values], RuleId.N8) == []


# -- batch and incremental agree --------------------------------------------------------------

ints = st.lists(st.integers(-40, 40), max_size=80)  # σ = 10: hits every zone boundary exactly


@given(ints, st.integers(-10, 10))
def test_incremental_equals_batch_on_integer_series(values: list[int], center: int) -> None:
    xs = [float(v) for v in values]
    zones = Zones(float(center), 10.0)
    batch = [(v.rule, v.index, v.first, v.text) for v in evaluate(xs, zones, ALL)]
    assert incremental(xs, zones, ALL) == batch


@given(
    st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), max_size=60),
    st.floats(-1e5, 1e5),
    st.floats(1e-3, 1e5),
    st.sampled_from([NELSON, WESTERN_ELECTRIC, (RuleId.N4, RuleId.N1)]),
)
def test_incremental_equals_batch_on_float_series(
    xs: list[float], center: float, sigma: float, rules: tuple[RuleId, ...]
) -> None:
    zones = Zones(center, sigma)
    batch = [(v.rule, v.index, v.first, v.text) for v in evaluate(xs, zones, rules)]
    assert incremental(xs, zones, rules) == batch


@given(ints)
def test_incremental_reads_only_its_window(values: list[int]) -> None:
    xs = [float(v) for v in values]
    zones = Zones(0.0, 10.0)
    k = window(ALL)
    for i in range(len(xs)):
        full = check_point(xs[:i], xs[i], zones, ALL, i)
        assert check_point(xs[max(0, i - k + 1) : i], xs[i], zones, ALL, i) == full


def test_too_short_a_history_is_refused() -> None:
    with pytest.raises(SpcError, match="point 21: need the 14 points before it, got 3"):
        check_point([1.0, 2.0, 3.0], 4.0, Z, NELSON, 20)


@given(
    ints,
    st.integers(-10, 10),
    st.sampled_from([1.0, 2.0, 0.5, -1.0, -4.0, 8.0]),
    st.integers(-1000, 1000),
)
def test_rules_are_invariant_under_an_affine_map_of_data_and_limits(
    values: list[int], center: int, a: float, b: int
) -> None:
    xs = [float(v) for v in values]
    before = {(v.rule, v.index, v.first) for v in evaluate(xs, Zones(center, 10.0), ALL)}
    mapped = [a * x + b for x in xs]  # exact: small integers times powers of two
    after = evaluate(mapped, Zones(a * center + b, abs(a) * 10.0), ALL)
    assert {(v.rule, v.index, v.first) for v in after} == before


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=40))
def test_western_electric_and_nelson_share_their_common_tests(values: list[float]) -> None:
    for we, n in ((RuleId.WE1, RuleId.N1), (RuleId.WE2, RuleId.N5), (RuleId.WE3, RuleId.N6)):
        assert fired(values, we) == fired(values, n)
    # 9 in a row implies 8 in a row
    assert set(fired(values, RuleId.N2)) <= set(fired(values, RuleId.WE4))


def test_texts_name_the_rule_the_points_and_the_side() -> None:
    values = [0.5] * 8 + [0.7]
    (v,) = evaluate(values, Z, [RuleId.N2])
    assert v.text == "N2: 9 points in a row (points 1–9) above the centre line"
    (v,) = evaluate([0.0, -3.2], Z, [RuleId.N1])
    assert v.text == "N1: point 2 beyond the lower control limit (3σ)"
    assert RULES[RuleId.N7].window == 15 and window(NELSON) == 15 and window(WESTERN_ELECTRIC) == 8


def test_zones_need_a_positive_sigma() -> None:
    with pytest.raises(SpcError, match="sigma > 0"):
        Zones(1.0, 0.0)


@given(st.lists(st.integers(-40, 40), min_size=1, max_size=40))
def test_a_violation_spans_the_points_that_make_it(values: list[int]) -> None:
    for v in evaluate([float(x) for x in values], Zones(0.0, 10.0), ALL):
        assert 0 <= v.first <= v.index
        assert v.index - v.first + 1 <= RULES[v.rule].length
