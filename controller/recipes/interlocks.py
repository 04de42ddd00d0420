"""Interlocks from process physics, checked on an expanded recipe before anything runs.

- thermal_budget: after a step (a polymer bond, solder bumps sealed in mould compound) no
  process temperature may exceed a limit. Parameters whose name ends in `_limit` are
  limits, not temperatures, and a 0 means "not used / tank standard" in the tool sheets.
- cte_runout: a wafer bonded to a panel runs out by (α_panel − α_Si)·ΔT·r at its edge; that
  must stay within a fraction of the bump pitch or edge bumps miss their pads.
"""

from __future__ import annotations

from controller.recipes.expand import Expansion, PlannedStep, Problem, resolve
from controller.recipes.model import CteRunout, ThermalBudget
from drivers.errors import FablineError
from drivers.interfaces.bonder import SI_CTE_PPM, SUBSTRATE_CTE_PPM
from drivers.units import to_unit

ROOM_C = 25.0


def check_interlocks(exp: Expansion) -> list[Problem]:
    problems: list[Problem] = []
    for i, lock in enumerate(exp.recipe.interlocks):
        path = ("interlocks", i)
        if isinstance(lock, ThermalBudget):
            problems += _thermal_budget(exp, lock, path)
        else:
            problems += _cte_runout(exp, lock, path)
    return problems


def _thermal_budget(
    exp: Expansion, lock: ThermalBudget, path: tuple[str | int, ...]
) -> list[Problem]:
    start = exp.step(lock.after)
    if start is None:
        return []  # the step is not part of this expansion (an option left it out)
    try:
        limit = to_unit(str(resolve(exp, lock.max, (*path, "max"))), "°C")
        margin = to_unit(str(resolve(exp, lock.margin, (*path, "margin"))), "°C")
    except FablineError as e:
        return [Problem(path, f"thermal_budget: {e}")]
    allowed = limit - margin
    problems = []
    for step in exp.steps[start.index + 1 :]:
        for name, temp in step.temperatures().items():
            if name.endswith("_limit"):
                continue
            if temp > allowed:
                problems.append(
                    Problem(
                        _param_path(step, name),
                        f"interlock thermal_budget: {name} {temp:g} °C exceeds the"
                        f" {allowed:g} °C allowed after step {start.id} ({lock.reason})",
                    )
                )
    return problems


def _cte_runout(exp: Expansion, lock: CteRunout, path: tuple[str | int, ...]) -> list[Problem]:
    step = exp.step(lock.step)
    if step is None:
        return []
    runout = cte_runout_um(step)
    if runout is None:
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


def cte_runout_um(step: PlannedStep) -> float | None:
    """Edge run-out of the wafer on its panel at bond temperature, µm."""
    if step.tool != "bonder" or step.operation != "wafer_to_panel":
        return None
    v = step.values
    d_alpha = (SUBSTRATE_CTE_PPM[str(v["substrate"])] - SI_CTE_PPM) * 1e-6
    radius_um = float(v["wafer_diameter"]) / 2.0 * 1000.0
    return abs(d_alpha) * (float(v["temp"]) - ROOM_C) * radius_um


def _param_path(step: PlannedStep, name: str) -> tuple[str | int, ...]:
    if step.kind == "external":
        return (*step.path, "max_temp")
    return (*step.path, "params", name) if name in step.params else (*step.path, "params")


def step_problems(exp: Expansion, step: PlannedStep) -> list[str]:
    """Interlocks that read only this step's own setpoints, checked again at run time on its
    fed-forward values; one reason each."""
    return []
