"""What a lot has done so far, as the process-control rules need it: each step's measured
results, the data its external steps returned, when each step ended, and the queue-time
limits an engineer already released it from.

Pure: built from step-run records and lot events (any objects with the attributes below, e.g.
the genealogy store's `StepRun` rows and `lot_events` dicts) and updated as steps complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

QTIME_EVENT = "qtime_expired"
REWORK_EVENT = "lot_reworked"


class RunRecord(Protocol):
    id: int | None
    step_index: int
    state: str
    results: dict[str, Any]
    ended_at: datetime | None


Measured = dict[str, float | str]


@dataclass
class History:
    measured: dict[int, Measured] = field(default_factory=dict)  # per piece: the mean
    # step index -> work piece -> its own results, for a step run per piece: a wafer's
    # fed-forward setpoints use its own measurements (feedforward.py)
    pieces: dict[int, dict[str, Measured]] = field(default_factory=dict)
    ended: dict[int, datetime] = field(default_factory=dict)
    # (limit's step index, its from-step index) a queue-time hold was already raised for: the
    # lot runs again only after an engineer released it, which waives that expiry
    waived: set[tuple[int, int]] = field(default_factory=set)
    # step index -> when a rework route last sent the lot back to it (a `rework: true` step
    # there runs once after that, although no queue time routes to it)
    reentered: dict[int, datetime] = field(default_factory=dict)

    @classmethod
    def from_records(
        cls,
        runs: Iterable[RunRecord],
        events: Iterable[Mapping[str, Any]] = (),
        pieces: Iterable[tuple[int, str, Mapping[str, Any]]] = (),
    ) -> History:
        """`pieces`: (step run id, piece name, its results) of the runs' work pieces."""
        h = cls()
        # a step of several jobs (one per wafer, controller/engine/pieces.py): its newest run
        # per piece counts, and later steps read the mean over them, as the runner records
        latest: dict[int, dict[str, RunRecord]] = {}
        for run in sorted(runs, key=lambda r: (r.step_index, _utc(r.ended_at))):
            if run.state in ("done", "confirmed") and run.ended_at is not None:
                latest.setdefault(run.step_index, {})[getattr(run, "piece", None) or ""] = run
        index_of = {r.id: i for i, by_piece in latest.items() for r in by_piece.values()}
        own: dict[int, dict[str, Measured]] = {}
        for run_id, name, results in pieces:
            if run_id in index_of:
                own.setdefault(index_of[run_id], {})[name] = plain(results)
        for index, by_piece in latest.items():
            done = list(by_piece.values())
            ended = max(_utc(r.ended_at) for r in done)
            h.record(index, _mean([plain(r.results) for r in done]), ended, own.get(index))
        for ev in events:
            data = ev.get("data") or {}
            if ev.get("type") == QTIME_EVENT and data.get("action") == "hold":
                h.waived.add((int(data["step_index"]), int(data["from_index"])))
            if ev.get("type") == REWORK_EVENT and ev.get("time"):
                at = datetime.fromisoformat(str(ev["time"]).replace("Z", "+00:00"))
                h.reentered[int(data["to_index"])] = _utc(at)
        return h

    def rework_pending(self, step_index: int) -> bool:
        """A rework route sent the lot back to this step and it has not run since."""
        sent = self.reentered.get(step_index)
        return sent is not None and self.ended.get(step_index, sent) <= sent

    def record(
        self,
        step_index: int,
        results: Mapping[str, float | str],
        ended: datetime,
        pieces: Mapping[str, Mapping[str, float | str]] | None = None,
    ) -> None:
        """A step finished (the latest run of an index wins): its results (the mean over its
        pieces) and, when it ran per piece, each piece's own."""
        self.measured[step_index] = dict(results)
        self.ended[step_index] = _utc(ended)
        if pieces:
            self.pieces[step_index] = {name: dict(r) for name, r in pieces.items()}
        else:
            self.pieces.pop(step_index, None)

    def result(self, step_index: int, name: str, piece: str | None = None) -> float | str | None:
        """A step's measured result: the piece's own where the step measured it, else the
        lot's (the mean over its pieces); None if the step has not measured it."""
        own = self.pieces.get(step_index, {}).get(piece or "", {}).get(name)
        return own if own is not None else self.measured.get(step_index, {}).get(name)

    def pieces_measured(self, step_indices: Iterable[int]) -> list[str]:
        """The work pieces with results of their own at any of these steps, in order."""
        return list(dict.fromkeys(p for i in step_indices for p in self.pieces.get(i, {})))


def _mean(results: list[Measured]) -> Measured:
    """Numbers averaged over pieces; a text field (an external step's) as the last says."""
    if len(results) == 1:
        return results[0]
    out: dict[str, float | str] = {}
    for key in dict.fromkeys(k for r in results for k in r):
        values = [r[key] for r in results if key in r]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        out[key] = sum(numbers) / len(numbers) if len(numbers) == len(values) else values[-1]
    return out


def _utc(when: datetime | None) -> datetime:
    """SQLite hands back naive datetimes for aware columns: they are UTC."""
    if when is None:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def plain(results: Mapping[str, Any]) -> dict[str, float | str]:
    """Stored results are {"value", "unit"} objects (tool steps) or returned fields (external
    steps, strings or numbers)."""
    out: dict[str, float | str] = {}
    for k, v in results.items():
        if isinstance(v, dict) and "value" in v:
            out[k] = v["value"]
        elif isinstance(v, int | float | str):
            out[k] = v
    return out
