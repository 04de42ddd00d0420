"""Hold reason codes: what an operator picks when holding a lot, with a category to report
on and the least role that may release it.

The engine's own holds (an out-of-spec result, a tool alarm, an unreachable tool, ...) carry
a hold kind, not a code; `HoldCodes.for_kind` names the code each kind stands for, so an
out-of-spec hold is released by an engineer like any other quality hold. A lot held with an
operator's code and then by the engine before the request took effect is released by the
stricter of the two (`release_role`).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.access.roles import Role
from controller.events import HoldKind

PEOPLE = ("operator", "mes")  # hold kinds a person or the MES sets (with a code)
CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


class HoldCode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(pattern=CODE.pattern, description="e.g. QA-SUSPECT")]
    category: Annotated[str, Field(min_length=1, max_length=32)]  # quality, equipment, ...
    text: Annotated[str, Field(min_length=1, max_length=200)]
    release_role: Role = Role.ENGINEER  # the least role that may release the hold


DEFAULT_CODES = (
    HoldCode(code="QA-SUSPECT", category="quality", text="suspect quality: engineer decides"),
    HoldCode(code="MAT-WAIT", category="material", text="waiting for material",
             release_role=Role.OPERATOR),
    HoldCode(code="OP-CHECK", category="operator", text="operator check",
             release_role=Role.OPERATOR),
    HoldCode(code="EQ-SUSPECT", category="equipment", text="suspect tool",
             release_role=Role.TECHNICIAN),
    HoldCode(code="OOS", category="quality", text="result out of spec"),
    HoldCode(code="TOOL-ALARM", category="equipment", text="tool alarm",
             release_role=Role.TECHNICIAN),
    HoldCode(code="TOOL-DOWN", category="equipment", text="tool unreachable or unfit",
             release_role=Role.TECHNICIAN),
    HoldCode(code="LOST-JOB", category="engineering", text="tool lost the lot's job"),
    HoldCode(code="MES", category="mes", text="held by the MES", release_role=Role.OPERATOR),
    HoldCode(code="OPERATOR", category="operator", text="held from a terminal"),
    HoldCode(code="SPC", category="quality", text="SPC rule violation: engineer decides"),
    HoldCode(code="CARRIER", category="material", text="carrier slot map or tag mismatch",
             release_role=Role.OPERATOR),
)  # fmt: skip
DEFAULT_KINDS: dict[str, str] = {
    "out_of_spec": "OOS",
    "alarm": "TOOL-ALARM",
    "unreachable": "TOOL-DOWN",
    "no_tool": "TOOL-DOWN",
    "refused": "TOOL-DOWN",
    "lost_job": "LOST-JOB",
    "mes": "MES",
    "operator": "OPERATOR",
    "spc": "SPC",
    "carrier": "CARRIER",
}


class HoldCodes(BaseModel):
    """The codes of a station (its config file's `hold_codes`, else the defaults) and the
    code each engine hold kind stands for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: list[HoldCode] = Field(default_factory=lambda: list(DEFAULT_CODES))
    kinds: dict[HoldKind, str] = Field(default_factory=lambda: dict(DEFAULT_KINDS))  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _known(self) -> HoldCodes:
        names = [c.code for c in self.codes]
        twice = {n for n in names if names.count(n) > 1}
        if twice:
            raise ValueError(f"hold code {sorted(twice)[0]} defined twice")
        for kind, code in self.kinds.items():
            if code not in names:
                raise ValueError(f"kind {kind}: no hold code {code!r} among the codes")
        return self

    def get(self, code: str) -> HoldCode | None:
        return next((c for c in self.codes if c.code == code), None)

    def for_kind(self, kind: str | None) -> HoldCode | None:
        code = self.kinds.get(kind) if kind else None  # type: ignore[call-overload]
        return self.get(code) if code else None

    def release_role(self, kind: str | None, code: str | None) -> tuple[Role, str]:
        """The least role that releases a lot held with this kind and code, and why: the
        operator's code, unless the engine held the lot since (then the stricter of that
        code and the one its hold kind stands for)."""
        by_engine = kind not in PEOPLE
        chosen = self.get(code) if code else None
        of_kind = self.for_kind(kind) if by_engine or chosen is None else None
        found = [c for c in (chosen, of_kind) if c]
        if not found:
            return Role.ENGINEER, f"a {kind or 'hold'} hold"
        strict = max(found, key=lambda c: c.release_role.rank)
        return strict.release_role, f"hold {strict.code} ({strict.category})"
