"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from controller.recipes import LoadedRecipe
from controller.recipes.catalog import combinations
from controller.recipes.expand import matches
from drivers.base import ToolDriver
from drivers.line import Line
from drivers.registry import make_driver

# Fast enough that a 30-minute step takes ~18 ms, slow enough that progress is observable.
TEST_TIME_SCALE = 1e5

_ids = itertools.count(1)


def new_job_id(prefix: str) -> str:
    """A job id unique within the test session (tools refuse a duplicate id)."""
    return f"{prefix}-{next(_ids)}"


@asynccontextmanager
async def connected(line: Line, tool_id: str, **options: float) -> AsyncIterator[ToolDriver]:
    """`async with connected(line, "SPUT-1") as d:` a connected driver, closed however the
    block ends, so a failed assertion never leaks a link into the session's simulators."""
    driver = make_driver(line.tool(tool_id), **options)
    try:
        await driver.connect()
        yield driver
    finally:
        await driver.close()


def recipe_variants(r: LoadedRecipe) -> list[dict[str, str]]:
    """The default options, and each option value on its own, unless declared impossible."""
    defaults = next(combinations(r.recipe))
    out = [defaults]
    for name, spec in r.recipe.options.items():
        for value in spec.choices():
            v = {**defaults, name: str(value)}
            if v != defaults and not any(matches(c.when, v) for c in r.recipe.constraints):
                out.append(v)
    return out
