"""Molding press with film-assisted molding and a post-mold-cure oven (Modbus TCP): transfer and
compression molding of strips, panels and wafers, exposed bumps or die backs, post-mold cure."""

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

COMPOUNDS = ("EMC_TABLET", "EMC_TABLET_LOW_CTE", "EMC_MUF", "EMC_GRANULE", "LMC_LIQUID")
COMPOUND_FORM = {"EMC_TABLET": "TABLET", "EMC_TABLET_LOW_CTE": "TABLET", "EMC_MUF": "TABLET",
                 "EMC_GRANULE": "GRANULE", "LMC_LIQUID": "LIQUID"}  # fmt: skip
"""Tablets feed the transfer pots; granules and liquid are dispensed into a compression cavity."""
FORM_METHOD = {"TABLET": "TRANSFER", "GRANULE": "COMPRESSION", "LIQUID": "COMPRESSION"}
FILLER_CUT_UM = {"EMC_TABLET": 75.0, "EMC_TABLET_LOW_CTE": 55.0, "EMC_MUF": 20.0,
                 "EMC_GRANULE": 55.0, "LMC_LIQUID": 25.0}  # fmt: skip
"""Top cut of the silica filler: a gap narrower than GAP_PER_CUT × the top cut jams."""
GAP_PER_CUT = 3.0

METHODS = ("TRANSFER", "COMPRESSION")
MOLD_TEMP_WINDOW = {"TRANSFER": (165.0, 185.0), "COMPRESSION": (125.0, 175.0)}  # °C
PRESSURE_WINDOW = {"TRANSFER": (5.0, 10.0), "COMPRESSION": (0.5, 5.0)}  # MPa
STANDARD_PRESSURE = {"TRANSFER": 7.0, "COMPRESSION": 3.0}  # MPa, used when pressure is 0
STANDARD_CURE_S = {"TRANSFER": 90.0, "COMPRESSION": 450.0}  # used when cure_time is 0
CURE_TIME_MIN_S = 60.0
SUBSTRATES = ("SI", "ORGANIC", "GLASS")
SHAPES = ("ROUND", "RECT")

TEMP_MARGIN_C = 5.0  # mold and cure temperatures stay this far below temp_limit
CLAMP_CAPACITY_KN = 800.0
RUNNER_AREA = 0.15  # transfer: runners and culls add this share of the part area to the clamp
FILM_EMBED_MAX_UM = 20.0  # exposed features may press at most this far into the 50 µm film
ATMOSPHERE_MBAR = 1013.0


def pressure_mpa(v: Mapping[str, Value]) -> float:
    """The pressure a mold job runs at: its own setpoint, or the method's standard."""
    p = float(v["pressure"])
    return STANDARD_PRESSURE[str(v["method"])] if p == 0 else p


def cure_seconds(v: Mapping[str, Value]) -> float:
    """The in-mold cure time of a job: its own setpoint, or the method's standard."""
    t = float(v["cure_time"])
    return STANDARD_CURE_S[str(v["method"])] if t == 0 else t


def cavity_area_mm2(v: Mapping[str, Value]) -> float:
    """Area under the cavity of a mold job (pockets: their share of the work's area)."""
    return _area(v)


def work_area_mm2(shape: str, width_mm: float, length_mm: float) -> float:
    return math.pi * (width_mm / 2.0) ** 2 if shape == "ROUND" else width_mm * length_mm


def clamp_force_kn(method: str, pressure: float, area_mm2: float) -> float:
    """Cavity pressure × projected area (+ runners and culls for transfer)."""
    share = 1.0 + (RUNNER_AREA if method == "TRANSFER" else 0.0)
    return pressure * area_mm2 * share / 1000.0  # MPa·mm² = N


def _area(v: Mapping[str, Value]) -> float:
    """Area under the cavity: the work's, or the pockets' share of it."""
    share = float(v.get("cavity_share", 100.0)) / 100.0
    return share * work_area_mm2(
        str(v["work_shape"]), float(v["work_width"]), float(v["work_length"])
    )


def _form(v: Mapping[str, Value]) -> str | None:
    compound, method = str(v["compound"]), str(v["method"])
    form = COMPOUND_FORM[compound]
    if FORM_METHOD[form] != method:
        return f"compound {compound} ({form.lower()}) is for {FORM_METHOD[form]}, not {method}"
    return None


def _temp_limit(name: str) -> Rule:
    def check(v: Mapping[str, Value]) -> str | None:
        t, limit = float(v[name]), float(v["temp_limit"])
        if t > limit - TEMP_MARGIN_C:
            return f"{name} {t:g} °C > temp_limit {limit:g} °C - {TEMP_MARGIN_C:g} °C margin"
        return None

    return Rule(f"{name} ≤ temp_limit − {TEMP_MARGIN_C:g} °C (the work's thermal budget)", check)


def _cure_time(v: Mapping[str, Value]) -> str | None:
    t = float(v["cure_time"])
    if 0 < t < CURE_TIME_MIN_S:
        return f"cure_time {t:g} s < {CURE_TIME_MIN_S:g} s (0 = the method's standard)"
    return None


def _clamp(v: Mapping[str, Value]) -> str | None:
    force = clamp_force_kn(str(v["method"]), pressure_mpa(v), _area(v))
    if force > CLAMP_CAPACITY_KN:
        return (
            f"clamp force {force:.0f} kN > {CLAMP_CAPACITY_KN:g} kN press capacity"
            f" (pressure {pressure_mpa(v):g} MPa over {_area(v):.0f} mm²)"
        )
    return None


def _exposed(v: Mapping[str, Value]) -> str | None:
    height, cap = float(v["exposed_height"]), float(v["thickness"])
    if height == 0:
        return None
    if v["film_assist"] != "FAM":
        return f"exposed_height {height:g} µm needs film_assist FAM (or mold over and grind)"
    if height < cap:
        return f"exposed_height {height:g} µm < thickness {cap:g} µm: the features get covered"
    if height > cap + FILM_EMBED_MAX_UM:
        return (
            f"exposed_height {height:g} µm > thickness {cap:g} µm + {FILM_EMBED_MAX_UM:g} µm"
            " the film can take"
        )
    return None


def _gap(v: Mapping[str, Value]) -> str | None:
    gap, compound, cap = float(v["min_gap"]), str(v["compound"]), float(v["thickness"])
    if gap == 0:
        if float(v["occupied_volume"]) > 0 or float(v["exposed_height"]) > 0:
            return (
                "min_gap 0 with parts in the cavity (occupied_volume or exposed_height > 0):"
                " give the narrowest gap the compound must fill"
            )
        return None
    need = GAP_PER_CUT * FILLER_CUT_UM[compound]
    if gap < need:
        return (
            f"min_gap {gap:g} µm < {need:g} µm ({GAP_PER_CUT:g} × the {FILLER_CUT_UM[compound]:g}"
            f" µm filler cut of {compound})"
        )
    if gap > cap:
        return f"min_gap {gap:g} µm > thickness {cap:g} µm"
    return None


def _shape(v: Mapping[str, Value]) -> str | None:
    length = float(v["work_length"])
    if v["work_shape"] == "RECT" and length < 10:
        return "work_shape RECT needs work_length ≥ 10 mm"
    if v["work_shape"] == "ROUND" and length != 0:
        return "work_length is only used with work_shape RECT (ROUND: work_width = diameter)"
    return None


_SHAPE_RULE = Rule("RECT work needs work_length ≥ 10 mm; ROUND work leaves it at 0", _shape)

_WORK = (
    Param("substrate", choices=SUBSTRATES,
          doc="what the compound is molded onto: SI wafer or stack, ORGANIC substrate strip or"
          " panel, GLASS carrier (sets the warpage)"),
    Param("substrate_thickness", "µm", 50, 3000,
          doc="thickness of the work under the new mold cap (substrate plus earlier layers)"),
    Param("thickness", "µm", 50, 2000,
          doc="mold cap thickness above the substrate surface (the cavity depth)"),
    Param("work_shape", choices=SHAPES, default="RECT", doc="ROUND wafer, or RECT strip/panel"),
    Param("work_width", "mm", 10, 320, doc="wafer diameter, or strip/panel width"),
    Param("work_length", "mm", 0, 320, default=0.0, doc="strip/panel length (RECT)"),
)  # fmt: skip

_WARP_RESULTS = (
    Result("warpage", "µm", "largest warpage (size of the bow) at 25 °C, worst work piece"),
    Result("bow", "µm", "signed bow at 25 °C: + edges up (mold side concave), − centre up"),
)

MOLD = ToolInterface(
    kind="mold",
    id_prefix="MOLD",
    qualification=Qualification(
        "mold",
        {
            "compound": "EMC_TABLET",
            "substrate": "ORGANIC",
            "substrate_thickness": "300 µm",
            "thickness": "500 µm",
            "work_width": "70 mm",
            "work_length": "240 mm",
        },
    ),
    consumable_alarms={
        "emc_supply": (708, 790),
        "release_film": (709, 791),
        "shots_since_clean": (710, 792),
        "emc_floor_time": (707, 793),
    },
    protocol="modbus",
    title="Molding press with film-assisted molding and post-mold cure",
    vendor="FABLINE-SIM",
    model="MOLDMASTER-3",
    doc=(
        "Encapsulates strips, panels and wafers in epoxy mold compound. TRANSFER molding"
        " pushes molten tablets from the pots through runners into the cavity; COMPRESSION"
        " molding dispenses granules or liquid compound into the cavity and closes on it"
        " (wafer level). One job molds `work_pieces` pieces, one shot each. With film_assist"
        " FAM a release film lines the cavity; features standing `exposed_height` above the"
        " substrate press into the film and stay exposed (bump ends, die backs: 003 claims 1"
        " and 7) — `thickness` is then the cap level, up to 20 µm below the feature tops. The"
        " compound must fill the cavity before it gels: the flow front advances at the pot"
        " (or closing) speed while the pressure can push it, x² ≤ (P·h²/6)·∫dt/η with a"
        " Castro–Macosko viscosity η(T, α) and Kamal cure α(t); a short shot stops the job."
        " Warpage at 25 °C follows the bilayer curvature of compound on substrate (κL²/8)."
        " `post_mold_cure` finishes the cure in the oven. `temp_limit` carries the work's"
        " thermal budget (e.g. SnPb bumps, solidus 183 °C, already in the package): jobs are"
        " refused unless mold and cure temperatures stay 5 °C below it. pressure and cure_time"
        " left at 0 run at the method's standard (TRANSFER 7 MPa, 90 s; COMPRESSION 3 MPa,"
        " 450 s)."
    ),
    operations=(
        Operation(
            "mold",
            1,
            "Mold a cap of compound over each work piece (one shot per piece) and measure it.",
            params=(
                Param(
                    "compound",
                    choices=COMPOUNDS,
                    setup="compounds",
                    doc="mold compound (must be loaded): tablets for TRANSFER; granules or"
                    " liquid for COMPRESSION",
                ),
                Param("method", choices=METHODS, default="TRANSFER", doc="molding method"),
                Param(
                    "film_assist",
                    choices=("NONE", "FAM"),
                    default="NONE",
                    doc="FAM: release film lines the cavity (needed for exposed features)",
                ),
                *_WORK,
                Param(
                    "work_pieces",
                    "count",
                    1,
                    50,
                    default=1.0,
                    integer=True,
                    doc="strips, panels or wafers in the job, one shot each",
                ),
                Param(
                    "units",
                    "count",
                    1,
                    100_000,
                    default=1.0,
                    integer=True,
                    doc="package sites per work piece (short shots are counted per site)",
                ),
                Param(
                    "exposed_height",
                    "µm",
                    0,
                    2000,
                    default=0.0,
                    doc="height above the substrate of the features that must stay exposed"
                    " (bump ends, die back); they stay clean where they press ≥ 3 µm into the"
                    " film (exposed_height − thickness); 0 = everything covered",
                ),
                Param(
                    "feature_coplanarity",
                    "µm",
                    0,
                    100,
                    default=5.0,
                    doc="height range of those features (e.g. the bumps' coplanarity)",
                ),
                Param(
                    "occupied_volume",
                    "%",
                    0,
                    90,
                    default=0.0,
                    doc="share of the cavity taken by dies, bumps, heat sinks already on the"
                    " work (less compound, narrower flow)",
                ),
                Param(
                    "min_gap",
                    "µm",
                    0,
                    2000,
                    default=0.0,
                    doc="narrowest gap the compound must fill (over a die or heat sink, under"
                    " a flip chip, between bumps); 0 = none narrower than the cap (an empty"
                    " cavity only)",
                ),
                Param(
                    "mold_temp",
                    "°C",
                    125,
                    185,
                    default=175.0,
                    doc="mold temperature (TRANSFER 165–185, COMPRESSION 125–175)",
                ),
                Param(
                    "temp_limit",
                    "°C",
                    100,
                    190,
                    default=190.0,
                    doc="hottest the work may get (its thermal budget); the job is refused"
                    " unless mold_temp stays 5 °C below it",
                ),
                Param(
                    "pressure",
                    "MPa",
                    0,
                    10,
                    default=0.0,
                    doc="transfer (TRANSFER 5–10) or compression (COMPRESSION 0.5–5) pressure;"
                    " 0 = the method's standard (7 / 3 MPa)",
                ),
                Param(
                    "cure_time",
                    "s",
                    0,
                    600,
                    default=0.0,
                    doc="in-mold cure after the fill, 60–600 s; 0 = the method's standard"
                    " (TRANSFER 90 s, COMPRESSION 450 s)",
                ),
                Param(
                    "vacuum",
                    "mbar",
                    1,
                    ATMOSPHERE_MBAR,
                    default=5.0,
                    doc="cavity vacuum before the fill; 1013 = vented molding, no vacuum",
                ),
                Param(
                    "cavity_share",
                    "%",
                    5,
                    100,
                    default=100.0,
                    doc="share of the work's area under the cavity: 100 = one cavity over the"
                    " whole strip (MAP); less = a pocket over each site, leaving the substrate"
                    " around it bare (e.g. for a heat sink's feet)",
                ),
            ),
            results=(
                Result("thickness", "µm", "mean mold cap thickness above the substrate"),
                Result("thickness_range", "µm", "cap thickness range within a piece, worst piece"),
                *_WARP_RESULTS,
                Result("voids", "%", "void area in the compound (X-ray / SAM), mean"),
                Result("flash", "µm", "longest flash / resin bleed at the cavity edge"),
                Result(
                    "exposed_fraction",
                    "%",
                    "features exposed clean of compound (0 when none are to be exposed)",
                ),
                Result("short_shot", "count", "package sites not completely filled"),
                Result("cure", "%", "degree of cure at ejection"),
                Result("tg", "°C", "glass transition at ejection (DiBenedetto)"),
                Result("gel_time", "s", "gel time of the compound at the mold temperature"),
                Result("fill_time", "s", "time for the flow front to fill the cavity"),
                Result(
                    "flow_reach",
                    "%",
                    "flow length the compound reaches before it gels, % of the flow length",
                ),
                Result("viscosity", "Pa·s", "melt viscosity at the start of the fill"),
                Result("mold_temp_measured", "°C", "mold temperature during the cure"),
                Result("pressure_measured", "MPa", "transfer / compression pressure reached"),
                Result("vacuum_measured", "mbar", "cavity pressure before the fill"),
                Result("clamp_force", "kN", "clamp force held"),
                Result("emc_used", "g", "compound used, culls and runners included"),
                Result("film_used", "m", "release film used"),
                Result("duration", "min", "job time"),
            ),
            rules=(
                Rule(
                    "compound form fits the method: tablets TRANSFER, granules and liquid"
                    " COMPRESSION",
                    _form,
                ),
                Rule(
                    "mold_temp inside the method's window: TRANSFER 165–185 °C, COMPRESSION"
                    " 125–175 °C",
                    window("method", "mold_temp", MOLD_TEMP_WINDOW, "°C"),
                ),
                _temp_limit("mold_temp"),
                Rule(
                    "pressure 0 (standard) or inside the method's window: TRANSFER 5–10 MPa,"
                    " COMPRESSION 0.5–5 MPa",
                    window("method", "pressure", PRESSURE_WINDOW, "MPa", unset=0.0),
                ),
                Rule("cure_time 0 (standard) or 60–600 s", _cure_time),
                Rule(
                    f"clamp force (pressure × area, + 15 % runners for TRANSFER) ≤"
                    f" {CLAMP_CAPACITY_KN:g} kN",
                    _clamp,
                ),
                Rule(
                    "exposed features need FAM and thickness ≤ exposed_height ≤ thickness + 20 µm",
                    _exposed,
                ),
                Rule(
                    "min_gap ≥ 3 × the compound's filler top cut and ≤ thickness; 0 (none"
                    " narrower than the cap) only for a cavity with nothing in it",
                    _gap,
                ),
                _SHAPE_RULE,
            ),
            pieces=Pieces("strip, panel or wafer", 50, "work_pieces"),
        ),
        Operation(
            "post_mold_cure",
            2,
            "Finish the cure of molded work in the oven (batch) and measure Tg and warpage.",
            params=(
                Param(
                    "compound",
                    choices=COMPOUNDS,
                    doc="compound of the molded work (need not be loaded in the press)",
                ),
                Param(
                    "cure_in",
                    "%",
                    0,
                    100,
                    default=85.0,
                    doc="degree of cure the work comes in with (the mold job's `cure`)",
                ),
                Param("cure_temp", "°C", 150, 185, default=175.0, doc="oven temperature"),
                Param("cure_time", "h", 2, 8, default=4.0, doc="time at cure_temp"),
                Param(
                    "temp_limit",
                    "°C",
                    100,
                    190,
                    default=190.0,
                    doc="hottest the work may get; refused unless cure_temp stays 5 °C below",
                ),
                *_WORK,
                Param(
                    "work_pieces",
                    "count",
                    1,
                    500,
                    default=1.0,
                    integer=True,
                    doc="strips, panels or wafers in the oven batch",
                ),
                Param(
                    "cavity_share",
                    "%",
                    5,
                    100,
                    default=100.0,
                    doc="share of the work's area the molded cap covers (pockets: less)",
                ),
            ),
            results=(
                Result("cure", "%", "degree of cure after the oven"),
                Result("tg", "°C", "glass transition after the oven (DiBenedetto)"),
                *_WARP_RESULTS,
                Result("cure_temp_measured", "°C", "oven temperature during the hold"),
                Result("duration", "min", "ramp up, hold and cool down"),
            ),
            rules=(_temp_limit("cure_temp"), _SHAPE_RULE),
            pieces=Pieces("strip, panel or wafer", 50, "work_pieces"),
        ),
    ),
    alarms=(
        Alarm(701, "TEMP_DEVIATION", "mold or oven temperature off set point by more than ±3 °C"),
        Alarm(702, "CLAMP_PRESSURE_LOW", "clamp pressure low: the mold cannot hold closed"),
        Alarm(703, "TRANSFER_PRESSURE_LOW", "transfer / compression pressure below set point"),
        Alarm(704, "SHORT_SHOT", "short shot: compound gelled before it filled the cavity"),
        Alarm(705, "VACUUM_FAULT", "cavity vacuum not reached: clean the mold (vent/seal fouling)"),
        Alarm(706, "RELEASE_FILM_BREAK", "release film torn: punctured by the exposed features"),
        Alarm(707, "EMC_FLOOR_LIFE", "EMC floor life exceeded: load a freshly thawed lot"),
        Alarm(708, "EMC_EMPTY", "compound supply empty (cull out): load compound"),
        Alarm(709, "FILM_ROLL_EMPTY", "release film roll empty: load a new roll"),
        Alarm(710, "MOLD_CLEAN_OVERDUE", "shots since mold clean at the limit: clean the mold"),
        Alarm(790, "EMC_SUPPLY_LOW", "compound supply below 10 %", warning=True),
        Alarm(791, "FILM_ROLL_LOW", "release film roll below 10 %", warning=True),
        Alarm(792, "MOLD_CLEAN_DUE", "mold at 90 % of its shots between cleans", warning=True),
        Alarm(793, "FLOOR_LIFE_NEAR", "EMC at 90 % of its floor life", warning=True),
        Alarm(794, "UNDERCURE", "degree of cure low (mold < 60 %, oven < 95 %)", warning=True),
        Alarm(
            795, "INCOMPLETE_FILL", "some package sites short: flow reach marginal", warning=True
        ),
        Alarm(796, "FLASH_HIGH", "flash above 50 µm: deflash, clean the mold", warning=True),
    ),
    consumables=(
        Consumable("emc_supply", "g", 50_000.0, "compound loaded in the press", supply=True),
        Consumable("release_film", "m", 300.0, "release film left on the roll", supply=True),
        Consumable("shots_since_clean", "count", 1000.0, "shots since the last mold clean"),
        Consumable(
            "emc_floor_time",
            "h",
            72.0,
            "process hours the loaded compound has spent out of the freezer; loading"
            " fresh compound (replacing emc_supply) restarts it",
        ),
    ),
    setup=(SetupField("compounds", COMPOUNDS, doc="compounds loaded in the press"),),
    default_setup={"compounds": tuple(c for c in COMPOUNDS if c != "EMC_MUF")},
)
