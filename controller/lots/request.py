"""A request for a new lot, as every front door states it, and the plan made from it.

The CLI builds a `LotRequest` from `--lot/--wafers/-o/-i`, an MES dispatch validates into
one, the demo writes one per recipe. `plan` resolves it once: the recipe version, the option
check and expansion (claims and interlocks included), the input units and supply sources —
so a request that cannot run fails before anything is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controller.lots import carriers, sort_maps
from controller.lots.carriers import CarrierSpec
from controller.lots.inputs import (
    InputUnit,
    build_inputs,
    supply_sources,
    unit_list,
)
from controller.recipes import Expansion, LoadedRecipe, find
from drivers.errors import ParameterError

MAX_UNITS = 1000  # units named in one input; a lot of 25 wafers names 25
MAX_MAPS = 100  # sort maps in one request: 25 wafers of 4 layers
MAX_MAP_CHARS = 4_000_000  # one sort map document: a 300 mm wafer of 1 mm dies in E142 XML


class LotRequest(BaseModel):
    """What a lot is to be: recipe (a version or content hash, else the newest), options,
    input material (a count, or unit ids in slot order; a supply input: its source lot's id),
    priority, and the wafers' incoming sort maps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lot_id: str  # checked by `plan`, with the rule in the message
    recipe: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)] | None = None
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{1,64}$")] | None = None
    options: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, int | list[str]] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    # incoming wafer-sort maps (controller/lots/sort_maps.py): wafer (`W01`, `L1-W01`) or
    # stack layer (`W01:2`) -> an E142 XML or JSON map document; or every wafer without one
    # gets a map the simulated upstream generates with this yield, seeded by `sort_seed`
    sort_maps: dict[
        Annotated[str, Field(min_length=1, max_length=72)],
        Annotated[str, Field(max_length=MAX_MAP_CHARS)],
    ] = Field(default_factory=dict, max_length=MAX_MAPS)
    sort_yield: Annotated[float, Field(gt=0, le=1)] | None = None
    sort_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    # input -> the carrier (FOUP, cassette) its units arrive in, with their slots
    carriers: dict[str, CarrierSpec] = Field(default_factory=dict, max_length=8)


@dataclass(frozen=True)
class LotPlan:
    """A request resolved: everything the lot is created from."""

    lot_id: str
    recipe: LoadedRecipe
    expansion: Expansion
    inputs: Mapping[str, list[InputUnit]]
    supplies: Mapping[str, str]  # supply input -> source lot id
    priority: int


def plan(
    request: LotRequest,
    *,
    allow_draft: bool = False,
    recipe: LoadedRecipe | None = None,
    labels: Mapping[str, str] | None = None,
) -> LotPlan:
    """Resolve a request, or raise the one error that says why it cannot run. `recipe`: a
    recipe loaded from elsewhere than the catalog (a benchmark's synthetic flow); `labels`:
    how errors name each sort map (the CLI: its file)."""
    loaded = recipe or find(request.recipe, request.version, request.hash)
    r = loaded.recipe
    if r.status != "approved" and not allow_draft:
        raise ParameterError(
            f"recipe {r.id} v{r.version} is {r.status}, not approved;"
            " only approved recipes run (or pass --allow-draft)"
        )
    expansion = loaded.expand(request.options)  # RecipeError on an impossible combination
    given: dict[str, str | int | list[InputUnit]] = {}
    for name, value in request.inputs.items():
        if isinstance(value, int):  # checked against the recipe's range before any unit is made
            given[name] = value
        else:
            if len(value) > MAX_UNITS:
                raise ParameterError(f"input {name!r}: more than {MAX_UNITS} unit ids")
            given[name] = unit_list(name, value)
    inputs = sort_maps.attach(
        request.lot_id,
        loaded,
        expansion,
        build_inputs(request.lot_id, loaded, given),
        request.sort_maps,
        request.sort_yield,
        request.sort_seed,
        labels,
    )
    inputs = carriers.attach(inputs, request.carriers)
    return LotPlan(
        lot_id=request.lot_id,
        recipe=loaded,
        expansion=expansion,
        inputs=inputs,
        supplies=supply_sources(request.lot_id, loaded, given),
        priority=request.priority,
    )
