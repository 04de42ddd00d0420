"""Patterning cell (SCPI): expose + develop, dry and wet etch, UV laser vias, resist strip."""

from __future__ import annotations

import math
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
    window,
)

# -- expose + develop ---------------------------------------------------------------------------

RESISTS = ("THIN_PR", "THICK_PR", "PSPI", "PHOTO_INK", "DRY_FILM")
STRIPPABLE = ("THIN_PR", "THICK_PR", "DRY_FILM")  # PSPI and photo-ink are permanent layers
ALIGNERS = ("STEPPER", "ALIGNER")
FEATURES = ("OPENING", "ISLAND")

# Published dose windows (process-reference.md §2 LITHO); DRY_FILM is an engineering estimate.
DOSE_WINDOW = {"THIN_PR": (100.0, 200.0), "THICK_PR": (300.0, 1500.0), "PSPI": (150.0, 500.0),
               "PHOTO_INK": (300.0, 1000.0), "DRY_FILM": (50.0, 300.0)}  # fmt: skip  # mJ/cm²
THICKNESS_WINDOW = {"THIN_PR": (0.5, 10.0), "THICK_PR": (10.0, 50.0), "PSPI": (2.0, 30.0),
                    "PHOTO_INK": (5.0, 50.0), "DRY_FILM": (10.0, 100.0)}  # fmt: skip  # µm
RESIST_AR_MAX = {"THIN_PR": 3.0, "THICK_PR": 5.0, "PSPI": 1.5, "PHOTO_INK": 1.0,
                 "DRY_FILM": 2.0}  # fmt: skip  # resist thickness / smallest mask feature
AUTO_DOSE = 0.0  # dose value meaning "the tool's dose-to-size for this resist and thickness"

STEPPER_RESOLUTION_UM = 2.0  # 1X i-line stepper, NA 0.16, thick-resist process
I_LINE_UM = 0.365
PROXIMITY_GAP_UM = 20.0
OVERLAY_SPEC_UM = {"STEPPER": 1.0, "ALIGNER": 5.0}  # overlay_limit 0 means this
ASPEC = 0.0  # overlay_limit value meaning "the aligner's spec"
# warpage beyond which focus (levelling) fails, or a plasma chamber's e-chuck leaks He
WARP_LIMIT_UM = {"STEPPER": 200.0, "ALIGNER": 400.0, "LASER": 300.0, "E_CHUCK": 150.0}


def aligner_resolution_um(aligner: str, resist_thickness_um: float) -> float:
    """Smallest printable feature: stepper 2 µm; proximity aligner 1.5·√(λ·(g + t/2))."""
    if aligner == "STEPPER":
        return STEPPER_RESOLUTION_UM
    return 1.5 * math.sqrt(I_LINE_UM * (PROXIMITY_GAP_UM + resist_thickness_um / 2.0))


# -- etch ---------------------------------------------------------------------------------------

TARGETS = ("SI", "DIELECTRIC", "POLYMER", "OXIDE", "CU_SEED", "TI_SEED")
METHODS = ("DRIE", "RIE", "WET")
DRY = ("DRIE", "RIE")
ENDPOINTS = ("STOP_LAYER", "TIMED")
TARGET_METHODS = {"SI": ("DRIE", "RIE"), "DIELECTRIC": ("RIE",), "POLYMER": ("DRIE", "RIE"),
                  "OXIDE": ("RIE",), "CU_SEED": ("WET",), "TI_SEED": ("WET", "RIE")}  # fmt: skip
ETCH_AR_MAX = {"DRIE": 30.0, "RIE": 10.0, "WET": 1.0}  # (start_depth + depth) / opening
ENDPOINT_MIN_AREA_PCT = 0.2  # below this open area the endpoint signal is lost in the noise

# -- laser vias ---------------------------------------------------------------------------------

LASER_MATERIALS = ("POLYIMIDE", "EPOXY", "BCB", "MOLD_COMPOUND", "SI")
FLUENCE_WINDOW = {"POLYIMIDE": (0.2, 5.0), "EPOXY": (0.8, 8.0), "BCB": (0.5, 5.0),
                  "MOLD_COMPOUND": (1.5, 12.0), "SI": (4.0, 20.0)}  # fmt: skip  # J/cm²
STANDARD_FLUENCE = {"POLYIMIDE": 1.5, "EPOXY": 3.0, "BCB": 2.0, "MOLD_COMPOUND": 5.0,
                    "SI": 10.0}  # fmt: skip  # J/cm², used when fluence is 0
VIA_AR_MAX = {"POLYIMIDE": 1.5, "EPOXY": 1.5, "BCB": 1.5, "MOLD_COMPOUND": 1.0, "SI": 5.0}
AUTO_FLUENCE = 0.0

# -- strip --------------------------------------------------------------------------------------

STRIP_METHODS = ("WET", "PLASMA")
PLASMA_STRIP_MAX_UM = 10.0


def _windows(table: Mapping[str, tuple[float, float]], unit: str) -> str:
    return ", ".join(f"{k} {lo:g}–{hi:g}{unit}" for k, (lo, hi) in table.items())


# -- rules --------------------------------------------------------------------------------------


def _resolution(v: Mapping[str, Value]) -> str | None:
    aligner, cd, t = str(v["aligner"]), float(v["mask_cd"]), float(v["resist_thickness"])
    res = aligner_resolution_um(aligner, t)
    if cd < res:
        return f"mask_cd {cd:g} µm below the {aligner} resolution {res:.3g} µm"
    return None


def _resist_ar(v: Mapping[str, Value]) -> str | None:
    resist, cd, t = str(v["resist"]), float(v["mask_cd"]), float(v["resist_thickness"])
    limit = RESIST_AR_MAX[resist]
    if t / cd > limit:
        return (
            f"resist aspect ratio {t / cd:.3g} (resist_thickness {t:g} µm / mask_cd {cd:g} µm)"
            f" above the {resist} limit {limit:g}"
        )
    return None


def _method(v: Mapping[str, Value]) -> str | None:
    target, method = str(v["target"]), str(v["method"])
    allowed = TARGET_METHODS[target]
    if method not in allowed:
        return f"method {method} cannot etch {target} (use {' or '.join(allowed)})"
    return None


def _etch_geometry(v: Mapping[str, Value]) -> str | None:
    opening, start = float(v["opening"]), float(v["start_depth"])
    method, depth = str(v["method"]), float(v["depth"])
    if opening == 0:
        if start > 0:
            return f"start_depth {start:g} µm needs the hole's opening (> 0 µm)"
        return None
    ar, limit = (start + depth) / opening, ETCH_AR_MAX[method]
    if ar > limit:
        return (
            f"aspect ratio {ar:.3g} ((start_depth + depth) / opening) above the {method}"
            f" limit {limit:g}"
        )
    return None


def _via_ar(v: Mapping[str, Value]) -> str | None:
    material, d, depth = str(v["material"]), float(v["diameter"]), float(v["depth"])
    limit = VIA_AR_MAX[material]
    if depth / d > limit:
        return (
            f"via aspect ratio {depth / d:.3g} (depth {depth:g} µm / diameter {d:g} µm) above"
            f" the {material} limit {limit:g}"
        )
    return None


def _plasma_strip(v: Mapping[str, Value]) -> str | None:
    t = float(v["resist_thickness"])
    if v["method"] == "PLASMA" and t > PLASMA_STRIP_MAX_UM:
        return (
            f"PLASMA strips at most {PLASMA_STRIP_MAX_UM:g} µm of resist, got {t:g} µm"
            " (strip thick resist WET)"
        )
    return None


# -- the interface ------------------------------------------------------------------------------


def _warpage(limit: str) -> Param:
    return Param(
        "warpage",
        "µm",
        0,
        1000,
        default=0.0,
        doc=f"incoming wafer or stack warpage (bow, peak to valley); {limit}",
    )


_WAFER = Param("wafer_diameter", "mm", 100, 300, default=300.0, doc="wafer diameter")
_DURATION = Result("duration", "min", "whole job time, load to unload")

LITHO = ToolInterface(
    kind="litho",
    id_prefix="LITHO",
    qualification=Qualification(
        "expose", {"resist": "THICK_PR", "resist_thickness": "20 µm", "mask_cd": "30 µm"}
    ),
    consumable_alarms={
        "lamp_hours": (901, 990),
        "developer": (909, 991),
        "drie_chamber": (905, 993),
        "rie_chamber": (905, 993),
        "cu_etchant": (909, 991),
        "ti_etchant": (909, 991),
        "stripper": (909, 991),
        "laser_hours": (908, 992),
    },
    protocol="scpi",
    title="Patterning cell (expose/develop, etch, laser via, strip)",
    vendor="FABLINE-SIM",
    model="PATTERNA-2",
    doc=(
        "A patterning cluster: an exposure unit with an in-line developer (a 1X i-line STEPPER"
        " or a proximity mask ALIGNER, one fitted at a time), DRIE and RIE plasma chambers,"
        " a wet spray etcher for Cu and Ti seed layers, a UV (355 nm) laser driller and wet"
        " and plasma resist strippers. `expose` prints a resist coated upstream (COAT):"
        " the dose to clear grows with the resist thickness, E_c = E_c0·e^(αt), and the"
        " printed size follows CD = CD_mask ± k·ln(E/E_size) (+ for openings, − for"
        " islands); dose 0 exposes at the tool's dose-to-size. `etch` removes a film through"
        " a mask (or blanket) with aspect-ratio-dependent etching ER = ER₀/(1 + AR/AR₀),"
        " where AR grows as the hole deepens; a STOP_LAYER etch runs to the endpoint plus"
        " over_etch, a TIMED etch to a depth. `laser_via` drills vias pulse by pulse, depth"
        " per pulse α⁻¹·ln(F/F_th); fluence 0 drills at the material's standard fluence."
        " `strip` removes a temporary resist after plating or etch."
    ),
    operations=(
        Operation(
            "expose",
            1,
            "Align, expose and develop a coated resist layer.",
            params=(
                Param("resist", choices=RESISTS, doc="resist on the wafer (coated upstream)"),
                Param(
                    "resist_thickness",
                    "µm",
                    0.5,
                    100,
                    doc="coated resist thickness, within the resist's range ("
                    + _windows(THICKNESS_WINDOW, " µm")
                    + ")",
                ),
                Param(
                    "mask_cd",
                    "µm",
                    1,
                    1000,
                    doc="critical dimension on the mask: via/opening diameter or line width",
                ),
                Param(
                    "feature",
                    choices=FEATURES,
                    default="OPENING",
                    doc="OPENING: holes or trenches cleared in the resist (vias, plating mask);"
                    " ISLAND: resist left standing (bosses, partition walls)",
                ),
                Param(
                    "dose",
                    "mJ/cm²",
                    0,
                    3000,
                    default=AUTO_DOSE,
                    doc="exposure dose within the resist's window ("
                    + _windows(DOSE_WINDOW, " mJ/cm²")
                    + "); 0 = the tool's dose-to-size for this resist and thickness",
                ),
                Param(
                    "aligner",
                    choices=ALIGNERS,
                    default="STEPPER",
                    setup="aligner",
                    doc="exposure unit (must be the fitted one): STEPPER overlay ±0.5–1 µm;"
                    " ALIGNER (proximity, 20 µm gap) ±2–5 µm",
                ),
                Param(
                    "overlay_limit",
                    "µm",
                    0,
                    50,
                    default=ASPEC,
                    doc="overlay tolerance to the previous layer; 0 = the aligner's spec"
                    " (STEPPER 1 µm, ALIGNER 5 µm)",
                ),
                _warpage(
                    f"focus fails above {WARP_LIMIT_UM['STEPPER']:g} µm (STEPPER),"
                    f" {WARP_LIMIT_UM['ALIGNER']:g} µm (ALIGNER)"
                ),
                _WAFER,
            ),
            results=(
                Result("cd", "µm", "printed size: opening diameter/width, or island width"),
                Result("cd_bias", "µm", "cd − mask_cd"),
                Result("overlay", "µm", "overlay to the previous layer, mean offset + 3σ"),
                Result("unopened", "%", "openings (or spaces between islands) not cleared"),
                Result("resist_remaining", "µm", "resist thickness after develop"),
                Result("dose_measured", "mJ/cm²", "dose delivered (integrator)"),
                Result("dose_to_clear", "mJ/cm²", "dose that just clears these openings"),
                Result("dose_to_size", "mJ/cm²", "dose that prints cd = mask_cd"),
                Result("exposure_time", "s", "shutter time per shot"),
                Result("shots", "count", "exposure fields on the wafer"),
                Result("lamp_output", "%", "lamp intensity relative to a new lamp"),
                Result("developer_used", "L", "developer used by this job"),
                _DURATION,
            ),
            rules=(
                Rule(
                    "resist_thickness within the resist's range ("
                    + _windows(THICKNESS_WINDOW, " µm")
                    + ")",
                    window("resist", "resist_thickness", THICKNESS_WINDOW, "µm", word="range"),
                ),
                Rule(
                    "dose 0 (dose-to-size) or within the resist's window ("
                    + _windows(DOSE_WINDOW, " mJ/cm²")
                    + ")",
                    window("resist", "dose", DOSE_WINDOW, "mJ/cm²", unset=AUTO_DOSE),
                ),
                Rule(
                    f"mask_cd at least the exposure unit's resolution: STEPPER"
                    f" {STEPPER_RESOLUTION_UM:g} µm; ALIGNER 1.5·√(0.365 µm·(20 µm gap +"
                    " resist_thickness/2))",
                    _resolution,
                ),
                Rule(
                    "resist_thickness / mask_cd at most the resist's aspect-ratio limit ("
                    + ", ".join(f"{k} {x:g}" for k, x in RESIST_AR_MAX.items())
                    + ")",
                    _resist_ar,
                ),
            ),
        ),
        Operation(
            "etch",
            2,
            "Etch a film through a resist or hard mask (or blanket): DRIE and RIE plasma, or"
            " wet spray etch of seed layers.",
            params=(
                Param(
                    "target",
                    choices=TARGETS,
                    doc="film etched: SI (wafer, through-holes), DIELECTRIC (polyimide/epoxy"
                    " dielectric layer), POLYMER (bonding adhesive, resist descum), OXIDE"
                    " (liner, hard mask), CU_SEED, TI_SEED (sputtered seed/barrier)",
                ),
                Param(
                    "method",
                    choices=METHODS,
                    setup="etch_modules",
                    doc="etch module: DRIE (Bosch), RIE, WET (spray)",
                ),
                Param("depth", "µm", 0.01, 800, doc="film thickness to clear, or depth to etch"),
                Param(
                    "opening",
                    "µm",
                    0,
                    1000,
                    default=0.0,
                    doc="mask opening (hole diameter, trench or line-space width) that sets the"
                    " aspect ratio; 0 = blanket or wide open (no ARDE)",
                ),
                Param(
                    "start_depth",
                    "µm",
                    0,
                    800,
                    default=0.0,
                    doc="depth of the hole already etched above this film (e.g. the adhesive"
                    " at the bottom of a Si through-hole); the etch starts at that aspect ratio",
                ),
                Param(
                    "open_area",
                    "%",
                    0.1,
                    100,
                    default=100.0,
                    doc="exposed fraction of the wafer: loading, etchant used; below"
                    f" {ENDPOINT_MIN_AREA_PCT:g} % a STOP_LAYER etch sees no endpoint",
                ),
                Param(
                    "endpoint",
                    choices=ENDPOINTS,
                    default="STOP_LAYER",
                    doc="STOP_LAYER: etch until the film clears (endpoint) then over_etch;"
                    " TIMED: blind etch to depth by the calibrated rate (over_etch unused)",
                ),
                Param(
                    "over_etch",
                    "%",
                    0,
                    200,
                    default=20.0,
                    doc="extra etch after the endpoint, % of the time to clear",
                ),
                Param(
                    "mask_thickness",
                    "µm",
                    0,
                    100,
                    default=0.0,
                    doc="resist mask thickness (to report its erosion); 0 = hard mask or none",
                ),
                Param(
                    "max_time",
                    "min",
                    1,
                    600,
                    default=120.0,
                    doc="endpoint timeout: NO_ENDPOINT if the film has not cleared by then;"
                    " a TIMED etch needing longer is refused",
                ),
                _warpage(
                    f"the plasma chambers' e-chuck leaks He above {WARP_LIMIT_UM['E_CHUCK']:g} µm"
                ),
                _WAFER,
            ),
            results=(
                Result("depth", "µm", "depth etched (the film thickness where cleared)"),
                Result(
                    "rate", "µm/min", "mean etch rate: depth / wafer-mean time to clear (or timed)"
                ),
                Result("aspect_ratio", "", "final (start_depth + depth) / opening; 0 blanket"),
                Result("uniformity", "%", "within-wafer etch non-uniformity, 1σ"),
                Result("undercut", "µm", "lateral etch under the mask edge, per side"),
                Result("residue", "%", "area where the film has not cleared (STOP_LAYER)"),
                Result("mask_remaining", "µm", "resist mask left (0 if none or eroded through)"),
                Result(
                    "endpoint_time",
                    "min",
                    "time to the endpoint, the slow 2σ tail cleared (0 TIMED)",
                ),
                Result("etch_time", "min", "plasma or spray time including over-etch"),
                Result("chemistry_used", "L", "wet etchant used (0 for dry etch)"),
                _DURATION,
            ),
            rules=(
                Rule(
                    "method suits the target ("
                    + "; ".join(f"{t} {'/'.join(m)}" for t, m in TARGET_METHODS.items())
                    + ")",
                    _method,
                ),
                Rule(
                    "(start_depth + depth) / opening at most the method's aspect-ratio limit ("
                    + ", ".join(f"{k} {x:g}" for k, x in ETCH_AR_MAX.items())
                    + "); start_depth needs an opening",
                    _etch_geometry,
                ),
            ),
        ),
        Operation(
            "laser_via",
            3,
            "Drill vias with the UV laser (percussion, shaped spot of the via diameter).",
            params=(
                Param("material", choices=LASER_MATERIALS, doc="layer drilled"),
                Param("diameter", "µm", 20, 100, doc="via diameter at the top"),
                Param("depth", "µm", 1, 500, doc="layer thickness to drill through"),
                Param("via_count", "count", 1, 10_000_000, integer=True, doc="vias on the wafer"),
                Param(
                    "fluence",
                    "J/cm²",
                    0,
                    20,
                    default=AUTO_FLUENCE,
                    doc="pulse fluence within the material's window ("
                    + _windows(FLUENCE_WINDOW, " J/cm²")
                    + "); 0 = standard ("
                    + ", ".join(f"{k} {x:g}" for k, x in STANDARD_FLUENCE.items())
                    + " J/cm²)",
                ),
                Param("rep_rate", "kHz", 10, 200, default=50.0, doc="pulse repetition rate"),
                Param(
                    "extra_pulses",
                    "%",
                    0,
                    100,
                    default=20.0,
                    doc="pulses beyond those that reach the depth, to open every via",
                ),
                _warpage(f"focus fails above {WARP_LIMIT_UM['LASER']:g} µm"),
            ),
            results=(
                Result("depth", "µm", "mean depth reached (stops at the pad)"),
                Result("depth_per_pulse", "µm", "ablation depth per pulse, α⁻¹·ln(F/F_th)"),
                Result("pulses", "count", "pulses per via"),
                Result("top_diameter", "µm", "via diameter at the top"),
                Result("bottom_diameter", "µm", "via diameter at the bottom (0: closed)"),
                Result("taper", "deg", "side-wall angle from vertical"),
                Result("unopened", "%", "vias not open to the bottom"),
                Result("fluence_measured", "J/cm²", "pulse fluence delivered"),
                Result("laser_power", "W", "average laser power at the work"),
                Result("drill_time", "min", "laser time for all vias"),
                _DURATION,
            ),
            rules=(
                Rule(
                    "fluence 0 (standard) or within the material's window ("
                    + _windows(FLUENCE_WINDOW, " J/cm²")
                    + ")",
                    window("material", "fluence", FLUENCE_WINDOW, "J/cm²", unset=AUTO_FLUENCE),
                ),
                Rule(
                    "depth / diameter at most the material's via aspect-ratio limit ("
                    + ", ".join(f"{k} {x:g}" for k, x in VIA_AR_MAX.items())
                    + ")",
                    _via_ar,
                ),
            ),
        ),
        Operation(
            "strip",
            4,
            "Strip a temporary resist (after plating or etch): wet stripper or O₂ plasma.",
            params=(
                Param("resist", choices=STRIPPABLE, doc="resist to remove"),
                Param("resist_thickness", "µm", 0.1, 100, doc="resist thickness to remove"),
                Param(
                    "method",
                    choices=STRIP_METHODS,
                    default="WET",
                    setup="strip_modules",
                    doc="WET: hot solvent stripper; PLASMA: O₂ ash (oxidises exposed Cu)",
                ),
                Param(
                    "over_strip",
                    "%",
                    0,
                    200,
                    default=50.0,
                    doc="strip time beyond the nominal clear time",
                ),
                _WAFER,
            ),
            results=(
                Result("strip_rate", "µm/min", "resist removal rate"),
                Result("strip_time", "min", "time in the stripper or asher"),
                Result("residue", "%", "area with resist residue left"),
                Result("cu_oxide", "nm", "oxide grown on exposed Cu"),
                Result("stripper_used", "L", "wet stripper used (0 for PLASMA)"),
                _DURATION,
            ),
            rules=(
                Rule(
                    f"PLASMA strips at most {PLASMA_STRIP_MAX_UM:g} µm of resist",
                    _plasma_strip,
                ),
            ),
        ),
    ),
    alarms=(
        Alarm(901, "LAMP_INTENSITY_LOW", "lamp intensity low: lamp past its rated hours"),
        Alarm(902, "DOSE_DEVIATION", "dose off set point by more than ±5 % (integrator)"),
        Alarm(903, "MARK_OVERLAY", "alignment mark not found / overlay out of tolerance"),
        Alarm(904, "FOCUS_FAIL", "focus fail: wafer warpage beyond the focus/chuck range"),
        Alarm(905, "RF_REFLECTED", "RF reflected power high: chamber past its clean interval"),
        Alarm(906, "HE_LEAK", "backside He leak: warped wafer does not seal on the e-chuck"),
        Alarm(907, "NO_ENDPOINT", "no endpoint: film not cleared by max_time"),
        Alarm(
            908,
            "LASER_POWER_DRIFT",
            "laser power drift: cannot hold the set fluence (power needed or diode hours)",
        ),
        Alarm(909, "CHEMISTRY_EMPTY", "developer, etchant or stripper supply empty"),
        Alarm(990, "LAMP_LIFE_WARNING", "lamp above 90 % of its rated hours", warning=True),
        Alarm(991, "CHEMISTRY_LOW", "a chemistry supply below 10 %", warning=True),
        Alarm(992, "LASER_LIFE_WARNING", "laser above 90 % of its rated hours", warning=True),
        Alarm(
            993, "CHAMBER_CLEAN_DUE", "plasma chamber at 90 % of its clean interval", warning=True
        ),
        Alarm(994, "MASK_ERODED", "last etch eroded the resist mask through", warning=True),
        Alarm(995, "UNOPENED", "last job left more than 0.1 % openings unopened", warning=True),
        Alarm(996, "RESIDUE", "last etch or strip left residue on more than 0.1 %", warning=True),
    ),
    consumables=(
        Consumable("lamp_hours", "h", 2000.0, "exposure lamp hours since lamp change"),
        Consumable("developer", "L", 200.0, "developer (TMAH / carbonate) left", supply=True),
        Consumable("drie_chamber", "h", 1000.0, "DRIE chamber RF hours since its wet clean"),
        Consumable("rie_chamber", "h", 1000.0, "RIE chamber RF hours since its wet clean"),
        Consumable("cu_etchant", "L", 400.0, "Cu seed etchant left", supply=True),
        Consumable("ti_etchant", "L", 200.0, "Ti seed etchant left", supply=True),
        Consumable("stripper", "L", 400.0, "wet resist stripper left", supply=True),
        Consumable("laser_hours", "h", 10000.0, "UV laser diode hours since replacement"),
    ),
    setup=(
        SetupField("aligner", ALIGNERS, multi=False, doc="exposure unit fitted"),
        SetupField("etch_modules", METHODS, doc="etch modules fitted"),
        SetupField("strip_modules", STRIP_METHODS, doc="resist strip modules fitted"),
    ),
    default_setup={
        "aligner": ("STEPPER",),
        "etch_modules": METHODS,
        "strip_modules": STRIP_METHODS,
    },
)
