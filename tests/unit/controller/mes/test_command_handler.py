"""The station's side of MES commands with no broker: a real lot service on SQLite and a
recording `take_up`. Every payload is answered by exactly one `command_reply` in the
outbox; a command id seen before is answered from the record, never executed twice; a crash
while executing is answered as an internal error and the next payload is still handled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from structlog.testing import capture_logs

from controller.access import Actor
from controller.genealogy.db import Database
from controller.genealogy.models import MesCommand, Outbox
from controller.lots import ME, HoldReason, LotService
from controller.mes.command_handler import CommandHandler
from controller.mes.commands import sign, unsigned_command
from controller.mes.config import MesConfig
from tests.unit.controller.rows import events, get_lot, new_lot, tiny_text

SECRET = "s3cret"
STATION = "st-1"


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.wakes = 0

    def take_up(self, lot_id: str) -> None:
        self.started.append(lot_id)

    def wake(self) -> None:
        self.wakes += 1


class CrashingService(LotService):
    async def hold(self, lot_id: str, reason: HoldReason, actor: Actor | None = None) -> str:
        raise RuntimeError("the hold path is broken")


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recipe catalog of the tiny recipe only (a dispatch finds its recipe there)."""
    (tmp_path / "unit-flow.yaml").write_text(tiny_text(), encoding="utf-8")
    monkeypatch.setenv("FABLINE_RECIPES", str(tmp_path))
    return tmp_path


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _handler(
    db: Database, recorder: Recorder, service: type[LotService] = LotService
) -> CommandHandler:
    config = MesConfig(
        broker=None,
        site="site-1",
        station=STATION,
        spool=Path("/nonexistent/spool.jsonl"),  # never written: replies stay in the outbox
        clients={"mes": SECRET},
    )
    return CommandHandler(
        service(db, station=STATION), config, recorder.take_up, wake=recorder.wake
    )


@pytest.fixture
def handler(db: Database, recorder: Recorder, recipes: Path) -> CommandHandler:
    return _handler(db, recorder)


def _command(command: str, lot_id: str = "L1", secret: str = SECRET, **fields: Any) -> bytes:
    body = unsigned_command(
        client="mes", site="site-1", station=STATION, command=command, lot_id=lot_id
    )
    if command == "dispatch":
        body["recipe"] = {"id": "unit-flow"}
    body.update(fields)
    return _encode(sign(body, secret))


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def replies(db: Database) -> list[dict[str, Any]]:
    q = select(col(Outbox.payload)).where(col(Outbox.type) == "command_reply")
    return db.run_sync(lambda s: [dict(p) for p in s.scalars(q.order_by(col(Outbox.id)))])


def recorded(db: Database) -> dict[str, tuple[str, str | None]]:
    rows = db.run_sync(lambda s: list(s.scalars(select(MesCommand))))
    return {r.command_id: (r.status, r.reason) for r in rows}


async def _answer(handler: CommandHandler, db: Database, raw: bytes) -> dict[str, Any]:
    """Handle one payload; check it got exactly one reply, the one returned."""
    before = replies(db)
    data = await handler.handle(raw)
    after = replies(db)
    assert len(after) == len(before) + 1, "every payload gets exactly one reply"
    reply = after[-1]
    assert (reply["type"], reply["station"], reply["data"]) == ("command_reply", STATION, data)
    return data


def _id(raw: bytes) -> str:
    return str(json.loads(raw)["command_id"])


# -- refused before anything is recorded -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "malformed JSON (Expecting property name enclosed in double quotes: line 1"),
        (b"[]", "malformed JSON: not an object"),
        (_command("hold", secret="guess"), "not authorised"),
        (_command("hold", station="st-2"), "command is for station 'st-2', this is 'st-1'"),
    ],
    ids=["garbage", "not-an-object", "bad-mac", "other-station"],
)
async def test_an_unauthentic_payload_is_refused_and_not_recorded(
    handler: CommandHandler, db: Database, recorder: Recorder, raw: bytes, reason: str
) -> None:
    for _ in range(2):  # not recorded, so never answered as a repeat
        data = await _answer(handler, db, raw)
        assert data["status"] == "rejected" and data["reason"].startswith(reason)
        assert data["repeat"] is False
    assert recorded(db) == {} and recorder.wakes == 2 and recorder.started == []


async def test_what_a_refused_reply_echoes_is_cut_short(
    handler: CommandHandler, db: Database
) -> None:
    raw = _encode({"command_id": "C" * 500, "client": ["x"], "lot_id": "L" * 100})
    data = await _answer(handler, db, raw)
    assert data["command_id"] == "C" * 64 and data["lot_id"] == "L" * 64
    assert data["client"] is None  # not a string: not echoed at all


# -- executed, recorded, and answered again from the record ----------------------------------------


async def test_a_dispatch_creates_and_starts_the_lot_once(
    handler: CommandHandler, db: Database, recorder: Recorder
) -> None:
    raw = _command("dispatch", inputs={"wafers": 2}, priority=5)
    first = await _answer(handler, db, raw)
    assert first == {
        "command_id": _id(raw),
        "client": "mes",
        "command": "dispatch",
        "lot_id": "L1",
        "status": "accepted",
        "reason": "lot L1 dispatched: unit-flow v3",
        "repeat": False,
    }
    lot = get_lot(db, "L1")
    assert (lot.state, lot.owner, lot.priority) == ("queued", ME, 5)
    assert recorder.started == ["L1"]
    again = await _answer(handler, db, raw)
    assert again == {**first, "repeat": True}
    assert recorder.started == ["L1"]  # not started twice
    # created once (the MES dispatch is audited as an operator action of mes:<client>)
    assert [e["type"] for e in events(db, "L1")] == ["lot_created", "operator_action"]
    assert recorded(db) == {_id(raw): ("accepted", "lot L1 dispatched: unit-flow v3")}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"recipe": {"id": "nope"}}, "unknown recipe 'nope' (recipes: unit-flow)"),
        ({"inputs": {"wafers": 0}}, "input 'wafers' takes 1..4 wafers, not 0"),
        ({"inputs": {"chips": 2}}, "recipe unit-flow has no input 'chips'"),
        ({"options": {"layout": "stacked"}}, "unit-flow.yaml:17: steps: violates claim 000:11"),
        ({"priority": 5000}, "priority: Input should be less than or equal to 1000"),
        ({"issued_at": "2026-01-01T00:00:00Z"}, "stale command: issued "),
    ],
    ids=["unknown-recipe", "bad-count", "unknown-input", "impossible-option", "bad-field", "stale"],
)
async def test_a_refused_dispatch_is_recorded_and_answered_again(
    handler: CommandHandler,
    db: Database,
    recorder: Recorder,
    fields: dict[str, Any],
    reason: str,
) -> None:
    raw = _command("dispatch", **fields)
    first = await _answer(handler, db, raw)
    assert first["status"] == "rejected" and reason in first["reason"]
    assert (await _answer(handler, db, raw)) == {**first, "repeat": True}
    assert recorded(db) == {_id(raw): ("rejected", first["reason"])}
    assert recorder.started == [] and events(db, "L1") == []


async def test_a_lot_id_taken_is_refused(handler: CommandHandler, db: Database) -> None:
    new_lot(db, "L1")
    data = await _answer(handler, db, _command("dispatch"))
    assert (data["status"], data["reason"]) == ("rejected", "lot L1 already exists (queued)")


@pytest.mark.parametrize(
    ("command", "reason", "state", "hold"),
    [
        ("hold", None, "held", ("mes", "MES hold")),
        ("hold", "bad bumps on W03", "held", ("mes", "bad bumps on W03")),
        ("abort", None, "aborted", ("mes", "MES abort")),
        ("abort", "customer cancelled", "aborted", ("mes", "customer cancelled")),
    ],
)
async def test_hold_and_abort_of_a_lot_nobody_drives(
    handler: CommandHandler,
    db: Database,
    recorder: Recorder,
    command: str,
    reason: str | None,
    state: str,
    hold: tuple[str, str],
) -> None:
    new_lot(db, "L1")
    raw = _command(command, reason=reason) if reason else _command(command)
    data = await _answer(handler, db, raw)
    assert (data["status"], data["reason"]) == ("accepted", f"lot L1: {state}")
    lot = get_lot(db, "L1")
    assert (lot.state, lot.hold_kind, lot.hold_reason) == (state, *hold)
    await _answer(handler, db, raw)
    # executed once, and audited as the MES client's action in the same transaction
    assert [e["type"] for e in events(db, "L1")] == [command, "operator_action"]
    assert recorder.started == []


async def test_a_driven_lot_gets_the_hold_as_a_request(
    handler: CommandHandler, db: Database
) -> None:
    new_lot(db, "L1", "running", owner=ME)
    data = await _answer(handler, db, _command("hold", reason="look"))
    assert data["reason"] == (
        f"lot L1: hold requested from controller {ME}; takes effect between steps"
    )
    lot = get_lot(db, "L1")
    assert (lot.state, lot.request, lot.request_kind, lot.request_reason) == (
        "running", "hold", "mes", "look"
    )  # fmt: skip


async def test_a_release_runs_the_lot_on(
    handler: CommandHandler, db: Database, recorder: Recorder
) -> None:
    new_lot(db, "L1", "held", hold_kind="alarm", hold_reason="alarm 7")
    raw = _command("release", reason="blade changed")
    data = await _answer(handler, db, raw)
    assert (data["status"], data["reason"]) == ("accepted", "lot L1: released (was: alarm 7)")
    assert recorder.started == ["L1"]
    await _answer(handler, db, raw)
    assert recorder.started == ["L1"]
    release, audited = events(db, "L1")
    assert release["data"] == {"was": "alarm 7", "note": "blade changed"}
    assert (audited["data"]["actor"], audited["data"]["action"]) == ("mes:mes", "release")


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("hold", "no lot 'NOPE'"),
        ("release", "no lot 'NOPE'"),
        ("abort", "no lot 'NOPE'"),
    ],
)
async def test_a_command_for_an_unknown_lot_is_refused(
    handler: CommandHandler, db: Database, command: str, reason: str
) -> None:
    data = await _answer(handler, db, _command(command, lot_id="NOPE"))
    assert (data["status"], data["reason"]) == ("rejected", reason)


async def test_a_long_reason_is_cut_to_fit_a_reply(handler: CommandHandler, db: Database) -> None:
    new_lot(db, "L1", "held", hold_reason="r" * 2000)
    data = await _answer(handler, db, _command("hold"))
    assert data["status"] == "rejected" and len(data["reason"]) == 500
    assert data["reason"].startswith("lot L1 is already held (rrr") and data["reason"][-1] == "…"


# -- nothing a payload does stops the next one -----------------------------------------------------


async def test_a_crash_while_executing_is_answered_and_the_next_payload_handled(
    db: Database, recorder: Recorder, recipes: Path
) -> None:
    handler = _handler(db, recorder, CrashingService)
    new_lot(db, "L1")
    new_lot(db, "L2", "held", hold_reason="alarm 7")
    crash = _command("hold")
    with capture_logs() as logged:  # captured, not rendered: a traceback costs ~0.2 s to print
        data = await _answer(handler, db, crash)
    assert (data["status"], data["reason"]) == (
        "rejected", "internal error (RuntimeError); see station log"
    )  # fmt: skip
    failed = [e for e in logged if e["event"] == "mes.command_failed"]
    assert failed == [
        {"event": "mes.command_failed", "command_id": _id(crash), "log_level": "error",
         "exc_info": True}
    ]  # fmt: skip
    assert recorded(db)[_id(crash)][0] == "rejected"
    after = await _answer(handler, db, _command("release", lot_id="L2"))
    assert after["status"] == "accepted" and get_lot(db, "L2").state == "queued"
    assert get_lot(db, "L1").state == "queued"


async def test_the_receive_loop_survives_a_database_that_is_gone(
    db: Database, recorder: Recorder, recipes: Path
) -> None:
    handler = _handler(db, recorder)
    db.close()
    raw = _command("hold")
    with capture_logs() as logged:
        await handler(raw)  # logged, not raised: the relay takes the next payload
    assert [(e["event"], e["size"]) for e in logged] == [("mes.command_unanswered", len(raw))]
    assert recorder.wakes == 0


async def test_a_sequence_of_mixed_payloads_gets_one_reply_each(
    handler: CommandHandler, db: Database, recorder: Recorder
) -> None:
    new_lot(db, "L2")  # nobody drives it: every command changes it here
    payloads: list[tuple[bytes, str, str]] = [
        (b"\xff", "rejected", "malformed JSON"),
        (_command("dispatch"), "accepted", "lot L1 dispatched: unit-flow v3"),
        (_command("hold", lot_id="L2"), "accepted", "lot L2: held"),
        (_command("hold", lot_id="L2"), "rejected", "lot L2 is already held (MES hold)"),
        (_command("release", lot_id="L2"), "accepted", "lot L2: released (was: MES hold)"),
        (_command("abort", lot_id="L2"), "accepted", "lot L2: aborted"),
        (_command("release", lot_id="L2"), "rejected", "lot L2 is aborted: nothing to release"),
    ]
    for raw, status, reason in payloads:
        data = await _answer(handler, db, raw)
        assert (data["status"], data["reason"][: len(reason)]) == (status, reason)
    assert len(replies(db)) == len(payloads) == recorder.wakes
    assert recorder.started == ["L1", "L2"]
    changes = [e["type"] for e in events(db, "L2") if e["type"] != "operator_action"]
    assert changes == ["hold", "release", "abort"]


async def test_a_repeat_is_answered_from_the_record_even_when_stale(
    handler: CommandHandler, db: Database
) -> None:
    """An MES that retries a command it sent an hour ago learns what became of it."""
    new_lot(db, "L1")
    raw = _command("hold", issued_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    earlier = MesCommand(
        command_id=_id(raw), client="mes", command="hold", lot_id="L1", status="accepted",
        reason="lot L1: held",
    )  # fmt: skip
    db.run_sync(lambda s: s.add(earlier))
    data = await _answer(handler, db, raw)
    assert (data["status"], data["reason"], data["repeat"]) == ("accepted", "lot L1: held", True)
    assert get_lot(db, "L1").state == "queued"  # answered, not executed
