"""Expand a recipe for one set of options: loops unrolled, conditions applied, ${...}
references resolved, every tool step validated against its tool kind's interface.

Problems are collected, not raised, so `fabline recipes check` can report all of them; each
names the path of the YAML it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.recipes.model import (
    Condition,
    ExternalStep,
    Recipe,
    RepeatStep,
    Scalar,
    Step,
    ToolStep,
    parse_claims,
)
from controller.recipes.yaml_lines import Path
from drivers.errors import FablineError, ParameterError, shown
from drivers.interface import Operation, Value
from drivers.interfaces import KINDS, interface_for
from drivers.units import Quantity, parse_quantity, to_unit

_REF = re.compile(r"\$\{([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?\}")

Options = dict[str, str | int]


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str


@dataclass(frozen=True)
class PlannedStep:
    """One step of an expanded recipe, ready to run."""

    index: int
    id: str  # unique within the expansion: template id, plus @var=value inside loops
    template: str  # the id as written
    path: Path  # where the step is written in the recipe
    kind: str  # "tool" or "external"
    name: str
    role: str | None
    tool: str | None = None
    operation: str | None = None
    params: Mapping[str, Scalar] = field(default_factory=dict)  # as written, resolved
    values: Mapping[str, Value] = field(default_factory=dict)  # validated, canonical units
    spec: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    consume: tuple[str, ...] = ()
    genealogy: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Scalar] = field(default_factory=dict)
    external: str | None = None
    returns: tuple[str, ...] = ()
    max_temp: float | None = None  # °C, external steps
    loop: Mapping[str, int] = field(default_factory=dict)

    @property
    def op(self) -> Operation | None:
        """The tool operation a tool step runs (None for an external step)."""
        if self.tool is None or self.operation is None:
            return None
        return interface_for(self.tool).operation(self.operation)

    def temperatures(self) -> dict[str, float]:
        """Every process temperature the step sets, °C (interlocks read these)."""
        if self.kind == "external":
            return {} if self.max_temp is None else {"max_temp": self.max_temp}
        assert self.tool is not None and self.operation is not None
        op = interface_for(self.tool).operation(self.operation)
        return {
            p.name: float(self.values[p.name])
            for p in op.params
            if p.unit == "°C" and p.name in self.values and float(self.values[p.name]) > 0
        }


@dataclass
class Expansion:
    recipe: Recipe
    options: Options
    steps: list[PlannedStep] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    active_claims: set[tuple[str, int]] = field(default_factory=set)

    def step(self, template: str) -> PlannedStep | None:
        """First expanded step written with id `template`."""
        return next((s for s in self.steps if s.template == template), None)

    def describe_options(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items())


# -- options ------------------------------------------------------------------------------


def resolve_options(recipe: Recipe, given: Mapping[str, str]) -> tuple[Options, list[Problem]]:
    """Defaults overlaid with `given` (strings from the command line or an MES dispatch)."""
    problems: list[Problem] = []
    options: Options = {name: spec.default_value() for name, spec in recipe.options.items()}
    for name, raw in given.items():
        spec = recipe.options.get(name)
        if spec is None:
            known = ", ".join(recipe.options) or "none"
            problems.append(
                Problem(("options",), f"unknown option {shown(name)!r} (options: {known})")
            )
            continue
        if spec.type == "int":
            try:
                value = int(raw)
            except ValueError:
                value = None
            if value is None or not spec.min <= value <= spec.max:  # type: ignore[operator]
                problems.append(
                    Problem(
                        ("options", name),
                        f"{name}={shown(raw)}: expects a whole number in {spec.min}..{spec.max}",
                    )
                )
                continue
            options[name] = value
        else:
            choice = str(raw).lower()
            if choice not in (spec.values or {}):
                problems.append(
                    Problem(
                        ("options", name),
                        f"{name}={shown(raw)}: expects one of {', '.join(spec.values or {})}",
                    )
                )
                continue
            options[name] = choice
    return options, problems


def matches(cond: Condition | None, context: Mapping[str, Any]) -> bool:
    if not cond:
        return True
    for key, want in cond.items():
        wanted = want if isinstance(want, list) else [want]
        have = context.get(key)
        if not any(_same(have, w) for w in wanted):
            return False
    return True


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, bool):
        want = str(want).lower()
    return str(have) == str(want)


def active_claims(recipe: Recipe, options: Options) -> set[tuple[str, int]]:
    """Claims always in force, plus those the chosen option values bring in."""
    bound: set[tuple[str, int]] = set()
    chosen: set[tuple[str, int]] = set()
    for name, spec in recipe.options.items():
        for value, attrs in (spec.values or {}).items():
            claims = {c for text in attrs.get("claims", []) for c in parse_claims(str(text))}
            bound |= claims
            if options.get(name) == value:
                chosen |= claims
    return (recipe.claimed() - bound) | chosen


# -- expansion ----------------------------------------------------------------------------


def expand(recipe: Recipe, given: Mapping[str, str] | None = None) -> Expansion:
    options, problems = resolve_options(recipe, given or {})
    exp = Expansion(recipe, options, problems=problems)
    if problems:
        return exp
    for i, c in enumerate(recipe.constraints):
        if matches(c.when, options):
            claim = f" (claim {c.claim})" if c.claim else ""
            exp.problems.append(
                Problem(
                    ("constraints", i),
                    f"impossible option combination {exp.describe_options()}: {c.reason}{claim}",
                )
            )
    if exp.problems:
        return exp
    exp.active_claims = active_claims(recipe, options)
    _Expander(recipe, exp).run()
    return exp


class _Expander:
    def __init__(self, recipe: Recipe, exp: Expansion) -> None:
        self.recipe = recipe
        self.exp = exp

    def run(self) -> None:
        self._steps(self.recipe.steps, ("steps",), {})

    def problem(self, path: Path, reason: str) -> None:
        self.exp.problems.append(Problem(path, reason))

    def _steps(self, steps: list[Step], path: Path, loop: dict[str, int]) -> None:
        for i, step in enumerate(steps):
            here = (*path, i)
            context = {**self.exp.options, **loop}
            if not matches(step.when, context) or (step.unless and matches(step.unless, context)):
                continue
            if isinstance(step, RepeatStep):
                self._repeat(step, here, loop)
            elif isinstance(step, ToolStep):
                self._tool(step, here, loop)
            else:
                self._external(step, here, loop)

    def _repeat(self, step: RepeatStep, path: Path, loop: dict[str, int]) -> None:
        bounds = []
        for key, raw in (("from", step.repeat.from_), ("to", step.repeat.to)):
            value = self.resolve(raw, (*path, "repeat", key), loop)
            if not isinstance(value, int) or isinstance(value, bool):
                self.problem((*path, "repeat", key), f"loop bound {raw!r} is not a whole number")
                return
            bounds.append(value)
        if step.repeat.var in self.exp.options or step.repeat.var in loop:
            self.problem((*path, "repeat", "var"), f"loop variable {step.repeat.var!r} shadows")
            return
        for n in range(bounds[0], bounds[1] + 1):
            self._steps(step.steps, (*path, "steps"), {**loop, step.repeat.var: n})

    def _common(
        self, step: ToolStep | ExternalStep, path: Path, loop: dict[str, int]
    ) -> dict[str, Any]:
        suffix = "".join(f"@{k}={v}" for k, v in loop.items())
        genealogy = self.resolve_tree(
            step.genealogy.model_dump(by_alias=True, exclude_none=True) if step.genealogy else {},
            (*path, "genealogy"),
            loop,
        )
        attributes = {
            k: self.resolve(v, (*path, "attributes", k), loop) for k, v in step.attributes.items()
        }
        return {
            "index": len(self.exp.steps),
            "id": step.id + suffix,
            "template": step.id,
            "path": path,
            "name": step.name or step.id,
            "role": step.role,
            "genealogy": genealogy,
            "attributes": attributes,
            "loop": dict(loop),
        }

    def _external(self, step: ExternalStep, path: Path, loop: dict[str, int]) -> None:
        max_temp = None
        if step.max_temp is not None:
            raw = self.resolve(step.max_temp, (*path, "max_temp"), loop)
            try:
                max_temp = to_unit(str(raw), "°C")
            except FablineError as e:
                self.problem((*path, "max_temp"), str(e))
        self.exp.steps.append(
            PlannedStep(
                **self._common(step, path, loop),
                kind="external",
                external=step.external,
                returns=tuple(step.returns),
                max_temp=max_temp,
            )
        )

    def _tool(self, step: ToolStep, path: Path, loop: dict[str, int]) -> None:
        common = self._common(step, path, loop)
        if step.tool not in KINDS:
            self.problem(
                (*path, "tool"), f"unknown tool kind {step.tool!r} (kinds: {', '.join(KINDS)})"
            )
            return
        iface = interface_for(step.tool)
        try:
            op = iface.operation(step.operation)
        except ParameterError as e:
            self.problem((*path, "operation"), str(e))
            return
        params = {k: self.resolve(v, (*path, "params", k), loop) for k, v in step.params.items()}
        values = self._validate_params(op, params, path)
        spec = self._spec(op, step, path)
        consume = tuple(
            str(self.resolve(c, (*path, "consume", i), loop)) for i, c in enumerate(step.consume)
        )
        names = {c.name for c in iface.consumables}
        for i, c in enumerate(consume):
            if c not in names:
                self.problem(
                    (*path, "consume", i),
                    f"{step.tool} has no consumable {c!r}"
                    f" (consumables: {', '.join(sorted(names))})",
                )
        self.exp.steps.append(
            PlannedStep(
                **common,
                kind="tool",
                tool=step.tool,
                operation=op.name,
                params=params,
                values=values,
                spec=spec,
                consume=consume,
            )
        )

    def _validate_params(
        self, op: Operation, params: Mapping[str, Scalar], path: Path
    ) -> dict[str, Value]:
        values: dict[str, Value] = {}
        for name, raw in params.items():
            where = (*path, "params", name)
            try:
                p = op.param(name)
                values[name] = p.coerce(raw if not isinstance(raw, bool) else str(raw))
            except ParameterError as e:
                self.problem(where, _strip_op(str(e)))
        missing = [p.name for p in op.params if p.required and p.name not in params]
        for name in missing:
            self.problem(
                (*path, "params"),
                f"{op.name} needs parameter {name!r} ({op.param(name).describe_range()})",
            )
        if len(values) == len(params) and not missing:
            try:
                values = op.validate(params)  # defaults and the tool's published rules
            except ParameterError as e:
                self.problem((*path, "params"), _strip_op(str(e)))
        return values

    def _spec(
        self, op: Operation, step: ToolStep, path: Path
    ) -> dict[str, tuple[float | None, float | None]]:
        units = {r.name: r.unit for r in op.results}
        out: dict[str, tuple[float | None, float | None]] = {}
        for name, limit in step.spec.items():
            where = (*path, "spec", name)
            if name not in units:
                self.problem(
                    where, f"{op.name} reports no result {name!r} (results: {', '.join(units)})"
                )
                continue
            bounds: list[float | None] = []
            for side, raw in (("min", limit.min), ("max", limit.max)):
                if raw is None:
                    bounds.append(None)
                    continue
                try:
                    bounds.append(to_unit(raw if isinstance(raw, str) else float(raw), units[name]))
                except FablineError as e:
                    self.problem((*where, side), str(e))
                    bounds.append(None)
            out[name] = (bounds[0], bounds[1])
        return out

    # -- ${...} references ----------------------------------------------------------------

    def resolve(self, raw: Any, path: Path, loop: Mapping[str, int]) -> Any:
        if not isinstance(raw, str) or "${" not in raw:
            return raw
        whole = _REF.fullmatch(raw)
        if whole:
            return self._lookup(whole.group(1), whole.group(2), path, loop)
        return _REF.sub(lambda m: str(self._lookup(m.group(1), m.group(2), path, loop)), raw)

    def resolve_tree(self, raw: Any, path: Path, loop: Mapping[str, int]) -> Any:
        if isinstance(raw, dict):
            return {k: self.resolve_tree(v, (*path, k), loop) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.resolve_tree(v, (*path, i), loop) for i, v in enumerate(raw)]
        return self.resolve(raw, path, loop)

    def _lookup(self, name: str, attr: str | None, path: Path, loop: Mapping[str, int]) -> Any:
        if name in loop and attr is None:
            return loop[name]
        if name not in self.exp.options:
            known = ", ".join([*self.exp.options, *loop]) or "none"
            self.problem(
                path, f"unknown reference ${{{name}}} (options and loop variables: {known})"
            )
            return ""
        value = self.exp.options[name]
        if attr is None:
            return value
        attrs = (self.recipe.options[name].values or {}).get(str(value), {})
        if attr not in attrs:
            self.problem(path, f"option {name}={value} has no attribute {attr!r}")
            return ""
        return attrs[attr]


def resolve(exp: Expansion, raw: Any, path: Path) -> Any:
    """Resolve ${...} references against an expansion's options (outside any loop)."""
    return _Expander(exp.recipe, exp).resolve(raw, path, {})


def _strip_op(message: str) -> str:
    return re.sub(r"^operation '[a-z_0-9]+': ", "", message)


def quantity_text(value: Scalar) -> str:
    """How a written parameter reads back (for `recipes show`)."""
    if isinstance(value, str):
        try:
            q: Quantity = parse_quantity(value)
            return str(q)
        except FablineError:
            return value
    return str(value)
