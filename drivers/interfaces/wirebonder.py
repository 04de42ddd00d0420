"""Wire bonder (Modbus TCP): thermosonic ball-stitch and ultrasonic/thermosonic wedge bonding.

The process reference lists the wire bonder only as a NEW tool type (001 cl.15: chip pads to
substrate fingers, chip back on the thermal-enhance layer; 002 cl.46: a wire in each
pad-through-hole from the bonding pad to the end of the adjacent lead, very short and low
loops). It gives no tool model, so every number here and in `simulators/wirebonder.py` is an
engineering estimate, in the ranges discussed by: G. Harman, *Wire Bonding in
Microelectronics*, 3rd ed., McGraw-Hill 2010 (bond windows, heat-affected zone, cratering,
hook-pull geometry after Schafft); P. Chauhan et al., *Copper Wire Bonding*, Springer 2014
(Cu needs 95 % N₂/5 % H₂ forming gas, harder ball, faster capillary wear); MIL-STD-883
TM 2011 (wire pull) and JESD22-B116 (ball shear). Calibrate them before use.

Standard settings ("0 = standard" in the job) are per wire metal and bond type at 25 µm wire
and scale with the bond area, (d/25 µm)², for force and ultrasonic power.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from drivers.interface import (
    Alarm,
    Consumable,
    Operation,
    Param,
    Qualification,
    Result,
    Rule,
    SetupField,
    ToolInterface,
    Value,
)

WIRES = ("AU", "CU", "AL")
WIRE_SIZES = ("D18", "D20", "D23", "D25", "D30", "D33", "D38", "D50")
WIRE_DIAMETER_UM = {s: float(s[1:]) for s in WIRE_SIZES}
BOND_TYPES = ("BALL_STITCH", "WEDGE")
PAD_METALS = ("AL", "NIAU", "CU")
LEAD_FINISHES = ("NIAU", "NIPDAU", "AG", "CU")

REF_DIAMETER_UM = 25.0  # the standard settings below are for 25 µm (1 mil) wire
FAB_RATIO_STANDARD = 1.8  # free-air ball = 1.8 × wire diameter unless set
FAB_RATIO_RANGE = (1.5, 2.5)
WEDGE_PAD_RATIO = 1.3  # a wedge needs a pad opening of at least 1.3 × wire diameter
FORMING_GAS_MIN_LMIN = 0.3  # Cu free-air balls oxidise without 95 % N₂ / 5 % H₂
SPAN_MAX_DIAMETERS = 200.0  # longer wires sag and sweep in the mold
MAX_WIRES_PER_JOB = 1_000_000  # keeps every count exact in a Modbus f32


@dataclass(frozen=True)
class Standard:
    """Standard settings at 25 µm wire; force and power scale with (d/25 µm)²."""

    bond_force: float  # gf, first bond (ball or first wedge)
    bond_power: float  # mW ultrasonic
    bond_time: float  # ms
    stitch_force: float  # gf, second bond (stitch or second wedge)
    stitch_power: float  # mW
    stitch_time: float  # ms
    temp_low: float  # °C, below this NSOP/NSOL start to rise
    temp: float  # °C, nominal
    temp_high: float  # °C, upper end of the usual window


STANDARD: Mapping[tuple[str, str], Standard] = {
    ("AU", "BALL_STITCH"): Standard(25, 70, 12, 70, 90, 10, 150, 175, 220),
    ("CU", "BALL_STITCH"): Standard(40, 100, 15, 100, 120, 12, 150, 175, 220),
    ("AU", "WEDGE"): Standard(25, 60, 30, 25, 60, 30, 100, 150, 200),
    ("CU", "WEDGE"): Standard(35, 90, 30, 35, 90, 30, 100, 150, 200),
    ("AL", "WEDGE"): Standard(25, 80, 30, 25, 80, 30, 25, 25, 150),
}
WINDOW = (0.7, 1.5)
"""Force, power and time window as a fraction of the standard: below it non-sticks rise,
above it craters (first bond) and short tails / heel cracks (second bond) rise."""

_SETTINGS = ("bond_force", "bond_power", "bond_time", "stitch_force", "stitch_power",
             "stitch_time")  # fmt: skip
_SCALED = ("bond_force", "bond_power", "stitch_force", "stitch_power")


def wire_diameter_um(values: Mapping[str, Value]) -> float:
    return WIRE_DIAMETER_UM[str(values["wire_size"])]


def standard_settings(wire: str, bond_type: str, d_um: float) -> dict[str, float]:
    """The tool's standard bond settings for a wire metal, bond type and diameter."""
    std = STANDARD[(wire, bond_type)]
    scale = (d_um / REF_DIAMETER_UM) ** 2
    return {k: getattr(std, k) * (scale if k in _SCALED else 1.0) for k in _SETTINGS}


def fab_diameter_um(values: Mapping[str, Value]) -> float:
    """Free-air ball diameter the job uses (0 for WEDGE)."""
    if values["bond_type"] == "WEDGE":
        return 0.0
    fab = float(values["fab_diameter"])
    return fab if fab > 0 else FAB_RATIO_STANDARD * wire_diameter_um(values)


def settings(values: Mapping[str, Value]) -> dict[str, float]:
    """Effective bond settings: every 0 replaced by the standard value, plus the FAB."""
    std = standard_settings(str(values["wire"]), str(values["bond_type"]), wire_diameter_um(values))
    out = {k: (float(values[k]) or std[k]) for k in _SETTINGS}
    out["fab_diameter"] = fab_diameter_um(values)
    return out


# --- rules (reasons lead with the key facts: a Modbus refusal keeps 64 characters) ----------


def _al_wedge(v: Mapping[str, Value]) -> str | None:
    if v["wire"] == "AL" and v["bond_type"] != "WEDGE":
        return "wire AL needs bond_type WEDGE (Al is wedge-bonded only)"
    return None


def _forming_gas(v: Mapping[str, Value]) -> str | None:
    gas = float(v["forming_gas"])
    if v["wire"] == "CU" and gas < FORMING_GAS_MIN_LMIN:
        return (
            f"wire CU needs forming_gas ≥ {FORMING_GAS_MIN_LMIN:g} L/min, got {gas:g} L/min"
            " (95 % N₂ / 5 % H₂ keeps the Cu ball from oxidising)"
        )
    return None


def _fab(v: Mapping[str, Value]) -> str | None:
    fab, d = float(v["fab_diameter"]), wire_diameter_um(v)
    if fab == 0:
        return None
    if v["bond_type"] == "WEDGE":
        return f"fab_diameter {fab:g} µm is for BALL_STITCH only: set 0 for WEDGE"
    lo, hi = FAB_RATIO_RANGE[0] * d, FAB_RATIO_RANGE[1] * d
    if not lo <= fab <= hi:
        return f"fab_diameter {fab:g} µm not in {lo:g}–{hi:g} µm (1.5–2.5 × wire {d:g} µm)"
    return None


def _pad_fit(v: Mapping[str, Value]) -> str | None:
    pad, d = float(v["pad_opening"]), wire_diameter_um(v)
    if v["bond_type"] == "WEDGE":
        need = WEDGE_PAD_RATIO * d
        if pad < need:
            return f"pad_opening {pad:g} µm < wedge {need:g} µm (1.3 × wire {d:g} µm)"
        return None
    fab = fab_diameter_um(v)
    if pad < fab:
        return f"pad_opening {pad:g} µm < free-air ball {fab:g} µm"
    return None


def _loop(v: Mapping[str, Value]) -> str | None:
    loop, span_um = float(v["loop_height"]), 1000.0 * float(v["span"])
    if loop > span_um:
        return f"loop_height {loop:g} µm > span {span_um:g} µm (a loop no taller than long)"
    return None


def _span(v: Mapping[str, Value]) -> str | None:
    span, d = float(v["span"]), wire_diameter_um(v)
    longest = SPAN_MAX_DIAMETERS * d / 1000.0
    if span > longest:
        return f"span {span:g} mm > {longest:g} mm (200 × wire {d:g} µm: sag and sweep)"
    return None


def _wires(v: Mapping[str, Value]) -> str | None:
    n = float(v["units"]) * float(v["wires_per_unit"])
    if n > MAX_WIRES_PER_JOB:
        return f"{n:.0f} wires > {MAX_WIRES_PER_JOB} per job (units × wires_per_unit)"
    return None


def _temp(v: Mapping[str, Value]) -> str | None:
    t, limit = float(v["bond_temp"]), float(v["temp_limit"])
    if t > limit:
        return f"bond_temp {t:g} °C > temp_limit {limit:g} °C (the work's thermal budget)"
    return None


def _standard_table() -> str:
    rows = [
        "| wire, bond type | 1st bond force, power, time | 2nd bond force, power, time |"
        " temperature window |",
        "|---|---|---|---|",
    ]
    for (wire, kind), s in STANDARD.items():
        rows.append(
            f"| {wire} {kind} | {s.bond_force:g} gf, {s.bond_power:g} mW, {s.bond_time:g} ms |"
            f" {s.stitch_force:g} gf, {s.stitch_power:g} mW, {s.stitch_time:g} ms |"
            f" {s.temp_low:g}–{s.temp_high:g} °C (nominal {s.temp:g}) |"
        )
    return "\n".join(rows)


_PARAMS = (
    Param("wire", choices=WIRES, setup="wire", doc="wire metal (must be the spool on the tool)"),
    Param("wire_size", choices=WIRE_SIZES, setup="wire_size",
          doc="wire diameter in µm (must be the spool on the tool)"),
    Param("bond_type", choices=BOND_TYPES, default="BALL_STITCH",
          doc="ball on the pad + stitch on the lead, or wedge + wedge (Al always wedge; wedge"
              " also gives the lowest loops)"),
    Param("pad_metal", choices=PAD_METALS, default="AL",
          doc="chip pad surface: Al, Ni/Au plated (002 PM), or bare Cu"),
    Param("lead_finish", choices=LEAD_FINISHES, default="NIAU",
          doc="second-bond surface: substrate finger or lead finish"),
    Param("units", "count", 1, 100_000, default=1.0, integer=True,
          doc="chips (units) bonded in the job: strip, boat or wafer"),
    Param("wires_per_unit", "count", 1, 2000, integer=True, doc="wires on each unit"),
    Param("span", "mm", 0.05, 8, default=1.0, doc="pad-to-lead distance (wire span)"),
    Param("loop_height", "µm", 50, 500, default=150.0, doc="loop height above the pad"),
    Param("pad_opening", "µm", 20, 300, default=80.0,
          doc="passivation (or pad-through-hole) opening over the bonding pad"),
    Param("fab_diameter", "µm", 0, 130, default=0.0,
          doc="free-air ball diameter; 0 = standard 1.8 × wire diameter (BALL_STITCH only)"),
    Param("bond_force", "gf", 0, 500, default=0.0,
          doc="1st bond force; 0 = standard for wire, size and bond type"),
    Param("bond_power", "mW", 0, 2000, default=0.0, doc="1st bond ultrasonic power; 0 = standard"),
    Param("bond_time", "ms", 0, 200, default=0.0, doc="1st bond ultrasonic time; 0 = standard"),
    Param("stitch_force", "gf", 0, 500, default=0.0, doc="2nd bond force; 0 = standard"),
    Param("stitch_power", "mW", 0, 2000, default=0.0,
          doc="2nd bond ultrasonic power; 0 = standard"),
    Param("stitch_time", "ms", 0, 200, default=0.0, doc="2nd bond ultrasonic time; 0 = standard"),
    Param("bond_temp", "°C", 25, 300, default=175.0, doc="heater block (bond site) temperature"),
    Param("temp_limit", "°C", 25, 300, default=300.0,
          doc="hottest the work may get (e.g. the thermal-enhance polymer of 001); the heater"
              " overshoots 3 % of (bond_temp − 25 °C) while it settles and interlocks (alarm"
              " HEATER_TEMP) if that passes temp_limit"),
    Param("forming_gas", "L/min", 0, 2, default=0.0,
          doc="95 % N₂ / 5 % H₂ at the EFO and bond site; Cu wire needs ≥ 0.3 L/min"),
    Param("nonstick_limit", "count", 0, 10_000, default=10.0, integer=True,
          doc="non-sticks on pad (or on lead) the bonder re-bonds by assist before it stops"),
)  # fmt: skip

_RESULTS = (
    Result("ball_diameter", "µm", "mean mashed ball diameter (WEDGE: first wedge width)"),
    Result("ball_height", "µm", "mean ball height (WEDGE: first wedge thickness)"),
    Result("stitch_width", "µm", "mean second-bond width"),
    Result("ball_shear", "gf", "mean first-bond shear force (JESD22-B116)"),
    Result("wire_pull", "gf", "mean wire pull force, hook at mid-span (MIL-STD-883 TM 2011)"),
    Result("loop_height", "µm", "mean measured loop height"),
    Result("nsop", "count", "non-sticks on pad (re-bonded by assist)", defect="non-stick on pad"),
    Result("nsol", "count", "non-sticks on lead (re-bonded by assist)"),
    Result("craters", "count", "pads cratered under the first bond"),
    Result("wires", "count", "wires bonded"),
    Result("bonds", "count", "touchdowns made: two per wire plus re-bonds"),
    Result("wire_used", "m", "wire taken from the spool"),
    Result("temp_measured", "°C", "bond-site temperature reached"),
    Result("duration", "min", "job time incl. non-stick assists"),
)

WIREBONDER = ToolInterface(
    kind="wirebonder",
    id_prefix="WB",
    qualification=Qualification(
        "wire_bond", {"wire": "AU", "wire_size": "D25", "wires_per_unit": "64", "units": "100"}
    ),
    consumable_alarms={"capillary": (1006, 1090), "wire_spool": (1007, 1091)},
    protocol="modbus",
    title="Wire bonder",
    vendor="FABLINE-SIM",
    model="LOOPER-1",
    doc=(
        "Bonds wires from chip pads to substrate fingers or leads: thermosonic ball-stitch"
        " (Au, Cu) or wedge-wedge (Al ultrasonic; Au, Cu thermosonic). One spool is loaded at"
        " a time (setup `wire`, `wire_size`); jobs for another wire are refused. Cu wire needs"
        " forming gas. Bond settings left at 0 take the tool's standard for the wire, size and"
        " bond type (table below, at 25 µm; force and power scale with (d/25 µm)²). Below"
        " 0.7 × standard force, power or time, or below the temperature window, non-sticks on"
        " pad (NSOP) and on lead (NSOL) rise; the bonder re-bonds them by assist and stops"
        " with an alarm when either count passes `nonstick_limit`. Above 1.5 × standard,"
        " craters (first bond) and short tails (second bond, stops the job) rise. Ball-stitch"
        " loops lower than the heat-affected zone above the ball (≈ 5 × wire diameter for"
        " Au) crack the neck (warning NECK_DAMAGE): use WEDGE for very low loops (002 cl.46)."
        " The numbers are engineering estimates after Harman, *Wire Bonding in"
        " Microelectronics* (2010), and Chauhan et al., *Copper Wire Bonding* (2014).\n\n"
        + _standard_table()
    ),
    operations=(
        Operation(
            "wire_bond",
            1,
            "Bond wires_per_unit wires on each of `units` chips, pad (1st bond) to lead"
            " (2nd bond), and report bond geometry, strength and non-sticks.",
            params=_PARAMS,
            results=_RESULTS,
            rules=(
                Rule("wire AL is wedge-bonded (bond_type WEDGE)", _al_wedge),
                Rule("wire CU needs forming_gas ≥ 0.3 L/min", _forming_gas),
                Rule(
                    "fab_diameter is 0 (standard) or 1.5–2.5 × the wire diameter, and 0 for WEDGE",
                    _fab,
                ),
                Rule(
                    "pad_opening ≥ the free-air ball (BALL_STITCH) or 1.3 × the wire diameter"
                    " (WEDGE)",
                    _pad_fit,
                ),
                Rule("loop_height ≤ span", _loop),
                Rule("span ≤ 200 × the wire diameter", _span),
                Rule("units × wires_per_unit ≤ 1 000 000", _wires),
                Rule("bond_temp ≤ temp_limit", _temp),
            ),
        ),
    ),
    alarms=(
        Alarm(1001, "NSOP", "non-stick on pad: NSOP count above nonstick_limit"),
        Alarm(1002, "NSOL", "non-stick on lead: NSOL count above nonstick_limit"),
        Alarm(1003, "SHORT_TAIL", "wire break / short tail after the second bond"),
        Alarm(1004, "EFO_FAIL", "EFO fail: free-air ball not formed (above the EFO's capacity)"),
        Alarm(1005, "HEATER_TEMP", "heater temperature above temp_limit (overshoot interlock)"),
        Alarm(1006, "CAPILLARY_LIFE", "capillary at its touchdown limit: replace it"),
        Alarm(1007, "WIRE_SPOOL_EMPTY", "wire spool empty: load a new spool"),
        Alarm(1008, "PR_FAIL", "pattern recognition: pad or lead not found"),
        Alarm(1080, "NECK_DAMAGE", "loop lower than the ball's heat-affected zone", warning=True),
        Alarm(1081, "CRATERING", "craters found under first bonds", warning=True),
        Alarm(1082, "BALL_OFF_PAD", "mashed ball wider than the pad opening", warning=True),
        Alarm(1083, "NONSTICKS_REBONDED", "non-sticks were re-bonded by assist", warning=True),
        Alarm(1090, "CAPILLARY_WARNING", "capillary above 90 % of its touchdowns", warning=True),
        Alarm(1091, "WIRE_SPOOL_LOW", "wire spool below 10 %", warning=True),
    ),
    consumables=(
        Consumable(
            "capillary",
            "count",
            2_000_000.0,
            "touchdowns on the capillary (or wedge tool) since it was changed; Cu counts 3×",
        ),
        Consumable("wire_spool", "m", 500.0, "wire left on the spool", supply=True),
    ),
    setup=(
        SetupField("wire", WIRES, multi=False, doc="metal of the loaded wire spool"),
        SetupField("wire_size", WIRE_SIZES, multi=False, doc="diameter of the loaded wire"),
    ),
    default_setup={"wire": ("AU",), "wire_size": ("D25",)},
)
