"""What a lot starts with: recipe, options and input material, and how units are named.

Input material comes from the command line (`--wafers 5`, `--input panels=P1,P2`) or an MES
dispatch (explicit unit ids with slots). Units are named after the lot: `L1-W03` is the wafer
in slot 3 of lot L1, `L1-STK03` its stack, `L1-STK03-X012Y034` a package diced from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.recipes import LoadedRecipe
from controller.recipes.model import InputSpec
from drivers.errors import ParameterError, shown

LOT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
UNIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ID_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit"
PREFIX = {"wafer": "W", "panel": "P", "strip": "S", "die": "D", "film": "F", "lead": "L"}


def input_prefix(input_name: str) -> str:
    return input_name[:3].upper()


@dataclass(frozen=True)
class InputUnit:
    name: str
    slot: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LotSpec:
    lot_id: str
    recipe: LoadedRecipe
    options: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, list[InputUnit]] = field(default_factory=dict)
    priority: int = 0
    supplies: Mapping[str, str] = field(default_factory=dict)  # supply input -> source lot id


def supply_sources(
    lot_id: str, recipe: LoadedRecipe, given: Mapping[str, str | int | list[InputUnit]]
) -> dict[str, str]:
    """The upstream lot each supply input draws from (`--input dies=DIELOT7`); units drawn
    from it are split off that lot, so a forward trace of DIELOT7 finds its packages."""
    out = {}
    for name, spec in recipe.recipe.inputs.items():
        if not spec.supply:
            continue
        value = given.get(name)
        if isinstance(value, list) and len(value) == 1:
            out[name] = value[0].name
        elif value is None:
            out[name] = f"{lot_id}-{input_prefix(name)}"
        else:
            raise ParameterError(
                f"supply input {name!r} takes one source lot id, e.g. {name}=LOT42"
            )
    return out


def build_inputs(
    lot_id: str, recipe: LoadedRecipe, given: Mapping[str, str | int | list[InputUnit]]
) -> dict[str, list[InputUnit]]:
    """Input units for every counted input: given ids, a given count, or the minimum; `per`
    inputs get one unit per unit of the input they follow. Supply inputs are drawn later."""
    if not LOT_ID.match(lot_id):
        raise ParameterError(f"lot id {shown(lot_id)!r}: 1-32 {ID_RULE}")
    specs = recipe.recipe.inputs
    for name in given:
        if name in specs and specs[name].supply:
            continue
        if name not in specs:
            raise ParameterError(
                f"recipe {recipe.recipe.id} has no input {name!r} (inputs: {', '.join(specs)})"
            )
    out: dict[str, list[InputUnit]] = {}
    for name, spec in specs.items():
        if spec.count is None:
            continue  # supplies are drawn by the steps; `per` inputs follow below
        out[name] = _counted(lot_id, name, spec, given.get(name))
    for name, spec in specs.items():
        if spec.per is None:
            continue
        if spec.per not in out:
            raise ParameterError(f"input {name!r} is per {spec.per!r}, which is not counted")
        base = out[spec.per]
        value = given.get(name)
        if isinstance(value, list):
            if len(value) != len(base):
                raise ParameterError(
                    f"input {name!r}: {len(value)} units for {len(base)} {spec.per}"
                )
            out[name] = value
        else:
            letter = PREFIX.get(spec.kind, spec.kind[0].upper())
            out[name] = [InputUnit(f"{lot_id}-{letter}{u.slot:02d}", u.slot) for u in base]
    return out


def _counted(lot_id: str, name: str, spec: InputSpec, value: Any) -> list[InputUnit]:
    lo, hi = spec.count_range() or (1, 1)
    n = len(value) if isinstance(value, list) else lo if value is None else int(value)
    if not lo <= n <= hi:  # checked before any unit is made: a count of 10**7 costs nothing
        raise ParameterError(f"input {name!r} takes {lo}..{hi} {spec.kind}s, not {n}")
    if isinstance(value, list):
        units: list[InputUnit] = value
    else:
        letter = PREFIX.get(spec.kind, spec.kind[0].upper())
        units = [InputUnit(f"{lot_id}-{letter}{i:02d}", i) for i in range(1, n + 1)]
    names = [u.name for u in units]
    if len(set(names)) != len(names):
        raise ParameterError(f"input {name!r}: unit ids repeat")
    return units


def parse_input_arg(text: str) -> tuple[str, str | int | list[InputUnit]]:
    """`wafers=5`, or `wafers=W01,W02` (slots in order), or `dies=DIELOT7` for a supply."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise ParameterError(f"input {shown(text)!r} is not NAME=COUNT or NAME=ID,ID,...")
    if value.isdigit():
        return name, int(value)
    return name, unit_list(name, value.split(","))


def unit_list(name: str, ids: list[str]) -> list[InputUnit]:
    """Given unit ids, in slot order; each must be a valid id."""
    ids = [u.strip() for u in ids]
    for u in ids:
        if not UNIT_ID.match(u):
            raise ParameterError(
                f"input {name!r}: {shown(u)!r} is neither a count nor a unit id (1-64 {ID_RULE})"
            )
    return [InputUnit(u, i + 1) for i, u in enumerate(ids)]
