"""Cp, Cpk, Pp, Ppk: hand-computed values, one-sided specs, and the invariances."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from controller.spc import SpcError, SpecLimits, capability

DATA = [[9.8], [10.1], [10.0], [9.9], [10.2]]


def test_known_values_by_hand() -> None:
    c = capability(DATA, SpecLimits(9.0, 11.0))
    # mean 10.0; moving ranges .3 .1 .1 .3 → MR̄ .2 → σw = .2/1.128; s = √(.10/4)
    sw, so = 0.2 / 1.128, math.sqrt(0.025)
    assert c.n == 5 and c.mean == pytest.approx(10.0)
    assert c.sigma_within == pytest.approx(sw) and c.sigma_overall == pytest.approx(so)
    assert c.cp == pytest.approx(2 / (6 * sw)) and c.cpk == pytest.approx(1 / (3 * sw))
    assert c.pp == pytest.approx(2 / (6 * so)) and c.ppk == pytest.approx(1 / (3 * so))
    assert c.cp == pytest.approx(1.8800, abs=1e-4) and c.pp == pytest.approx(2.1082, abs=1e-4)


def test_one_sided_specs_take_cpk_from_their_side() -> None:
    upper = capability(DATA, SpecLimits(usl=10.5))
    assert upper.cp is None and upper.pp is None
    assert upper.cpk == pytest.approx(0.5 / (3 * 0.2 / 1.128))  # CPU
    lower = capability(DATA, SpecLimits(lsl=9.7))
    assert lower.cpk == pytest.approx(0.3 / (3 * 0.2 / 1.128))  # CPL


def test_subgroups_use_r_bar_over_d2() -> None:
    c = capability([[1, 2, 3], [2, 3, 4], [1, 3, 5], [2, 2, 5], [3, 4, 5]], SpecLimits(0, 6))
    assert c.sigma_within == pytest.approx(2.6 / 1.693)
    assert c.cp == pytest.approx(6 / (6 * 2.6 / 1.693))


values = st.lists(st.floats(-100, 100), min_size=3, max_size=40).filter(lambda xs: len(set(xs)) > 2)


@given(values, st.floats(-50, 0), st.floats(0.1, 100))
def test_cpk_never_exceeds_cp(xs: list[float], lsl: float, width: float) -> None:
    c = capability([[x] for x in xs], SpecLimits(lsl, lsl + width))
    assert c.cp is not None and c.pp is not None
    assert c.cpk <= c.cp * (1 + 1e-12)
    assert c.ppk <= c.pp * (1 + 1e-12)


@given(values, st.floats(0.01, 100), st.floats(-1000, 1000), st.booleans())
def test_capability_is_invariant_under_shift_and_scale(
    xs: list[float], a: float, b: float, flip: bool
) -> None:
    spec = SpecLimits(-50.0, 60.0)
    before = capability([[x] for x in xs], spec)
    assume(before.sigma_within > 1e-6 and before.sigma_overall > 1e-6)
    sign = -1.0 if flip else 1.0
    ends = sorted([sign * a * -50.0 + b, sign * a * 60.0 + b])
    after = capability([[sign * a * x + b] for x in xs], SpecLimits(ends[0], ends[1]))
    for name in ("cp", "cpk", "pp", "ppk"):
        assert getattr(after, name) == pytest.approx(getattr(before, name), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SpecLimits(), "needs a lower or an upper"),
        (lambda: SpecLimits(5.0, 5.0), "lower limit 5 must be below the upper 5"),
        (lambda: SpecLimits(usl=math.nan), "not a finite number"),
        (lambda: capability([[1.0]] * 5, SpecLimits(0, 2)), "no variation"),
        (lambda: capability([[1.0]], SpecLimits(0, 2)), "at least 2 values"),
        (lambda: capability([], SpecLimits(0, 2)), "at least 2 values"),
        (lambda: capability([[1.0], [1.0, 2.0]], SpecLimits(0, 2)), "one size"),
    ],
)
def test_refusals(make: object, message: str) -> None:
    with pytest.raises(SpcError, match=message):
        make()  # type: ignore[operator]


def test_spec_contains() -> None:
    spec = SpecLimits(usl=5.0)
    assert spec.contains(5.0) and not spec.contains(5.01) and not spec.two_sided
