"""The one JSON shape of a lot, its step history and a tool's status, for every front door
(`--json` on the command line, the HTTP API)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from controller.genealogy import store
from controller.genealogy.models import Lot, StepRun
from drivers.base import ToolStatus


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class LotView(_View):
    lot: str
    recipe: str
    version: int
    hash: str
    options: dict[str, Any]
    state: str
    hold_reason: str | None
    hold_kind: str | None
    priority: int
    step: int  # index of the next step
    steps: int
    station: str
    owner: str | None
    created: str
    updated: str

    @classmethod
    def of(cls, lot: Lot) -> LotView:
        return cls(
            lot=lot.id,
            recipe=lot.recipe_id,
            version=lot.recipe_version,
            hash=lot.recipe_hash,
            options=lot.options,
            state=lot.state,
            hold_reason=lot.hold_reason,
            hold_kind=lot.hold_kind,
            priority=lot.priority,
            step=lot.next_step,
            steps=lot.step_count,
            station=lot.station,
            owner=lot.owner,
            created=lot.created_at.isoformat(),
            updated=lot.updated_at.isoformat(),
        )


class StepRunView(_View):
    index: int
    step: str
    attempt: int
    kind: str
    tool: str | None
    operation: str | None
    job_id: str | None
    state: str
    setpoints: dict[str, Any]
    results: dict[str, Any]
    message: str | None
    started: str
    ended: str | None
    # the job's work pieces (0: the whole lot) and each one's own results, by unit name
    piece: str | None = None  # its first piece: names the job among the step's
    piece_count: int = 0
    pieces: dict[str, dict[str, Any]] = {}

    @classmethod
    def of(cls, r: StepRun, pieces: dict[str, dict[str, Any]] | None = None) -> StepRunView:
        return cls(
            index=r.step_index,
            step=r.step_id,
            attempt=r.attempt,
            kind=r.kind,
            tool=r.tool_id,
            operation=r.operation,
            job_id=r.job_id,
            state=r.state,
            setpoints=r.setpoints,
            results=r.results,
            message=r.message,
            started=r.started_at.isoformat(),
            ended=r.ended_at.isoformat() if r.ended_at else None,
            piece=r.piece,
            piece_count=r.piece_count,
            pieces=pieces or {},
        )


class ResultSpread(_View):
    """One result over a step's pieces."""

    unit: str
    min: float
    mean: float
    max: float


class StepSummary(_View):
    """A step over all its jobs: how many pieces it processed, on which tools, and each
    result's min / mean / max over the pieces."""

    index: int
    step: str
    tools: list[str]
    jobs: int
    pieces: int
    states: dict[str, int]
    results: dict[str, ResultSpread]


def summarise(history: list[StepRunView]) -> list[StepSummary]:
    """Per step (its newest run per piece counts): pieces, tools, and results spread."""
    by_step: dict[int, list[StepRunView]] = {}
    for h in history:
        by_step.setdefault(h.index, []).append(h)
    out = []
    for index, runs in sorted(by_step.items()):
        latest: dict[str, StepRunView] = {}
        for r in runs:  # oldest first: a retry of a piece replaces its earlier run
            latest[r.piece or ""] = r
        values: dict[str, list[float]] = {}
        units: dict[str, str] = {}
        states: dict[str, int] = {}
        n = 0
        for r in latest.values():
            states[r.state] = states.get(r.state, 0) + 1
            per = r.pieces or {"": r.results}
            if r.state != "done" and r.kind == "tool":
                continue
            n += len(per) if r.piece_count else 1
            for results in per.values():
                for k, v in results.items():
                    if isinstance(v, dict) and isinstance(v.get("value"), int | float):
                        values.setdefault(k, []).append(float(v["value"]))
                        units[k] = str(v.get("unit") or "")
        out.append(
            StepSummary(
                index=index,
                step=runs[0].step,
                tools=sorted({r.tool for r in latest.values() if r.tool}),
                jobs=len(latest),
                pieces=n,
                states=states,
                results={
                    k: ResultSpread(unit=units[k], min=min(v), mean=sum(v) / len(v), max=max(v))
                    for k, v in values.items()
                },
            )
        )
    return out


def history(s: Session, lot_id: str) -> list[StepRunView]:
    """A lot's step runs, oldest first, each with its pieces' own results."""
    pieces: dict[int, dict[str, dict[str, Any]]] = {}
    for run_id, name, _position, results in store.run_pieces(s, lot_id):
        pieces.setdefault(run_id, {})[name] = results
    return [StepRunView.of(r, pieces.get(r.id or 0)) for r in store.step_runs(s, lot_id)]


class LotDetail(LotView):
    units: dict[str, int]
    history: list[StepRunView]
    events: list[dict[str, Any]]
    # splits, merges and rework loops the lot is in (controller/genealogy/lineage.py describe)
    operations: list[dict[str, Any]] = Field(default_factory=list)


class AlarmView(_View):
    code: int
    name: str
    text: str


class ConsumableView(_View):
    name: str
    level: float
    limit: float
    unit: str
    used: float


class ToolStatusView(_View):
    tool: str
    kind: str
    state: str
    job_id: str | None = None
    progress: float = 0.0
    alarms: list[AlarmView] = []
    warnings: list[AlarmView] = []
    consumables: list[ConsumableView] = []
    setup: dict[str, list[str]] = {}
    control: str | None = None  # a GEM tool's control state: OFFLINE, LOCAL, REMOTE
    error: str | None = None  # why the tool could not be asked (state OFFLINE)

    @classmethod
    def of(cls, kind: str, st: ToolStatus) -> ToolStatusView:
        return cls(
            tool=st.tool_id,
            kind=kind,
            state=st.state.name,
            job_id=st.job_id,
            progress=st.progress,
            alarms=[AlarmView(code=a.code, name=a.name, text=a.text) for a in st.alarms],
            warnings=[AlarmView(code=a.code, name=a.name, text=a.text) for a in st.warnings],
            consumables=[
                ConsumableView(
                    name=c.name,
                    level=c.level,
                    limit=c.limit,
                    unit=c.unit,
                    used=round(c.used_fraction, 4),
                )
                for c in st.consumables
            ],
            setup={k: list(v) for k, v in st.setup.items()},
            control=st.control.name if st.control is not None else None,
        )

    @classmethod
    def offline(cls, tool_id: str, kind: str, error: str) -> ToolStatusView:
        return cls(tool=tool_id, kind=kind, state="OFFLINE", error=error)
