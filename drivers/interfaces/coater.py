"""Coater (SCPI): spin and spray coating, dispensing, stencil printing, and the cure oven.

Polymer layers of every flow go through this tool: the insulating adhesive of the stacked
wafers (polyimide or epoxy, B-staged, cured after bonding) and the TSV liner (000), the
thermally conductive epoxy on the wafer back, capillary underfill and heat-spreader adhesive
(001), photoresist bosses, conductive paste bodies, dielectric, encapsulant fill and protective
layer (002), and heat-sink adhesive (003).
"""

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

MATERIALS = (
    "POLYIMIDE",  # polyimide (PI-2611 class), cured 300–375 °C in N₂
    "LOW_T_PI",  # low-temperature polyimide, cured 200–250 °C
    "PSPI",  # photo-sensitive polyimide
    "BCB",  # benzocyclobutene
    "EPOXY",  # epoxy resin: insulating adhesive, encapsulant fill
    "DIELECTRIC",  # epoxy-based dielectric, patterned by resist mask + etch (walls, 002)
    "PROTECTIVE",  # epoxy protective layer (002 cl.4)
    "PHOTO_INK",  # photo-sensitive ink (encapsulant, 002 cl.10/29)
    "SEAL_RESIN",  # resin sealing layer on the top wafer (000 cl.16)
    "UNDERFILL",  # capillary underfill
    "TC_EPOXY",  # thermally conductive epoxy (001 cl.5/25)
    "CONDUCTIVE_PASTE",  # Ag-filled epoxy paste (002 conductive bodies)
    "PR_THIN",  # photoresist 1–3 µm
    "PR_THICK",  # photoresist 10–50 µm (plating masks, bosses)
    "ADHESIVE",  # epoxy adhesive for heat spreader, stiffener and heat sink
    "NCP",  # non-conductive paste: pre-applied underfill dispensed before a TC flip-chip bond
    "ACP",  # anisotropic conductive paste: printed, joins film traces to pads (002 cl. 48)
)
PHOTORESISTS = ("PR_THIN", "PR_THICK")

SPIN_MATERIALS = ("POLYIMIDE", "LOW_T_PI", "PSPI", "BCB", "EPOXY", "DIELECTRIC", "PROTECTIVE",
                  "PHOTO_INK", "SEAL_RESIN", "ADHESIVE", "PR_THIN", "PR_THICK")  # fmt: skip
SPRAY_MATERIALS = (
    "POLYIMIDE",
    "LOW_T_PI",
    "PSPI",
    "BCB",
    "EPOXY",
    "DIELECTRIC",
    "PR_THIN",
    "PR_THICK",
)
DISPENSE_MATERIALS = ("UNDERFILL", "EPOXY", "POLYIMIDE", "PHOTO_INK", "CONDUCTIVE_PASTE",
                      "TC_EPOXY", "ADHESIVE", "SEAL_RESIN", "NCP")  # fmt: skip
PRINT_MATERIALS = ("CONDUCTIVE_PASTE", "TC_EPOXY", "EPOXY", "ADHESIVE", "PHOTO_INK", "ACP")
CURE_MATERIALS = tuple(m for m in MATERIALS if m not in PHOTORESISTS)

# Material supplies, one reservoir per family: material -> consumable it is drawn from.
SUPPLY = {
    "POLYIMIDE": "supply_polyimide", "LOW_T_PI": "supply_polyimide", "PSPI": "supply_polyimide",
    "BCB": "supply_bcb",
    "EPOXY": "supply_epoxy", "DIELECTRIC": "supply_epoxy", "PROTECTIVE": "supply_epoxy",
    "PHOTO_INK": "supply_epoxy", "SEAL_RESIN": "supply_epoxy",
    "UNDERFILL": "supply_underfill",
    "TC_EPOXY": "supply_adhesive", "ADHESIVE": "supply_adhesive",
    "CONDUCTIVE_PASTE": "supply_paste",
    "PR_THIN": "supply_resist", "PR_THICK": "supply_resist",
    "NCP": "supply_underfill", "ACP": "supply_adhesive",
}  # fmt: skip

# Largest filler particle, µm (0: unfilled). Sets the 5-ball rule of stencil apertures and the
# needle a filled material clogs.
PARTICLE_UM = {"EPOXY": 25.0, "PHOTO_INK": 10.0, "SEAL_RESIN": 25.0, "UNDERFILL": 10.0,
               "TC_EPOXY": 45.0, "CONDUCTIVE_PASTE": 25.0, "ADHESIVE": 20.0, "PROTECTIVE": 25.0,
               "DIELECTRIC": 0.0, "NCP": 3.0, "ACP": 5.0}  # fmt: skip
GAP_PER_PARTICLE = 3.0  # an underfill flows into a gap at least this many top cuts wide

# Pot life at room temperature after thawing or mixing, h: the time the viscosity takes to
# double (engineering estimates for one-part, frozen-stored materials).
POT_LIFE_H = {m: 24.0 for m in MATERIALS} | {"POLYIMIDE": 336.0, "LOW_T_PI": 336.0, "PSPI": 336.0,
              "BCB": 720.0, "PR_THIN": 720.0, "PR_THICK": 720.0, "DIELECTRIC": 48.0,
              "CONDUCTIVE_PASTE": 48.0}  # fmt: skip

NEEDLES = ("G18", "G20", "G22", "G23", "G25", "G27", "G30")
NEEDLE_ID_UM = {"G18": 840.0, "G20": 600.0, "G22": 410.0, "G23": 330.0, "G25": 250.0,
                "G27": 210.0, "G30": 150.0}  # fmt: skip
PATTERNS = ("CAPILLARY", "FILL", "DOT", "LINE")

# Cure windows (process-reference.md §2 COAT; 000 step 4; BOND table for attach adhesives):
# material -> (temp low, temp high °C, time low, time high min)
CURE_WINDOW: dict[str, tuple[float, float, float, float]] = {
    "POLYIMIDE": (300.0, 375.0, 60.0, 600.0),
    "PSPI": (300.0, 375.0, 60.0, 600.0),
    "LOW_T_PI": (200.0, 250.0, 60.0, 600.0),
    "BCB": (210.0, 250.0, 30.0, 240.0),
    "EPOXY": (150.0, 175.0, 30.0, 120.0),
    "PROTECTIVE": (150.0, 175.0, 30.0, 120.0),
    "SEAL_RESIN": (150.0, 175.0, 30.0, 120.0),
    "UNDERFILL": (150.0, 175.0, 30.0, 120.0),
    "TC_EPOXY": (150.0, 175.0, 30.0, 120.0),
    "DIELECTRIC": (150.0, 200.0, 30.0, 120.0),
    "PHOTO_INK": (140.0, 160.0, 30.0, 120.0),
    "ADHESIVE": (125.0, 175.0, 30.0, 120.0),
    "CONDUCTIVE_PASTE": (150.0, 200.0, 15.0, 120.0),
    "NCP": (150.0, 175.0, 30.0, 120.0),
    "ACP": (150.0, 200.0, 15.0, 120.0),
}
# B-stage (partial cure before bonding or a later full cure), engineering estimates
_IMIDE = ("POLYIMIDE", "PSPI", "LOW_T_PI")
B_STAGE_WINDOW: dict[str, tuple[float, float, float, float]] = {
    m: (120.0, 200.0, 1.0, 60.0) if m in _IMIDE
    else (150.0, 210.0, 1.0, 60.0) if m == "BCB"
    else (80.0, 130.0, 1.0, 60.0)
    for m in CURE_MATERIALS
}  # fmt: skip
N2_MATERIALS = ("POLYIMIDE", "PSPI", "LOW_T_PI", "BCB")  # oxidise when cured hot in air
O2_MAX_PPM = 100.0  # their full cure needs an O₂ limit at or below this

GAP_FILL_FACTOR = 0.9  # share of the die-to-substrate gap not taken by bumps
AREA_RATIO_MIN = 0.5  # IPC-7525: below this the paste stays in the aperture
PARTICLES_PER_APERTURE = 5.0  # the 5-ball rule
MAX_PASS_UM = 3.0  # thickest dry film one spray pass may lay down before the wet film runs


def gap_volume_ul(flow_length_mm: float, gap_um: float) -> float:
    """Underfill volume that fills the gap under a square die of edge flow_length, µL."""
    return flow_length_mm**2 * gap_um * 1e-3 * GAP_FILL_FACTOR


def area_ratio(aperture_mm: float, stencil_um: float) -> float:
    """Aperture opening area over aperture wall area: D/(4t) for a round or square opening."""
    return aperture_mm * 1000.0 / (4.0 * stencil_um)


def _supply_doc() -> str:
    families: dict[str, list[str]] = {}
    for material, supply in SUPPLY.items():
        families.setdefault(supply, []).append(material)
    return "; ".join(f"`{k}` {', '.join(v)}" for k, v in families.items())


def _window_doc(windows: Mapping[str, tuple[float, float, float, float]]) -> str:
    groups: dict[tuple[float, float, float, float], list[str]] = {}
    for m, w in windows.items():
        groups.setdefault(w, []).append(m)
    return "; ".join(
        f"{'/'.join(ms)} {lo:g}–{hi:g} °C for {tlo:g}–{thi:g} min"
        for (lo, hi, tlo, thi), ms in groups.items()
    )


def _cure_window(v: Mapping[str, Value]) -> str | None:
    material, stage = str(v["material"]), str(v["stage"])
    temp, minutes = float(v["temp"]), float(v["time"])
    lo, hi, tlo, thi = (CURE_WINDOW if stage == "FULL" else B_STAGE_WINDOW)[material]
    what = "full-cure" if stage == "FULL" else "B-stage"
    if not lo <= temp <= hi:
        return f"temp {temp:g} °C outside the {material} {what} window {lo:g}–{hi:g} °C"
    if not tlo <= minutes <= thi:
        return f"time {minutes:g} min outside the {material} {what} window {tlo:g}–{thi:g} min"
    return None


def _cure_atmosphere(v: Mapping[str, Value]) -> str | None:
    material = str(v["material"])
    if v["stage"] != "FULL" or material not in N2_MATERIALS:
        return None
    if v["atmosphere"] != "N2":
        return f"{material} full cure needs atmosphere N2 (oxidises in air), got {v['atmosphere']}"
    if float(v["o2"]) > O2_MAX_PPM:
        return f"o2 {float(v['o2']):g} ppm > {O2_MAX_PPM:g} ppm: too high for a {material} cure"
    return None


def _capillary_geometry(v: Mapping[str, Value]) -> str | None:
    gap, length = float(v["gap"]), float(v["flow_length"])
    if v["pattern"] == "CAPILLARY":
        if v["material"] != "UNDERFILL":
            return f"pattern CAPILLARY needs material UNDERFILL, got {v['material']}"
        if gap <= 0 or length <= 0:
            return "pattern CAPILLARY needs gap > 0 and flow_length > 0"
        cut = PARTICLE_UM[str(v["material"])]
        if gap < GAP_PER_PARTICLE * cut:
            return (
                f"gap {gap:g} µm < {GAP_PER_PARTICLE * cut:g} µm ({GAP_PER_PARTICLE:g} × the"
                f" {cut:g} µm filler top cut): the underfill front jams"
            )
        need = gap_volume_ul(length, gap)
        if float(v["volume"]) < need:
            return (
                f"volume {float(v['volume']):g} µL < {need:.4g} µL gap volume"
                f" ({length:g} mm square die, {gap:g} µm gap)"
            )
    elif gap != 0 or length != 0:
        return "gap and flow_length are only used with pattern CAPILLARY"
    return None


def _line_length(v: Mapping[str, Value]) -> str | None:
    length = float(v["line_length"])
    if v["pattern"] == "LINE" and length <= 0:
        return "pattern LINE needs line_length > 0"
    if v["pattern"] != "LINE" and length != 0:
        return "line_length is only used with pattern LINE"
    return None


def _area_ratio(v: Mapping[str, Value]) -> str | None:
    aperture, stencil = float(v["aperture"]), float(v["stencil_thickness"])
    ratio = area_ratio(aperture, stencil)
    if ratio < AREA_RATIO_MIN:
        return (
            f"area ratio {ratio:.2f} < {AREA_RATIO_MIN:g}: aperture {aperture * 1000:g} µm too"
            f" small for a {stencil:g} µm stencil"
        )
    return None


def _particles(v: Mapping[str, Value]) -> str | None:
    material, aperture_um = str(v["material"]), float(v["aperture"]) * 1000.0
    need = PARTICLES_PER_APERTURE * PARTICLE_UM[material]
    if aperture_um < need:
        return (
            f"aperture {aperture_um:g} µm < {need:g} µm (5 × the {PARTICLE_UM[material]:g} µm"
            f" {material} particles)"
        )
    return None


def _per_pass(v: Mapping[str, Value]) -> str | None:
    thickness, passes = float(v["thickness"]), float(v["passes"])
    if thickness / passes > MAX_PASS_UM:
        return (
            f"{thickness / passes:.3g} µm per pass > {MAX_PASS_UM:g} µm: use at least"
            f" {int(-(-thickness // MAX_PASS_UM))} passes for {thickness:g} µm"
        )
    return None


_SOFTBAKE = (
    Param("softbake_temp", "°C", 90, 130, default=110.0, doc="hot-plate soft bake after coating"),
    Param("softbake_time", "s", 30, 1800, default=120.0,
          doc="soft-bake time; thick films need longer (solvent leaves in ∝ thickness²)"),
)  # fmt: skip
_WAFER = Param("wafer_diameter", "mm", 100, 300, default=300.0, doc="wafer diameter")
_POT_AGE = Param(
    "pot_age",
    "h",
    0,
    720,
    default=0.0,
    doc="time since the loaded material was thawed or mixed (from its lot label); viscosity"
    " doubles over the pot life (24 h; POLYIMIDE, LOW_T_PI, PSPI 336 h; CONDUCTIVE_PASTE 48 h),"
    " the tool warns past 80 % of it and alarms when the material passes it",
)
_MATERIAL_USED = Result("material_used", "mL", "material drawn from the supply by this job")
_DURATION = Result("duration", "min", "job time")
_SOLVENT = Result("residual_solvent", "%", "solvent left in the film after the soft bake")

COATER = ToolInterface(
    kind="coater",
    id_prefix="COAT",
    qualification=Qualification("spin_coat", {"material": "POLYIMIDE", "spin_speed": "3000 rpm"}),
    consumable_alarms={
        **{
            c: (608, 690)
            for c in (
                "supply_polyimide",
                "supply_bcb",
                "supply_epoxy",
                "supply_underfill",
                "supply_adhesive",
                "supply_paste",
                "supply_resist",
            )
        },
        "stencil_cycles": (609, 691),
    },
    protocol="scpi",
    title="Coater: spin, spray, dispense, stencil print and cure oven",
    vendor="FABLINE-SIM",
    model="SPINJET-4",
    doc=(
        "One cluster with a spin coater, a spray coater, a dispenser, a stencil printer, hot"
        " plates and an N₂ cure oven. `spin_coat` sets the as-coated (soft-baked) thickness by"
        " spin speed, h = h_ref·(ω_ref/ω)^α per material; `spray_coat` lays a conformal film"
        " in passes (TSV liner, coating over topography); `dispense` runs capillary underfill,"
        " cavity/hole fill, dots and lines of adhesive; `print` squeegees paste through a"
        " stencil (printed thickness = stencil × transfer efficiency); `cure` runs the oven"
        " (ramp 5 °C/min from 25 °C, hold, cool to 60 °C) to a full cure inside the"
        " material's window or to a B-stage, with dα/dt = A·e^(−Ea/RT)(1−α)ⁿ. Materials must"
        " be loaded (setup `materials`) to be coated, dispensed or printed; the oven cures"
        " whatever the wafer carries. Supplies, one reservoir per material family: "
        + _supply_doc()
        + "."
    ),
    operations=(
        Operation(
            "spin_coat",
            1,
            "Spin-coat one layer and soft-bake it on the hot plate.",
            params=(
                Param(
                    "material", choices=SPIN_MATERIALS, setup="materials", doc="material to coat"
                ),
                Param("spin_speed", "rpm", 500, 5000, doc="final spin speed; sets the thickness"),
                Param("spin_time", "s", 20, 60, default=30.0, doc="time at spin_speed"),
                *_SOFTBAKE,
                Param(
                    "dispense_volume",
                    "mL",
                    0.5,
                    15,
                    default=3.0,
                    doc="material dispensed on the wafer before spinning",
                ),
                Param(
                    "ebr_width",
                    "mm",
                    0,
                    5,
                    default=2.0,
                    doc="edge-bead removal (solvent rinse) width; 0 = no edge-bead removal",
                ),
            ),
            results=(
                Result("thickness", "µm", "as-coated film thickness after the soft bake"),
                Result("uniformity", "%", "within-wafer thickness non-uniformity, 1σ"),
                Result("edge_bead", "µm", "bead height above the film at the wafer edge"),
                _SOLVENT,
                Result("speed_measured", "rpm", "spin speed held during the spin"),
                _MATERIAL_USED,
                _DURATION,
            ),
        ),
        Operation(
            "spray_coat",
            2,
            "Spray a conformal film in passes over topography (TSV liner, coat over steps).",
            params=(
                Param(
                    "material", choices=SPRAY_MATERIALS, setup="materials", doc="material to spray"
                ),
                Param("thickness", "µm", 0.5, 50, doc="dry film thickness target on the top"),
                Param(
                    "passes",
                    "count",
                    1,
                    30,
                    default=6.0,
                    integer=True,
                    doc="spray passes the thickness is laid down in; more, thinner passes"
                    " cover sidewalls better",
                ),
                Param(
                    "aspect_ratio",
                    "",
                    0,
                    10,
                    default=0.0,
                    doc="depth / width of the features to cover (0 = flat wafer)",
                ),
                Param(
                    "chuck_temp",
                    "°C",
                    20,
                    80,
                    default=60.0,
                    doc="heated chuck: a hotter wafer dries each pass before it runs off",
                ),
                *_SOFTBAKE,
                _WAFER,
            ),
            results=(
                Result("top_thickness", "µm", "film thickness on the top surface"),
                Result("sidewall_thickness", "µm", "film thickness on feature sidewalls"),
                Result("bottom_thickness", "µm", "film thickness on feature bottoms"),
                Result("step_coverage", "%", "sidewall / top thickness"),
                Result("uniformity", "%", "within-wafer top thickness non-uniformity, 1σ"),
                _SOLVENT,
                _MATERIAL_USED,
                _DURATION,
            ),
            rules=(Rule(f"thickness / passes ≤ {MAX_PASS_UM:g} µm per pass", _per_pass),),
        ),
        Operation(
            "dispense",
            3,
            "Dispense through a needle: capillary underfill, fill of cavities and holes,"
            " dots or lines of adhesive.",
            params=(
                Param(
                    "material",
                    choices=DISPENSE_MATERIALS,
                    setup="materials",
                    doc="material to dispense",
                ),
                Param(
                    "pattern",
                    choices=PATTERNS,
                    doc="CAPILLARY: underfill along one die edge, drawn under the die;"
                    " FILL: cavities, wall-enclosed areas or holes; DOT: dots; LINE: beads",
                ),
                Param("volume", "µL", 0.001, 10000, doc="volume per site"),
                Param(
                    "sites",
                    "count",
                    1,
                    1_000_000,
                    default=1.0,
                    integer=True,
                    doc="dies, cavities, holes, dots or lines dispensed (volume is per site)",
                ),
                Param(
                    "substrate_temp",
                    "°C",
                    70,
                    110,
                    default=90.0,
                    doc="substrate (stage) temperature; hotter lowers the viscosity",
                ),
                Param(
                    "needle",
                    choices=NEEDLES,
                    default="G22",
                    doc="needle gauge (inner diameter G18 840 µm … G30 150 µm); a filled"
                    " material clogs a needle narrower than 4 × its largest particle",
                ),
                Param(
                    "flow_rate",
                    "mL/min",
                    0,
                    5,
                    default=0.0,
                    doc="0 = the tool's rate (half its 600 kPa pressure limit, at most"
                    " 5 mL/min); a set rate that needs more than 600 kPa alarms",
                ),
                Param(
                    "gap",
                    "µm",
                    0,
                    200,
                    default=0.0,
                    doc="die-to-substrate gap (bump stand-off), CAPILLARY only",
                ),
                Param(
                    "flow_length",
                    "mm",
                    0,
                    30,
                    default=0.0,
                    doc="distance the underfill flows: the edge of the (square) die,"
                    " CAPILLARY only",
                ),
                Param(
                    "line_length", "mm", 0, 1000, default=0.0, doc="length of each line, LINE only"
                ),
                _POT_AGE,
            ),
            results=(
                Result("dispensed", "µL", "volume dispensed per site (weigh-scale check)"),
                Result(
                    "fill_time",
                    "s",
                    "capillary flow time across the die (Washburn), or until the front gelled;"
                    " 0 for other patterns",
                ),
                Result(
                    "fill_fraction",
                    "%",
                    "share of the gap the underfill front reached"
                    " before gelling; 100 for other patterns",
                ),
                Result("voids", "%", "void area (CAPILLARY, FILL; 0 for DOT, LINE)"),
                Result("fillet", "µm", "underfill fillet width beside the die (CAPILLARY)"),
                Result("footprint", "µm", "dot diameter (DOT) or bead width (LINE)"),
                Result("viscosity", "mPa·s", "material viscosity at the substrate temperature"),
                Result("flow_rate", "mL/min", "dispense flow rate"),
                Result("pressure", "kPa", "needle pressure drop at that rate"),
                _MATERIAL_USED,
                _DURATION,
            ),
            rules=(
                Rule(
                    "CAPILLARY is for UNDERFILL, needs gap and flow_length, a gap at least"
                    f" {GAP_PER_PARTICLE:g} × the filler top cut ({PARTICLE_UM['UNDERFILL']:g}"
                    " µm), and a volume per site ≥ the gap volume (flow_length² × gap ×"
                    f" {GAP_FILL_FACTOR:g}); other patterns leave gap and flow_length at 0",
                    _capillary_geometry,
                ),
                Rule("LINE needs line_length > 0; other patterns leave it at 0", _line_length),
            ),
        ),
        Operation(
            "print",
            4,
            "Stencil-print paste (conductive bodies, wafer-back TC epoxy, fill) and inspect.",
            params=(
                Param("material", choices=PRINT_MATERIALS, setup="materials", doc="paste to print"),
                Param("stencil_thickness", "µm", 25, 100, doc="stencil (foil) thickness"),
                Param(
                    "aperture",
                    "mm",
                    0.05,
                    300,
                    doc="smallest aperture opening (diameter or width); the wafer"
                    " diameter for a full-area wafer-back print",
                ),
                Param(
                    "open_area",
                    "%",
                    0.1,
                    100,
                    doc="stencil open area as a share of the wafer (paste use)",
                ),
                Param(
                    "squeegee_speed",
                    "mm/s",
                    10,
                    150,
                    default=40.0,
                    doc="squeegee travel speed; faster fills the apertures less",
                ),
                _WAFER,
                _POT_AGE,
            ),
            results=(
                Result("printed_thickness", "µm", "mean printed paste height (3D inspection)"),
                Result("transfer_efficiency", "%", "printed / aperture volume"),
                Result("area_ratio", "", "aperture opening / wall area, D/(4t)"),
                Result("uniformity", "%", "print height non-uniformity, 1σ"),
                _MATERIAL_USED,
                _DURATION,
            ),
            rules=(
                Rule(
                    f"area ratio aperture/(4 × stencil_thickness) ≥ {AREA_RATIO_MIN:g} (IPC-7525)",
                    _area_ratio,
                ),
                Rule("aperture ≥ 5 × the material's largest particle (5-ball rule)", _particles),
            ),
        ),
        Operation(
            "cure",
            5,
            "Cure (or B-stage) a coated, dispensed or printed layer in the oven.",
            params=(
                Param("material", choices=CURE_MATERIALS, doc="material to cure"),
                Param(
                    "stage",
                    choices=("FULL", "B_STAGE"),
                    default="FULL",
                    doc="FULL: final cure inside the material's window; B_STAGE: partial"
                    " cure before bonding or a later full cure",
                ),
                Param("temp", "°C", 80, 400, doc="hold temperature"),
                Param("time", "min", 1, 600, default=60.0, doc="hold time at temp"),
                Param("atmosphere", choices=("N2", "AIR"), default="N2"),
                Param(
                    "o2",
                    "ppm",
                    10,
                    1000,
                    default=50.0,
                    doc="O₂ limit in N2: the oven purges below it before heating (its N₂ bottoms"
                    " out near 12 ppm) and alarms if it cannot within 60 min",
                ),
                Param(
                    "thickness",
                    "µm",
                    0,
                    500,
                    default=0.0,
                    doc="as-coated thickness, for cured_thickness (0 = not given)",
                ),
            ),
            results=(
                Result("degree_of_cure", "%", "conversion α at the end of the profile"),
                Result("tg", "°C", "glass transition temperature reached (DiBenedetto)"),
                Result("shrinkage", "%", "thickness lost in the cure, s·α"),
                Result("cured_thickness", "µm", "h·(1 − s·α); 0 when thickness was not given"),
                Result("temp_measured", "°C", "oven temperature held"),
                Result("o2_measured", "ppm", "O₂ in the oven during the hold"),
                _DURATION,
            ),
            rules=(
                Rule(
                    "temp and time inside the material's window. FULL: "
                    + _window_doc(CURE_WINDOW)
                    + ". B_STAGE: "
                    + _window_doc(B_STAGE_WINDOW),
                    _cure_window,
                ),
                Rule(
                    "POLYIMIDE, PSPI, LOW_T_PI and BCB full cures run in N2 with"
                    f" o2 ≤ {O2_MAX_PPM:g} ppm",
                    _cure_atmosphere,
                ),
            ),
        ),
    ),
    alarms=(
        Alarm(601, "SPIN_SPEED", "spin speed deviation > 1 % (wafer slipping on the chuck)"),
        Alarm(602, "DISPENSE_PRESSURE", "dispense pressure above 600 kPa: volume deviation"),
        Alarm(603, "CLOG", "needle clogged or bubble in the line: dispensed volume short"),
        Alarm(604, "POT_LIFE", "material past its pot / thaw life: replace it"),
        Alarm(605, "EXHAUST_LOW", "exhaust flow low"),
        Alarm(606, "OVEN_O2_HIGH", "cure oven O₂ cannot be purged below the job's limit"),
        Alarm(607, "OVEN_TEMP", "cure oven temperature off set point by more than ±5 °C"),
        Alarm(608, "SUPPLY_EMPTY", "material supply empty: replace the reservoir"),
        Alarm(609, "STENCIL_LIFE", "stencil past its print life: replace it"),
        Alarm(690, "SUPPLY_LOW", "a material supply is below 10 %", warning=True),
        Alarm(691, "STENCIL_LIFE_WARNING", "stencil above 90 % of its print life", warning=True),
        Alarm(692, "POT_LIFE_WARNING", "material above 80 % of its pot life", warning=True),
        Alarm(693, "INCOMPLETE_CURE", "full cure ended below 90 % degree of cure", warning=True),
        Alarm(694, "UNDERFILL_INCOMPLETE", "underfill gelled before filling the gap", warning=True),
        Alarm(
            695,
            "RESIDUAL_SOLVENT",
            "soft bake left more than 10 % solvent in the film",
            warning=True,
        ),
    ),
    consumables=(
        Consumable("supply_polyimide", "mL", 4000.0, "POLYIMIDE, LOW_T_PI, PSPI left", supply=True),
        Consumable("supply_bcb", "mL", 2000.0, "BCB left", supply=True),
        Consumable(
            "supply_epoxy",
            "mL",
            4000.0,
            "EPOXY, DIELECTRIC, PROTECTIVE, PHOTO_INK, SEAL_RESIN left",
            supply=True,
        ),
        Consumable("supply_underfill", "mL", 1000.0, "UNDERFILL left", supply=True),
        Consumable("supply_adhesive", "mL", 1000.0, "ADHESIVE, TC_EPOXY left", supply=True),
        Consumable("supply_paste", "mL", 1000.0, "CONDUCTIVE_PASTE left", supply=True),
        Consumable("supply_resist", "mL", 4000.0, "PR_THIN, PR_THICK left", supply=True),
        Consumable("stencil_cycles", "count", 20000.0, "prints since the stencil was replaced"),
    ),
    setup=(SetupField("materials", MATERIALS, doc="materials loaded in the supply lines"),),
    default_setup={"materials": tuple(m for m in MATERIALS if m != "BCB")},
)
