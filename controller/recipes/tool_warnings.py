"""What a step does with the process warnings its tool raised at the end of the job.

Every warning is recorded (an event on the lot and step); those the recipe names in its
`warning_policy.hold` or the step's `warnings.hold` hold the lot after the step, unless the
step lists them as `expected`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.recipes.expand import ToolStepPlan
from drivers.interface import Alarm


@dataclass(frozen=True)
class Verdict:
    alarm: Alarm
    hold: bool
    expected: bool

    def data(self) -> dict[str, Any]:
        """The tool_warning event's data."""
        return {
            "code": self.alarm.code,
            "name": self.alarm.name,
            "text": self.alarm.text,
            "action": "hold" if self.hold else "record",
            "expected": self.expected,
        }


def classify(step: ToolStepPlan, warnings: Sequence[Alarm]) -> list[Verdict]:
    return [
        Verdict(w, w.name in step.warnings_hold, w.name in step.warnings_expected) for w in warnings
    ]


def hold_reason(step: ToolStepPlan, verdicts: Sequence[Verdict]) -> str | None:
    held = [v.alarm for v in verdicts if v.hold]
    if not held:
        return None
    what = "; ".join(f"{a.code} {a.name} ({a.text})" for a in held)
    return f"tool warning at step {step.id}: {what}"
