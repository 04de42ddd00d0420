"""Lot execution: a line's tools pooled by kind, the runner that takes a lot through its
steps, the transactions it writes, and what it tells a display."""

from controller.engine.engine import Engine, EngineSettings, Outcome
from controller.engine.pool import ToolPool
from controller.engine.progress import (
    LotStopped,
    Notify,
    Progress,
    StepBegan,
    StepDone,
    StepProgress,
    quiet,
)

__all__ = [
    "Engine",
    "EngineSettings",
    "LotStopped",
    "Notify",
    "Outcome",
    "Progress",
    "StepBegan",
    "StepDone",
    "StepProgress",
    "ToolPool",
    "quiet",
]
