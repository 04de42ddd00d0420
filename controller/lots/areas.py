"""The areas of a line (bumping, assembly, test...): which tool kinds each runs, and so which
area each step of a lot runs in.

A step runs in the area of its tool kind, or in the one it names itself
(`attributes: {area: assembly}` in the recipe). A step outside the line (an external step)
stays in the area the lot is in. A lot whose next step is in another area is handed over
there between the steps (controller/engine/journal.py); the station serving that area picks
it up. With no areas configured every step is in area "" and each station runs its own lots.

Every station of a line must be given the same areas: the first station to start records
them in the database (`publish`), the next ones are refused if theirs differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from controller.genealogy.models import LineArea
from controller.recipes.expand import PlannedStep, ToolStepPlan
from drivers.errors import ParameterError, StationConfigConflict, shown
from drivers.interfaces import KINDS

NONE = ""  # no areas: every station runs the lots it was given


@dataclass(frozen=True)
class Areas:
    """Tool kind -> area; empty: one area for the whole line."""

    by_kind: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, areas: Mapping[str, Sequence[str]]) -> Areas:
        """From `{area: [kinds]}`; each kind known and in one area at most."""
        by_kind: dict[str, str] = {}
        for area, kinds in areas.items():
            if not area or len(area) > 32:
                raise ParameterError(f"area name {shown(area)!r} must be 1 to 32 characters")
            for kind in kinds:
                if kind not in KINDS:
                    raise ParameterError(
                        f"areas: {area}: no tool kind {shown(kind)!r} (kinds: {', '.join(KINDS)})"
                    )
                if kind in by_kind:
                    raise ParameterError(
                        f"areas: tool kind {kind} is in both {by_kind[kind]} and {area}"
                    )
                by_kind[kind] = area
        return cls(by_kind)

    @property
    def names(self) -> list[str]:
        return sorted(set(self.by_kind.values()))

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def of(self, step: PlannedStep) -> str | None:
        """The area a step runs in; None: wherever the lot is (an external step)."""
        if not self:
            return NONE
        named = step.attributes.get("area")
        if named is not None:
            if str(named) not in self.names:
                raise ParameterError(
                    f"step {step.id} names area {shown(str(named))!r}, which the line does"
                    f" not have (areas: {', '.join(self.names)})"
                )
            return str(named)
        if not isinstance(step, ToolStepPlan):
            return None
        area = self.by_kind.get(step.tool)
        if area is None:
            raise ParameterError(
                f"step {step.id} needs a {step.tool}, which no area of the line runs"
                f" (areas: {self.describe()})"
            )
        return area

    def at(self, steps: Sequence[PlannedStep], index: int, current: str) -> str:
        """The area of the lot when its next step is `index` (past the end: where it is)."""
        for step in steps[index:]:
            area = self.of(step)
            if area is not None:
                return area
            break  # an external step: the lot waits where it is
        return current

    def first(self, steps: Sequence[PlannedStep]) -> str:
        """Where a new lot goes: the area of its first step run on the line."""
        for step in steps:
            area = self.of(step)
            if area is not None:
                return area
        return NONE

    def check(self, steps: Sequence[PlannedStep]) -> None:
        """Every step of a lot has an area to run in (raises the first one that has not)."""
        for step in steps:
            self.of(step)

    def describe(self) -> str:
        by_area: dict[str, list[str]] = {}
        for kind, area in sorted(self.by_kind.items()):
            by_area.setdefault(area, []).append(kind)
        return "; ".join(f"{a}: {', '.join(k)}" for a, k in sorted(by_area.items()))


def publish(s: Session, areas: Areas) -> None:
    """Record the line's areas, or refuse if the database has others (another station was
    started with a different line configuration)."""
    stored = {row.kind: row.area for row in s.query(LineArea).all()}
    if not stored:
        for kind, area in areas.by_kind.items():
            s.add(LineArea(kind=kind, area=area))
        return
    if stored != dict(areas.by_kind):
        theirs = Areas(stored).describe() or "none"
        raise StationConfigConflict(
            f"this station's areas ({areas.describe() or 'none'}) differ from the line's in the"
            f" database ({theirs}): give every station the same areas"
        )


def load(s: Session) -> Areas:
    """The line's areas as recorded (none recorded: no areas)."""
    return Areas({row.kind: row.area for row in s.query(LineArea).all()})
