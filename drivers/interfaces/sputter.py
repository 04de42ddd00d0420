"""DC magnetron sputter (SCPI): Cu, Al, Al alloy and Ti/TiW films; barrier + Cu seed stacks."""

from __future__ import annotations

from drivers.interface import (
    Alarm,
    Consumable,
    Operation,
    Param,
    Qualification,
    Result,
    SetupField,
    ToolInterface,
)

TARGETS = ("CU", "AL", "ALCU", "ALSI", "TI", "TIW", "NIV", "AU")
BARRIERS = ("TI", "TIW")

_PROCESS = (
    Param("power", "kW", 1, 20, doc="DC cathode power"),
    Param("pressure", "mTorr", 2, 10, default=4.0, doc="Ar working pressure"),
    Param("chuck_temp", "°C", 25, 200, default=25.0, doc="wafer chuck temperature"),
)

_FILM_RESULTS = (
    Result("thickness", "nm", "film thickness (centre, by rate × time)"),
    Result("wiw", "%", "within-wafer non-uniformity, 1σ"),
    Result("sheet_resistance", "mΩ/sq", "four-point-probe sheet resistance"),
    Result("stress", "MPa", "film stress (+ tensile)"),
    Result("rate", "nm/min", "deposition rate achieved"),
    Result("arc_count", "count", "arcs during the deposition"),
    Result("energy", "kWh", "cathode energy used by this job"),
    Result("duration", "min", "deposition time"),
)

SPUTTER = ToolInterface(
    kind="sputter",
    id_prefix="SPUT",
    qualification=Qualification(
        "seed_stack",
        {
            "barrier": "TI",
            "barrier_thickness": "100 nm",
            "seed_thickness": "300 nm",
            "power": "6 kW",
        },
    ),
    consumable_alarms={f"target_{t.lower()}": (104, 190) for t in TARGETS},
    protocol="scpi",
    title="DC magnetron sputter",
    vendor="FABLINE-SIM",
    model="MAGNA-300",
    doc=(
        "Deposits one film (`deposit`) or a barrier + Cu seed stack in one vacuum cycle"
        " (`seed_stack`). The tool turns the thickness target into a deposition time with its"
        " calibrated rate; the measured thickness drifts as the target erodes."
    ),
    operations=(
        Operation(
            "deposit",
            1,
            "Deposit one film from an installed target to a thickness target.",
            params=(
                Param("target", choices=TARGETS, setup="targets", doc="target material"),
                Param("thickness", "nm", 10, 10000, doc="film thickness target"),
                *_PROCESS,
            ),
            results=_FILM_RESULTS,
        ),
        Operation(
            "seed_stack",
            2,
            "Barrier (Ti or TiW) then Cu seed without breaking vacuum.",
            params=(
                Param("barrier", choices=BARRIERS, setup="targets", doc="barrier target"),
                Param("barrier_thickness", "nm", 20, 300, default=100.0),
                Param("seed_thickness", "nm", 100, 1000, doc="Cu seed thickness target"),
                *_PROCESS,
            ),
            results=(
                Result("barrier_measured", "nm", "barrier thickness"),
                *_FILM_RESULTS,
            ),
        ),
    ),
    alarms=(
        Alarm(101, "BASE_PRESSURE", "base pressure not reached / leak-up test failed"),
        Alarm(102, "AR_MFC", "Ar mass-flow deviation > 5 %"),
        Alarm(103, "ARCING", "arc rate above limit"),
        Alarm(104, "TARGET_LIFE", "target life exceeded"),
        Alarm(105, "COOLING_WATER", "cooling water flow low"),
        Alarm(106, "WAFER_OVERTEMP", "wafer over temperature"),
        Alarm(107, "SHUTTER", "shutter fault"),
        Alarm(190, "TARGET_LIFE_WARNING", "target life above 90 %", warning=True),
    ),
    consumables=tuple(
        Consumable(f"target_{t.lower()}", "kWh", 2000.0, f"{t} target energy used") for t in TARGETS
    ),
    setup=(SetupField("targets", TARGETS, doc="targets installed on the cathodes"),),
    default_setup={"targets": ("CU", "AL", "ALCU", "TI", "TIW")},
)
