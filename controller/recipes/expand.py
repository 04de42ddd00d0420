"""Expand a recipe for one set of options: loops unrolled, conditions applied, ${...}
references resolved, every tool step validated against its tool kind's interface.

Problems are collected, not raised, so `fabline recipes check` can report all of them; each
names the path of the YAML it comes from.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from controller.recipes import formula
from controller.recipes.formula import FormulaError, Node, Par, Ref
from controller.recipes.model import (
    Condition,
    ExternalStep,
    Genealogy,
    Limit,
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
from drivers.units import format_quantity, parse_quantity, to_unit

_REF = re.compile(r"\$\{([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?\}")

Options = dict[str, str | int]


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str


@dataclass(frozen=True)
class Source:
    """A measured result a feed-forward formula reads: the expanded steps it comes from
    (several for sum()), its unit, and the range its spec lets through."""

    ref: Ref
    indices: tuple[int, ...]
    ids: tuple[str, ...]
    unit: str
    low: float  # per run, in `unit`
    high: float


@dataclass(frozen=True)
class FedParam:
    """A setpoint fed forward: its formula, the measurements it reads, and the value it
    takes for in-spec measurements (planned = with every measurement at its spec midpoint)."""

    param: str
    text: str  # as written, ${...} resolved
    node: Node  # numbers already in `unit`
    sources: tuple[Source, ...]
    unit: str
    planned: float
    low: float
    high: float


@dataclass(frozen=True)
class QueueLimit:
    """At most `max_s` from the end of step `from_index` (or of its rework, if that ran since)
    to the start of the step that carries this limit."""

    from_index: int
    from_id: str
    max_s: float
    reason: str
    path: Path  # the queue_times entry
    rework_index: int | None = None
    rework_id: str | None = None
    to_index: int = -1
    to_id: str = ""

    def describe(self) -> str:
        return (
            format_quantity(self.max_s / 3600.0, "h")
            if self.max_s >= 3600
            else (format_quantity(self.max_s / 60.0, "min"))
        )


@dataclass(frozen=True)
class ChartPlan:
    """An SPC chart a tool step declares on one of its results (recipe `spc:`), in the
    result's canonical unit; the engine keys it by recipe, step template, result and tool."""

    result: str
    unit: str
    rules: str = "nelson"
    action: str = "warn"
    baseline: int = 20
    spread: bool = True


@dataclass(frozen=True, kw_only=True)
class StepPlan:
    """What every expanded step has: where it is in the recipe and the lot's flow."""

    index: int
    id: str  # unique within the expansion: template id, plus @var=value inside loops
    template: str  # the id as written
    path: Path  # where the step is written in the recipe
    name: str
    role: str | None
    spec: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    genealogy: Genealogy = field(default_factory=Genealogy)  # merge / split, resolved
    attributes: Mapping[str, Scalar] = field(default_factory=dict)
    loop: Mapping[str, int] = field(default_factory=dict)
    queue_limits: tuple[QueueLimit, ...] = ()  # limits that end at this step
    rework: bool = False  # runs only when an expired queue-time limit routes the lot here
    reworks: tuple[QueueLimit, ...] = ()  # the limits that route here (rework steps)

    @property
    def gated(self) -> bool:
        """The step needs a check when it starts (queue time, rework decision)."""
        return bool(self.queue_limits or self.rework)


@dataclass(frozen=True, kw_only=True)
class ToolStepPlan(StepPlan):
    """A step a tool of the line runs: one job of `operation` with these setpoints."""

    kind: ClassVar[Literal["tool"]] = "tool"
    tool: str  # tool kind
    operation: str
    params: Mapping[str, Scalar] = field(default_factory=dict)  # as written, resolved
    values: Mapping[str, Value] = field(default_factory=dict)  # validated, canonical units
    consume: tuple[str, ...] = ()
    feed_forward: Mapping[str, FedParam] = field(default_factory=dict)
    # at run time: per fed-forward parameter, the measurements it was computed from
    fed_inputs: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # at run time: the step as the job of one work piece runs it, for each piece measured on
    # its own by a step this one feeds forward from (a wafer's cut from its own thickness)
    pieces: Mapping[str, ToolStepPlan] = field(default_factory=dict)
    warnings_hold: frozenset[str] = frozenset()  # tool warnings that hold the lot
    out_of_spec: str = "hold"  # or "split": failing pieces go to a held child lot
    warnings_expected: frozenset[str] = frozenset()
    spc: tuple[ChartPlan, ...] = ()  # SPC charts on its results

    @property
    def op(self) -> Operation:
        return interface_for(self.tool).operation(self.operation)

    def temperatures(self) -> dict[str, float]:
        """Every process temperature the step sets, °C (interlocks read these)."""
        return {
            p.name: float(self.values[p.name])
            for p in self.op.params
            if p.unit == "°C" and p.name in self.values and float(self.values[p.name]) > 0
        }


@dataclass(frozen=True, kw_only=True)
class ExternalStepPlan(StepPlan):
    """A step outside the line (front-end fab, an incoming film): the lot waits until the
    material comes back with the fields it `returns`."""

    kind: ClassVar[Literal["external"]] = "external"
    external: str  # what is expected, as a work order
    returns: tuple[str, ...] = ()
    return_units: Mapping[str, str] = field(default_factory=dict)  # spec'd returned fields
    max_temp: float | None = None  # °C the material may see there, when the recipe says

    def temperatures(self) -> dict[str, float]:
        return {} if self.max_temp is None else {"max_temp": self.max_temp}


PlannedStep = ToolStepPlan | ExternalStepPlan


@dataclass
class Expansion:
    recipe: Recipe
    options: Options
    steps: list[PlannedStep] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    active_claims: set[tuple[str, int]] = field(default_factory=set)

    @property
    def tool_steps(self) -> list[ToolStepPlan]:
        """The steps tools of the line run, in order."""
        return [s for s in self.steps if isinstance(s, ToolStepPlan)]

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
    if not exp.problems:
        _queue_times(exp)
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
            "genealogy": Genealogy.model_validate(genealogy),
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
        spec: dict[str, tuple[float | None, float | None]] = {}
        units: dict[str, str] = {}
        for name, limit in step.spec.items():
            where = (*path, "spec", name)
            if name not in step.returns:
                self.problem(where, f"{name!r} is not one of the returned fields")
                continue
            found = _limit_unit(limit)
            if found is None:
                self.problem(where, "a returned field's limits need units (e.g. -1700 ppm)")
                continue
            try:
                spec[name] = tuple(  # type: ignore[assignment]
                    None if raw is None else to_unit(str(raw), found)
                    for raw in (limit.min, limit.max)
                )
            except FablineError as e:
                self.problem(where, str(e))
                continue
            units[name] = found
        self.exp.steps.append(
            ExternalStepPlan(
                **self._common(step, path, loop),
                external=str(self.resolve(step.external, (*path, "external"), loop)),
                returns=tuple(step.returns),
                return_units=units,
                spec=spec,
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
        fed = self._feed_forward(op, step, params, path, loop)
        values = self._validate_params(op, params, path, skip=set(step.feed_forward) - set(fed))
        if fed and len(values) == len(op.params):
            self._check_corners(op, fed, values, path)
        spec = self._spec(op, step, path, loop)
        charts = self._charts(op, step, path)
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
        reported = {a.name for a in iface.alarms if a.warning}
        hold = set(self.recipe.warning_policy.hold) & reported
        expected: set[str] = set()
        if step.warnings is not None:
            hold |= set(step.warnings.hold)
            expected = set(step.warnings.expected)
        self.exp.steps.append(
            ToolStepPlan(
                **common,
                tool=step.tool,
                operation=op.name,
                params=params,
                values=values,
                spec=spec,
                consume=consume,
                feed_forward=fed,
                rework=step.rework,
                warnings_hold=frozenset(hold - expected),
                warnings_expected=frozenset(expected),
                out_of_spec=step.out_of_spec,
                spc=charts,
            )
        )

    # -- feed-forward -----------------------------------------------------------------------

    def _feed_forward(
        self,
        op: Operation,
        step: ToolStep,
        params: dict[str, Scalar],
        path: Path,
        loop: Mapping[str, int],
    ) -> dict[str, FedParam]:
        """Bind each formula to the earlier steps it reads, check units, and write the planned
        value (measurements at their spec midpoints) into `params`."""
        nodes: dict[str, Node] = {}
        texts: dict[str, str] = {}
        for name, raw in step.feed_forward.items():
            where = (*path, "feed_forward", name)
            try:
                op.param(name)
            except ParameterError as e:
                self.problem(where, _strip_op(str(e)))
                continue
            if op.param(name).is_choice:
                self.problem(where, f"{name} is a choice; only numbers are fed forward")
                continue
            text = str(self.resolve(raw, where, loop))
            try:
                nodes[name] = formula.parse(text)
            except FormulaError as e:
                self.problem(where, str(e))
                continue
            texts[name] = text
        order = _param_order(nodes)
        if order is None:
            self.problem((*path, "feed_forward"), "formulas refer to each other in a circle")
            return {}
        fed: dict[str, FedParam] = {}
        for name in order:
            where = (*path, "feed_forward", name)
            target = op.param(name).unit
            sources: dict[Ref, Source] = {}
            for ref in formula.refs(nodes[name]):
                source = self._source(ref, where)
                if source is not None:
                    sources[ref] = source
            if len(sources) != len(formula.refs(nodes[name])):
                continue

            def unit_of(
                r: Ref | Par, sources: dict[Ref, Source] = sources, target: str = target
            ) -> str:
                if isinstance(r, Par):
                    return op.param(r.name).unit
                return sources[r].unit if sources[r].indices else target  # an empty sum

            try:
                for par in formula.params(nodes[name]):
                    if par == name:
                        raise FormulaError(f"{name} refers to itself")
                    op.param(par)
                    if par in step.feed_forward and par not in fed:
                        raise _Reported  # its own formula failed, and was reported
                    if par not in params and par not in fed and op.param(par).required:
                        raise FormulaError(f"{par} is neither set nor fed forward")
                formula.check_units(nodes[name], target, unit_of)
                node = formula.convert_nums(nodes[name], target)
            except (FormulaError, ParameterError) as e:
                self.problem(where, _strip_op(str(e)))
                continue
            except _Reported:
                continue
            ranges = _ranges(node, sources, target, op, params, fed)
            mid = {k: (lo + hi) / 2.0 for k, (lo, hi) in ranges.items()}
            planned = formula.evaluate(node, mid.__getitem__)
            ends = [formula.evaluate(node, c.__getitem__) for c in formula.corners(node, ranges)]
            fed[name] = FedParam(
                name, texts[name], node, tuple(sources.values()), target, planned,
                min(ends), max(ends),
            )  # fmt: skip
            params[name] = format_quantity(round(planned, 6), target)
        return fed

    def _source(self, ref: Ref, where: Path) -> Source | None:
        """The earlier expanded steps a reference reads, with their spec range."""
        found = [s for s in self.exp.steps if s.template == ref.step]
        if not found:
            if ref.total:  # sum() over a step the options leave out is 0
                return Source(ref, (), (), "", 0.0, 0.0)
            self.problem(
                where,
                f"no step {ref.step} runs before this step with options"
                f" {self.exp.describe_options()} (sum({ref}) reads an optional step as 0)",
            )
            return None
        steps = found if ref.total else found[-1:]
        first = steps[-1]
        if first.rework:
            self.problem(where, f"{ref.step} is a rework step, which may not run")
            return None
        if first.kind == "external":
            if ref.result not in first.returns:
                self.problem(where, f"step {ref.step} returns no {ref.result!r}")
                return None
            unit_ = first.return_units.get(ref.result)
        else:
            assert first.tool is not None and first.operation is not None
            results = {r.name: r.unit for r in interface_for(first.tool).operation(
                first.operation).results}  # fmt: skip
            if ref.result not in results:
                self.problem(
                    where,
                    f"{first.tool} {first.operation} reports no {ref.result!r}"
                    f" (results: {', '.join(results)})",
                )
                return None
            unit_ = results[ref.result]
        lims = [s.spec.get(ref.result, (None, None)) for s in steps]
        if unit_ is None or any(lo is None or hi is None for lo, hi in lims):
            self.problem(
                where,
                f"{ref} is fed forward but step {first.id} has no spec with min and max on"
                f" {ref.result} (only a measurement known to be in spec may set a later step)",
            )
            return None
        low = min(lo for lo, _ in lims if lo is not None)
        high = max(hi for _, hi in lims if hi is not None)
        return Source(ref, tuple(s.index for s in steps), tuple(s.id for s in steps), unit_,
                      low, high)  # fmt: skip

    def _check_corners(
        self, op: Operation, fed: Mapping[str, FedParam], values: Mapping[str, Value], path: Path
    ) -> None:
        """Every in-spec combination of the measurements gives setpoints the tool accepts."""
        sources = {s.ref: s for f in fed.values() for s in f.sources}
        for ends in itertools.product(*((s.low, s.high) for s in sources.values())):
            measured = dict(zip(sources, ends, strict=True))
            got = fed_values(op, fed, values, functools.partial(_total, measured))
            reason = refusal(op, got, fed)
            if reason is not None:
                at = ", ".join(
                    f"{r} = {format_quantity(round(v, 4), sources[r].unit)}"
                    for r, v in measured.items()
                )
                self.problem(
                    (*path, "feed_forward"),
                    f"fed-forward setpoints fail for measurements at the edge of their spec"
                    f" ({at}): {reason}",
                )
                return

    def _validate_params(
        self,
        op: Operation,
        params: Mapping[str, Scalar],
        path: Path,
        skip: set[str] | None = None,
    ) -> dict[str, Value]:
        """`skip`: parameters whose feed-forward failed (already reported)."""
        key = (op.name, id(op), tuple(sorted((k, str(v)) for k, v in params.items())))
        if not skip and key in _VALID:
            return dict(_VALID[key])  # the same parameters in another option combination
        values: dict[str, Value] = {}
        for name, raw in params.items():
            where = (*path, "params", name)
            try:
                p = op.param(name)
                values[name] = p.coerce(raw if not isinstance(raw, bool) else str(raw))
            except ParameterError as e:
                self.problem(where, _strip_op(str(e)))
        missing = [
            p.name
            for p in op.params
            if p.required and p.name not in params and p.name not in (skip or set())
        ]
        for name in missing:
            self.problem(
                (*path, "params"),
                f"{op.name} needs parameter {name!r} ({op.param(name).describe_range()})",
            )
        if len(values) == len(params) and not missing and not skip:
            try:
                values = op.validate(params)  # defaults and the tool's published rules
            except ParameterError as e:
                self.problem((*path, "params"), _strip_op(str(e)))
            else:
                if len(_VALID) > 50_000:
                    _VALID.clear()
                _VALID[key] = dict(values)
        return values

    def _spec(
        self, op: Operation, step: ToolStep, path: Path, loop: Mapping[str, int]
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
                raw = self.resolve(raw, (*where, side), loop)
                if isinstance(raw, bool) or not isinstance(raw, str | int | float):
                    self.problem((*where, side), f"limit {raw!r} is not a quantity")
                    bounds.append(None)
                    continue
                try:
                    bounds.append(to_unit(raw if isinstance(raw, str) else float(raw), units[name]))
                except FablineError as e:
                    self.problem((*where, side), str(e))
                    bounds.append(None)
            out[name] = (bounds[0], bounds[1])
        return out

    def _charts(self, op: Operation, step: ToolStep, path: Path) -> tuple[ChartPlan, ...]:
        results = {r.name: r for r in op.results}
        out = []
        for name, chart in step.spc.items():
            r = results.get(name)
            if r is None:
                self.problem(
                    (*path, "spc", name),
                    f"{op.name} reports no result {name!r} to chart"
                    f" (results: {', '.join(results)})",
                )
                continue
            out.append(ChartPlan(name, r.unit, chart.rules, chart.action, chart.baseline,
                                 chart.spread))  # fmt: skip
        return tuple(out)

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


# Validated parameters by (operation, parameters as written): `recipes check` expands every
# option combination, and most steps come out the same in many of them. Interfaces are
# module-level constants, so an operation's identity is stable for the process.
_VALID: dict[tuple[str, int, tuple[tuple[str, str], ...]], dict[str, Value]] = {}


class _Reported(Exception):
    """A problem already reported: skip the rest of this check quietly."""


def _limit_unit(limit: Limit) -> str | None:
    """The unit the limits of a returned field are written in."""
    for raw in (limit.min, limit.max):
        if isinstance(raw, str):
            try:
                return parse_quantity(raw).unit or None
            except FablineError:
                return None
    return None


def _param_order(nodes: Mapping[str, Node]) -> list[str] | None:
    """Fed-forward parameters in an order where each comes after those it reads."""
    order: list[str] = []
    pending = dict(nodes)
    while pending:
        ready = [n for n, node in pending.items() if not set(formula.params(node)) & set(pending)]
        if not ready:
            return None
        for n in ready:
            order.append(n)
            del pending[n]
    return order


def _ranges(
    node: Node,
    sources: Mapping[Ref, Source],
    target: str,
    op: Operation,
    params: Mapping[str, Scalar],
    fed: Mapping[str, FedParam],
) -> dict[Ref | Par, tuple[float, float]]:
    """Each input's range in the target unit: a sum over n runs spans n × the spec."""
    out: dict[Ref | Par, tuple[float, float]] = {}
    for ref, s in sources.items():
        n = len(s.indices)
        if n == 0:
            out[ref] = (0.0, 0.0)
            continue
        lo, hi = (formula.to_target(v * n, s.unit, target) for v in (s.low, s.high))
        out[ref] = (min(lo, hi), max(lo, hi))
    for par in formula.params(node):
        p = op.param(par)
        if par in fed:
            lo, hi = fed[par].low, fed[par].high
        else:
            raw = params.get(par, p.default)
            v = to_unit(raw if not isinstance(raw, bool) else str(raw), p.unit)  # type: ignore[arg-type]
            lo = hi = v
        out[Par(par)] = tuple(  # type: ignore[assignment]
            sorted(formula.to_target(x, p.unit, target) for x in (lo, hi))
        )
    return out


def refusal(op: Operation, values: Mapping[str, Value], fed: Iterable[str]) -> str | None:
    """Why the tool would refuse these values, where only the fed-forward ones changed since
    they were validated: their ranges, then the operation's rules."""
    for name in fed:
        p, v = op.param(name), float(values[name])
        if (p.min is not None and v < p.min) or (p.max is not None and v > p.max):
            return (
                f"{name} {format_quantity(round(v, 4), p.unit)} is outside the allowed range"
                f" {p.describe_range()}"
            )
    for rule in op.rules:
        reason = rule.check(values)
        if reason:
            return reason
    return None


def _total(per_run: Mapping[Ref, float], s: Source) -> float:
    return per_run[s.ref] * len(s.indices)


def fed_values(
    op: Operation,
    fed: Mapping[str, FedParam],
    values: Mapping[str, Value],
    measured: Callable[[Source], float],
) -> dict[str, Value]:
    """`values` with every fed-forward parameter computed, in order, from `measured` (a
    source's total over its runs, in the source's unit; 0 for a sum over no runs)."""
    got: dict[str, Value] = dict(values)
    for name, f in fed.items():

        def value(r: Ref | Par, f: FedParam = f) -> float:
            if isinstance(r, Par):
                return formula.to_target(float(got[r.name]), op.param(r.name).unit, f.unit)
            s = next(x for x in f.sources if x.ref == r)
            return formula.to_target(measured(s), s.unit, f.unit) if s.indices else 0.0

        got[name] = formula.evaluate(f.node, value)
    return got


# -- queue times ----------------------------------------------------------------------------


def _queue_times(exp: Expansion) -> None:
    """Attach each queue-time limit to the expanded steps it ends at, and each rework step to
    the limits that route to it."""
    steps = exp.steps
    for i, q in enumerate(exp.recipe.queue_times):
        path: Path = ("queue_times", i)
        try:
            max_s = to_unit(q.max, "s")
        except FablineError as e:
            exp.problems.append(Problem((*path, "max"), str(e)))
            continue
        if max_s <= 0:
            exp.problems.append(Problem((*path, "max"), "a queue-time limit must be > 0"))
            continue
        for to in [s for s in steps if s.template in q.to]:
            start = next((s for s in reversed(steps[: to.index]) if s.template in q.from_), None)
            if start is None:
                continue  # nothing this limit times runs before this step
            rework = None
            if q.rework is not None:
                rework = next(
                    (
                        s
                        for s in reversed(steps[start.index + 1 : to.index])
                        if s.template == q.rework
                    ),
                    None,
                )
                if rework is None:
                    exp.problems.append(
                        Problem(
                            (*path, "rework"),
                            f"rework step {q.rework} does not run between {start.id} and"
                            f" {to.id} with options {exp.describe_options()}",
                        )
                    )
                    continue
            limit = QueueLimit(
                start.index, start.id, max_s, q.reason, path,
                rework.index if rework else None, rework.id if rework else None,
                to.index, to.id,
            )  # fmt: skip
            steps[to.index] = dataclasses.replace(
                steps[to.index], queue_limits=(*steps[to.index].queue_limits, limit)
            )
            if rework is not None:
                steps[rework.index] = dataclasses.replace(
                    steps[rework.index], reworks=(*steps[rework.index].reworks, limit)
                )


def resolve(exp: Expansion, raw: Any, path: Path) -> Any:
    """Resolve ${...} references against an expansion's options (outside any loop)."""
    return _Expander(exp.recipe, exp).resolve(raw, path, {})


def _strip_op(message: str) -> str:
    return re.sub(r"^operation '[a-z_0-9]+': ", "", message)
