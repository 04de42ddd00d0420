"""Clean station (SCPI): plasma clean, flux clean and a moisture-bake oven.

What the other tools leave on a surface the next one needs clean and dry: plasma before bond,
underfill, mold and wire bond (organic film off, Cu oxide reduced, polymer surfaces
activated); a spray flux clean after every reflow with flux (ionic residue, flux under low
standoffs); a moisture bake where organic substrates, strips and molded work meet mold or
underfill (absorbed water boils into voids and delamination at the next hot step).
"""

from __future__ import annotations

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
)

GASES = ("AR", "O2", "AR_H2", "CF4_O2")
SURFACES = ("CU", "AL", "NIAU", "SOLDER", "SI", "POLYMER", "EMC", "ORGANIC")
FLUXES = ("WATER_SOLUBLE", "ROSIN", "NO_CLEAN")
CHEMISTRIES = ("SAPONIFIER", "SOLVENT", "DI_WATER")
BAKE_MATERIALS = ("ORGANIC", "EMC", "POLYIMIDE", "SI")

IONIC_LIMIT = 1.56  # µg/cm² NaCl equivalent (J-STD-001 ROSE limit)
MOISTURE_DRY_PCT = 0.05  # wt %: dry enough for mold, underfill and reflow
BAKE_MARGIN_C = 5.0  # the oven stays this far below the work's temp_limit


def _bake_limit(v: Mapping[str, Value]) -> str | None:
    temp, limit = float(v["temp"]), float(v["temp_limit"])
    if temp > limit - BAKE_MARGIN_C:
        return f"temp {temp:g} °C > temp_limit {limit:g} °C - {BAKE_MARGIN_C:g} °C margin"
    return None


def _o2_on_metal(v: Mapping[str, Value]) -> str | None:
    if v["gas"] in ("O2", "CF4_O2") and v["surface"] in ("SOLDER", "NIAU"):
        return f"gas {v['gas']} oxidises a {v['surface']} surface before joining: use AR or AR_H2"
    return None


_PIECES = Param(
    "work_pieces", "count", 1, 50, default=1.0, integer=True, doc="wafers, strips or panels"
)

CLEAN = ToolInterface(
    kind="clean",
    id_prefix="CLEAN",
    qualification=Qualification("plasma", {"gas": "AR", "surface": "CU", "time": "120 s"}),
    consumable_alarms={"electrode_hours": (1104, 1190), "wash_chemistry": (1105, 1191)},
    protocol="scpi",
    title="Clean station: plasma, flux clean and bake oven",
    vendor="FABLINE-SIM",
    model="PURE-3",
    doc=(
        "A batch plasma chamber, an inline spray cleaner and a convection bake oven."
        " `plasma` ablates the organic film on the loaded work at a rate ∝ RF power (O₂ and"
        " CF₄/O₂ fast, Ar and Ar/H₂ slow), leaving a water contact angle that falls from ~75°"
        " towards the clean surface's; O₂ grows oxide on Cu and Ar/H₂ reduces it; O₂ also"
        " etches polymer surfaces. `flux_clean` removes flux residue with time constant"
        " τ = τ_ref(flux, chemistry)·e^(E/R·(1/T − 1/T_ref))·√(300 kPa/P)·(1 + (50 µm/standoff)²):"
        " flux under a low standoff takes longest; it reports the ionic residue (ROSE, NaCl"
        " equivalent; J-STD-001 limit 1.56 µg/cm²). `bake` dries the work by Fickian"
        " desorption from a plate of thickness h, M/M₀ = Σ 8/((2n+1)²π²)·e^(−D(2n+1)²π²t/h²),"
        " with D Arrhenius per material; `temp_limit` carries the work's thermal budget."
        " Process warnings flag residue left, oxidised Cu, polymer loss, ionic residue and"
        " residual moisture without stopping the job."
    ),
    operations=(
        Operation(
            "plasma",
            1,
            "Plasma-clean a batch before bond, underfill, mold or wire bond.",
            params=(
                Param("gas", choices=GASES, setup="gases", doc="process gas (must be plumbed)"),
                Param(
                    "surface",
                    choices=SURFACES,
                    doc="what the plasma must clean: metal pads or traces (CU, AL, NIAU),"
                    " solder bump ends, silicon, polymer layers, mold compound, organic"
                    " substrate",
                ),
                Param("power", "W", 100, 1000, default=400.0, doc="RF power"),
                Param("time", "s", 10, 900, doc="plasma time"),
                Param("pressure", "mTorr", 50, 500, default=200.0, doc="chamber pressure"),
                Param(
                    "contamination",
                    "nm",
                    0,
                    50,
                    default=5.0,
                    doc="organic film on the work as loaded (handling, resist or flux residue)",
                ),
                Param(
                    "oxide_in",
                    "nm",
                    0,
                    50,
                    default=3.0,
                    doc="native oxide on a CU surface as loaded (grows with the queue time)",
                ),
                _PIECES,
            ),
            results=(
                Result("residue", "nm", "organic film left"),
                Result("contact_angle", "deg", "water contact angle after the clean"),
                Result("oxide", "nm", "Cu oxide after the clean (0 on other surfaces)"),
                Result("polymer_loss", "nm", "thickness etched off a polymer, EMC or organic"),
                Result("duration", "min", "pump-down, plasma and vent"),
            ),
            rules=(Rule("no O₂ plasma on solder or Ni/Au about to be joined", _o2_on_metal),),
            pieces=Pieces("wafer, strip, panel or unit", 50, "work_pieces"),
        ),
        Operation(
            "flux_clean",
            2,
            "Spray-clean flux residue after a reflow with flux (ionic residue by ROSE).",
            params=(
                Param("chemistry", choices=CHEMISTRIES, setup="chemistries", doc="wash chemistry"),
                Param("flux", choices=FLUXES, doc="the flux the reflow left"),
                Param("temp", "°C", 25, 75, default=60.0, doc="wash temperature"),
                Param("time", "min", 1, 30, doc="wash time"),
                Param("spray_pressure", "kPa", 100, 600, default=300.0, doc="spray pressure"),
                Param(
                    "standoff",
                    "µm",
                    5,
                    1000,
                    default=100.0,
                    doc="narrowest gap flux sits under (bump standoff, ball pitch less ball)",
                ),
                _PIECES,
            ),
            results=(
                Result("ionic", "µg/cm²", "ionic residue, NaCl equivalent (ROSE)"),
                Result("residue_under", "%", "share of the under-standoff flux left"),
                Result("chemistry_used", "L", "wash chemistry used"),
                Result("duration", "min", "load, wash, rinse and dry"),
            ),
            pieces=Pieces("wafer, strip, panel or unit", 50, "work_pieces"),
        ),
        Operation(
            "bake",
            3,
            "Moisture bake before mold, underfill or reflow (J-STD-033 style).",
            params=(
                Param("material", choices=BAKE_MATERIALS, doc="what holds the moisture"),
                Param(
                    "thickness",
                    "µm",
                    20,
                    3000,
                    doc="thickness the water diffuses out of (both faces)",
                ),
                Param(
                    "moisture_in",
                    "%",
                    0,
                    2,
                    default=0.3,
                    doc="absorbed moisture as loaded, weight %",
                ),
                Param("temp", "°C", 80, 150, default=125.0, doc="oven temperature"),
                Param("time", "h", 0.25, 48, doc="time at temperature"),
                Param("atmosphere", choices=("AIR", "N2"), default="N2"),
                Param(
                    "temp_limit",
                    "°C",
                    100,
                    300,
                    default=150.0,
                    doc="hottest the work may get; refused unless temp stays 5 °C below",
                ),
                _PIECES,
            ),
            results=(
                Result("moisture", "%", "moisture left, weight %"),
                Result("desorbed", "%", "share of the moisture driven out"),
                Result("temp_measured", "°C", "oven temperature during the hold"),
                Result("duration", "min", "ramp, hold and cool"),
            ),
            rules=(Rule("temp ≤ temp_limit − 5 °C (the work's thermal budget)", _bake_limit),),
            pieces=Pieces("wafer, strip, panel or unit", 50, "work_pieces"),
        ),
    ),
    alarms=(
        Alarm(1101, "RF_REFLECTED", "RF reflected power high: plasma does not strike"),
        Alarm(1102, "CHAMBER_PRESSURE", "plasma chamber pressure not reached"),
        Alarm(1103, "GAS_MFC", "process gas flow deviation > 5 %"),
        Alarm(1104, "ELECTRODE_WORN", "plasma electrode past its RF hours: replace it"),
        Alarm(1105, "CHEMISTRY_EMPTY", "wash chemistry empty: refill"),
        Alarm(1106, "OVEN_TEMP", "bake oven temperature off set point by more than ±3 °C"),
        Alarm(1180, "RESIDUE_HIGH", "organic residue above 1 nm after the plasma", warning=True),
        Alarm(1181, "CU_OXIDE_HIGH", "Cu oxide above 5 nm after the plasma", warning=True),
        Alarm(1182, "POLYMER_LOSS_HIGH", "plasma etched more than 0.5 µm of polymer", warning=True),
        Alarm(1183, "IONIC_HIGH", "ionic residue above 1.56 µg/cm² NaCl eq.", warning=True),
        Alarm(
            1184, "FLUX_UNDER", "more than 5 % of the flux under the standoff left", warning=True
        ),
        Alarm(1185, "MOISTURE_HIGH", "moisture above 0.05 wt % after the bake", warning=True),
        Alarm(1190, "ELECTRODE_WARNING", "electrode above 90 % of its RF hours", warning=True),
        Alarm(1191, "CHEMISTRY_LOW", "wash chemistry below 10 %", warning=True),
    ),
    consumables=(
        Consumable("electrode_hours", "h", 500.0, "plasma electrode RF hours"),
        Consumable("wash_chemistry", "L", 200.0, "wash chemistry left", supply=True),
    ),
    setup=(
        SetupField("gases", GASES, doc="process gases plumbed to the plasma chamber"),
        SetupField("chemistries", CHEMISTRIES, multi=False, doc="wash chemistry in the tank"),
    ),
    default_setup={"gases": ("AR", "O2", "AR_H2"), "chemistries": ("SAPONIFIER",)},
)
