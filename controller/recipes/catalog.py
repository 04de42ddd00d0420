"""Recipe files: load, identify (content hash), check, find.

`check_file` is what `fabline recipes check` runs: YAML, schema, references, then every
option combination expanded and checked against the tools' interfaces, the claims and the
interlocks. A combination that cannot run must be declared under `constraints` with its
reason; one that fails without being declared is reported. Each problem is one line:
`FILE:LINE: path.in.recipe: reason`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from controller.recipes import formula
from controller.recipes.claims import check_claims
from controller.recipes.expand import Expansion, Problem, expand, matches
from controller.recipes.interlocks import check_interlocks
from controller.recipes.model import (
    ExternalStep,
    Recipe,
    RepeatStep,
    Step,
    ToolStep,
    UnitKind,
    parse_claims,
)
from controller.recipes.yaml_lines import YamlProblem, dotted, line_of, load_with_lines
from controller.settings import settings
from drivers.errors import RecipeError, RecipeNotFound, shown
from drivers.interfaces import KINDS, interface_for

SEEDS = ("000", "001", "002", "003")
MAX_COMBINATIONS = 4096
UNIT_KINDS = set(UnitKind.__args__)  # type: ignore[attr-defined]


def recipes_dir() -> Path:
    """$FABLINE_RECIPES, else the recipes of a source checkout, else those installed with
    the package (<prefix>/share/fabline/recipes)."""
    configured = settings().recipes
    if configured is not None:
        return configured
    checkout = Path(__file__).resolve().parents[2] / "recipes"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "fabline" / "recipes"


@dataclass(frozen=True)
class LoadedRecipe:
    path: Path
    recipe: Recipe
    lines: Mapping[tuple[str | int, ...], int]
    hash: str  # content hash of the recipe without its status: identifies the version
    text: str  # the file as written, stored with every lot that runs it

    def where(self, problem: Problem) -> str:
        return (
            f"{self.path}:{line_of(dict(self.lines), problem.path)}: {dotted(problem.path)}:"
            f" {problem.reason}"
        )

    def expand(self, options: Mapping[str, str] | None = None) -> Expansion:
        """Expansion for `options`, fully checked; raises RecipeError listing the problems."""
        exp = expand(self.recipe, options)
        problems = all_problems(exp)
        if problems:
            raise RecipeError([self.where(p) for p in problems])
        return exp


def all_problems(exp: Expansion) -> list[Problem]:
    """The expansion's own problems; on a clean expansion, claim rules and interlocks (on a
    broken one they would only repeat its problems in other words)."""
    return exp.problems or check_claims(exp) + check_interlocks(exp)


def content_hash(data: object) -> str:
    body = dict(data) if isinstance(data, dict) else {"data": data}
    body.pop("status", None)  # approving a version does not make it another version
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load(path: str | Path) -> LoadedRecipe:
    """Load and validate the schema of one file; RecipeError lists what is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError([f"{p}:1: (file): cannot read ({e})"]) from None
    return load_text(text, p)


def load_text(text: str, p: Path) -> LoadedRecipe:
    """Load recipe text (a file's, or the copy a lot stored); `p` names it in errors."""
    try:
        data, lines = load_with_lines(text)
    except YamlProblem as e:
        raise RecipeError([f"{p}:{e.line}: {dotted(e.path)}: {e.reason}"]) from None
    if not isinstance(data, dict):
        raise RecipeError([f"{p}:1: (top): a recipe is a mapping of keys (id, version, ...)"])
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(
            [
                f"{p}:{line_of(lines, _loc(err['loc']))}: {dotted(_loc(err['loc']))}:"
                f" {_message(err)}"
                for err in e.errors()
            ]
        ) from None
    loaded = LoadedRecipe(p, recipe, lines, content_hash(data), text)
    static = _static_problems(recipe)
    if static:
        raise RecipeError([loaded.where(s) for s in static])
    return loaded


def _loc(loc: tuple[int | str, ...]) -> tuple[str | int, ...]:
    """pydantic adds union tags to locations (steps.3.tool.params...) and validator names;
    keep only the keys a recipe author wrote."""
    keep: list[str | int] = []
    for k, part in enumerate(loc):
        is_tag = (
            part in ("tool", "external", "repeat")
            and k >= 2
            and isinstance(loc[k - 1], int)
            and loc[k - 2] == "steps"
        )
        if is_tag or (isinstance(part, str) and "[" in part):
            continue
        keep.append(part)
    return tuple(keep)


def _message(err: object) -> str:
    e = dict(err)  # type: ignore[call-overload]
    msg = str(e["msg"])
    if e["type"] == "extra_forbidden":
        return "unknown key"
    if e["type"] == "missing":
        return "missing key"
    return msg.removeprefix("Value error, ")


def _walk(
    steps: list[Step], path: tuple[str | int, ...]
) -> Iterator[tuple[Step, tuple[str | int, ...]]]:
    for i, s in enumerate(steps):
        yield s, (*path, i)
        if isinstance(s, RepeatStep):
            yield from _walk(s.steps, (*path, i, "steps"))


def _static_problems(r: Recipe) -> list[Problem]:
    """What is wrong whatever the options: duplicate ids, dangling references."""
    out: list[Problem] = []
    seen: dict[str, tuple[str | int, ...]] = {}
    loop_vars: set[str] = set()
    for step, path in _walk(r.steps, ("steps",)):
        if isinstance(step, RepeatStep):
            loop_vars.add(step.repeat.var)
            continue
        if step.id in seen:
            out.append(
                Problem(
                    (*path, "id"),
                    f"duplicate step id {step.id!r} (first at {dotted(seen[step.id])})",
                )
            )
        seen.setdefault(step.id, path)
    names = set(r.options) | loop_vars
    for step, path in _walk(r.steps, ("steps",)):
        for key in ("when", "unless"):
            for opt in getattr(step, key) or {}:
                if opt not in names:
                    out.append(Problem((*path, key, opt), f"unknown option {opt!r}"))
        if isinstance(step, ToolStep | ExternalStep) and step.genealogy:
            out += _genealogy_problems(r, step, path)
    for i, c in enumerate(r.constraints):
        for opt in c.when:
            if opt not in r.options:
                out.append(Problem(("constraints", i, "when", opt), f"unknown option {opt!r}"))
    for i, lock in enumerate(r.interlocks):
        ref = lock.after if lock.type == "thermal_budget" else lock.step
        if ref is not None and ref not in seen:
            key = "after" if lock.type == "thermal_budget" else "step"
            out.append(Problem(("interlocks", i, key), f"no step with id {ref!r}"))
    out += _process_control_problems(r)
    for i, cs in enumerate(r.claims):
        if cs.seed not in SEEDS:
            out.append(
                Problem(("claims", i, "seed"), f"unknown seed {cs.seed!r} ({', '.join(SEEDS)})")
            )
    claimed = r.claimed()
    for name, spec in r.options.items():
        for value, attrs in (spec.values or {}).items():
            for j, text in enumerate(attrs.get("claims", [])):
                for claim in parse_claims(str(text)):
                    if claim not in claimed:
                        out.append(
                            Problem(
                                ("options", name, "values", value, "claims", j),
                                f"claim {claim[0]}:{claim[1]} is not in the recipe's claims",
                            )
                        )
    return out


def _warning_names(kind: str) -> set[str]:
    return {a.name for a in interface_for(kind).alarms if a.warning} if kind in KINDS else set()


def _process_control_problems(r: Recipe) -> list[Problem]:
    """Queue times, rework steps, warning names and feed-forward references that point at
    nothing, whatever the options."""
    out: list[Problem] = []
    written = {
        step.id: step for step, _ in _walk(r.steps, ("steps",)) if not isinstance(step, RepeatStep)
    }
    kinds = {s.tool for s in written.values() if isinstance(s, ToolStep)}
    for i, q in enumerate(r.queue_times):
        for key, ids in (("from", q.from_), ("to", q.to)):
            for j, step_id in enumerate(ids):
                if step_id not in written:
                    out.append(Problem(("queue_times", i, key, j), f"no step with id {step_id!r}"))
        if q.rework is not None:
            target = written.get(q.rework)
            if target is None:
                out.append(Problem(("queue_times", i, "rework"), f"no step with id {q.rework!r}"))
            elif not isinstance(target, ToolStep) or not target.rework:
                out.append(
                    Problem(
                        ("queue_times", i, "rework"),
                        f"step {q.rework} is not marked `rework: true` (it would run anyway)",
                    )
                )
    order = [step.id for step, _ in _walk(r.steps, ("steps",)) if not isinstance(step, RepeatStep)]
    seen_routes: set[str] = set()
    for i, route in enumerate(r.rework_routes):
        if route.id in seen_routes:
            out.append(Problem(("rework_routes", i, "id"), f"rework route {route.id} twice"))
        seen_routes.add(route.id)
        if route.to not in written:
            out.append(Problem(("rework_routes", i, "to"), f"no step with id {route.to!r}"))
        for j, step_id in enumerate(route.at):
            if step_id not in written:
                out.append(Problem(("rework_routes", i, "at", j), f"no step with id {step_id!r}"))
            elif route.to in written and order.index(route.to) > order.index(step_id):
                out.append(
                    Problem(
                        ("rework_routes", i, "at", j),
                        f"step {step_id} comes before {route.to}: a rework route goes back",
                    )
                )
    routed = {q.rework for q in r.queue_times} | {route.to for route in r.rework_routes}
    for step, path in _walk(r.steps, ("steps",)):
        if isinstance(step, ToolStep) and step.rework and step.id not in routed:
            out.append(
                Problem(
                    (*path, "rework"),
                    f"no queue_times entry or rework route goes to rework step {step.id}",
                )
            )
    every = set().union(*(_warning_names(k) for k in kinds)) if kinds else set()
    for j, name in enumerate(r.warning_policy.hold):
        if name not in every:
            out.append(
                Problem(
                    ("warning_policy", "hold", j),
                    f"no tool of this recipe reports warning {name!r}",
                )
            )
    for step, path in _walk(r.steps, ("steps",)):
        if not isinstance(step, ToolStep):
            continue
        if step.rework and step.genealogy:
            out.append(Problem((*path, "genealogy"), "a rework step changes no genealogy"))
        if step.warnings is not None and step.tool in KINDS:
            names = _warning_names(step.tool)
            for key in ("hold", "expected"):
                for j, name in enumerate(getattr(step.warnings, key)):
                    if name not in names:
                        out.append(
                            Problem(
                                (*path, "warnings", key, j),
                                f"{step.tool} reports no warning {name!r}"
                                f" (warnings: {', '.join(sorted(names))})",
                            )
                        )
        for name, text in step.feed_forward.items():
            if "${" in text:
                continue  # resolved per option set; checked when expanded
            try:
                node = formula.parse(text)
            except formula.FormulaError:
                continue  # reported with the expansion
            for ref in formula.refs(node):
                if ref.step not in written:
                    out.append(
                        Problem((*path, "feed_forward", name), f"no step with id {ref.step!r}")
                    )
    return out


def _genealogy_problems(
    r: Recipe, step: ToolStep | ExternalStep, path: tuple[str | int, ...]
) -> list[Problem]:
    out = []
    g = step.genealogy
    assert g is not None
    if g.merge:
        for j, part in enumerate(g.merge.from_):
            if part not in r.inputs and part not in UNIT_KINDS:
                out.append(
                    Problem(
                        (*path, "genealogy", "merge", "from", j),
                        f"{part!r} is neither an input nor a unit kind",
                    )
                )
    return out


def combinations(recipe: Recipe) -> Iterator[dict[str, str]]:
    """Every option combination (defaults first); beyond MAX_COMBINATIONS, the defaults and
    each option value on its own."""
    names = list(recipe.options)
    choices = [recipe.options[n].choices() for n in names]
    total = 1
    for c in choices:
        total *= len(c)
    defaults = {n: str(recipe.options[n].default_value()) for n in names}
    yield defaults
    if total <= MAX_COMBINATIONS:
        for combo in itertools.product(*choices):
            given = {n: str(v) for n, v in zip(names, combo, strict=True)}
            if given != defaults:
                yield given
        return
    for n, values in zip(names, choices, strict=True):
        for v in values:
            if str(v) != defaults[n]:
                yield {**defaults, n: str(v)}


def check(loaded: LoadedRecipe) -> list[str]:
    """Every problem of a loaded recipe over all its option combinations, one line each."""
    recipe = loaded.recipe
    lines: list[str] = []
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for given in combinations(recipe):
        if any(matches(c.when, given) for c in recipe.constraints):
            continue  # declared impossible: refused at run time with its reason
        exp = expand(recipe, given)
        problems = all_problems(exp)
        is_default = given == next(combinations(recipe))
        for p in problems:
            key = (p.path, p.reason)
            if key in seen:
                continue
            seen.add(key)
            if is_default:
                lines.append(loaded.where(p))
            else:
                combo = ", ".join(f"{k}={v}" for k, v in given.items())
                lines.append(
                    loaded.where(
                        Problem(
                            p.path,
                            f"impossible option combination {combo}"
                            f" (declare it under constraints): {p.reason}",
                        )
                    )
                )
    for i, c in enumerate(recipe.constraints):
        if matches(c.when, {n: str(s.default_value()) for n, s in recipe.options.items()}):
            lines.append(
                loaded.where(
                    Problem(
                        ("constraints", i),
                        f"the default options are declared impossible: {c.reason}",
                    )
                )
            )
    return lines


def check_file(path: str | Path) -> list[str]:
    try:
        return check(load(path))
    except RecipeError as e:
        return e.problems


def catalog(directory: Path | None = None) -> list[LoadedRecipe]:
    """Every recipe in the recipes directory; RecipeError lists files that do not load."""
    found: list[LoadedRecipe] = []
    problems: list[str] = []
    for path in sorted((directory or recipes_dir()).glob("*.yaml")):
        try:
            found.append(load(path))
        except RecipeError as e:
            problems += e.problems
    if problems:
        raise RecipeError(problems)
    return found


def find(
    recipe_id: str,
    version: int | None = None,
    hash: str | None = None,
    directory: Path | None = None,
) -> LoadedRecipe:
    """A recipe by id (the highest version unless a version or a content hash is asked for),
    or by content hash alone."""
    all_ = catalog(directory)
    matching = [r for r in all_ if recipe_id in (r.recipe.id, r.hash)]
    if not matching:
        known = ", ".join(sorted({r.recipe.id for r in all_})) or "none"
        raise RecipeNotFound(f"unknown recipe {shown(recipe_id)!r} (recipes: {known})")
    if hash is not None:
        matching = [r for r in matching if r.hash == hash]
        if not matching:
            raise RecipeNotFound(f"recipe {recipe_id} has no version with hash {shown(hash)!r}")
    if version is not None:
        matching = [r for r in matching if r.recipe.version == version]
        if not matching:
            raise RecipeNotFound(f"recipe {recipe_id} has no version {version}")
    return max(matching, key=lambda r: r.recipe.version)
