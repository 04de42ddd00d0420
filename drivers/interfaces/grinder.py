"""Grinder and CMP polisher (Modbus TCP): back-grinding to a target thickness, planar grinding
of a dielectric or encapsulant until the metal (or the chip backs) is exposed, and CMP."""

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

# Wheels mounted on the two spindles: Z1 coarse (#320–600), Z2 fine (#2000–8000).
COARSE_WHEELS = ("G320", "G400", "G600")
FINE_WHEELS = ("G2000", "G3000", "G4000", "G6000", "G8000")
WHEELS = ("COARSE", "FINE", "BOTH")
# Published in-feed windows per wheel, µm/s [BG]; the in-feed axis itself does 0.05–20 µm/s.
INFEED_WINDOW = {"coarse": (5.0, 10.0), "fine": (0.1, 0.5)}

WORKS = ("SI", "BONDED_STACK")
LAYERS = ("EMC", "POLYIMIDE", "EPOXY", "DIELECTRIC", "PHOTO_INK")
FEATURES = ("CU", "PASTE", "SOLDER_BUMP", "DIE")
BASES = ("SI_WAFER", "ORGANIC")
SLURRIES = ("CU", "OXIDE", "POLYMER")
ENDPOINTS = ("CLEAR", "TIME")

STACK_MIN_UM = 20.0  # a bonded stack has at least this much under the wafer being thinned
CMP_MAX_POLISH_S = 3600.0  # CLEAR endpoint: the polisher gives up after this long


def grit(choice: str) -> int:
    """Mesh number of a wheel choice, e.g. "G2000" -> 2000."""
    return int(choice[1:])


def wheels_used(wheel: str) -> tuple[str, ...]:
    """Which of "coarse" / "fine" a job's `wheel` setting runs."""
    return {"COARSE": ("coarse",), "FINE": ("fine",), "BOTH": ("coarse", "fine")}[wheel]


def _infeed(v: Mapping[str, Value]) -> str | None:
    for w in wheels_used(str(v["wheel"])):
        lo, hi = INFEED_WINDOW[w]
        feed = float(v[f"{w}_infeed"])
        if not lo <= feed <= hi:
            return f"{w}_infeed {feed:g} µm/s outside the {w} wheel window {lo:g}–{hi:g} µm/s"
    return None


_INFEED_RULE = Rule(
    "in-feed inside the window of each wheel the job runs: coarse_infeed 5–10 µm/s,"
    " fine_infeed 0.1–0.5 µm/s (an unused wheel's in-feed is not checked)",
    _infeed,
)


def _target(v: Mapping[str, Value]) -> str | None:
    target, incoming = float(v["target_thickness"]), float(v["incoming_thickness"])
    if target >= incoming:
        return f"target_thickness {target:g} µm ≥ incoming_thickness {incoming:g} µm"
    return None


def _stack(v: Mapping[str, Value]) -> str | None:
    below = float(v["stack_below"])
    if v["work"] == "BONDED_STACK" and below < STACK_MIN_UM:
        return (
            f"work BONDED_STACK needs stack_below ≥ {STACK_MIN_UM:g} µm (layers under the"
            f" thinned wafer), got {below:g} µm"
        )
    if v["work"] == "SI" and below != 0:
        return f"work SI leaves stack_below at 0, got {below:g} µm (use BONDED_STACK)"
    return None


def _reaches_layer(v: Mapping[str, Value]) -> str | None:
    plane = float(v["feature_height"]) - float(v["overgrind"])
    top = float(v["incoming_thickness"])
    if plane >= top:
        return (
            f"grind plane {plane:g} µm (feature_height − overgrind) not below"
            f" incoming_thickness {top:g} µm: nothing to grind"
        )
    return None


def _above_base(v: Mapping[str, Value]) -> str | None:
    over, height = float(v["overgrind"]), float(v["feature_height"])
    if over >= height:
        return f"overgrind {over:g} µm ≥ feature_height {height:g} µm: would grind the base"
    return None


def _bump(v: Mapping[str, Value]) -> str | None:
    d = float(v["bump_diameter"])
    if v["feature"] != "SOLDER_BUMP":
        if d != 0:
            return f"bump_diameter {d:g} µm is only used with feature SOLDER_BUMP (set 0)"
        return None
    if d <= 0:
        return "feature SOLDER_BUMP needs bump_diameter > 0"
    height, over = float(v["feature_height"]), float(v["overgrind"])
    if height > d:
        return f"feature_height {height:g} µm > bump_diameter {d:g} µm (a bump is a sphere cap)"
    if over > d / 2.0:
        return f"overgrind {over:g} µm > bump radius {d / 2:g} µm (past the ball's equator)"
    return None


def _clear(v: Mapping[str, Value]) -> str | None:
    if v["endpoint"] == "CLEAR" and float(v["overburden"]) <= 0:
        return "endpoint CLEAR needs overburden > 0 (the film to clear)"
    return None


_WHEEL = Param(
    "wheel",
    choices=WHEELS,
    default="BOTH",
    doc="COARSE (Z1 only), FINE (Z2 only) or BOTH: Z1 removes all but the last fine_removal"
    " µm, Z2 finishes (a removal smaller than fine_removal runs on Z2 alone)",
)
_FINE_REMOVAL = Param(
    "fine_removal",
    "µm",
    0,
    200,
    default=30.0,
    doc="stock left for the fine wheel with wheel BOTH; it must exceed the coarse wheel's"
    " damage depth (≈ 20–30 µm at #320) or damage stays in the work",
)
_COARSE_INFEED = Param(
    "coarse_infeed", "µm/s", 0.05, 20, default=6.0, doc="Z1 in-feed (window 5–10 µm/s)"
)
_FINE_INFEED = Param(
    "fine_infeed", "µm/s", 0.05, 20, default=0.3, doc="Z2 in-feed (window 0.1–0.5 µm/s)"
)
_SPINDLE = Param("spindle", "rpm", 3500, 5500, default=4800.0, doc="wheel spindle speed")
_CHUCK = Param("chuck", "rpm", 100, 300, default=200.0, doc="chuck table speed")
_TOLERANCE = Param(
    "tolerance",
    "µm",
    0.5,
    10,
    default=2.0,
    doc="how far below the target the work may end before the tool alarms (THICKNESS_OVERSHOOT)",
)
_WHEEL_PARAMS = (_WHEEL, _FINE_REMOVAL, _COARSE_INFEED, _FINE_INFEED, _SPINDLE, _CHUCK)

_GRIND_RESULTS = (
    Result("ttv", "µm", "total thickness variation after grinding, TTV_in(1 − r) + D·θ_tilt"),
    Result("ra", "nm", "surface roughness Ra left by the last wheel"),
    Result("finish_grit", "", "mesh number of the last wheel (e.g. 2000)"),
    Result("coarse_wheel_wear", "µm", "coarse wheel rim worn by this job"),
    Result("fine_wheel_wear", "µm", "fine wheel rim worn by this job"),
    Result("spindle_current", "A", "peak spindle current"),
    Result("duration", "min", "job time incl. load, chucking and cleaning"),
)

GRINDER = ToolInterface(
    kind="grinder",
    id_prefix="GRIND",
    qualification=Qualification("back_grind", {"target_thickness": "100 µm"}),
    consumable_alarms={
        "coarse_wheel_wear": (802, 890),
        "fine_wheel_wear": (803, 891),
        "cmp_pad": (808, 892),
        "slurry": (809, 893),
    },
    protocol="modbus",
    title="Grinder and CMP polisher",
    vendor="FABLINE-SIM",
    model="PLANAR-5",
    doc=(
        "An in-feed grinder with a coarse (Z1) and a fine (Z2) wheel spindle over a rotating"
        " vacuum chuck, and a CMP polishing station. The mounted wheels and the loaded slurry"
        " are setup (`coarse_wheel`, `fine_wheel`, `slurry`); a grinding job runs the wheels it"
        " names with their mounted grit. `back_grind` thins a wafer, or the top wafer of a"
        " bonded stack, to target_thickness. `planarize` grinds a dielectric or encapsulant"
        " down to the embedded features (Cu traces or posts, paste bodies, solder bumps, chip"
        " backs) and `overgrind` µm into them; a ball-shaped bump cut at distance s from its"
        " centre shows a flat end of diameter d = 2√(r² − s²). `cmp` polishes at the Preston"
        " rate RR = K_p·P·v, for a time or until the overburden clears plus over-polish."
        " Removal Δz = Σ v_f·t; TTV ≈ TTV_in(1 − r) + D·θ_tilt plus the thickness variation of"
        " what the work is held on (the grinder references the chuck); Ra ∝ grit size ×"
        " (v_f/v_s)^½. Before grinding, the chuck must pull the work flat: a stiff, warped"
        " stack loses vacuum (CHUCK_VACUUM). The tool alarms before a job that needs more wheel"
        " rim than is left."
    ),
    operations=(
        Operation(
            "back_grind",
            1,
            "Thin a wafer (on back-grind tape) or the top wafer of a bonded stack to a target.",
            params=(
                Param(
                    "work",
                    choices=WORKS,
                    default="SI",
                    doc="SI: a single wafer on back-grind tape; BONDED_STACK: the top wafer of"
                    " a polymer-bonded stack (000), or its bottom wafer W1 ground from the back",
                ),
                Param(
                    "target_thickness", "µm", 20, 800, doc="final thickness of the thinned wafer"
                ),
                Param(
                    "incoming_thickness",
                    "µm",
                    50,
                    1000,
                    default=775.0,
                    doc="thickness of that wafer before grinding",
                ),
                Param(
                    "stack_below",
                    "µm",
                    0,
                    3000,
                    default=0.0,
                    doc="BONDED_STACK: thickness of everything under the thinned wafer (lower"
                    " wafers, bond lines, resin); 0 for SI",
                ),
                Param(
                    "backing_ttv",
                    "µm",
                    0,
                    20,
                    default=1.0,
                    doc="thickness variation of what the wafer is held on (back-grind tape, or"
                    " the bond line and lower layers of a stack); it transfers into the wafer",
                ),
                Param("incoming_ttv", "µm", 0, 50, default=2.0, doc="TTV of the work as loaded"),
                Param(
                    "warpage",
                    "µm",
                    0,
                    3000,
                    default=0.0,
                    doc="incoming warpage (bow) of the work as loaded",
                ),
                *_WHEEL_PARAMS,
                Param(
                    "work_size",
                    "mm",
                    100,
                    300,
                    default=300.0,
                    doc="wafer diameter",
                ),
                _TOLERANCE,
            ),
            results=(
                Result("thickness", "µm", "final thickness of the thinned wafer (gauge)"),
                Result(
                    "stack_thickness", "µm", "thickness of the whole work (thickness + stack_below)"
                ),
                Result("removed", "µm", "thickness removed"),
                Result(
                    "damage_depth", "µm", "subsurface damage left by the last wheel (≈ 100 × Ra)"
                ),
                *_GRIND_RESULTS,
            ),
            rules=(
                Rule("target_thickness < incoming_thickness", _target),
                Rule("work BONDED_STACK needs stack_below ≥ 20 µm; work SI leaves it at 0", _stack),
                _INFEED_RULE,
            ),
        ),
        Operation(
            "planarize",
            2,
            "Grind a dielectric or encapsulant until the embedded features are exposed, then"
            " `overgrind` into them: walls and encapsulant to trace height (002 cl. 32),"
            " dielectric to the conductive bodies (002 cl. 34), encapsulant and bumps to flat,"
            " coplanar ends (003 cl. 4), mold compound to the chip backs (003 cl. 7).",
            params=(
                Param("material", choices=LAYERS, doc="the layer being ground"),
                Param(
                    "feature",
                    choices=FEATURES,
                    default="CU",
                    doc="what is to be exposed: CU traces, posts or plated bodies; PASTE"
                    " (cured conductive paste bodies); SOLDER_BUMP (ball-shaped bumps); DIE"
                    " (chip backs, Si)",
                ),
                Param(
                    "incoming_thickness",
                    "µm",
                    2,
                    2000,
                    doc="height of the layer's top surface above its base",
                ),
                Param(
                    "feature_height",
                    "µm",
                    1,
                    2000,
                    doc="mean height of the feature tops above the base (bumps: their height)",
                ),
                Param(
                    "overgrind",
                    "µm",
                    0,
                    200,
                    default=2.0,
                    doc="how far below the mean feature top the grind plane ends",
                ),
                Param(
                    "feature_range",
                    "µm",
                    0,
                    100,
                    default=2.0,
                    doc="height range of the feature tops (plating non-uniformity, bump"
                    " coplanarity); the lowest must still be cut",
                ),
                Param(
                    "bump_diameter",
                    "µm",
                    0,
                    800,
                    default=0.0,
                    doc="ball diameter of SOLDER_BUMP features (0 for other features)",
                ),
                Param(
                    "feature_density",
                    "%",
                    0.1,
                    90,
                    default=10.0,
                    doc="share of the work area the features occupy (bumps: their full diameter)",
                ),
                Param(
                    "incoming_ttv",
                    "µm",
                    0,
                    100,
                    default=10.0,
                    doc="TTV of the work as loaded",
                ),
                Param(
                    "base",
                    choices=BASES,
                    default="SI_WAFER",
                    doc="what the layer sits on: a Si wafer (002) or an organic substrate (003)",
                ),
                Param(
                    "base_thickness",
                    "µm",
                    50,
                    3000,
                    default=775.0,
                    doc="thickness of the base under the layer",
                ),
                Param("warpage", "µm", 0, 5000, default=0.0, doc="incoming warpage of the work"),
                *_WHEEL_PARAMS[:1],
                Param(
                    "fine_removal",
                    "µm",
                    0,
                    200,
                    default=20.0,
                    doc="stock left for the fine wheel with wheel BOTH; keep it above"
                    " overgrind + feature_range/2 so the coarse wheel never reaches the"
                    " features",
                ),
                *_WHEEL_PARAMS[2:],
                Param(
                    "work_size",
                    "mm",
                    50,
                    320,
                    default=300.0,
                    doc="wafer diameter, or the diagonal of a strip or panel",
                ),
                _TOLERANCE,
            ),
            results=(
                Result("thickness", "µm", "final layer thickness (height of the grind plane)"),
                Result("removed", "µm", "layer thickness removed"),
                Result("feature_removed", "µm", "height ground off the features (mean overgrind)"),
                Result("exposed_fraction", "%", "share of the features exposed by the grind"),
                Result(
                    "exposed_diameter",
                    "µm",
                    "mean flat-end diameter of SOLDER_BUMP features, 2√(r² − s²) (0 otherwise)",
                ),
                Result(
                    "exposed_diameter_min",
                    "µm",
                    "smallest flat-end diameter, at the lowest bump (0 otherwise)",
                ),
                *_GRIND_RESULTS,
            ),
            rules=(
                Rule(
                    "the grind plane (feature_height − overgrind) lies below incoming_thickness",
                    _reaches_layer,
                ),
                Rule("overgrind < feature_height", _above_base),
                Rule(
                    "SOLDER_BUMP needs bump_diameter ≥ feature_height and overgrind ≤ the bump"
                    " radius; other features leave bump_diameter at 0",
                    _bump,
                ),
                _INFEED_RULE,
            ),
        ),
        Operation(
            "cmp",
            3,
            "Chemical-mechanical polish at the Preston rate RR = K_p·P·v: until the overburden"
            " clears plus over-polish (plating overburden, 002 cl. 38), or for a time (touch"
            " polish of encapsulant and bumps, 003 cl. 4).",
            params=(
                Param(
                    "material",
                    choices=SLURRIES,
                    setup="slurry",
                    doc="film polished, and the slurry for it: CU (Cu overburden over a"
                    " dielectric), OXIDE, POLYMER (encapsulant or polyimide with metal"
                    " features)",
                ),
                Param("pressure", "kPa", 14, 35, default=20.0, doc="down force on the wafer"),
                Param("velocity", "m/s", 0.5, 1.5, default=1.0, doc="pad–wafer relative speed"),
                Param(
                    "endpoint",
                    choices=ENDPOINTS,
                    default="TIME",
                    doc="CLEAR: polish until the overburden clears (friction endpoint), then"
                    " over-polish; TIME: polish for `time`",
                ),
                Param("time", "s", 5, 3600, default=60.0, doc="polish time (endpoint TIME)"),
                Param(
                    "overburden",
                    "nm",
                    0,
                    20000,
                    default=0.0,
                    doc="film to clear above the features or stop layer; 0 = none (features"
                    " already exposed, or a blanket film polished for `time`)",
                ),
                Param(
                    "overpolish",
                    "%",
                    0,
                    100,
                    default=20.0,
                    doc="extra polish after the endpoint, as % of the clearing time (CLEAR)",
                ),
                Param(
                    "feature_width",
                    "µm",
                    0,
                    1000,
                    default=0.0,
                    doc="width of the metal features left inlaid (dishing grows with it; 0 = none)",
                ),
                Param(
                    "slurry_flow", "mL/min", 50, 400, default=200.0, doc="slurry flow on the pad"
                ),
                Param(
                    "work_size",
                    "mm",
                    50,
                    320,
                    default=300.0,
                    doc="wafer diameter, or the diagonal of a strip or panel",
                ),
            ),
            results=(
                Result("removed", "nm", "thickness removed over the field (film + erosion)"),
                Result("rate", "nm/min", "removal rate of the film"),
                Result("residue", "nm", "overburden left (a TIME polish that stopped short)"),
                Result(
                    "dishing",
                    "nm",
                    "recess of the metal features below the field (negative: they protrude)",
                ),
                Result("erosion", "nm", "field (stop layer) lost after the overburden cleared"),
                Result("ra", "nm", "surface roughness Ra"),
                Result("polish_time", "s", "time on the pad"),
                Result("slurry_used", "L", "slurry used by this job"),
                Result("duration", "min", "job time incl. load, conditioning and clean"),
            ),
            rules=(Rule("endpoint CLEAR needs overburden > 0", _clear),),
        ),
    ),
    alarms=(
        Alarm(801, "SPINDLE_OVERLOAD", "spindle current overload (wheel loading or dull wheel)"),
        Alarm(802, "COARSE_WHEEL_WORN", "coarse wheel worn: less rim left than the job needs"),
        Alarm(803, "FINE_WHEEL_WORN", "fine wheel worn: less rim left than the job needs"),
        Alarm(804, "GAUGE_FAULT", "in-process thickness gauge fault"),
        Alarm(
            805,
            "CHUCK_VACUUM",
            "chuck vacuum lost: the work is too warped for its stiffness to be pulled flat",
        ),
        Alarm(
            806,
            "CRACK_DETECT",
            "crack detected: coarse grinding damage reached through the remaining wafer",
        ),
        Alarm(807, "THICKNESS_OVERSHOOT", "ground below target by more than the tolerance"),
        Alarm(808, "PAD_WORN", "CMP pad past its life: replace the pad"),
        Alarm(809, "SLURRY_EMPTY", "CMP slurry supply empty"),
        Alarm(810, "ENDPOINT_TIMEOUT", "CMP endpoint not found within the 60 min polish limit"),
        Alarm(
            880,
            "SUBSURFACE_DAMAGE",
            "fine_removal below the coarse wheel's damage depth: damage left in the work",
            warning=True,
        ),
        Alarm(
            881,
            "EXPOSURE_INCOMPLETE",
            "features left covered: exposed fraction below 99.9 %",
            warning=True,
        ),
        Alarm(
            882,
            "METAL_SMEAR",
            "the coarse wheel ground into the features: smearing and burrs likely",
            warning=True,
        ),
        Alarm(883, "CMP_RESIDUE", "overburden left after a timed polish", warning=True),
        Alarm(890, "COARSE_WHEEL_WEAR", "coarse wheel above 90 % of its rim", warning=True),
        Alarm(891, "FINE_WHEEL_WEAR", "fine wheel above 90 % of its rim", warning=True),
        Alarm(892, "PAD_LIFE", "CMP pad above 90 % of its life", warning=True),
        Alarm(893, "SLURRY_LOW", "CMP slurry below 10 %", warning=True),
    ),
    consumables=(
        Consumable("coarse_wheel_wear", "µm", 3000.0, "coarse wheel rim worn since it was fitted"),
        Consumable("fine_wheel_wear", "µm", 2000.0, "fine wheel rim worn since it was fitted"),
        Consumable("cmp_pad", "h", 25.0, "CMP pad hours since it was fitted"),
        Consumable("slurry", "L", 200.0, "CMP slurry left in the supply", supply=True),
    ),
    setup=(
        SetupField("coarse_wheel", COARSE_WHEELS, multi=False, doc="grit of the Z1 (coarse) wheel"),
        SetupField("fine_wheel", FINE_WHEELS, multi=False, doc="grit of the Z2 (fine) wheel"),
        SetupField("slurry", SLURRIES, multi=False, doc="slurry loaded on the CMP station"),
    ),
    default_setup={"coarse_wheel": ("G320",), "fine_wheel": ("G2000",), "slurry": ("CU",)},
)
