"""Interlocks from process physics, checked on an expanded recipe before anything runs.

Declared in the recipe:
- thermal_budget: after a step (a polymer bond, bumps sealed in mold compound), or from the
  start, no process temperature may exceed a limit less a margin. Parameters whose name ends
  in `_limit` are limits, not temperatures, and a 0 means "not used / tank standard".
- cte_runout: a wafer bonded to a panel runs out by (α_panel − α_Si)·ΔT·r at its edge; that
  must stay within a fraction of the bump pitch (default ¼ without a declaration).

Built in, on every recipe (a recipe cannot leave them out):
- cte_runout of every wafer-scale lamination of a patterned film (leads, circuit film): the
  residual run-out |(α_film − α_Si)·ΔT + artwork_scale|·r within the step's `runout` spec (or
  35 µm);
- joint_shear of every wafer-to-panel bond: the outermost joints' cool-down shear strain;
- gap_filler: every mold and capillary underfill fills its narrowest gap with ≥ 3 × its filler
  top cut, where the gaps are those the earlier steps built (a chip stand-off left without
  underfill, the clearance under a drop-in heat sink), and a mold's declared min_gap is no
  wider than them;
- landing: a part attached after singulation lands on the unit (a cap foot or a stiffener
  ring needs substrate outside the die, which a flush cut does not leave);
- grind_through_part: a grind to the chip backs would cut a part standing over them;
- warpage: every mold, post-mold cure and wafer-to-panel bond has a warpage spec, and every
  later step with a warpage setpoint (until singulation) gets it fed forward;
- cleans: a moisture bake between the last wet step and every mold or underfill on organic
  work; a plasma clean before every mold, underfill, flip-chip, wafer-to-panel and wire bond;
  a flux clean after every reflow with flux.

`step_problems` re-checks the step-local ones on a step's fed-forward values at run time.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.recipes.expand import Expansion, PlannedStep, Problem, ToolStepPlan, resolve
from controller.recipes.model import CteRunout, ThermalBudget
from controller.recipes.yaml_lines import Path
from drivers.errors import FablineError
from drivers.interfaces import interface_for
from drivers.interfaces.bonder import (
    FILM_CTE_PPM,
    PATTERNED_FILMS,
    SI_CTE_PPM,
    SUBSTRATE_CTE_PPM,
    edge_shear,
    lamination_runout_um,
)
from drivers.interfaces.mold import FILLER_CUT_UM, GAP_PER_CUT
from drivers.units import to_unit

ROOM_C = 25.0
DEFAULT_PITCH_FRACTION = 0.25  # wafer-to-panel run-out: edge bumps land within half a pad
LAMINATION_RUNOUT_UM = 35.0  # patterned film at wafer scale, without a `runout` spec
JOINT_SHEAR_LIMIT = 0.25  # outermost solder joints, one cool-down (SAC elongation ~30 %)
WAFER_SCALE_MM = 100.0  # a lamination this wide or wider is wafer scale
LEDGE_PARTS = ("CAP_SPREADER", "STIFFENER")  # land on the substrate outside the die
ORGANIC = ("ORGANIC",)


def check_interlocks(exp: Expansion) -> list[Problem]:
    problems: list[Problem] = []
    declared_runout: set[str] = set()
    for i, lock in enumerate(exp.recipe.interlocks):
        path = ("interlocks", i)
        if isinstance(lock, ThermalBudget):
            problems += _thermal_budget(exp, lock, path)
        else:
            declared_runout.add(lock.step)
            problems += _cte_runout(exp, lock, path)
    for step in exp.tool_steps:
        if step.rework:
            continue
        for reason in _local(step, skip_w2p_runout=step.template in declared_runout):
            problems.append(Problem(step.path, reason))
    for check in (
        _gap_filler,
        _die_edges,
        _landing,
        _grind_through_part,
        _warpage,
        _cleans,
        _stack_fed,
        _via_bottom,
        _adhesion,
        _cure_before_grind,
        _join_registration,
    ):
        problems += check(exp)
    return problems


def step_problems(exp: Expansion, step: PlannedStep) -> list[str]:
    """Interlocks that read only this step's own setpoints, checked again at run time on its
    fed-forward values; one reason each."""
    if not isinstance(step, ToolStepPlan):
        return []
    declared = {lock.step for lock in exp.recipe.interlocks if isinstance(lock, CteRunout)}
    return list(_local(step, skip_w2p_runout=step.template in declared))


# -- step-local: CTE run-out, joint shear ------------------------------------------------------


def _local(step: ToolStepPlan, *, skip_w2p_runout: bool) -> Iterable[str]:
    v = step.values
    if step.tool == "bonder" and step.operation == "wafer_to_panel":
        if not skip_w2p_runout:
            runout = cte_runout_um(step)
            allowed = DEFAULT_PITCH_FRACTION * float(v["bump_pitch"])
            if runout is not None and runout > allowed:
                yield (
                    f"interlock cte_runout: {v['substrate']} panel runs out {runout:.0f} µm at"
                    f" the wafer edge, more than {allowed:.0f} µm (¼ of the"
                    f" {float(v['bump_pitch']):g} µm bump pitch): edge bumps miss their pads"
                )
        shear = edge_shear(v)
        if shear > JOINT_SHEAR_LIMIT:
            yield (
                f"interlock joint_shear: the outermost joints of step {step.id} shear"
                f" {100 * shear:.0f} % on cool-down ({v['substrate']}"
                f" {SUBSTRATE_CTE_PPM[str(v['substrate'])]:g} ppm/K on Si, r ="
                f" {float(v['wafer_diameter']) / 2:g} mm, {float(v['bump_height']):g} µm joints),"
                f" more than {100 * JOINT_SHEAR_LIMIT:.0f} %"
            )
    if (
        step.tool == "bonder"
        and step.operation == "laminate"
        and str(v["material"]) in PATTERNED_FILMS
        and float(v["work_width"]) >= WAFER_SCALE_MM
    ):
        runout = lamination_runout_um(v)
        limit = step.spec.get("runout", (None, None))[1] or LAMINATION_RUNOUT_UM
        scale = -(FILM_CTE_PPM[str(v["material"])] - SI_CTE_PPM) * (float(v["temp"]) - ROOM_C)
        if runout > limit:
            yield (
                f"interlock cte_runout: the {v['material']} laminated at"
                f" {float(v['temp']):g} °C on a {float(v['work_width']):g} mm work runs out"
                f" {runout:.0f} µm at its edge (artwork_scale {float(v['artwork_scale']):g} ppm),"
                f" more than {limit:g} µm: pre-scale the artwork by"
                f" {scale:.0f} ppm or"
                " laminate per die"
            )


def cte_runout_um(step: ToolStepPlan) -> float | None:
    """Edge run-out of the wafer on its panel at bond temperature, µm."""
    if step.tool != "bonder" or step.operation != "wafer_to_panel":
        return None
    v = step.values
    d_alpha = (SUBSTRATE_CTE_PPM[str(v["substrate"])] - SI_CTE_PPM) * 1e-6
    radius_um = float(v["wafer_diameter"]) / 2.0 * 1000.0
    return abs(d_alpha) * (float(v["temp"]) - ROOM_C) * radius_um


# -- declared ------------------------------------------------------------------------------------


def _thermal_budget(
    exp: Expansion, lock: ThermalBudget, path: tuple[str | int, ...]
) -> list[Problem]:
    if lock.after is None:
        start_index, start_id = 0, "the start"
    else:
        start = exp.step(lock.after)
        if start is None:
            return []  # the step is not part of this expansion (an option left it out)
        start_index, start_id = start.index + 1, f"step {start.id}"
    try:
        limit = to_unit(str(resolve(exp, lock.max, (*path, "max"))), "°C")
        margin = to_unit(str(resolve(exp, lock.margin, (*path, "margin"))), "°C")
    except FablineError as e:
        return [Problem(path, f"thermal_budget: {e}")]
    allowed = limit - margin
    problems = []
    for step in exp.steps[start_index:]:
        for name, temp in step.temperatures().items():
            if name.endswith("_limit"):
                continue
            if temp > allowed:
                problems.append(
                    Problem(
                        _param_path(step, name),
                        f"interlock thermal_budget: {name} {temp:g} °C exceeds the"
                        f" {allowed:g} °C allowed after {start_id} ({lock.reason})",
                    )
                )
    return problems


def _cte_runout(exp: Expansion, lock: CteRunout, path: tuple[str | int, ...]) -> list[Problem]:
    step = exp.step(lock.step)
    if step is None:
        return []
    runout = cte_runout_um(step) if isinstance(step, ToolStepPlan) else None
    if runout is None or not isinstance(step, ToolStepPlan):
        return [Problem(path, f"cte_runout: step {lock.step} is not a wafer_to_panel bond")]
    pitch = float(step.values["bump_pitch"])
    allowed = lock.max_pitch_fraction * pitch
    if runout > allowed:
        return [
            Problem(
                step.path,
                f"interlock cte_runout: {step.values['substrate']} panel runs out"
                f" {runout:.0f} µm at the wafer edge, more than {allowed:.0f} µm"
                f" ({lock.max_pitch_fraction:g} × {pitch:g} µm bump pitch) ({lock.reason})",
            )
        ]
    return []


# -- gaps and fillers ------------------------------------------------------------------------


def _is(step: ToolStepPlan, tool: str, *operations: str) -> bool:
    return step.tool == tool and (not operations or step.operation in operations)


def _gap_filler(exp: Expansion) -> list[Problem]:
    """Gaps the earlier steps left, that a mold must fill: a chip stand-off without underfill,
    the clearance under a drop-in heat sink."""
    problems: list[Problem] = []
    gaps: list[tuple[float, str]] = []  # (µm, what) still open since the last mold
    for step in exp.tool_steps:
        v = step.values
        if _is(step, "bonder", "flip_chip") and v.get("underfill") == "NONE":
            lo, hi = step.spec.get("standoff", (None, None))
            standoff = (
                (lo + hi) / 2 if lo is not None and hi is not None else float(v["bump_height"])
            )
            gaps.append((standoff, f"the {standoff:g} µm chip stand-off of step {step.id}"))
        elif _is(step, "bonder", "attach") and float(v.get("clearance", 0.0)) > 0:
            c = float(v["clearance"])
            gaps.append((c, f"the {c:g} µm clearance under the {v['part']} of step {step.id}"))
        elif _is(step, "mold", "mold"):
            compound = str(v["compound"])
            need = GAP_PER_CUT * FILLER_CUT_UM[compound]
            declared = float(v["min_gap"])
            for gap, what in gaps:
                if gap < need:
                    problems.append(
                        Problem(
                            step.path,
                            f"interlock gap_filler: {compound} at step {step.id} cannot fill"
                            f" {what} (needs ≥ {need:g} µm, {GAP_PER_CUT:g} × its"
                            f" {FILLER_CUT_UM[compound]:g} µm filler top cut): underfill it"
                            " first (NCP/NCF in the bond, or a capillary underfill)",
                        )
                    )
                elif declared == 0 or declared > gap:
                    problems.append(
                        Problem(
                            (*step.path, "params", "min_gap"),
                            f"interlock gap_filler: min_gap {declared:g} µm at step {step.id}"
                            f" is not the narrowest gap: {what}",
                        )
                    )
            gaps = []
    return problems


def _die_edges(exp: Expansion) -> list[Problem]:
    """Capillary underfill flows in from a die edge: there is none on a wafer still whole on
    its panel, and a flush-cut unit leaves no substrate beside the die for the needle."""
    problems: list[Problem] = []
    on_panel = flush = False
    for step in exp.tool_steps:
        if _is(step, "bonder", "wafer_to_panel"):
            on_panel = flush = True
        elif _is(step, "dicing"):
            on_panel = False
        elif _underfill(step) and step.values.get("pattern") == "CAPILLARY" and flush:
            where = (
                "the wafer is still whole on its panel: there are no die edges to dispense at"
                if on_panel
                else "the flush cut left no substrate beside the die for the needle to dispense on"
            )
            problems.append(
                Problem(
                    step.path,
                    f"interlock die_edges: capillary underfill at step {step.id}: {where}"
                    " (use a non-conductive film laminated on the wafer before the attach)",
                )
            )
    return problems


# -- parts, grinding ----------------------------------------------------------------------------


def _landing(exp: Expansion) -> list[Problem]:
    problems: list[Problem] = []
    cut: ToolStepPlan | None = None  # the singulation the units come from
    flush = False  # ... cut through die and substrate together
    for step in exp.tool_steps:
        if _is(step, "bonder", "wafer_to_panel"):
            flush = True
        if _is(step, "dicing", "dice"):
            cut = step
        if not _is(step, "bonder", "attach") or cut is None:
            continue
        v = step.values
        unit = min(float(cut.values["die_x"]), float(cut.values["die_y"]))
        part, size = str(v["part"]), float(v["contact_size"])
        if flush and part in LEDGE_PARTS:
            problems.append(
                Problem(
                    step.path,
                    f"interlock landing: a {part} at step {step.id} needs substrate outside the"
                    f" die, but step {cut.id} cut die and substrate flush ({unit:g} mm units)",
                )
            )
        elif size > unit:
            problems.append(
                Problem(
                    (*step.path, "params", "contact_size"),
                    f"interlock landing: the {size:g} mm {part} footprint of step {step.id}"
                    f" does not fit on the {unit:g} mm units of step {cut.id}",
                )
            )
    return problems


def _grind_through_part(exp: Expansion) -> list[Problem]:
    problems: list[Problem] = []
    over: ToolStepPlan | None = None
    for step in exp.tool_steps:
        if _is(step, "bonder", "attach") and float(step.values.get("clearance", 0.0)) > 0:
            over = step
        if _is(step, "grinder", "planarize") and step.values.get("feature") == "DIE" and over:
            problems.append(
                Problem(
                    step.path,
                    f"interlock grind_through_part: grinding to the chip backs at step"
                    f" {step.id} cuts the {over.values['part']} standing over them (step"
                    f" {over.id})",
                )
            )
    return problems


# -- warpage ---------------------------------------------------------------------------------------

WARPAGE_SOURCES = (("mold", "mold"), ("mold", "post_mold_cure"), ("bonder", "wafer_to_panel"))


def _warpage(exp: Expansion) -> list[Problem]:
    problems: list[Problem] = []
    measured: ToolStepPlan | None = None
    for step in exp.tool_steps:
        if _is(step, "dicing"):
            measured = None  # after singulation the work is another piece
            continue
        if step.rework:
            continue
        if any(_is(step, t, o) for t, o in WARPAGE_SOURCES):
            if step.spec.get("warpage", (None, None))[1] is None:
                problems.append(
                    Problem(
                        (*step.path, "spec"),
                        f"interlock warpage: step {step.id} measures warpage but has no spec"
                        " max on it",
                    )
                )
            measured = step
            continue
        assert step.tool is not None and step.operation is not None
        op = interface_for(step.tool).operation(step.operation)
        if measured is None or "warpage" not in {p.name for p in op.params}:
            continue
        fed = step.feed_forward.get("warpage")
        if fed is None or not any(s.ref.result == "warpage" for s in fed.sources):
            problems.append(
                Problem(
                    (*step.path, "params", "warpage"),
                    f"interlock warpage: the warpage measured at step {measured.id} is not fed"
                    f" forward to step {step.id} (feed_forward: {{warpage: ...}})",
                )
            )
    return problems


# -- cleans and bakes ------------------------------------------------------------------------------


def _wet(step: ToolStepPlan) -> bool:
    """The step leaves the work wet or in water (moisture for an organic substrate)."""
    v = step.values
    return (
        _is(step, "plating")
        or _is(step, "clean", "flux_clean")
        or _is(step, "grinder")  # DI coolant
        or _is(step, "dicing")
        or (_is(step, "litho", "etch", "strip") and v.get("method") == "WET")
        or _is(step, "litho", "expose")  # develop
    )


def _underfill(step: ToolStepPlan) -> bool:
    v = step.values
    return _is(step, "coater", "dispense") and str(v.get("material")) in ("UNDERFILL", "NCP")


def _needs_plasma(step: ToolStepPlan) -> bool:
    return (
        _is(step, "mold", "mold")
        or _underfill(step)
        or _is(step, "bonder", "flip_chip", "wafer_to_panel")
        or _is(step, "wirebonder")
    )


def _may_follow_plasma(step: ToolStepPlan) -> bool:
    """Steps that may stand between a plasma clean and what it prepares: other cleans and
    bakes, and the pre-applied underfill (paste or film) the bond goes through."""
    return (
        _is(step, "clean", "plasma", "bake")
        or _underfill(step)
        or (_is(step, "bonder", "laminate") and step.values.get("material") == "ADHESIVE_FILM")
    )


def _organic(exp: Expansion, step: ToolStepPlan) -> bool:
    v = step.values
    if _is(step, "mold", "mold"):
        return str(v.get("substrate")) in ORGANIC
    return any(
        s.tool == "mold" and str(s.values.get("substrate")) in ORGANIC for s in exp.tool_steps
    ) or any(_is(s, "bonder", "flip_chip") and s.values.get("substrate") in ORGANIC
             for s in exp.tool_steps)  # fmt: skip


def _cleans(exp: Expansion) -> list[Problem]:
    problems: list[Problem] = []
    steps = [s for s in exp.tool_steps if not s.rework]
    for i, step in enumerate(steps):
        before = steps[:i]
        if (_is(step, "mold", "mold") or _underfill(step)) and _organic(exp, step):
            last_wet = max((s.index for s in before if _wet(s)), default=-1)
            bakes = [s for s in before if _is(s, "clean", "bake") and s.index > last_wet]
            if not bakes:
                problems.append(
                    _need(step, "a moisture bake after the last wet step, before it (organic work)")
                )
        if _needs_plasma(step):
            j = i - 1
            while j >= 0 and _may_follow_plasma(steps[j]) and not _is(steps[j], "clean", "plasma"):
                j -= 1
            if j < 0 or not _is(steps[j], "clean", "plasma"):
                problems.append(_need(step, "a plasma clean right before it"))
        if _is(step, "ball", "reflow", "wafer_bump"):
            after = steps[i + 1 : i + 2]
            if not after or not _is(after[0], "clean", "flux_clean"):
                problems.append(_need(step, "a flux clean right after the reflow"))
    return problems


# -- thickness chains ------------------------------------------------------------------------


def _stack_fed(exp: Expansion) -> list[Problem]:
    """The cut depth follows the stack the lot actually has: both fed forward."""
    problems: list[Problem] = []
    for step in exp.tool_steps:
        if not _is(step, "dicing", "dice"):
            continue
        for name in ("stack_thickness", "cut_depth"):
            if name not in step.feed_forward:
                problems.append(
                    Problem(
                        (*step.path, "params", name),
                        f"interlock stack: {name} of step {step.id} is a constant; feed it"
                        " forward from the measured stack (the options change the stack)",
                    )
                )
    return problems


def _via_bottom(exp: Expansion) -> list[Problem]:
    """A liner sprayed into holes leaves its bottom thickness there: an anisotropic etch must
    open it before the seed, or the through-electrode is insulated from the pad below."""
    problems: list[Problem] = []
    liner: ToolStepPlan | None = None
    for step in exp.tool_steps:
        v = step.values
        if _is(step, "coater", "spray_coat") and float(v.get("aspect_ratio", 0.0)) > 0:
            liner = step
        elif (
            liner is not None
            and _is(step, "litho", "etch")
            and v.get("target") in ("DIELECTRIC", "OXIDE")
            and v.get("method") == "RIE"
        ):
            liner = None
        elif liner is not None and (_is(step, "sputter") or _is(step, "plating")):
            problems.append(
                Problem(
                    step.path,
                    f"interlock via_bottom: the liner of step {liner.id} still covers the hole"
                    f" bottoms at step {step.id}: open it with an anisotropic (RIE) etch first",
                )
            )
            liner = None
    return problems


ADHESION = ("TI", "TIW")


def _adhesion(exp: Expansion) -> list[Problem]:
    """Cu and Al films need a Ti/TiW adhesion and diffusion barrier under them."""
    problems: list[Problem] = []
    previous: ToolStepPlan | None = None
    for step in exp.tool_steps:
        if _is(step, "sputter", "deposit") and step.values.get("target") not in ADHESION:
            ok = (
                previous is not None
                and _is(previous, "sputter", "deposit")
                and previous.values.get("target") in ADHESION
            )
            if not ok:
                problems.append(
                    Problem(
                        step.path,
                        f"interlock adhesion: {step.values.get('target')} at step {step.id} is"
                        " deposited without a Ti/TiW adhesion barrier right under it",
                    )
                )
        previous = step
    return problems


def _cure_before_grind(exp: Expansion) -> list[Problem]:
    """Mold compound is ground after its post-mold cure (an under-cured cap smears and keeps
    curing, and shrinking, after the grind)."""
    problems: list[Problem] = []
    molded: ToolStepPlan | None = None
    for step in exp.tool_steps:
        if _is(step, "mold", "mold"):
            molded = step
        elif _is(step, "mold", "post_mold_cure"):
            molded = None
        elif molded is not None and _is(step, "grinder") and step.values.get("material") == "EMC":
            problems.append(
                Problem(
                    step.path,
                    f"interlock cure_before_grind: step {step.id} grinds the compound of step"
                    f" {molded.id} before its post-mold cure",
                )
            )
    return problems


def _join_registration(exp: Expansion) -> list[Problem]:
    """A gang bond joins the trace ends where they lie at its own temperature: away from the
    lamination temperature the film has grown or shrunk against the wafer again."""
    problems: list[Problem] = []
    laminated: ToolStepPlan | None = None
    for step in exp.tool_steps:
        v = step.values
        if _is(step, "bonder", "laminate") and str(v.get("material")) in PATTERNED_FILMS:
            laminated = step
        elif _is(step, "bonder", "gang_bond") and laminated is not None:
            lv = laminated.values
            shift = (
                abs(FILM_CTE_PPM[str(lv["material"])] - SI_CTE_PPM)
                * 1e-6
                * abs(float(v["temp"]) - float(lv["temp"]))
                * float(lv["work_width"])
                / 2.0
                * 1000.0
            )
            limit = laminated.spec.get("runout", (None, None))[1] or LAMINATION_RUNOUT_UM
            if shift > limit:
                problems.append(
                    Problem(
                        (*step.path, "params", "temp"),
                        f"interlock cte_runout: the gang bond at {float(v['temp']):g} °C moves"
                        f" the trace ends {shift:.0f} µm at the wafer edge from where the"
                        f" {float(lv['temp']):g} °C lamination of step {laminated.id} registered"
                        f" them (more than {limit:g} µm)",
                    )
                )
    return problems


def _need(step: ToolStepPlan, what: str) -> Problem:
    return Problem(step.path, f"interlock cleans: step {step.id} needs {what}")


def _param_path(step: PlannedStep, name: str) -> Path:
    if not isinstance(step, ToolStepPlan):
        return (*step.path, "max_temp")
    return (*step.path, "params", name) if name in step.params else (*step.path, "params")
