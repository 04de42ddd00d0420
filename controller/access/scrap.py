"""Scrap reason codes: what an engineer picks when scrapping a lot or some of its units, with
a category to report on (like hold codes, controller/access/holds.py). A scrap without a
known code is refused: scrap is counted by reason, and free text cannot be counted."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.access.holds import CODE


class ScrapCode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(pattern=CODE.pattern, description="e.g. BROKEN")]
    category: Annotated[str, Field(min_length=1, max_length=32)]  # handling, process, ...
    text: Annotated[str, Field(min_length=1, max_length=200)]


DEFAULT_SCRAP_CODES = (
    ScrapCode(code="BROKEN", category="handling", text="broken or cracked"),
    ScrapCode(code="DROPPED", category="handling", text="dropped or mishandled"),
    ScrapCode(code="CONTAMINATED", category="process", text="contaminated"),
    ScrapCode(code="OOS", category="quality", text="out of spec, not reworkable"),
    ScrapCode(code="REWORK-LIMIT", category="quality", text="reworked too often"),
    ScrapCode(code="TOOL-DAMAGE", category="equipment", text="damaged by a tool"),
    ScrapCode(code="ENG", category="engineering", text="engineering decision"),
)


class ScrapCodes(BaseModel):
    """The scrap codes of a station (the defaults unless a station file names its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: list[ScrapCode] = Field(default_factory=lambda: list(DEFAULT_SCRAP_CODES))

    @model_validator(mode="after")
    def _once(self) -> ScrapCodes:
        names = [c.code for c in self.codes]
        twice = {n for n in names if names.count(n) > 1}
        if twice:
            raise ValueError(f"scrap code {sorted(twice)[0]} defined twice")
        return self

    def get(self, code: str) -> ScrapCode | None:
        return next((c for c in self.codes if c.code == code), None)

    def names(self) -> str:
        return ", ".join(c.code for c in self.codes)
