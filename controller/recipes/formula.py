"""Feed-forward formulas: a setpoint computed from what earlier steps of the lot measured.

    cut_depth: stack_thickness + 30 µm
    stack_thickness: 775 µm + sum(bond.blt) + sum(thin.thickness) + sum(heat-layer.thickness)
    resist_thickness: via-resist.thickness
    depth: 1.25 * liner.bottom_thickness
    min_gap: min(thickness - bumps-reflow.ball_height, 100 µm)

Grammar (step ids contain '-', so write binary operators with spaces round them):

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "×") factor)*
    factor := "-" factor | NUMBER [UNIT] | STEP.RESULT | PARAM | "(" expr ")"
            | "sum(" STEP.RESULT ")" | ("min" | "max") "(" expr ("," expr)* ")"

`STEP.RESULT` is a result of the latest earlier step written with id STEP (a returned field,
for an external step); `sum(STEP.RESULT)` adds that result over every earlier run of STEP (loop
layers), 0 when the options leave STEP out; `PARAM` is another parameter of the same step.
Every term carries the parameter's dimension (a plain number only multiplies), and is
converted to the parameter's unit; a temperature must be written in the parameter's unit
(°C + K is a difference, not a conversion).

This module parses, checks units and evaluates; binding references to steps is `expand`'s job.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from drivers.errors import FablineError
from drivers.units import convert, parse_quantity, unit


class FormulaError(FablineError):
    """A feed-forward formula that does not parse, or mixes dimensions."""


@dataclass(frozen=True)
class Num:
    value: float
    unit: str  # "" for a plain number


@dataclass(frozen=True)
class Ref:
    step: str  # step id as written (a template id)
    result: str
    total: bool = False  # sum() over every earlier run of the step

    def __str__(self) -> str:
        text = f"{self.step}.{self.result}"
        return f"sum({text})" if self.total else text


@dataclass(frozen=True)
class Par:
    name: str


@dataclass(frozen=True)
class Neg:
    arg: Node


@dataclass(frozen=True)
class Bin:
    op: str  # + - *
    left: Node
    right: Node


@dataclass(frozen=True)
class Fn:
    name: str  # min, max
    args: tuple[Node, ...]


Node = Num | Ref | Par | Neg | Bin | Fn

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<ref>[a-z0-9][a-z0-9-]*\.[a-z_][a-z0-9_]*)"
    r"|(?P<fn>sum|min|max)\s*\("
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"(?:[ \t]*(?P<unit>[^\s\d()+\-*×,.][^\s()+*×,]*))?"
    r"|(?P<name>[a-z_][a-z0-9_]*)"
    r"|(?P<op>[-+*×(),])"
    r")"
)


def _tokens(text: str) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FormulaError(f"cannot read {text[pos:].strip()!r} in formula {text!r}")
        kind = m.lastgroup if m.lastgroup != "unit" else "num"
        assert kind is not None
        out.append((kind, m.group(kind), m.group("unit") if kind == "num" else None))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, what: str) -> FormulaError:
        return FormulaError(f"{what} in formula {self.text!r}")

    def peek(self) -> tuple[str, str, str | None] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str, str | None]:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        if value is not None and tok[1] != value:
            raise self.fail(f"expected {value!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise FormulaError("empty formula")
        node = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def expr(self) -> Node:
        node = self.term()
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in "+-":
            self.take()
            node = Bin(tok[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in "*×":
            self.take()
            node = Bin("*", node, self.factor())
        return node

    def factor(self) -> Node:
        kind, value, unit_text = self.take()
        if kind == "op" and value == "-":
            return Neg(self.factor())
        if kind == "op" and value == "(":
            node = self.expr()
            self.take(")")
            return node
        if kind == "num":
            if unit_text is None:
                return Num(float(value), "")
            try:
                q = parse_quantity(f"{value} {unit_text}")
            except FablineError as e:
                raise self.fail(str(e)) from None
            return Num(q.value, q.unit)
        if kind == "ref":
            step, _, result = value.partition(".")
            return Ref(step, result)
        if kind == "name":
            return Par(value)
        if kind == "fn":
            if value == "sum":
                ref_tok = self.take()
                if ref_tok[0] != "ref":
                    raise self.fail("sum() takes one STEP.RESULT")
                self.take(")")
                step, _, result = ref_tok[1].partition(".")
                return Ref(step, result, total=True)
            args = [self.expr()]
            while (tok := self.peek()) is not None and tok[1] == ",":
                self.take()
                args.append(self.expr())
            self.take(")")
            return Fn(value, tuple(args))
        raise self.fail(f"unexpected {value!r}")


def parse(text: str) -> Node:
    """Parse a formula; FormulaError says what is wrong."""
    return _Parser(str(text)).parse()


def walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Neg):
        yield from walk(node.arg)
    elif isinstance(node, Bin):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Fn):
        for a in node.args:
            yield from walk(a)


def refs(node: Node) -> list[Ref]:
    """Distinct step references, in order of appearance."""
    return list(dict.fromkeys(n for n in walk(node) if isinstance(n, Ref)))


def params(node: Node) -> list[str]:
    """Same-step parameters the formula reads."""
    return list(dict.fromkeys(n.name for n in walk(node) if isinstance(n, Par)))


def to_target(value: float, source: str, target: str) -> float:
    """`value` in `source` units as `target` units; temperatures only in the same unit."""
    return value if source == target else value * _factor(source, target)


@functools.lru_cache(maxsize=256)
def _factor(source: str, target: str) -> float:
    if unit(source).dimension == "temperature" and unit(source) is not unit(target):
        raise FormulaError(
            f"a temperature term in {source} for a parameter in {target}: write it in {target}"
        )
    try:
        return convert(1.0, source, target)
    except FablineError as e:
        raise FormulaError(str(e)) from None


UnitOf = Callable[[Ref | Par], str]


def check_units(node: Node, target: str, unit_of: UnitOf) -> None:
    """Every additive term has the target's dimension; plain numbers only multiply."""
    plain_ok = unit(target).dimension in ("dimensionless", "count")

    def kind(n: Node) -> str:  # "q" a quantity of the target's dimension, "n" a plain number
        if isinstance(n, Num):
            if not n.unit:
                return "q" if plain_ok else "n"
            to_target(1.0, n.unit, target)
            return "q"
        if isinstance(n, Ref | Par):
            to_target(1.0, unit_of(n) or "", target)
            return "q"
        if isinstance(n, Neg):
            return kind(n.arg)
        if isinstance(n, Fn):
            for a in n.args:
                if kind(a) != "q":
                    raise FormulaError(f"{n.name}() takes quantities in {target}")
            return "q"
        left, right = kind(n.left), kind(n.right)
        if n.op == "*":
            if left == right == "q" and not plain_ok:
                raise FormulaError(f"a product of two quantities is not a {target} quantity")
            return "q" if "q" in (left, right) else "n"
        if left != right:
            raise FormulaError(f"cannot add a plain number to a quantity in {target}")
        return left

    if kind(node) != "q":
        raise FormulaError(f"the formula gives a plain number, not a quantity in {target}")


Value = Callable[[Ref | Par], float]
"""The value of a reference, already in the target unit."""


def evaluate(node: Node, value: Value) -> float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref | Par):
        return value(node)
    if isinstance(node, Neg):
        return -evaluate(node.arg, value)
    if isinstance(node, Fn):
        args = [evaluate(a, value) for a in node.args]
        return min(args) if node.name == "min" else max(args)
    left, right = evaluate(node.left, value), evaluate(node.right, value)
    return left + right if node.op == "+" else left - right if node.op == "-" else left * right


def convert_nums(node: Node, target: str) -> Node:
    """The formula with every unit-carrying number already in the target unit."""
    if isinstance(node, Num):
        return Num(to_target(node.value, node.unit, target), target) if node.unit else node
    if isinstance(node, Neg):
        return Neg(convert_nums(node.arg, target))
    if isinstance(node, Bin):
        return Bin(node.op, convert_nums(node.left, target), convert_nums(node.right, target))
    if isinstance(node, Fn):
        return Fn(node.name, tuple(convert_nums(a, target) for a in node.args))
    return node


def corners(
    node: Node, ranges: dict[Ref | Par, tuple[float, float]]
) -> Iterator[dict[Ref | Par, float]]:
    """Every combination of the ends of the inputs' ranges (a formula of sums, differences,
    positive or negative multiples, min and max takes its extremes at these corners)."""
    keys = list(ranges)
    for ends in itertools.product(*(ranges[k] for k in keys)):
        yield dict(zip(keys, ends, strict=True))


def text_of(node: Node) -> str:
    """A canonical rendering (for records and `recipes show`)."""
    if isinstance(node, Num):
        v = f"{node.value:g}"
        return f"{v} {node.unit}" if node.unit else v
    if isinstance(node, Ref):
        return str(node)
    if isinstance(node, Par):
        return node.name
    if isinstance(node, Neg):
        return f"-{text_of(node.arg)}"
    if isinstance(node, Fn):
        return f"{node.name}({', '.join(text_of(a) for a in node.args)})"
    right = text_of(node.right)
    if node.op != "*" and isinstance(node.right, Bin) and node.right.op in "+-":
        right = f"({right})"
    left = text_of(node.left)
    if node.op == "*":
        left = f"({left})" if isinstance(node.left, Bin) and node.left.op in "+-" else left
        right = f"({right})" if isinstance(node.right, Bin) and node.right.op in "+-" else right
    return f"{left} {node.op} {right}"
