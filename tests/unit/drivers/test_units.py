"""Units (drivers/units.py): parsing, the conversion table against physical identities, the
temperature offset, and the errors a bad value gets."""

from __future__ import annotations

import math
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import UnitError
from drivers.units import (
    ALIASES,
    DIMENSION_EXAMPLE,
    UNITS,
    Quantity,
    convert,
    format_quantity,
    parse_quantity,
    to_unit,
    unit,
)


@pytest.mark.parametrize(
    ("text", "value", "symbol"),
    [
        ("5 kW", 5.0, "kW"),
        ("300nm", 300.0, "nm"),
        ("  25 °C ", 25.0, "°C"),
        ("-40 °C", -40.0, "°C"),
        ("+1.5e3 µm", 1500.0, "µm"),
        (".5 mm", 0.5, "mm"),
        ("7.", 7.0, ""),
        ("2E-3 s", 0.002, "s"),
        ("12 um", 12.0, "µm"),  # keyboard spelling
        ("12 μm", 12.0, "µm"),  # Greek mu, not the micro sign
        ("80 degC", 80.0, "°C"),
        ("3 A/dm2", 3.0, "A/dm²"),
        ("400 cP", 400.0, "mPa·s"),
        ("1 pcs", 1.0, "count"),
        (5, 5.0, ""),
        (2.5, 2.5, ""),
        (Quantity(3.0, "kN"), 3.0, "kN"),
    ],
)
def test_parse_quantity(text: str | float, value: float, symbol: str) -> None:
    assert parse_quantity(text) == Quantity(value, symbol)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("five kW", "not a quantity: 'five kW'"),
        ("", "not a quantity"),
        ("kW", "not a quantity"),
        ("5 furlongs", "unknown unit 'furlongs'"),
        ("5 KW", "unknown unit 'KW'"),  # symbols are case-sensitive: no guessing
        ("1e999 nm", "not a finite number"),
        (True, "expected a number with a unit, got True"),
    ],
)
def test_a_bad_quantity_is_a_unit_error(text: str, words: str) -> None:
    with pytest.raises(UnitError) as e:
        parse_quantity(text)
    assert words in str(e.value)


# Physical identities, written independently of the table: each pair must convert exactly.
IDENTITIES = [
    ("1 mm", "µm", 1000.0),
    ("1 m", "nm", 1e9),
    ("2.54 cm", "mm", 25.4),
    ("1 h", "min", 60.0),
    ("90 s", "min", 1.5),
    ("1500 ms", "s", 1.5),
    ("1 kW", "W", 1000.0),
    ("250 mW", "W", 0.25),
    ("1 kg", "g", 1000.0),
    ("1 MWh", "kWh", 1000.0),
    ("1 Torr", "mTorr", 1000.0),
    ("760 Torr", "kPa", 101.32472),  # 1 atm; the table's Torr is 133.322 Pa
    ("1 mbar", "Pa", 100.0),
    ("1 MPa", "kPa", 1000.0),
    ("1000 gf", "N", 9.80665),
    ("1 kN", "N", 1000.0),
    ("1 A/dm²", "mA/cm²", 10.0),  # plating: 1 ASD = 10 mA/cm²
    ("1 mA/cm²", "A/m²", 10.0),
    ("1 A", "mA", 1000.0),
    ("1 V", "mV", 1000.0),
    ("1 kHz", "Hz", 1000.0),
    ("1 Ω", "mΩ", 1000.0),
    ("1 m/s", "mm/s", 1000.0),
    ("1 mm/s", "µm/s", 1000.0),
    ("1 µm/min", "nm/min", 1000.0),
    ("60 µm/h", "µm/min", 1.0),
    ("1 krpm", "rpm", 1000.0),
    ("1 J/cm²", "mJ/cm²", 1000.0),
    ("1 L/min", "mL/min", 1000.0),
    ("1 mL", "µL", 1000.0),
    ("1 µL", "nL", 1000.0),
    ("50 %", "ppm", 500000.0),
    ("1 deg", "mdeg", 1000.0),
    ("1 Ω/sq", "mΩ/sq", 1000.0),
    ("1 Pa·s", "mPa·s", 1000.0),
    ("25 °C", "K", 298.15),
    ("0 K", "°C", -273.15),
    ("300 K", "°C", 26.85),
]


@pytest.mark.parametrize(("text", "target", "expected"), IDENTITIES)
def test_conversions_match_physical_identities(text: str, target: str, expected: float) -> None:
    assert to_unit(text, target) == pytest.approx(expected, rel=1e-9)


def test_every_dimension_with_more_than_one_unit_has_an_identity_above() -> None:
    """A new unit needs a line in IDENTITIES, or its factor is checked by nothing."""
    tested = {unit(parse_quantity(t).unit).dimension for t, _, _ in IDENTITIES}
    by_dimension: dict[str, set[str]] = {}
    for u in UNITS.values():
        by_dimension.setdefault(u.dimension, set()).add(u.symbol)
    multi = {d for d, symbols in by_dimension.items() if len(symbols) > 1}
    assert multi <= tested, f"no identity for {sorted(multi - tested)}"


def test_conversions_are_rounded_to_12_significant_digits() -> None:
    """0.8 mm is 800 µm, not 800.0000000000001 µm beyond an 800 µm limit."""
    assert 0.8 * 1e-3 / 1e-6 != 800.0
    assert to_unit("0.8 mm", "µm") == 800.0
    assert to_unit("0.1 µm", "nm") == 100.0


def test_converting_within_a_unit_keeps_the_value_exactly() -> None:
    assert convert(0.1 + 0.2, "nm", "nm") == 0.1 + 0.2


@given(
    st.sampled_from(sorted({u.dimension for u in UNITS.values()})),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
def test_a_round_trip_between_units_of_one_dimension_returns_the_value(
    dimension: str, value: float
) -> None:
    symbols = [s for s, u in UNITS.items() if u.dimension == dimension]
    for a, b in combinations(symbols, 2):
        back = convert(convert(value, a, b), b, a)
        assert back == pytest.approx(value, rel=1e-10, abs=1e-9), (a, b)


@pytest.mark.parametrize(
    ("text", "target", "words"),
    [
        ("5 mm", "kW", ["'mm' is a length, expected a power such as 'kW'"]),
        ("25 °C", "s", ["temperature", "time"]),
        ("5", "kW", ["missing unit: '5'", "'kW'"]),
        ("5 kW", "furlong", ["unknown unit 'furlong'"]),
    ],
)
def test_a_wrong_unit_is_a_unit_error_naming_both_sides(
    text: str, target: str, words: list[str]
) -> None:
    with pytest.raises(UnitError) as e:
        to_unit(text, target)
    for w in words:
        assert w in str(e.value)


def test_bare_numbers_are_counts_or_dimensionless_only() -> None:
    assert to_unit("12", "count") == 12.0
    assert to_unit(3, "") == 3.0
    assert to_unit("12 count", "count") == 12.0
    with pytest.raises(UnitError, match="missing unit"):
        to_unit(12, "µm")


def test_a_bare_number_cannot_pass_for_a_ratio() -> None:
    with pytest.raises(UnitError, match=r"missing unit: '0.5' \(expected '%'"):
        to_unit("0.5", "%")
    with pytest.raises(
        UnitError, match=r"unit '\(none\)' is a dimensionless, expected a ratio such as '%'"
    ):
        convert(0.5, "", "%")


def test_every_alias_and_example_names_a_known_unit() -> None:
    assert set(ALIASES.values()) <= set(UNITS)
    for dimension, symbol in DIMENSION_EXAMPLE.items():
        assert UNITS[symbol].dimension == dimension


@pytest.mark.parametrize(
    ("value", "symbol", "text"),
    [
        (5.0, "kW", "5 kW"),
        (0.25, "µm", "0.25 µm"),
        (1 / 3, "s", "0.333333 s"),
        (12.0, "", "12"),
        (-3.0, "°C", "-3 °C"),
        (2e15, "nm", "2e+15 nm"),
        (math.inf, "nm", "inf nm"),  # a result a tool may report: printed, never an error
        (math.nan, "", "nan"),
    ],
)
def test_format_quantity(value: float, symbol: str, text: str) -> None:
    assert format_quantity(value, symbol) == text


def test_a_quantity_converts_and_prints() -> None:
    q = parse_quantity("1.5 kW")
    assert q.to("W") == 1500.0
    assert str(q) == "1.5 kW"
