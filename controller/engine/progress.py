"""What a running lot tells whoever shows it (a terminal's progress bars, a web page): one
small typed message per moment, after the transaction that records it has committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StepBegan:
    lot_id: str
    index: int  # 0-based
    total: int
    step_id: str
    tool: str  # tool id, or "external"


@dataclass(frozen=True)
class StepProgress:
    lot_id: str
    index: int
    percent: float


@dataclass(frozen=True)
class StepDone:
    lot_id: str
    index: int
    step_id: str


@dataclass(frozen=True)
class LotStopped:
    lot_id: str
    state: str
    reason: str | None


Progress = StepBegan | StepProgress | StepDone | LotStopped


class Notify(Protocol):
    def __call__(self, message: Progress) -> None: ...


def quiet(message: Progress) -> None:
    """Notify nobody."""
