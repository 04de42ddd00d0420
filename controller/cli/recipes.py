"""`fabline recipes list | check | show`: the recipes for the claimed methods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from controller.cli.command import run
from controller.cli.display import EXIT_OK, EXIT_USAGE, err, out
from controller.cli.options import JsonOption, key_values
from controller.recipes import (
    LoadedRecipe,
    PlannedStep,
    ToolStepPlan,
    catalog,
    check_file,
    find,
    recipes_dir,
)
from controller.recipes.model import Recipe

app = typer.Typer(
    help="Recipes for the claimed methods: list, check, show expanded.", no_args_is_help=True
)


@app.command("list")
def recipes_list(as_json: JsonOption = False) -> None:
    """Every recipe: id, version, status, claims, title."""

    run(lambda: list_recipes(as_json))


@app.command("check")
def recipes_check(
    files: Annotated[list[Path] | None, typer.Argument(help="Default: every recipe.")] = None,
) -> None:
    """Validate recipe files: one line per problem (FILE:LINE: path: reason), exit 1."""
    run(lambda: check_recipes(files or []))


@app.command("show")
def recipes_show(
    recipe: Annotated[str, typer.Argument(help="Recipe id (or content hash).")],
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE, repeatable.")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Default: the highest.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The expanded step list for the given options (loops unrolled, conditions applied)."""
    run(lambda: show_recipe(recipe, option or [], version, as_json))


def claims_text(recipe: Recipe) -> str:
    parts = []
    for c in recipe.claims:
        nums = sorted(c.claims)
        runs: list[str] = []
        start = prev = nums[0]
        for n in [*nums[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            if n is not None:
                start = prev = n
        parts.append(f"{c.seed}:{','.join(runs)}")
    return " ".join(parts)


def list_recipes(as_json: bool) -> int:
    found = catalog()
    if as_json:
        print(json.dumps([
            {"id": r.recipe.id, "version": r.recipe.version, "status": r.recipe.status,
             "claims": claims_text(r.recipe), "title": r.recipe.title, "hash": r.hash,
             "file": str(r.path)}
            for r in found
        ]))  # fmt: skip
        return EXIT_OK
    t = Table(title=f"recipes in {recipes_dir()}", title_justify="left")
    for col in ("id", "version", "status", "claims", "title"):
        t.add_column(col, overflow="fold")
    for r in found:
        t.add_row(r.recipe.id, str(r.recipe.version), r.recipe.status,
                  claims_text(r.recipe), r.recipe.title)  # fmt: skip
    out.print(t)
    return EXIT_OK


def check_recipes(files: list[Path]) -> int:
    paths = files or sorted(recipes_dir().glob("*.yaml"))
    if not paths:
        err.print(f"no recipe files in {recipes_dir()}")
        return EXIT_USAGE
    problems = 0
    for path in paths:
        for line in check_file(path):
            print(line, flush=True)
            problems += 1
    if problems:
        err.print(f"{problems} problem(s) in {len(paths)} file(s)")
        return 1
    err.print(f"{len(paths)} recipe file(s) valid")
    return EXIT_OK


def _step_dict(s: PlannedStep) -> dict[str, Any]:
    d: dict[str, Any] = {"index": s.index + 1, "id": s.id, "name": s.name, "kind": s.kind}
    if s.role:
        d["role"] = s.role
    if isinstance(s, ToolStepPlan):
        d |= {"tool": s.tool, "operation": s.operation,
              "params": {k: str(v) for k, v in s.params.items()}}  # fmt: skip
        if s.feed_forward:
            d["feed_forward"] = {
                k: {"formula": f.text, "planned": round(f.planned, 4), "unit": f.unit,
                    "range": [round(f.low, 4), round(f.high, 4)],
                    "from": [i for src in f.sources for i in src.ids]}
                for k, f in s.feed_forward.items()
            }  # fmt: skip
        if s.spec:
            d["spec"] = {k: {"min": lo, "max": hi} for k, (lo, hi) in s.spec.items()}
        if s.spc:
            d["spc"] = {c.result: {"rules": c.rules, "action": c.action, "baseline": c.baseline,
                                   "spread": c.spread} for c in s.spc}  # fmt: skip
        if s.consume:
            d["consume"] = list(s.consume)
        if s.rework:
            d["rework"] = True
        if s.warnings_hold:
            d["hold_on_warnings"] = sorted(s.warnings_hold)
    else:
        d |= {"external": s.external, "returns": list(s.returns)}
        if s.max_temp is not None:
            d["max_temp_c"] = s.max_temp
    if s.queue_limits:
        d["queue_limits"] = [
            {"from": q.from_id, "max_s": q.max_s, "rework": q.rework_id, "reason": q.reason}
            for q in s.queue_limits
        ]
    genealogy = s.genealogy.model_dump(by_alias=True, exclude_none=True)
    if genealogy:
        d["genealogy"] = genealogy
    return d


def show_recipe(recipe_id: str, options: list[str], version: int | None, as_json: bool) -> int:
    given = key_values(options, "option")
    loaded: LoadedRecipe = find(recipe_id, version)
    exp = loaded.expand(given)
    steps = [_step_dict(s) for s in exp.steps]
    r = loaded.recipe
    if as_json:
        print(json.dumps({"id": r.id, "version": r.version, "hash": loaded.hash,
                          "status": r.status, "options": exp.options,
                          "claims": [f"{s}:{n}" for s, n in sorted(exp.active_claims)],
                          "steps": steps}))  # fmt: skip
        return EXIT_OK
    out.print(f"[bold]{r.id}[/] v{r.version} ({r.status}, {loaded.hash}) — {r.title}")
    out.print(f"options: {exp.describe_options() or 'none'}")
    active = " ".join(f"{s}:{n}" for s, n in sorted(exp.active_claims))
    out.print(f"claims in force: {active}")
    t = Table(show_lines=False)
    for col in ("#", "step", "tool / operation", "parameters", "spec, genealogy"):
        t.add_column(col, overflow="fold")
    for s in steps:
        if s["kind"] == "tool":
            what = f"{s['tool']} {s['operation']}" + (" (rework)" if s.get("rework") else "")
            fed = s.get("feed_forward", {})
            params = " ".join(
                f"{k}={v} ← {fed[k]['formula']}" if k in fed else f"{k}={v}"
                for k, v in s["params"].items()
            )
        else:
            what = "external"
            params = s["external"] + (
                f" (returns {', '.join(s['returns'])})" if s["returns"] else ""
            )
        extra = []
        for name, lim in s.get("spec", {}).items():
            extra.append(f"{name} in [{lim['min']}, {lim['max']}]")
        for q in s.get("queue_limits", []):
            rework = f", else rework {q['rework']}" if q["rework"] else ", else hold"
            extra.append(f"≤ {q['max_s'] / 3600:g} h after {q['from']}{rework}")
        if s.get("hold_on_warnings"):
            extra.append("holds on " + " ".join(s["hold_on_warnings"]))
        for name, c in s.get("spc", {}).items():
            extra.append(f"SPC {name}: {c['rules']}, {c['action']} (baseline {c['baseline']})")
        if "genealogy" in s:
            extra.append(json.dumps(s["genealogy"]))
        t.add_row(str(s["index"]), s["id"], what, params, "; ".join(extra))
    out.print(t)
    return EXIT_OK
