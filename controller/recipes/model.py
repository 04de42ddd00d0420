"""The recipe file format (docs/recipes.md), as pydantic models.

Every model forbids unknown keys, so a misspelt key is an error naming its path. Values that
may hold `${option}` references stay strings here; `expand` resolves them per option set.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

ID = r"^[a-z0-9][a-z0-9-]{0,47}$"
NAME = r"^[a-z][a-z0-9_]{0,31}$"
CLAIM = re.compile(r"^(?P<seed>\d{3}):(?P<claims>\d+(?:[-,]\d+)*)$")

UnitKind = Literal["wafer", "panel", "strip", "stack", "assembly", "die", "package", "film", "lead"]
Scalar = str | int | float | bool


def parse_claims(text: str) -> list[tuple[str, int]]:
    """ "000:12-14" -> [("000", 12), ("000", 13), ("000", 14)]; "002:27,29" likewise."""
    m = CLAIM.match(text.strip())
    if not m:
        raise ValueError(f"claim reference {text!r} is not SEED:CLAIMS (e.g. 000:11 or 000:12-14)")
    out: list[tuple[str, int]] = []
    for part in m.group("claims").split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(f"claim range {part!r} runs backwards")
        out += [(m.group("seed"), n) for n in range(first, last + 1)]
    return out


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClaimSet(Strict):
    seed: Annotated[str, Field(pattern=r"^\d{3}$")]
    claims: list[int] = Field(min_length=1)


class InputSpec(Strict):
    """Material a lot starts with. `count` is per lot ("1..25"); `per` ties the count to
    another input (one panel per wafer); `supply` inputs are drawn one unit at a time by the
    steps that merge them (blank wafers, dies)."""

    kind: UnitKind
    count: str | int | None = None
    per: str | None = None
    supply: bool = False
    description: str = ""

    @model_validator(mode="after")
    def _one_way(self) -> InputSpec:
        ways = sum(x is not None and x is not False for x in (self.count, self.per, self.supply))
        if ways != 1:
            raise ValueError("give exactly one of count, per or supply")
        if isinstance(self.count, str) and not re.fullmatch(r"\d+(\.\.\d+)?", self.count):
            raise ValueError(f"count {self.count!r} must be N or MIN..MAX")
        return self

    def count_range(self) -> tuple[int, int] | None:
        if self.count is None:
            return None
        lo, _, hi = str(self.count).partition("..")
        return int(lo), int(hi or lo)


class OptionSpec(Strict):
    """An option drawn from dependent claims. Either named `values`, each with attributes
    steps refer to as ${option.attribute} (and the claims that value brings in), or an
    integer between `min` and `max`."""

    description: str = ""
    claim: str | None = None
    default: Scalar
    values: dict[str, dict[str, Any]] | None = None
    type: Literal["choice", "int"] = "choice"
    min: int | None = None
    max: int | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _string_keys(cls, v: Any) -> Any:
        # YAML 1.1 reads yes/no/on/off/true/false keys as booleans; option values are names
        if isinstance(v, dict):
            return {
                (str(k).lower() if isinstance(k, bool) else str(k)): (x if x is not None else {})
                for k, x in v.items()
            }
        return v

    @model_validator(mode="after")
    def _shape(self) -> OptionSpec:
        if self.claim is not None:
            parse_claims(self.claim)
        if self.type == "int":
            if self.values is not None or self.min is None or self.max is None:
                raise ValueError("an int option needs min and max and no values")
            if not isinstance(self.default, int) or not self.min <= self.default <= self.max:
                raise ValueError(
                    f"default {self.default!r} is not an int in {self.min}..{self.max}"
                )
            return self
        if not self.values:
            raise ValueError("a choice option needs values")
        default = str(self.default).lower() if isinstance(self.default, bool) else self.default
        if default not in self.values:
            raise ValueError(f"default {self.default!r} is not one of {', '.join(self.values)}")
        for name, attrs in self.values.items():
            if not re.fullmatch(r"[a-z0-9_]+", name):
                raise ValueError(f"option value {name!r} must be lower-case letters, digits, _")
            if not isinstance(attrs, dict):
                raise ValueError(f"option value {name!r} must map attributes to values")
            claims = attrs.get("claims", [])
            if not isinstance(claims, list):
                raise ValueError(f"option value {name!r}: claims must be a list like ['000:12']")
            for claim in claims:
                parse_claims(str(claim))
        return self

    def choices(self) -> list[str | int]:
        if self.type == "int":
            assert self.min is not None and self.max is not None
            return list(range(self.min, self.max + 1))
        assert self.values is not None
        return list(self.values)

    def default_value(self) -> str | int:
        if self.type == "int":
            assert isinstance(self.default, int)
            return self.default
        return str(self.default).lower() if isinstance(self.default, bool) else str(self.default)


Condition = dict[str, Scalar | list[Scalar]]


class Constraint(Strict):
    """An option combination that cannot run, and why (usually an interlock)."""

    when: Condition
    reason: str
    claim: str | None = None


class Limit(Strict):
    min: str | float | None = None
    max: str | float | None = None

    @model_validator(mode="after")
    def _some(self) -> Limit:
        if self.min is None and self.max is None:
            raise ValueError("a spec limit needs min or max")
        return self


class Merge(Strict):
    """Units of each `from` kind join one unit of kind `into` (created if the lot has none);
    `per` parts of each kind per `into` unit."""

    into: UnitKind
    from_: list[str] = Field(alias="from", min_length=1)
    per: str | int = 1


class Split(Strict):
    """Each `from` unit is cut into `into` units following the step's die map."""

    from_: UnitKind = Field(alias="from")
    into: UnitKind


class Genealogy(Strict):
    merge: Merge | None = None
    split: Split | None = None


WARNING_NAME = r"^[A-Z][A-Z0-9_]{0,47}$"


class StepWarnings(Strict):
    """What a step does with the process warnings its tool reports at the end of the job (on
    top of the recipe's `warning_policy`): `hold` names warnings that hold the lot after this
    step; `expected` names warnings this step is known to raise (e.g. an adhesive under-cured
    in the bonder and cured in the next step), recorded but never holding."""

    hold: list[Annotated[str, Field(pattern=WARNING_NAME)]] = Field(default_factory=list)
    expected: list[Annotated[str, Field(pattern=WARNING_NAME)]] = Field(default_factory=list)


class ChartSpec(Strict):
    """An SPC control chart on one result of a tool step (docs/spc.md): one chart per tool
    that runs the step, an individuals / moving-range chart of the result, limits frozen
    from its first `baseline` pieces, `rules` checked on every later piece, and `action` when
    one fires: none (recorded), warn (shown), hold (the lot), inhibit (the tool and the lot)."""

    rules: Literal["nelson", "western-electric"] = "nelson"
    action: Literal["none", "warn", "hold", "inhibit"] = "warn"
    baseline: int = Field(default=20, ge=5, le=1000)
    spread: bool = True  # also flag a moving range above its upper control limit


class StepBase(Strict):
    id: Annotated[str, Field(pattern=ID)]
    name: str = ""
    role: Annotated[str, Field(pattern=NAME)] | None = None
    when: Condition | None = None
    unless: Condition | None = None
    genealogy: Genealogy | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)


class ToolStep(StepBase):
    tool: str
    operation: str
    params: dict[str, Scalar] = Field(default_factory=dict)
    # parameter -> formula over earlier steps' measured results (docs/recipes.md)
    feed_forward: dict[Annotated[str, Field(pattern=NAME)], str] = Field(default_factory=dict)
    spec: dict[str, Limit] = Field(default_factory=dict)
    # a work piece out of spec holds the lot (hold), or goes with the others out of spec to
    # a held child lot while the rest run on (split)
    out_of_spec: Literal["hold", "split"] = "hold"
    # result -> its SPC chart (`{}` takes every default)
    spc: dict[Annotated[str, Field(pattern=NAME)], ChartSpec] = Field(default_factory=dict)
    consume: list[str] = Field(default_factory=list)
    warnings: StepWarnings | None = None
    # a re-clean / re-bake that runs only when an expired queue-time limit routes the lot to it
    rework: bool = False


class ExternalStep(StepBase):
    """Work outside packaging (front-end device fabrication, incoming parts). The lot waits
    for a confirmation carrying `returns` fields."""

    external: str
    returns: list[Annotated[str, Field(pattern=NAME)]] = Field(default_factory=list)
    # limits on numeric returned fields (incoming inspection), with units; a returned field
    # fed forward into a later setpoint needs one
    spec: dict[str, Limit] = Field(default_factory=dict)
    max_temp: str | None = None


class Repeat(Strict):
    var: Annotated[str, Field(pattern=NAME)]
    from_: int | str = Field(alias="from")
    to: int | str


class RepeatStep(Strict):
    repeat: Repeat
    when: Condition | None = None
    unless: Condition | None = None
    steps: list[Step] = Field(min_length=1)


def _step_tag(v: Any) -> str | None:
    if isinstance(v, dict):
        if "repeat" in v:
            return "repeat"
        if "external" in v:
            return "external"
        return "tool"
    return None


Step = Annotated[
    Annotated[ToolStep, Tag("tool")]
    | Annotated[ExternalStep, Tag("external")]
    | Annotated[RepeatStep, Tag("repeat")],
    Discriminator(_step_tag),
]


class ThermalBudget(Strict):
    """After step `after` (from the start without it), no process temperature may exceed
    `max` − `margin`."""

    type: Literal["thermal_budget"]
    after: str | None = None
    max: str
    margin: str = "0 °C"
    reason: str


class CteRunout(Strict):
    """Edge run-out of a wafer bonded to a panel, (α_panel − α_Si)·ΔT·r, must stay below
    `max_pitch_fraction` × the bump pitch of step `step`."""

    type: Literal["cte_runout"]
    step: str
    max_pitch_fraction: float = Field(gt=0, le=1)
    reason: str


Interlock = Annotated[ThermalBudget | CteRunout, Field(discriminator="type")]

StepRefs = Annotated[list[Annotated[str, Field(pattern=ID)]], Field(min_length=1)]


class QueueTime(Strict):
    """At most `max` from the end of the latest `from` step to the start of a `to` step
    (e.g. exposed Cu until the next coat). On expiry the lot holds, or, with `rework`, runs
    that step (a re-clean or re-bake marked `rework: true`, between them), which restarts the
    clock."""

    from_: StepRefs = Field(alias="from")
    to: StepRefs
    max: str
    reason: str
    rework: Annotated[str, Field(pattern=ID)] | None = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _listed(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ReworkRoute(Strict):
    """A disposition for a lot stopped after one of the `at` steps (a litho CD out of spec, a
    boat with missing balls): an engineer sends the lot, or a child lot split from it, back
    to step `to`, written earlier in the flow, and the steps from there run again (`fabline
    lot rework`). `to` may be a step marked `rework: true` (a strip, a ball removal), which
    then runs although no queue time routes there."""

    id: Annotated[str, Field(pattern=ID)]
    at: StepRefs
    to: Annotated[str, Field(pattern=ID)]
    reason: str

    @field_validator("at", mode="before")
    @classmethod
    def _listed(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class WarningPolicy(Strict):
    """Tool warnings that hold the lot at any step (every warning is recorded as an event)."""

    hold: list[Annotated[str, Field(pattern=WARNING_NAME)]] = Field(default_factory=list)


class Recipe(Strict):
    id: Annotated[str, Field(pattern=ID)]
    version: int = Field(ge=1)
    title: str
    status: Literal["draft", "approved"]
    claims: list[ClaimSet] = Field(min_length=1)
    description: str = ""
    inputs: dict[Annotated[str, Field(pattern=NAME)], InputSpec] = Field(min_length=1)
    options: dict[Annotated[str, Field(pattern=NAME)], OptionSpec] = Field(default_factory=dict)
    constraints: list[Constraint] = Field(default_factory=list)
    interlocks: list[Interlock] = Field(default_factory=list)
    queue_times: list[QueueTime] = Field(default_factory=list)
    rework_routes: list[ReworkRoute] = Field(default_factory=list)
    warning_policy: WarningPolicy = Field(default_factory=WarningPolicy)
    steps: list[Step] = Field(min_length=1)

    def rework_route(self, route_id: str) -> ReworkRoute | None:
        return next((r for r in self.rework_routes if r.id == route_id), None)

    def claimed(self) -> set[tuple[str, int]]:
        return {(c.seed, n) for c in self.claims for n in c.claims}


RepeatStep.model_rebuild()
