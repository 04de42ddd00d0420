"""Solder ball mounter + reflow oven (Modbus TCP): ball placement, reflow and wafer bumping."""

from __future__ import annotations

import math
from collections.abc import Mapping

from drivers.interface import (
    Alarm,
    Consumable,
    Operation,
    Param,
    Pieces,
    Qualification,
    Result,
    Rule,
    SetupField,
    ToolInterface,
    Value,
    window,
)

# Claim 3 of 003 names tin, lead or tin-lead bumps: SN100, SNPB63, and the high-lead C4 alloy
# PB95SN5 (solidus 308 °C), which reflows at 340–360 °C in the oven's high-temperature
# (N₂/H₂) profile; what the work survives is the job's `peak_limit`.
ALLOYS = ("SNPB63", "SAC305", "SN100", "PB95SN5")
LIQUIDUS_C = {"SNPB63": 183.0, "SAC305": 217.0, "SN100": 232.0, "PB95SN5": 312.0}
"""Melting point used for time above liquidus and the non-wet threshold (SAC305: 217 °C, the
solidus the J-STD profile counts TAL from)."""
PEAK_WINDOW_C = {
    "SNPB63": (205.0, 225.0),
    "SAC305": (235.0, 250.0),
    "SN100": (250.0, 255.0),
    "PB95SN5": (340.0, 360.0),
}
"""Allowed peak per alloy: SnPb and SAC from J-STD-020 practice; SN100 is an estimate
(liquidus + 15 °C up to 260 °C less the interlock margin); PB95SN5 the C4 reflow."""

BALL_SIZES = ("D60", "D100", "D150", "D200", "D250", "D300", "D350", "D400", "D450", "D500",
              "D600", "D760")  # fmt: skip
BALL_DIAMETER_UM = {s: float(s[1:]) for s in BALL_SIZES}
CARRIERS = ("WAFER", "STRIP", "BOAT")

PEAK_HARD_LIMIT_C = 370.0  # the oven's high-temperature profile (C4 reflow)
PACKAGE_LIMIT_C = 260.0  # J-STD-020: what a package or organic substrate takes (default limit)
WARP_HOLD_UM = 1000.0  # the carrier's hold-down flattens a work piece bowed up to this
PEAK_MARGIN_C = 5.0  # peak_limit must sit this far above the peak setpoint
PLACEMENT_CLEARANCE_UM = 50.0  # pitch ≥ ball + 2 × the ±25 µm placement window
PAD_RATIO = (0.4, 1.0)  # wettable land diameter as a fraction of the ball diameter
HOLE_VOLUME_MAX = 0.6  # a hole may take at most this fraction of the ball's volume


def ball_volume_um3(d_um: float) -> float:
    return math.pi * d_um**3 / 6.0


def hole_volume_um3(hole_diameter_um: float, hole_depth_um: float) -> float:
    """Volume of a cylindrical bump-through-hole the solder fills before forming its cap."""
    return math.pi * (hole_diameter_um / 2.0) ** 2 * hole_depth_um


def _d(v: Mapping[str, Value]) -> float:
    return BALL_DIAMETER_UM[str(v["ball_size"])]


def _flux(v: Mapping[str, Value]) -> str | None:
    d, t = _d(v), float(v["flux_thickness"])
    lo, hi = d / 3.0, d / 2.0
    if not lo - 1e-9 <= t <= hi + 1e-9:
        return f"flux_thickness {t:g} µm not in {lo:.4g}–{hi:.4g} µm (1/3–1/2 of D {d:g} µm)"
    return None


def _pad(v: Mapping[str, Value]) -> str | None:
    d, pad = _d(v), float(v["pad_diameter"])
    lo, hi = PAD_RATIO[0] * d, PAD_RATIO[1] * d
    if not lo <= pad <= hi:
        return f"pad_diameter {pad:g} µm not in {lo:g}–{hi:g} µm (40–100 % of D {d:g} µm)"
    return None


def _hole(v: Mapping[str, Value]) -> str | None:
    hd, depth, pad = float(v["hole_diameter"]), float(v["hole_depth"]), float(v["pad_diameter"])
    if (hd > 0) != (depth > 0):
        return f"hole_diameter {hd:g} µm and hole_depth {depth:g} µm: set both or neither"
    if hd > pad:
        return f"hole_diameter {hd:g} µm > pad_diameter {pad:g} µm"
    share = hole_volume_um3(hd, depth) / ball_volume_um3(_d(v))
    if share > HOLE_VOLUME_MAX:
        return f"hole takes {share:.0%} of the ball volume (max {HOLE_VOLUME_MAX:.0%})"
    return None


def _pitch(v: Mapping[str, Value]) -> str | None:
    d, pitch = _d(v), float(v["pitch"])
    if pitch < d + PLACEMENT_CLEARANCE_UM:
        return (
            f"pitch {pitch:g} µm < {d + PLACEMENT_CLEARANCE_UM:g} µm"
            f" (ball {d:g} µm + {PLACEMENT_CLEARANCE_UM:g} µm clearance)"
        )
    return None


def _warp(v: Mapping[str, Value]) -> str | None:
    w = float(v["warpage"])
    if w > WARP_HOLD_UM:
        return (
            f"warpage {w:g} µm > {WARP_HOLD_UM:g} µm the carrier can hold flat: the balls"
            " would land off their pads"
        )
    return None


def _peak_limit(v: Mapping[str, Value]) -> str | None:
    peak, limit = float(v["peak_temp"]), float(v["peak_limit"])
    if peak > limit - PEAK_MARGIN_C:
        return f"peak_temp {peak:g} °C > peak_limit {limit:g} °C - {PEAK_MARGIN_C:g} °C margin"
    return None


_BALL = (
    Param("alloy", choices=ALLOYS, setup="alloy", doc="ball alloy (must be the loaded one)"),
    Param("ball_size", choices=BALL_SIZES, setup="ball_size",
          doc="nominal ball diameter in µm (must be the loaded one)"),
)  # fmt: skip
_REFLOW_BALL = (
    Param("alloy", choices=ALLOYS, doc="alloy of the placed balls (sets the profile)"),
    Param("ball_size", choices=BALL_SIZES, doc="nominal diameter of the placed balls, µm"),
)
_CARRIER = Param("carrier", choices=CARRIERS, doc="wafer, substrate strip, or boat of units")
_WORK = (
    Param("ball_count", "count", 1, 1_000_000, integer=True, doc="ball sites per work piece"),
    Param("work_pieces", "count", 1, 50, default=1.0, integer=True,
          doc="wafers, strips or boats in the job"),
    Param("pitch", "µm", 80, 2000, doc="smallest ball pitch"),
    Param("pad_diameter", "µm", 20, 800,
          doc="wettable land the ball sits on (for a bump-through-hole: its top opening)"),
    Param("hole_diameter", "µm", 0, 800, default=0.0,
          doc="bump-through-hole in a protective layer, filled by the solder (002); 0 = none"),
    Param("hole_depth", "µm", 0, 200, default=0.0, doc="depth of that hole"),
    Param("warpage", "µm", 0, 5000, default=0.0,
          doc="incoming warpage (peak to valley, the last mold or bond's measurement); the"
          " carrier holds down at most 1000 µm"),
)  # fmt: skip
_PLACE = (
    Param("flux_thickness", "µm", 10, 400, doc="flux print thickness, 1/3–1/2 of the ball"),
    Param("missing_limit", "count", 0, 10_000, default=10.0, integer=True,
          doc="missing balls per work piece the AOI accepts before it stops the job"),
)  # fmt: skip
_PROFILE = (
    Param("peak_temp", "°C", 180, PEAK_HARD_LIMIT_C, doc="peak part temperature"),
    Param("peak_limit", "°C", 150, PEAK_HARD_LIMIT_C, default=PACKAGE_LIMIT_C,
          doc="hottest the work may get (its thermal budget; 260 °C for a package or an"
          " organic substrate); the oven interlocks above it"),
    Param("tal", "s", 30, 150, default=75.0,
          doc="time above liquidus (J-STD: 60–90 s); short TAL risks non-wets"),
    Param("o2", "ppm", 10, 1000, default=100.0, doc="N₂ tunnel O₂ set point"),
)  # fmt: skip

_GEOMETRY_RULES = (
    Rule("pad_diameter is 40–100 % of the ball diameter", _pad),
    Rule(
        "a bump-through-hole needs both diameter and depth, fits inside the pad and takes at"
        " most 60 % of the ball volume",
        _hole,
    ),
    Rule("pitch ≥ ball diameter + 50 µm (2 × the ±25 µm placement window)", _pitch),
    Rule(f"warpage ≤ {WARP_HOLD_UM:g} µm (the carrier's hold-down)", _warp),
)
_FLUX_RULE = Rule("flux_thickness is 1/3–1/2 of the ball diameter", _flux)
_PROFILE_RULES = (
    Rule(
        "peak_temp inside the alloy's window: SNPB63 205–225 °C, SAC305 235–250 °C,"
        " SN100 250–255 °C, PB95SN5 340–360 °C",
        window("alloy", "peak_temp", PEAK_WINDOW_C, "°C"),
    ),
    Rule("peak_temp ≤ peak_limit − 5 °C", _peak_limit),
)

_PLACE_RESULTS = (
    Result("placed", "count", "ball sites holding a ball (sites − missing)"),
    Result("missing", "count", "empty ball sites found by the AOI", defect="missing ball"),
    Result("extra", "count", "extra (double) balls found by the AOI"),
    Result("offset_max", "µm", "largest placement offset found by the AOI"),
    Result("flux_measured", "µm", "printed flux thickness"),
    Result("flux_used", "mL", "flux used by this job"),
    Result("balls_used", "count", "balls taken from the supply (sites + extras)"),
)
_REFLOW_RESULTS = (
    Result("ball_height", "µm", "mean bump height above the surface (volume model)"),
    Result("bump_width", "µm", "mean largest bump diameter after reflow"),
    Result("coplanarity", "µm", "range of bump tops incl. warpage, worst work piece"),
    Result("voids", "%", "mean void area in the bumps (X-ray)"),
    Result("shear", "gf", "mean ball shear force"),
    Result("imc", "µm", "intermetallic thickness at the pad"),
    Result("nonwet", "count", "bumps that did not wet their pad", defect="non-wet bump"),
    Result("bridged", "count", "neighbour pairs bridged by solder", defect="bridged bumps"),
    Result("peak_measured", "°C", "peak part temperature reached"),
    Result("tal_measured", "s", "time above liquidus reached"),
    Result("o2_measured", "ppm", "O₂ in the reflow tunnel"),
)
_DURATION = Result("duration", "min", "job time")

# A wafer-bump qualification with whatever balls are loaded: (pitch, pad, flux) in µm by ball
# size, and a peak inside each alloy's reflow window
_QUAL_GEOMETRY = {"D150": ("250", "120", "60"), "D300": ("500", "250", "120")}
_QUAL_PEAK = {"SAC305": "245 °C", "SNPB63": "215 °C", "SN100": "252 °C"}


def _qualify_with_loaded_balls(setup: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    alloys, sizes = setup.get("alloy", ()), setup.get("ball_size", ())
    if not alloys or not sizes:
        return {}
    alloy, size = alloys[0], sizes[0]
    pitch, pad, flux = _QUAL_GEOMETRY.get(size, _QUAL_GEOMETRY["D300"])
    return {
        "alloy": alloy,
        "ball_size": size,
        "pitch": f"{pitch} µm",
        "pad_diameter": f"{pad} µm",
        "flux_thickness": f"{flux} µm",
        "peak_temp": _QUAL_PEAK.get(alloy, "245 °C"),
    }


BALL = ToolInterface(
    kind="ball",
    id_prefix="BALL",
    qualification=Qualification(
        "wafer_bump",
        {
            "alloy": "SAC305",
            "ball_size": "D300",
            "ball_count": "5000",
            "pitch": "500 µm",
            "pad_diameter": "250 µm",
            "flux_thickness": "120 µm",
            "peak_temp": "245 °C",
        },
        fit=_qualify_with_loaded_balls,
    ),
    consumable_alarms={"ball_supply": (501, 590), "flux": (502, 591), "mask_cycles": (503, 592)},
    protocol="modbus",
    title="Solder ball mounter and reflow",
    vendor="FABLINE-SIM",
    model="SPHERA-760",
    doc=(
        "Prints flux through a stencil, mounts solder balls through a ball mask onto the pads"
        " of wafers, substrate strips or boats of units, inspects them (AOI), and reflows them"
        " in an N₂ convection oven. One alloy and one ball size are loaded at a time (setup"
        " `alloy`, `ball_size`); placing jobs for other balls are refused. `reflow` alone does"
        " not need the loaded balls. The bump height follows from the ball volume: a ball of"
        " diameter D on a land of radius a, over a filled hole of volume V_hole, forms a cap of"
        " height h with πD³/6 − V_hole = πh(3a² + h²)/6. `peak_limit` carries the work's"
        " thermal budget (e.g. SnPb bumps already inside the mold compound): the job is"
        " refused unless the peak stays 5 °C below it, and the oven interlocks above it."
    ),
    operations=(
        Operation(
            "ball_place",
            1,
            "Print flux and mount one ball on every site of each work piece, then inspect.",
            params=(*_BALL, _CARRIER, *_WORK, *_PLACE),
            results=(*_PLACE_RESULTS, _DURATION),
            rules=(_FLUX_RULE, *_GEOMETRY_RULES),
            pieces=Pieces("wafer, strip, or unit in a boat", 50, "work_pieces"),
        ),
        Operation(
            "reflow",
            2,
            "Reflow placed balls or printed solder into bumps and measure them.",
            params=(*_REFLOW_BALL, _CARRIER, *_WORK, *_PROFILE),
            results=(*_REFLOW_RESULTS, _DURATION),
            rules=(*_GEOMETRY_RULES, *_PROFILE_RULES),
            pieces=Pieces("wafer, strip, or unit in a boat", 50, "work_pieces"),
        ),
        Operation(
            "wafer_bump",
            3,
            "Wafer bumping: flux print, ball mount, AOI and reflow of each wafer in one job.",
            params=(*_BALL, *_WORK, *_PLACE, *_PROFILE),
            results=(*_PLACE_RESULTS, *_REFLOW_RESULTS, _DURATION),
            rules=(_FLUX_RULE, *_GEOMETRY_RULES, *_PROFILE_RULES),
            pieces=Pieces("wafer, strip, or unit in a boat", 50, "work_pieces"),
        ),
    ),
    alarms=(
        Alarm(501, "BALL_SUPPLY_EMPTY", "ball supply empty: refill the ball hopper"),
        Alarm(502, "FLUX_LEVEL", "flux reservoir empty"),
        Alarm(503, "MASK_CLOG", "ball mask clogged: clean it (prints since clean at the limit)"),
        Alarm(504, "AOI_MISSING_BALL", "AOI: missing balls above missing_limit on a work piece"),
        Alarm(505, "PLACEMENT_OFFSET", "AOI: ball placement offset beyond ±25 µm"),
        Alarm(506, "ZONE_TEMP", "reflow zone temperature off set point by more than ±5 °C"),
        Alarm(507, "O2_HIGH", "O₂ in the reflow tunnel above 1000 ppm"),
        Alarm(508, "PEAK_LIMIT", "peak-limit interlock: part temperature above peak_limit"),
        Alarm(509, "TRANSFER_FAULT", "carrier transfer fault (conveyor jam)"),
        Alarm(590, "BALL_SUPPLY_LOW", "ball supply below 10 %", warning=True),
        Alarm(591, "FLUX_LOW", "flux reservoir below 10 %", warning=True),
        Alarm(
            592, "MASK_CLEAN_DUE", "ball mask at 90 % of its prints between cleans", warning=True
        ),
    ),
    consumables=(
        Consumable("ball_supply", "count", 5_000_000.0, "balls left in the hopper", supply=True),
        Consumable("flux", "mL", 500.0, "flux left in the reservoir", supply=True),
        Consumable("mask_cycles", "count", 2000.0, "ball-mask prints since the last clean"),
    ),
    setup=(
        SetupField("alloy", ALLOYS, multi=False, doc="alloy of the balls in the hopper"),
        SetupField("ball_size", BALL_SIZES, multi=False, doc="ball diameter in the hopper"),
    ),
    default_setup={"alloy": ("SAC305",), "ball_size": ("D300",)},
)
