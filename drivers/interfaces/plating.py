"""Wafer plating tool (SCPI): electrolytic Cu/Ni/Au, electroless Ni(P)/Cu, immersion Au, and the
zincate and Pd pre-treatments that electroless plating on Al and Cu pads or dielectric needs."""

from __future__ import annotations

from collections.abc import Mapping

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

ELECTROLYTIC = ("CU_ACID", "NI_SULFAMATE", "AU_ELECTROLYTIC")
ELECTROLESS = ("EN_NI", "EL_CU")
BATHS = (*ELECTROLYTIC, *ELECTROLESS, "IMM_AU", "ZINCATE", "PD_ACTIVATOR")
FEATURES = ("BLANKET", "RDL", "BUMP", "TSV", "TSV_RDL")
TSV_FEATURES = ("TSV", "TSV_RDL")

# Published process windows (process-reference.md §2 PLAT).
CURRENT_WINDOW = {"CU_ACID": (1.0, 30.0), "NI_SULFAMATE": (10.0, 50.0),
                  "AU_ELECTROLYTIC": (2.0, 8.0)}  # fmt: skip  # mA/cm² on the plated area
TEMP_WINDOW = {"CU_ACID": (20.0, 30.0), "NI_SULFAMATE": (50.0, 60.0),
               "AU_ELECTROLYTIC": (40.0, 65.0), "EN_NI": (80.0, 90.0),
               "EL_CU": (35.0, 70.0)}  # fmt: skip  # °C
PH_WINDOW = {"EN_NI": (4.5, 5.0), "EL_CU": (12.0, 13.0)}
# What the tank runs at when a job leaves bath_temp / ph at 0.
STANDARD_TEMP = {"CU_ACID": 25.0, "NI_SULFAMATE": 55.0, "AU_ELECTROLYTIC": 50.0, "EN_NI": 85.0,
                 "EL_CU": 55.0}  # fmt: skip
STANDARD_PH = {"EN_NI": 4.8, "EL_CU": 12.5}

TANK_STANDARD = 0.0  # bath_temp / ph value meaning "the tank's standard setpoint"


def _window(windows: Mapping[str, tuple[float, float]], unit: str) -> str:
    return ", ".join(f"{k} {lo:g}–{hi:g}{unit}" for k, (lo, hi) in windows.items())


def _in_window(
    name: str,
    unit: str,
    windows: Mapping[str, tuple[float, float]],
    v: Mapping[str, Value],
    *,
    standard_ok: bool = True,
) -> str | None:
    """Reason `v[name]` is outside the window of the job's chemistry (0 = tank standard)."""
    chem, value = str(v["chemistry"]), float(v[name])
    if standard_ok and value == TANK_STANDARD:
        return None
    lo, hi = windows[chem]
    if not lo <= value <= hi:
        shown = f"{value:g}{unit}"
        return f"{name} {shown} is outside the {chem} window {lo:g}–{hi:g}{unit}"
    return None


def _tsv_geometry(v: Mapping[str, Value]) -> str | None:
    feature, ar = str(v["feature"]), float(v["aspect_ratio"])
    if feature in TSV_FEATURES:
        if v["chemistry"] != "CU_ACID":
            return f"feature {feature} (via fill) needs chemistry CU_ACID, got {v['chemistry']}"
        if ar <= 0:
            return f"feature {feature} needs the via aspect_ratio (depth / diameter) > 0"
    elif ar != 0:
        return f"aspect_ratio is only used with TSV features ({', '.join(TSV_FEATURES)})"
    return None


def _temp_doc(chems: tuple[str, ...]) -> str:
    windows = "; ".join(f"{c} {TEMP_WINDOW[c][0]:g}–{TEMP_WINDOW[c][1]:g}" for c in chems)
    standard = ", ".join(f"{c} {STANDARD_TEMP[c]:g}" for c in chems)
    return f"bath temperature within the chemistry's window ({windows} °C); 0 = the tank's" + (
        f" standard setpoint ({standard} °C)"
    )


def _area(open_area_doc: str) -> tuple[Param, Param]:
    return (
        Param("open_area", "%", 0.1, 100, default=100.0, doc=open_area_doc),
        Param("wafer_diameter", "mm", 100, 300, default=300.0, doc="wafer diameter"),
    )


_TEMP_RESULT = Result("bath_temp", "°C", "bath temperature measured during the job")

PLATING = ToolInterface(
    kind="plating",
    id_prefix="PLAT",
    qualification=Qualification(
        "electroplate",
        {
            "chemistry": "CU_ACID",
            "thickness": "5 µm",
            "current_density": "20 mA/cm²",
            "feature": "RDL",
            "open_area": "30 %",
        },
    ),
    consumable_alarms={
        **{
            b: (206, 290)
            for b in (
                "bath_cu_acid",
                "bath_ni_sulfamate",
                "bath_au_electrolytic",
                "bath_imm_au",
                "bath_zincate",
                "bath_pd_activator",
            )
        },
        "bath_en_ni": (207, 291),  # metal turnovers, not charge
        "bath_el_cu": (207, 291),
    },
    protocol="scpi",
    title="Wafer plating (electrolytic, electroless, immersion)",
    vendor="FABLINE-SIM",
    model="ELECTRA-300",
    doc=(
        "A multi-tank wafer plater. `electroplate` deposits Cu, Ni or Au on a seed: the tool"
        " turns the thickness target into a plating time with Faraday's law and its calibrated"
        " current efficiency, and sets the rectifier to current_density on the plated area"
        " (open_area of the wafer). Feature `TSV_RDL` fills the through-electrodes and plates"
        " the re-wiring in one step (Cu only). `electroless` deposits Ni(P) (ENIG/ENEPIG"
        " under-layer on pads) or Cu (hole walls, seed on dielectric) without current, at an"
        " Arrhenius rate; `immersion` puts a self-limiting Au layer on Ni. Al pads need"
        " `zincate` before electroless Ni; Cu pads and dielectric need `activate` (Pd) first."
        " bath_temp and ph left at 0 run at the tank's standard setpoint."
    ),
    operations=(
        Operation(
            "electroplate",
            1,
            "Electrolytic plating of Cu, Ni or Au to a thickness target.",
            params=(
                Param("chemistry", choices=ELECTROLYTIC, setup="baths", doc="plating bath"),
                Param("thickness", "µm", 0.05, 100, doc="thickness target on the plated area"),
                Param(
                    "current_density",
                    "mA/cm²",
                    1,
                    50,
                    doc="current density on the plated area (CU_ACID 1–30: TSV 1–10 for"
                    " bottom-up fill, RDL 10–30; NI_SULFAMATE 10–50; AU_ELECTROLYTIC 2–8)",
                ),
                Param("bath_temp", "°C", 0, 65, default=TANK_STANDARD, doc=_temp_doc(ELECTROLYTIC)),
                Param(
                    "feature",
                    choices=FEATURES,
                    default="BLANKET",
                    doc="what is plated; TSV_RDL = through-electrodes and re-wiring together",
                ),
                Param(
                    "aspect_ratio",
                    "",
                    0,
                    30,
                    default=0.0,
                    doc="via depth / diameter, TSV features only",
                ),
                *_area(
                    "plated (resist-open) fraction of the wafer area; the rectifier current is"
                    " current_density × wafer area × open_area"
                ),
            ),
            results=(
                Result("thickness", "µm", "thickness at wafer centre (XRF)"),
                Result("wiw", "%", "within-wafer non-uniformity, 1σ"),
                Result("sheet_resistance", "mΩ/sq", "four-point-probe sheet resistance"),
                Result("stress", "MPa", "film stress (+ tensile)"),
                Result("rate", "µm/min", "plating rate achieved"),
                Result("efficiency", "%", "cathode current efficiency achieved"),
                Result("current", "A", "rectifier current"),
                Result("charge", "Ah", "charge passed (bath ampere-hours used by this job)"),
                Result("void_index", "", "J·AR/(c·i_L): above 1 the via fill is expected to void"),
                Result("via_voids", "count", "voided vias among 1000 inspected by X-ray"),
                _TEMP_RESULT,
                Result("duration", "min", "plating time"),
            ),
            rules=(
                Rule(
                    "current_density within the chemistry's window ("
                    + _window(CURRENT_WINDOW, " mA/cm²")
                    + ")",
                    lambda v: _in_window(
                        "current_density", " mA/cm²", CURRENT_WINDOW, v, standard_ok=False
                    ),
                ),
                Rule(
                    "bath_temp 0 (tank standard) or within the chemistry's window",
                    lambda v: _in_window("bath_temp", " °C", TEMP_WINDOW, v),
                ),
                Rule(
                    "TSV features are Cu-filled and need aspect_ratio > 0; other features"
                    " leave aspect_ratio at 0",
                    _tsv_geometry,
                ),
            ),
        ),
        Operation(
            "electroless",
            2,
            "Autocatalytic Ni(P) or Cu to a thickness target on an activated surface.",
            params=(
                Param(
                    "chemistry",
                    choices=ELECTROLESS,
                    setup="baths",
                    doc="EN_NI: mid-phosphorus electroless Ni; EL_CU: electroless Cu",
                ),
                Param("thickness", "µm", 0.05, 25, doc="thickness target"),
                Param("bath_temp", "°C", 0, 90, default=TANK_STANDARD, doc=_temp_doc(ELECTROLESS)),
                Param(
                    "ph",
                    "",
                    0,
                    14,
                    default=TANK_STANDARD,
                    doc="bath pH within the chemistry's window (EN_NI 4.5–5, EL_CU 12–13);"
                    " 0 = the tank's standard setpoint (EN_NI 4.8, EL_CU 12.5)",
                ),
                *_area("plated (catalysed, resist-open) fraction of the wafer area"),
            ),
            results=(
                Result("thickness", "µm", "thickness (XRF)"),
                Result("wiw", "%", "within-wafer non-uniformity, 1σ"),
                Result("rate", "µm/h", "deposition rate achieved"),
                Result("phosphorus", "%", "P content of the Ni(P) deposit, wt % (0 for EL_CU)"),
                Result("sheet_resistance", "mΩ/sq", "four-point-probe sheet resistance"),
                Result("turnover", "", "bath metal turnovers (MTO) used by this job"),
                _TEMP_RESULT,
                Result("ph", "", "bath pH measured during the job"),
                Result("duration", "min", "plating time"),
            ),
            rules=(
                Rule(
                    "bath_temp 0 (tank standard) or within the chemistry's window",
                    lambda v: _in_window("bath_temp", " °C", TEMP_WINDOW, v),
                ),
                Rule(
                    "ph 0 (tank standard) or within the chemistry's window",
                    lambda v: _in_window("ph", "", PH_WINDOW, v),
                ),
            ),
        ),
        Operation(
            "immersion",
            3,
            "Immersion (displacement) Au on electroless Ni; self-limiting near 0.1 µm.",
            params=(
                Param(
                    "chemistry",
                    choices=("IMM_AU",),
                    default="IMM_AU",
                    setup="baths",
                    doc="immersion Au bath",
                ),
                Param("time", "min", 5, 15, doc="immersion time"),
                Param("bath_temp", "°C", 70, 90, default=80.0, doc="bath temperature"),
            ),
            results=(
                Result("thickness", "µm", "Au thickness (XRF)"),
                Result(
                    "ni_dissolved", "µm", "Ni displaced into the bath (2 Au⁺ + Ni → 2 Au + Ni²⁺)"
                ),
                Result("wiw", "%", "within-wafer non-uniformity, 1σ"),
                _TEMP_RESULT,
                Result("duration", "min", "immersion time"),
            ),
        ),
        Operation(
            "zincate",
            4,
            "Zincate pre-treatment of Al pads before electroless Ni (double zincate: zincate,"
            " HNO₃ strip, zincate).",
            params=(
                Param(
                    "chemistry",
                    choices=("ZINCATE",),
                    default="ZINCATE",
                    setup="baths",
                    doc="zincate bath",
                ),
                Param(
                    "passes",
                    "",
                    1,
                    2,
                    default=2.0,
                    integer=True,
                    doc="1 = single zincate, 2 = double zincate",
                ),
                Param("time", "s", 10, 120, default=30.0, doc="immersion time of each pass"),
                Param("bath_temp", "°C", 20, 35, default=25.0, doc="bath temperature"),
            ),
            results=(
                Result("coverage", "%", "Al pad area covered by Zn nuclei"),
                Result("zn_thickness", "nm", "final Zn layer thickness"),
                Result("al_loss", "nm", "Al pad thickness dissolved"),
                _TEMP_RESULT,
                Result("duration", "min", "treatment time including the strip and rinses"),
            ),
        ),
        Operation(
            "activate",
            5,
            "Pd catalyst on Cu pads or dielectric (hole walls) before electroless Ni or Cu.",
            params=(
                Param(
                    "chemistry",
                    choices=("PD_ACTIVATOR",),
                    default="PD_ACTIVATOR",
                    setup="baths",
                    doc="Pd activator bath",
                ),
                Param("time", "s", 30, 300, default=60.0, doc="immersion time"),
                Param("bath_temp", "°C", 20, 40, default=30.0, doc="bath temperature"),
            ),
            results=(
                Result("coverage", "%", "surface area carrying Pd catalyst"),
                _TEMP_RESULT,
                Result("duration", "min", "treatment time including rinses"),
            ),
        ),
    ),
    alarms=(
        Alarm(201, "TEMP_OUT", "bath temperature outside setpoint ±2 °C"),
        Alarm(202, "CHEMISTRY_OUT", "bath pH or chemistry outside its window (analyser)"),
        Alarm(
            203,
            "RECTIFIER_COMPLIANCE",
            "rectifier at voltage compliance (seed contact or mass-transport limit)",
        ),
        Alarm(204, "ANODE_DEPLETED", "soluble anode depleted"),
        Alarm(205, "FILTER_FLOW_LOW", "bath filter / recirculation flow low"),
        Alarm(206, "BATH_LIFE", "bath life exceeded (Ah or wafers since make-up): remake the bath"),
        Alarm(207, "MTO_LIFE", "electroless bath past its metal-turnover life: remake the bath"),
        Alarm(208, "PLATE_OUT", "plate-out in the electroless tank (bath decomposition)"),
        Alarm(209, "RINSE_RESISTIVITY_LOW", "rinse water resistivity low"),
        Alarm(290, "BATH_LIFE_WARNING", "bath life above 90 %", warning=True),
        Alarm(291, "MTO_WARNING", "electroless bath above 80 % of its MTO life", warning=True),
    ),
    consumables=(
        Consumable("bath_cu_acid", "Ah", 20000.0, "acid Cu bath charge since make-up"),
        Consumable("bath_ni_sulfamate", "Ah", 10000.0, "Ni sulfamate bath charge since make-up"),
        Consumable(
            "bath_au_electrolytic", "Ah", 250.0, "electrolytic Au bath charge since make-up"
        ),
        Consumable("bath_en_ni", "", 5.0, "EN-Ni metal turnovers (MTO) since make-up", warn=0.8),
        Consumable(
            "bath_el_cu", "", 10.0, "electroless Cu metal turnovers (MTO) since make-up", warn=0.8
        ),
        Consumable("bath_imm_au", "count", 3000.0, "wafers through the immersion Au bath"),
        Consumable("bath_zincate", "count", 2000.0, "wafers through the zincate bath"),
        Consumable("bath_pd_activator", "count", 2000.0, "wafers through the Pd activator"),
    ),
    setup=(SetupField("baths", BATHS, doc="chemistries installed in the plating tanks"),),
    default_setup={"baths": tuple(b for b in BATHS if b != "EL_CU")},
)
