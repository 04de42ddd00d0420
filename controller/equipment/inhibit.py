"""Tool inhibits: a tool that takes no new jobs until a technician releases it.

An inhibit comes from an SPC chart whose OCAP action is `inhibit` (the reason is the
violation, `ref` the chart key) or from a person. A tool may carry several inhibits at once
(two charts, a chart and an engineer); each is released on its own, with who and why, and
the tool runs again when none is left. `active` folds the recorded inhibits and releases into
the ones in force; the store keeps the rows, the engine asks `active` before it starts a job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from controller.equipment.e10 import E10Error


class InhibitSource(StrEnum):
    SPC = "spc"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Inhibit:
    inhibit_id: str
    tool_id: str
    at: datetime
    reason: str  # one line: "SPC stacked-wlp-000-11/dice/kerf_offset@DICE-1: N5: 2 of 3 ..."
    by: str  # "spc" or the person
    source: InhibitSource = InhibitSource.MANUAL
    ref: str = ""  # what raised it: the chart key for SPC

    def __post_init__(self) -> None:
        if not self.reason.strip() or not self.by.strip():
            raise E10Error(f"inhibit of {self.tool_id} needs a reason and who set it")


@dataclass(frozen=True, slots=True)
class Release:
    inhibit_id: str
    at: datetime
    by: str  # the technician
    note: str  # what was done: "blade changed, kerf offset checked on a test cut"

    def __post_init__(self) -> None:
        if not self.note.strip() or not self.by.strip():
            raise E10Error(f"release of inhibit {self.inhibit_id} needs who and what was done")


def active(events: Iterable[Inhibit | Release], tool_id: str | None = None) -> list[Inhibit]:
    """The inhibits in force after the events (in recorded order), oldest first."""
    live: dict[str, Inhibit] = {}
    for e in events:
        if isinstance(e, Inhibit):
            if e.inhibit_id in live:
                raise E10Error(f"inhibit {e.inhibit_id} of {e.tool_id} recorded twice")
            live[e.inhibit_id] = e
        else:
            if e.inhibit_id not in live:
                raise E10Error(f"inhibit {e.inhibit_id} is not in force: nothing to release")
            del live[e.inhibit_id]
    return [i for i in live.values() if tool_id is None or i.tool_id == tool_id]
