"""Physical quantities with units: parsing, checking and conversion.

A small closed table rather than a general units library: the line uses a few dozen units,
every conversion must be exact and auditable, and an unknown unit must be an error, not a
guess. Values are converted between units of one dimension; temperatures (°C, K) carry an
offset.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from drivers.errors import UnitError


@dataclass(frozen=True)
class Unit:
    symbol: str
    dimension: str
    factor: float  # value_in_base = value * factor + offset
    offset: float = 0.0


def _units(dimension: str, table: dict[str, float]) -> dict[str, Unit]:
    return {sym: Unit(sym, dimension, f) for sym, f in table.items()}


UNITS: dict[str, Unit] = {
    **_units("length", {"nm": 1e-9, "µm": 1e-6, "mm": 1e-3, "cm": 1e-2, "m": 1.0}),
    **_units("time", {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}),
    **_units("power", {"mW": 1e-3, "W": 1.0, "kW": 1e3}),
    **_units("mass", {"mg": 1e-3, "g": 1.0, "kg": 1e3}),
    **_units("energy", {"Wh": 1.0, "kWh": 1e3, "MWh": 1e6}),
    **_units(
        "pressure",
        {"Pa": 1.0, "kPa": 1e3, "MPa": 1e6, "mbar": 100.0, "Torr": 133.322, "mTorr": 0.133322},
    ),
    **_units("force", {"N": 1.0, "kN": 1e3, "gf": 9.80665e-3}),
    **_units("current_density", {"mA/cm²": 10.0, "A/dm²": 100.0, "A/m²": 1.0}),
    **_units("current", {"mA": 1e-3, "A": 1.0}),
    **_units("voltage", {"mV": 1e-3, "V": 1.0}),
    **_units("frequency", {"Hz": 1.0, "kHz": 1e3}),
    **_units("charge", {"Ah": 1.0}),
    **_units("speed", {"µm/s": 1e-6, "mm/s": 1e-3, "m/s": 1.0}),
    **_units("rate", {"nm/min": 1.0, "µm/min": 1e3, "µm/h": 1e3 / 60.0}),
    **_units("rotation", {"rpm": 1.0, "krpm": 1e3}),
    **_units("dose", {"mJ/cm²": 1.0, "J/cm²": 1e3}),
    **_units("flow", {"mL/min": 1e-3, "L/min": 1.0}),
    **_units("volume", {"nL": 1e-9, "µL": 1e-6, "mL": 1e-3, "L": 1.0}),
    **_units("concentration", {"g/L": 1.0}),
    **_units("ratio", {"%": 1e-2, "ppm": 1e-6}),
    **_units("angle", {"mdeg": 1e-3, "deg": 1.0}),
    **_units("resistance", {"mΩ/sq": 1e-3, "Ω/sq": 1.0}),
    **_units("electrical_resistance", {"mΩ": 1e-3, "Ω": 1.0}),
    **_units("count", {"count": 1.0}),
    **_units("thermal_resistance", {"K/W": 1.0}),
    **_units("viscosity", {"mPa·s": 1e-3, "Pa·s": 1.0}),
    **_units("areal_mass", {"µg/cm²": 1.0}),  # ionic residue, NaCl equivalent
    "°C": Unit("°C", "temperature", 1.0, 0.0),
    "K": Unit("K", "temperature", 1.0, -273.15),
    "": Unit("", "dimensionless", 1.0),
}
# Spellings people type on keyboards without µ, ² or °.
ALIASES: dict[str, str] = {
    "um": "µm",
    "μm": "µm",  # Greek mu (U+03BC) vs micro sign (U+00B5)
    "um/s": "µm/s",
    "μm/s": "µm/s",
    "um/min": "µm/min",
    "μm/min": "µm/min",
    "um/h": "µm/h",
    "μm/h": "µm/h",
    "uL": "µL",
    "μL": "µL",
    "degC": "°C",
    "C": "°C",
    "mA/cm2": "mA/cm²",
    "A/dm2": "A/dm²",
    "A/m2": "A/m²",
    "mJ/cm2": "mJ/cm²",
    "ug/cm2": "µg/cm²",
    "J/cm2": "J/cm²",
    "mohm/sq": "mΩ/sq",
    "mOhm/sq": "mΩ/sq",
    "ohm/sq": "Ω/sq",
    "Ohm/sq": "Ω/sq",
    "hr": "h",
    "sec": "s",
    "mtorr": "mTorr",
    "torr": "Torr",
    "l/min": "L/min",
    "ml/min": "mL/min",
    "ml": "mL",
    "pcs": "count",
    "mPa.s": "mPa·s",
    "cP": "mPa·s",
    "Pa.s": "Pa·s",
}

DIMENSION_EXAMPLE: dict[str, str] = {
    "length": "µm",
    "time": "min",
    "temperature": "°C",
    "power": "kW",
    "pressure": "MPa",
    "force": "N",
    "current_density": "mA/cm²",
    "speed": "mm/s",
    "rotation": "rpm",
}


def unit(symbol: str) -> Unit:
    """Look up a unit by symbol or alias; unknown symbols are an error."""
    sym = ALIASES.get(symbol, symbol)
    try:
        return UNITS[sym]
    except KeyError:
        raise UnitError(f"unknown unit {symbol!r}") from None


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str

    def to(self, target: str) -> float:
        """This quantity's value in `target` units (same dimension required)."""
        return convert(self.value, self.unit, target)

    def __str__(self) -> str:
        return format_quantity(self.value, self.unit)


_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def parse_quantity(text: str | int | float | Quantity) -> Quantity:
    """Parse "5 kW", "300nm", "25 °C". A bare number gets an empty (dimensionless) unit."""
    if isinstance(text, Quantity):
        return text
    if isinstance(text, bool):
        raise UnitError(f"expected a number with a unit, got {text!r}")
    if isinstance(text, int | float):
        return Quantity(float(text), "")
    m = _QUANTITY.match(text)
    if not m:
        raise UnitError(f"not a quantity: {text!r} (expected e.g. '5 kW')")
    value = float(m.group(1))
    if not math.isfinite(value):
        raise UnitError(f"not a finite number: {text!r}")
    u = unit(m.group(2))  # validates the unit
    return Quantity(value, u.symbol)


def convert(value: float, source: str, target: str) -> float:
    src, dst = unit(source), unit(target)
    if src.dimension != dst.dimension:
        raise UnitError(
            f"unit {source or '(none)'!r} is a {src.dimension}, expected a {dst.dimension}"
            f" such as {target!r}"
        )
    if src is dst:
        return value
    base = value * src.factor + src.offset
    # 12 significant digits: 0.8 mm is 800 µm, not 800.0000000000001 µm beyond a limit
    return float(f"{(base - dst.offset) / dst.factor:.12g}")


def to_unit(text: str | int | float | Quantity, target: str) -> float:
    """Parse `text` and return its value in `target` units. Missing units are an error
    unless the target itself is dimensionless."""
    q = parse_quantity(text)
    if q.unit == "" and unit(target).dimension == "count":
        return q.value  # a bare number is a count
    if q.unit == "" and unit(target).dimension != "dimensionless":
        raise UnitError(f"missing unit: {text!r} (expected {target!r} or a unit of the same kind)")
    return convert(q.value, q.unit, target)


def format_quantity(value: float, symbol: str) -> str:
    # a tool may report inf or nan (a garbled f32): print it, never raise on int(inf)
    whole = math.isfinite(value) and value == int(value) and abs(value) < 1e15
    text = str(int(value)) if whole else f"{value:.6g}"
    return f"{text} {symbol}" if symbol else text
