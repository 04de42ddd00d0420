"""The lot lifecycle transition by transition, without a socket: `check` allows exactly the
table's moves and refuses every other with one line naming the lot and its state; `apply`
writes the state, the hold reason, the cleared request and exactly the right MES events with
the lot's next sequence numbers; `ask` / `requested` round-trip a request through the
database."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from controller.events import TrackOut, TrackOutData
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot
from controller.lots import lifecycle
from controller.lots.lifecycle import (
    FINAL,
    HOLD_KINDS,
    REQUESTS,
    STOPPED,
    TRANSITIONS,
    HoldReason,
    LotState,
)
from drivers.errors import LotStateError
from tests.unit.controller.rows import STATION, events, get_lot, new_lot

# The table, written out once more: a change to TRANSITIONS must change this test too.
EXPECTED: dict[str, tuple[set[str], str]] = {
    "track_in": ({"queued", "running"}, "running"),
    "wait": ({"queued", "running"}, "waiting"),
    "confirm": ({"queued", "running", "waiting"}, "queued"),
    "hold": ({"queued", "running", "paused", "waiting"}, "held"),
    "pause": ({"queued", "running", "waiting"}, "paused"),
    "release": ({"held", "paused"}, "queued"),
    "abort": ({"queued", "running", "paused", "waiting", "held"}, "aborted"),
    "complete": ({"queued", "running"}, "completed"),
    "hand_over": ({"queued", "running"}, "queued"),
    "split": ({"queued", "paused", "held"}, "same"),
    "merge": ({"queued", "paused", "held"}, "same"),
    "merge_into": ({"queued", "paused", "held"}, "merged"),
    "scrap": ({"queued", "paused", "held"}, "scrapped"),
    "scrap_units": ({"queued", "paused", "held"}, "same"),
    "rework": ({"queued", "paused", "held"}, "queued"),
}
STATES = [
    "queued", "running", "paused", "waiting", "held", "completed", "aborted", "scrapped", "merged"
]  # fmt: skip
FINALS = ("completed", "aborted", "scrapped", "merged")
KEEPS = [a for a, (_, to) in EXPECTED.items() if to == "same"]  # lifecycle.operate
OWN_EVENT = {"hold": "hold", "abort": "abort", "pause": "pause", "release": "release"}
"""The event `apply` itself writes for an action; the others write only what they are given
(track_in, wait, confirm, complete and hand_over carry their events from the runner or the
service)."""

EVERY_PAIR = [(state, action) for state in LotState for action in TRANSITIONS]
ALLOWED = [
    (state, action)
    for action, (src, to) in EXPECTED.items()
    if to != "same"
    for state in sorted(src)
]

OLD_HOLD = ("alarm", "alarm 12 on DICE-1")
REASON = HoldReason("mes", "MES hold 7")


def _lot(state: str, lot_id: str = "L7") -> Lot:
    return Lot(
        id=lot_id,
        recipe_id="r",
        recipe_version=1,
        recipe_hash="h",
        state=state,
        hold_kind=OLD_HOLD[0],
        hold_reason=OLD_HOLD[1],
    )


def _apply(db: Database, lot_id: str, action: str, **options: object) -> None:
    def tx(s: Session) -> None:
        lot = store.get_lot(s, lot_id, for_update=True)
        lifecycle.apply(s, lot, action, **options)  # type: ignore[arg-type]

    db.run_sync(tx)


# -- the table -------------------------------------------------------------------------------------


def test_the_table_is_the_one_written_here() -> None:
    assert [s.value for s in LotState] == STATES
    table = {
        a: ({s.value for s in t.sources}, t.target.value if t.target else "same")
        for a, t in TRANSITIONS.items()
    }
    assert table == EXPECTED
    assert set(FINALS) == FINAL
    assert {*FINALS, "held", "paused", "waiting"} == STOPPED
    assert REQUESTS == ("hold", "pause", "abort")
    assert HOLD_KINDS == (
        "alarm", "out_of_spec", "warning", "qtime", "interlock", "feed_forward", "unreachable",
        "lost_job", "no_tool", "refused", "operator", "mes", "spc", "carrier",
    )  # fmt: skip


def test_the_module_docstring_shows_the_table() -> None:
    """The table in lifecycle.py's docstring is what engineers read: it must be the code's."""
    lines = (lifecycle.__doc__ or "").splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["action", "from"])
    at_from, at_to = lines[header].index("from"), lines[header].index(" to ") + 1
    at_event = lines[header].index("event")
    shown = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        action = line[:at_from].strip()
        shown[action] = (set(line[at_from:at_to].split()), line[at_to:at_event].strip())
    assert shown == EXPECTED


# -- check -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), EVERY_PAIR, ids=[f"{s}-{a}" for s, a in EVERY_PAIR])
def test_check_allows_exactly_the_table(state: LotState, action: str) -> None:
    sources, target = EXPECTED[action]
    lot = _lot(state)
    if state in sources:
        t = lifecycle.check(lot, action)
        assert t is TRANSITIONS[action] and (t.target or "same") == target
        return
    with pytest.raises(LotStateError) as refused:
        lifecycle.check(lot, action)
    text = str(refused.value)
    if state is LotState.HELD and action == "hold":
        assert text == "lot L7 is already held (alarm 12 on DICE-1)"
    elif state in FINALS:
        assert text == f"lot L7 is {state}: nothing to {action}"
    else:
        assert text == f"lot L7 is {state}: only a lot {', '.join(sorted(sources))} can {action}"


def test_check_refuses_a_state_the_table_does_not_know() -> None:
    with pytest.raises(ValueError, match="'parked' is not a valid LotState"):
        lifecycle.check(_lot("parked"), "hold")


# -- apply -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), ALLOWED, ids=[f"{s}-{a}" for s, a in ALLOWED])
def test_apply_moves_the_lot_and_writes_its_events(db: Database, state: str, action: str) -> None:
    new_lot(
        db, "L1", state, hold_kind=OLD_HOLD[0], hold_reason=OLD_HOLD[1], request="pause",
        request_kind="operator", request_reason="shift change", event_seq=4,
    )  # fmt: skip
    given = TrackOut(lot_id="L1", step_id="dice", data=TrackOutData(step_index=2, job_id="J9"))
    _apply(
        db, "L1", action, reason=REASON, note="checked", step_id="dice", tool_id="DICE-1",
        events=[given],
    )  # fmt: skip

    lot = get_lot(db, "L1")
    assert lot.state == EXPECTED[action][1]
    assert (lot.request, lot.request_kind, lot.request_reason) == (None, None, None)
    if action in ("hold", "abort"):
        assert (lot.hold_kind, lot.hold_reason) == ("mes", "MES hold 7")
    elif action == "pause":
        assert (lot.hold_kind, lot.hold_reason) == OLD_HOLD
    else:
        assert (lot.hold_kind, lot.hold_reason) == (None, None)

    written = events(db, "L1")
    own = [OWN_EVENT[action]] if action in OWN_EVENT else []
    assert [e["type"] for e in written] == [*own, "track_out"]
    assert [e["seq"] for e in written] == list(range(5, 5 + len(written)))
    assert lot.event_seq == 4 + len(written)
    assert {(e["station"], e["lot_id"]) for e in written} == {(STATION, "L1")}
    assert written[-1]["event_id"] == given.event_id
    if own:
        first = written[0]
        assert (first["step_id"], first["tool_id"]) == ("dice", "DICE-1")
        assert (
            first["data"]
            == {
                "hold": {"reason": "MES hold 7", "kind": "mes"},
                "abort": {"reason": "MES hold 7", "kind": "mes"},
                "pause": {"reason": "MES hold 7"},
                "release": {"was": "alarm 12 on DICE-1", "note": "checked"},
            }[action]
        )


@pytest.mark.parametrize("action", KEEPS)
def test_operate_keeps_the_state_and_writes_the_events_it_is_given(
    db: Database, action: str
) -> None:
    new_lot(db, "L1", "held", hold_kind="mes", hold_reason="MES hold 7", event_seq=2)
    given = TrackOut(lot_id="L1", data=TrackOutData(step_index=2, job_id="J9"))

    def tx(s: Session) -> None:
        lifecycle.operate(s, store.get_lot(s, "L1", for_update=True), action, [given])

    db.run_sync(tx)
    lot = get_lot(db, "L1")
    assert (lot.state, lot.hold_reason, lot.event_seq) == ("held", "MES hold 7", 3)
    assert [(e["seq"], e["event_id"]) for e in events(db, "L1")] == [(3, given.event_id)]


def test_operate_is_checked_like_apply(db: Database) -> None:
    new_lot(db, "L1", "running")

    def tx(s: Session) -> None:
        lifecycle.operate(s, store.get_lot(s, "L1", for_update=True), "split", [])

    with pytest.raises(LotStateError) as refused:
        db.run_sync(tx)
    assert str(refused.value) == "lot L1 is running: only a lot held, paused, queued can split"


def test_a_lot_s_events_are_numbered_without_gaps_across_transactions(db: Database) -> None:
    new_lot(db, "L1")
    _apply(db, "L1", "hold", reason=HoldReason("operator", "look at W03"))
    _apply(db, "L1", "release")
    _apply(db, "L1", "pause")
    _apply(db, "L1", "abort", reason=HoldReason("operator", "scrap it"))
    written = events(db, "L1")
    assert [(e["seq"], e["type"]) for e in written] == [
        (1, "hold"), (2, "release"), (3, "pause"), (4, "abort")
    ]  # fmt: skip
    assert written[1]["data"] == {"was": "look at W03", "note": None}
    assert written[2]["data"] == {"reason": None}
    assert (get_lot(db, "L1").hold_kind, get_lot(db, "L1").hold_reason) == ("operator", "scrap it")


def test_apply_writes_the_changes_it_is_given(db: Database) -> None:
    new_lot(db, "L1", "waiting", next_step=3)
    _apply(db, "L1", "confirm", next_step=4, owner="elsewhere:1")
    lot = get_lot(db, "L1")
    assert (lot.state, lot.next_step, lot.owner) == ("queued", 4, "elsewhere:1")
    assert events(db, "L1") == []


def test_a_refused_move_writes_nothing(db: Database) -> None:
    new_lot(db, "L1", "completed", event_seq=9)
    with pytest.raises(LotStateError, match="lot L1 is completed: nothing to hold"):
        _apply(db, "L1", "hold", reason=REASON)
    lot = get_lot(db, "L1")
    assert (lot.state, lot.hold_reason, lot.event_seq) == ("completed", None, 9)
    assert events(db, "L1") == []


# -- ask and requested -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["hold", "pause", "abort"])
def test_a_request_round_trips_with_its_kind(db: Database, action: str) -> None:
    new_lot(db, "L1", "running", owner="elsewhere:1")

    def ask(s: Session) -> None:
        lifecycle.ask(store.get_lot(s, "L1", for_update=True), action, HoldReason("mes", "why"))

    db.run_sync(ask)
    lot = get_lot(db, "L1")
    assert (lot.request, lot.request_kind, lot.request_reason) == (action, "mes", "why")
    assert lifecycle.requested(lot) == (action, HoldReason("mes", "why"))
    assert lot.state == "running" and events(db, "L1") == []  # asked, not applied


def test_ask_is_checked_like_apply() -> None:
    with pytest.raises(LotStateError, match="lot L7 is aborted: nothing to pause"):
        lifecycle.ask(_lot("aborted"), "pause", REASON)
    with pytest.raises(LotStateError, match="lot L7 is already held"):
        lifecycle.ask(_lot("held"), "hold", REASON)


def test_requested_fills_in_what_a_request_left_out() -> None:
    lot = _lot("running")
    assert lifecycle.requested(lot) is None
    lot.request, lot.request_kind, lot.request_reason = "abort", "gremlins", None
    assert lifecycle.requested(lot) == ("abort", HoldReason("operator", "abort requested"))


# a pending request gives way to the same or a stronger one, never to a weaker one: a pause
# replacing an accepted hold would let the next runner resume the lot (claim releases a paused
# lot), and a hold replacing an abort would leave the job running
WEAKER = {("hold", "pause"), ("abort", "pause"), ("abort", "hold")}
REQUEST_PAIRS = [(p, a) for p in ("pause", "hold", "abort") for a in ("pause", "hold", "abort")]


@pytest.mark.parametrize(
    ("pending", "action"), REQUEST_PAIRS, ids=[f"{p}-then-{a}" for p, a in REQUEST_PAIRS]
)
def test_a_pending_request_is_never_weakened(pending: str, action: str) -> None:
    lot = _lot("running")
    lifecycle.ask(lot, pending, HoldReason("mes", "first"))
    if (pending, action) in WEAKER:
        with pytest.raises(LotStateError) as refused:
            lifecycle.ask(lot, action, HoldReason("operator", "second"))
        assert str(refused.value) == (
            f"lot L7: {pending} already requested (first); a {action} would weaken it"
        )
        assert lifecycle.requested(lot) == (pending, HoldReason("mes", "first"))
    else:
        lifecycle.ask(lot, action, HoldReason("operator", "second"))
        assert lifecycle.requested(lot) == (action, HoldReason("operator", "second"))
