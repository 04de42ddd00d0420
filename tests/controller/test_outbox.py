"""The outbox queries the MES relay runs, on SQLite and PostgreSQL: rows come back in id order
as stored text, and marking sent touches exactly the rows named."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import delete

from controller.events import (
    Hold,
    HoldData,
    StepInfo,
    StepStarted,
    StepStartedData,
    ToolStateChanged,
    ToolStateData,
    TrackIn,
)
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Outbox
from controller.mes.config import mes_config
from controller.mes.relay import id_runs, mark_sent, messages, outbox_stats, pending_rows


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    database.run_sync(lambda s: s.execute(delete(Outbox)))  # the module shares one database
    yield database
    database.close()


INFO = StepInfo(step_index=0, operation="deposit", job_id="J1", attempt=1, role=None)


def test_id_runs_compress_consecutive_ids() -> None:
    assert id_runs([]) == []
    assert id_runs([4]) == [(4, 4)]
    assert id_runs([1, 2, 3, 7, 8, 10]) == [(1, 3), (7, 8), (10, 10)]


def test_mark_sent_marks_exactly_the_rows_named(db: Database) -> None:
    evs = [TrackIn(lot_id="L1", step_id=f"s{i}", data=INFO) for i in range(10)]
    db.run_sync(lambda s: store.add_events(s, "st1", evs))
    rows = db.run_sync(lambda s: pending_rows(s, 100))
    assert [json.loads(r.payload)["step_id"] for r in rows] == [f"s{i}" for i in range(10)]
    ids = [r.id for r in rows]
    chosen = [ids[0], ids[1], ids[4], ids[5], ids[6], ids[9]]  # three runs with gaps between
    db.run_sync(lambda s: mark_sent(s, chosen))
    left = db.run_sync(lambda s: pending_rows(s, 100))
    assert [r.id for r in left] == [ids[2], ids[3], ids[7], ids[8]]
    assert [r.id for r in db.run_sync(lambda s: pending_rows(s, 100, after_id=ids[3]))] == [
        ids[7],
        ids[8],
    ]
    assert db.run_sync(outbox_stats)["sent"] == 6


def test_state_changing_events_also_publish_a_retained_state(db: Database) -> None:
    config = mes_config(None, station="st1")
    evs = [
        Hold(lot_id="L1", data=HoldData(reason="alarm on SPUT-1", kind="alarm")),
        StepStarted(
            lot_id="L1", step_id="s1", data=StepStartedData(**INFO.model_dump(), setpoints={})
        ),
        ToolStateChanged(
            tool_id="SPUT-1",
            data=ToolStateData(
                state="offline", e10="UNSCHEDULED_DOWN", tool_state=None, job_id=None, alarms=[]
            ),
        ),
    ]
    db.run_sync(lambda s: store.add_events(s, "st1", evs))
    hold, step, tool = (messages(config, r) for r in db.run_sync(lambda s: pending_rows(s, 10)))
    assert [(t, retain) for t, _, retain in hold] == [
        (config.lot_events("L1"), False),
        (config.lot_state("L1"), True),
    ]
    assert json.loads(hold[1][1])["state"] == "held"
    assert json.loads(hold[1][1])["reason"] == "alarm on SPUT-1"
    assert json.loads(step[0][1])["station"] == "st1"  # the stored event, as written
    assert len(step) == 1
    assert [(t, retain) for t, _, retain in tool] == [
        (config.tool_events("SPUT-1"), False),
        (config.tool_state("SPUT-1"), True),
    ]
