"""Every spec limit of every recipe sits well outside the simulated process's spread: a
step that lands out of spec on the simulated line is a real excursion (or an injected
fault), not the tail of its noise. Without this, whole-flow tests hold at random."""

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
            if not step.spec or key in seen:
                continue
            seen.add(key)
            tool = sim_class(step.tool)("MARGIN-1", seed=0)  # a fresh tool: no wear
            op = interface_for(step.tool).operation(step.operation)
            out = 0
            for i in range(DRAWS):
                results = tool.plan(op, step.values, random.Random(f"margin/{i}")).results
                out += any(
                    (lo is not None and results[name] < lo)
                    or (hi is not None and results[name] > hi)
                    for name, (lo, hi) in step.spec.items()
                )
            if out:
                failures.append(f"{step.id} {options}: {out}/{DRAWS} draws out of spec")
    assert not failures, failures
