"""Every spec limit of every recipe sits well outside the simulated process's spread, and no
step of a fresh tool raises an alarm or a warning the recipe holds on: a step that holds on
the simulated line is a real excursion (a worn tool or an injected fault), not the tail of
its noise. Without this, whole-flow tests (and `fabline demo`) hold at random: the noise
seed comes from the job id, which carries the lot id."""

from __future__ import annotations

import random

import pytest

from controller.recipes import catalog
from drivers.interfaces import interface_for
from simulators.kinds import sim_class
from tests.helpers import recipe_variants

DRAWS = 400  # noise draws per step: each fixed, so the test is deterministic


@pytest.mark.parametrize("recipe_id", sorted(r.recipe.id for r in catalog()))
def test_no_spec_limit_inside_the_process_noise(recipe_id: str) -> None:
    r = next(x for x in catalog() if x.recipe.id == recipe_id)
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    for options in recipe_variants(r):
        for step in r.expand(options).tool_steps:
            key = (step.id, repr(sorted(step.values.items())))
            if (not step.spec and not step.warnings_hold) or key in seen:
                continue
            seen.add(key)
            tool = sim_class(step.tool)("MARGIN-1", seed=0)  # a fresh tool: no wear
            op = interface_for(step.tool).operation(step.operation)
            names = {a.code: a.name for a in interface_for(step.tool).alarms}
            out, held = 0, 0
            for i in range(DRAWS):
                plan = tool.plan(op, step.values, random.Random(f"margin/{i}"))
                out += any(
                    (lo is not None and plan.results[name] < lo)
                    or (hi is not None and plan.results[name] > hi)
                    for name, (lo, hi) in step.spec.items()
                )
                held += plan.alarm is not None or any(
                    names[w] in step.warnings_hold for w in plan.warnings
                )
            if out:
                failures.append(f"{step.id} {options}: {out}/{DRAWS} draws out of spec")
            if held:
                failures.append(f"{step.id} {options}: {held}/{DRAWS} draws alarm or hold")
    assert not failures, failures
