"""Recipes: the YAML format (model), expansion per option set, claim rules, interlocks, and
the catalog of recipe files. See docs/recipes.md."""

from controller.recipes.catalog import (
    LoadedRecipe,
    catalog,
    check,
    check_file,
    find,
    load,
    load_text,
    recipes_dir,
)
from controller.recipes.expand import (
    ChartPlan,
    Expansion,
    ExternalStepPlan,
    PlannedStep,
    StepPlan,
    ToolStepPlan,
    expand,
)
from drivers.errors import RecipeError

__all__ = [
    "ChartPlan",
    "Expansion",
    "ExternalStepPlan",
    "LoadedRecipe",
    "PlannedStep",
    "RecipeError",
    "StepPlan",
    "ToolStepPlan",
    "catalog",
    "check",
    "check_file",
    "expand",
    "find",
    "load",
    "load_text",
    "recipes_dir",
]
