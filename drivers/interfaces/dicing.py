"""Dicing saw (Modbus TCP): single and step cuts through Si, stacks, substrates and strips."""

from __future__ import annotations

from collections.abc import Mapping

from drivers.interface import (
    Alarm,
    Consumable,
    DieGrid,
    Operation,
    Param,
    Qualification,
    Result,
    Rule,
    SetupField,
    ToolInterface,
    Value,
)

BLADES = ("HUB_20", "HUB_30", "HUB_50", "RESIN_150", "METAL_200")
BLADE_THICKNESS_UM = {"HUB_20": 20.0, "HUB_30": 30.0, "HUB_50": 50.0, "RESIN_150": 150.0,
                      "METAL_200": 200.0}  # fmt: skip
MATERIALS = ("SI", "SI_STACK", "SUBSTRATE", "MOLDED", "GLASS")

EDGE_EXCLUSION_MM = 3.0  # no whole die within this distance of a round wafer's edge
TAPE_MIN_UM = 20.0  # the blade must reach at least this far into the dicing tape ...
TAPE_MAX_UM = 50.0  # ... and no further, or it cuts the tape through


def die_positions(
    shape: str, width_mm: float, length_mm: float, die_x: float, die_y: float
) -> list[tuple[int, int]]:
    """The die map the saw cuts: (column, row) of every whole die, column-major.

    The grid starts at the work piece's left/top edge. On a ROUND wafer a die counts when all
    four corners lie within the wafer radius less the edge exclusion; on a RECT panel or strip
    every whole pitch counts. The saw's `die_count` result is the length of this list."""
    if shape == "RECT":
        return [
            (i, j) for i in range(int(width_mm // die_x)) for j in range(int(length_mm // die_y))
        ]
    r = width_mm / 2.0
    usable2 = (r - EDGE_EXCLUSION_MM) ** 2
    out = []
    for i in range(int(width_mm // die_x)):
        x0, x1 = -r + i * die_x, -r + (i + 1) * die_x
        xx = max(x0 * x0, x1 * x1)
        for j in range(int(width_mm // die_y)):
            y0, y1 = -r + j * die_y, -r + (j + 1) * die_y
            if xx + max(y0 * y0, y1 * y1) <= usable2:
                out.append((i, j))
    return out


def _cut_depth(v: Mapping[str, Value]) -> str | None:
    stack, depth = float(v["stack_thickness"]), float(v["cut_depth"])
    lo, hi = stack + TAPE_MIN_UM, stack + TAPE_MAX_UM
    if not lo <= depth <= hi:
        return (
            f"cut_depth {depth:g} µm does not cut through the {stack:g} µm stack into the tape"
            f" (allowed {lo:g}–{hi:g} µm: stack + {TAPE_MIN_UM:g}–{TAPE_MAX_UM:g} µm)"
        )
    return None


def _step_depth(v: Mapping[str, Value]) -> str | None:
    z1, stack = float(v["z1_depth"]), float(v["stack_thickness"])
    if v["mode"] == "STEP" and not 0 < z1 < stack:
        return f"step cut needs 0 < z1_depth < stack_thickness ({stack:g} µm), got {z1:g} µm"
    if v["mode"] == "SINGLE" and z1 != 0:
        return "z1_depth is only used with mode STEP"
    return None


DICING = ToolInterface(
    kind="dicing",
    id_prefix="DICE",
    qualification=Qualification(
        "dice",
        {
            "blade": "HUB_30",
            "material": "SI",
            "stack_thickness": "100 µm",
            "cut_depth": "130 µm",
            "feed": "50 mm/s",
            "die_x": "5 mm",
            "die_y": "5 mm",
            "work_width": "300 mm",
        },
    ),
    consumable_alarms={"blade_wear": (405, 490)},
    protocol="modbus",
    title="Dicing saw",
    vendor="FABLINE-SIM",
    model="KERF-6000",
    doc=(
        "Cuts a tape-mounted wafer, stack, panel or strip along its streets. In STEP mode the"
        " Z1 spindle cuts `z1_depth` first and Z2 cuts through. The cut depth is checked"
        " against the stack thickness: it must reach 20–50 µm into the tape."
    ),
    operations=(
        Operation(
            "dice",
            1,
            "Cut every street of the work piece into dies of die_x × die_y.",
            params=(
                Param("mode", choices=("SINGLE", "STEP"), default="SINGLE"),
                Param("blade", choices=BLADES, setup="blades", doc="through-cut (Z2) blade"),
                Param("material", choices=MATERIALS, doc="what is being cut"),
                Param("stack_thickness", "µm", 20, 3000, doc="total thickness of the work piece"),
                Param("cut_depth", "µm", 40, 3050, doc="blade depth from the top surface"),
                Param("z1_depth", "µm", 0, 3000, default=0.0, doc="first-pass depth (STEP)"),
                Param("spindle", "krpm", 15, 45, default=30.0, doc="spindle speed"),
                Param("feed", "mm/s", 1, 150, doc="table feed"),
                Param("coolant", "L/min", 0.5, 3, default=1.5, doc="DI water, CO₂-doped"),
                Param("die_x", "mm", 0.3, 60, doc="street pitch in x (die width)"),
                Param("die_y", "mm", 0.3, 60, doc="street pitch in y (die height)"),
                Param("work_shape", choices=("ROUND", "RECT"), default="ROUND"),
                Param("work_width", "mm", 10, 320, doc="wafer diameter, or panel/strip width"),
                Param("work_length", "mm", 0, 320, default=0.0, doc="panel/strip length (RECT)"),
            ),
            results=(
                Result("kerf_width", "µm", "mean kerf width"),
                Result("kerf_offset", "µm", "largest kerf offset from street centre"),
                Result("chipping_front", "µm", "largest front-side chip"),
                Result("chipping_back", "µm", "largest back-side chip"),
                Result("blade_wear", "µm", "blade radius worn by this job"),
                Result("spindle_current", "A", "peak spindle current"),
                Result("die_count", "count", "whole dies cut out"),
                Result("cut_length", "mm", "total length cut"),
                Result("duration", "min", "cutting time"),
            ),
            rules=(
                Rule("cut depth reaches 20–50 µm into the tape", _cut_depth),
                Rule("STEP mode needs 0 < z1_depth < stack_thickness", _step_depth),
                Rule(
                    "RECT work needs work_length",
                    lambda v: (
                        "work_shape RECT needs work_length ≥ 10 mm"
                        if v["work_shape"] == "RECT" and float(v["work_length"]) < 10
                        else None
                    ),
                ),
            ),
            die_grid=DieGrid(),  # each die position becomes a package
        ),
    ),
    alarms=(
        Alarm(401, "BLADE_BROKEN", "blade broken (breakage detector)"),
        Alarm(402, "SPINDLE_OVERLOAD", "spindle current overload"),
        Alarm(403, "COOLANT_LOW", "coolant flow low"),
        Alarm(404, "KERF_OFF_STREET", "kerf off street centre by more than ±5 µm"),
        Alarm(405, "EXPOSURE_SHORT", "blade exposure shorter than the cut depth"),
        Alarm(406, "HEIGHT_SETUP", "blade height set-up failed"),
        Alarm(407, "CHUCK_VACUUM", "chuck table vacuum low"),
        Alarm(490, "BLADE_WEAR_WARNING", "blade wear above 90 % of its limit", warning=True),
    ),
    consumables=(Consumable("blade_wear", "µm", 800.0, "blade radius lost since blade change"),),
    setup=(SetupField("blades", BLADES, doc="blades mounted on the spindles"),),
    default_setup={"blades": ("HUB_30", "HUB_50", "RESIN_150", "METAL_200")},
)
