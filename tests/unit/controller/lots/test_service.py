"""The lot service every front door calls, on SQLite with no engine: lots created with their
units (a supply lot shared, reused ids refused), and hold, pause, release, abort and confirm
applied directly to a lot nobody drives, or left as a request for the live controller that
drives it (woken when that controller is this process)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session

from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import StepRun, Unit
from controller.lots import ME, HoldReason, LotRequest, LotService, stop_job_on
from controller.recipes.cache import Expansions
from drivers.errors import LotNotFound, LotStateError, ParameterError, ToolOffline
from drivers.interface import ToolState
from tests.unit.controller.rows import STATION, events, get_lot, new_lot, tiny_recipe

TINY = tiny_recipe()
OTHER_LIVE = f"{socket.gethostname()}:{os.getppid()}"  # pytest's parent: alive, not us
DEAD = f"{socket.gethostname()}:{2**22 + 1}"  # above Linux's largest pid: never alive
WHY = HoldReason("operator", "check W03")


@dataclass
class Calls:
    woken: list[str] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)

    def wake(self, lot_id: str) -> None:
        self.woken.append(lot_id)

    async def stop_job(self, tool_id: str, job_id: str) -> str:
        self.stopped.append((tool_id, job_id))
        return f"job {job_id} stopped on {tool_id}"


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def service(db: Database, calls: Calls) -> LotService:
    return LotService(db, station=STATION, stop_job=calls.stop_job, wake=calls.wake)


def _request(lot_id: str, **inputs: int | list[str]) -> LotRequest:
    return LotRequest(lot_id=lot_id, recipe="unit-flow", inputs=dict(inputs))


def _units(db: Database, lot_id: str) -> list[Unit]:
    return db.run_sync(lambda s: store.lot_units(s, lot_id, active_only=False))


def _run(db: Database, lot_id: str, state: str, **fields: object) -> int:
    def tx(s: Session) -> int:
        return store.add_step_run(
            s, lot_id=lot_id, step_index=0, step_id="fab", recipe_id="unit-flow",
            recipe_hash=TINY.hash, state=state, **fields,
        )  # fmt: skip

    return db.run_sync(tx)


def _step_run(db: Database, run_id: int) -> StepRun:
    run = db.run_sync(lambda s: s.get(StepRun, run_id))
    assert run is not None
    return run


# -- create ----------------------------------------------------------------------------------------


async def test_a_lot_is_created_with_its_units_and_one_event(db: Database) -> None:
    expansions = Expansions()
    service = LotService(db, station=STATION, expansions=expansions)
    lot = await service.create(_request("L1", wafers=2), recipe=TINY)
    assert (lot.state, lot.owner, lot.station, lot.step_count) == ("queued", ME, STATION, 1)
    assert (lot.recipe_id, lot.recipe_version, lot.recipe_hash) == ("unit-flow", 3, TINY.hash)
    assert lot.supplies == {"dies": "L1-DIE"}
    units = [(u.name, u.kind, u.slot, u.state, u.attributes) for u in _units(db, "L1")]
    assert units == [
        ("L1-W01", "wafer", 1, "active", {"input": "wafers"}),
        ("L1-W02", "wafer", 2, "active", {"input": "wafers"}),
        ("L1-P01", "panel", 1, "active", {"input": "panels"}),
        ("L1-P02", "panel", 2, "active", {"input": "panels"}),
        ("L1-DIE", "supply", None, "supply", {"supply_for": "dies"}),
    ]
    [created] = events(db, "L1")
    assert (created["type"], created["seq"], created["station"]) == ("lot_created", 1, STATION)
    assert created["data"] == {
        "recipe_id": "unit-flow",
        "recipe_version": 3,
        "recipe_hash": TINY.hash,
        "options": {"layout": "plain"},
        "inputs": {"wafers": 2, "panels": 2},
        "steps": 1,
        "units": ["L1-W01", "L1-W02", "L1-P01", "L1-P02", "L1-DIE"],
        "carriers": {},
    }
    # the runner finds the expansion the lot was checked with, not a new one
    found = expansions.get(TINY.hash, "not parsed", "unused", {"layout": "plain"})
    assert found[0] is TINY


async def test_a_lot_nobody_owns_waits_for_its_station(service: LotService) -> None:
    lot = await service.create(_request("L1"), owner=None, station="st-9", recipe=TINY)
    assert (lot.owner, lot.station) == (None, "st-9")


async def test_two_lots_draw_on_one_upstream_lot(db: Database, service: LotService) -> None:
    await service.create(_request("L1", dies=["DIELOT7"]), recipe=TINY)
    await service.create(_request("L2", dies=["DIELOT7"]), recipe=TINY)
    supply = db.run_sync(lambda s: store.units_by_name(s, ["DIELOT7"]))["DIELOT7"]
    assert (supply.kind, supply.state, supply.material, supply.lot_id) == (
        "supply", "supply", "die", "L1"
    )  # fmt: skip
    assert get_lot(db, "L2").supplies == {"dies": "DIELOT7"}
    assert "DIELOT7" not in events(db, "L2")[0]["data"]["units"]


async def test_a_supply_source_must_be_an_upstream_lot(db: Database, service: LotService) -> None:
    await service.create(_request("L1", wafers=["WAF1"]), recipe=TINY)
    with pytest.raises(ParameterError) as refused:
        await service.create(_request("L2", dies=["WAF1"]), recipe=TINY)
    assert str(refused.value) == "supply dies=WAF1: WAF1 is a wafer, not an upstream lot"
    with pytest.raises(LotNotFound):
        get_lot(db, "L2")


async def test_unit_ids_of_another_lot_are_refused_and_nothing_is_kept(
    db: Database, service: LotService
) -> None:
    await service.create(_request("L1", wafers=["A1", "A2", "A3", "A4"]), recipe=TINY)
    with pytest.raises(ParameterError) as refused:
        await service.create(_request("L2", wafers=["B1", "A2"]), recipe=TINY)
    assert str(refused.value) == "unit ids already used by other lots: A2"
    with pytest.raises(LotNotFound):
        get_lot(db, "L2")
    assert _units(db, "L2") == [] and events(db, "L2") == []
    # a long list is cut at five names
    new_lot(db, "L3")
    db.run_sync(
        lambda s: store.insert_units(
            s, [store.NewUnit(name=f"U{i}", kind="wafer", lot_id="L3") for i in range(7)]
        )
    )
    request = LotRequest(
        lot_id="L4", recipe="unit-flow", inputs={"wafers": ["U0", "U1", "U2", "U3"], "panels":
                                                  ["U4", "U5", "U6", "P4"]},
    )  # fmt: skip
    with pytest.raises(ParameterError) as refused:
        await service.create(request, recipe=TINY)
    assert (
        str(refused.value) == "unit ids already used by other lots: U0, U1, U2, U3, U4 and 2 more"
    )


async def test_a_lot_id_is_never_reused(service: LotService) -> None:
    await service.create(_request("L1"), owner=None, recipe=TINY)
    await service.hold("L1", WHY)
    with pytest.raises(LotStateError) as refused:
        await service.create(_request("L1"), recipe=TINY)
    assert str(refused.value) == "lot L1 already exists (held)"


# -- a lot nobody drives: changed here -------------------------------------------------------------


@pytest.mark.parametrize("owner", [None, DEAD], ids=["no-owner", "dead-owner"])
async def test_hold_pause_release_on_a_lot_nobody_drives(
    db: Database, service: LotService, calls: Calls, owner: str | None
) -> None:
    new_lot(db, "L1", owner=owner)
    assert await service.hold("L1", WHY) == "lot L1: held"
    assert (get_lot(db, "L1").hold_kind, get_lot(db, "L1").hold_reason) == ("operator", "check W03")
    assert await service.release("L1", "W03 fine") == "lot L1: released (was: check W03)"
    assert await service.pause("L1", HoldReason("operator", "lunch")) == "lot L1: paused"
    assert await service.release("L1") == "lot L1: released (was: paused)"
    assert [(e["type"], e["data"]) for e in events(db, "L1")] == [
        ("hold", {"reason": "check W03", "kind": "operator"}),
        ("release", {"was": "check W03", "note": "W03 fine"}),
        ("pause", {"reason": "lunch"}),
        ("release", {"was": None, "note": None}),
    ]
    assert get_lot(db, "L1").state == "queued"
    assert calls.woken == [] and calls.stopped == []


async def test_release_of_a_lot_that_is_not_stopped_is_refused(
    db: Database, service: LotService
) -> None:
    new_lot(db, "L1", owner=ME)  # driven or not: release is always direct
    with pytest.raises(LotStateError, match="lot L1 is queued: only a lot held, paused can"):
        await service.release("L1")


async def test_abort_stops_the_job_an_undriven_lot_left_running(
    db: Database, service: LotService, calls: Calls
) -> None:
    new_lot(db, "L1", "running")
    run_id = _run(db, "L1", "started", kind="tool", tool_id="DICE-1", job_id="J-77")
    message = await service.abort("L1", HoldReason("mes", "wrong blade"))
    assert message == "lot L1: aborted; job J-77 stopped on DICE-1"
    assert calls.stopped == [("DICE-1", "J-77")]
    run = _step_run(db, run_id)
    assert (run.state, run.message) == ("aborted", "wrong blade") and run.ended_at is not None
    lot = get_lot(db, "L1")
    assert (lot.state, lot.hold_kind, lot.hold_reason) == ("aborted", "mes", "wrong blade")
    assert [e["type"] for e in events(db, "L1")] == ["abort"]


async def test_abort_of_a_lot_waiting_outside_stops_no_job(
    db: Database, service: LotService, calls: Calls
) -> None:
    new_lot(db, "L1", "waiting")
    run_id = _run(db, "L1", "waiting", kind="external")
    assert await service.abort("L1", WHY) == "lot L1: aborted"
    assert calls.stopped == [] and _step_run(db, run_id).state == "aborted"


async def test_without_a_line_an_abort_says_the_job_was_not_stopped(db: Database) -> None:
    new_lot(db, "L1", "running")
    _run(db, "L1", "started", kind="tool", tool_id="DICE-1", job_id="J-77")
    message = await LotService(db, station=STATION).abort("L1", WHY)
    assert message == "lot L1: aborted; job J-77 on DICE-1 not stopped (no line to reach it)"


async def test_abort_of_a_finished_lot_is_refused_before_any_job_is_touched(
    db: Database, service: LotService, calls: Calls
) -> None:
    new_lot(db, "L1", "completed")
    _run(db, "L1", "started", kind="tool", tool_id="DICE-1", job_id="J-77")
    with pytest.raises(LotStateError, match="lot L1 is completed: nothing to abort"):
        await service.abort("L1", WHY)
    assert calls.stopped == []


# -- a driven lot: a request for its controller ----------------------------------------------------


@pytest.mark.parametrize(
    ("action", "when"),
    [
        ("hold", "between steps"),
        ("pause", "between steps"),
        ("abort", "now (the running job is stopped)"),
    ],
    ids=["hold", "pause", "abort"],
)
@pytest.mark.parametrize("owner", [ME, OTHER_LIVE], ids=["this-process", "another-process"])
async def test_a_driven_lot_gets_a_request(
    db: Database, service: LotService, calls: Calls, action: str, when: str, owner: str
) -> None:
    new_lot(db, "L1", "running", owner=owner)
    _run(db, "L1", "started", kind="tool", tool_id="DICE-1", job_id="J-77")
    message = await getattr(service, action)("L1", HoldReason("mes", "MES says"))
    assert message == f"lot L1: {action} requested from controller {owner}; takes effect {when}"
    lot = get_lot(db, "L1")
    assert (lot.state, lot.request, lot.request_kind, lot.request_reason) == (
        "running", action, "mes", "MES says"
    )  # fmt: skip
    assert events(db, "L1") == []
    assert calls.stopped == []  # the driving runner stops its own job
    assert calls.woken == (["L1"] if owner == ME else [])


async def test_a_pending_request_is_not_weakened_by_a_later_one(
    db: Database, service: LotService
) -> None:
    new_lot(db, "L1", "running", owner=OTHER_LIVE)
    await service.hold("L1", HoldReason("mes", "bumps out of spec"))
    with pytest.raises(LotStateError) as refused:
        await service.pause("L1", HoldReason("operator", "lunch"))
    assert str(refused.value) == (
        "lot L1: hold already requested (bumps out of spec); a pause would weaken it"
    )
    await service.abort("L1", HoldReason("operator", "scrap"))
    lot = get_lot(db, "L1")
    assert (lot.request, lot.request_kind, lot.request_reason) == ("abort", "operator", "scrap")


async def test_a_request_is_checked_like_the_move_it_asks_for(
    db: Database, service: LotService, calls: Calls
) -> None:
    new_lot(db, "L1", "held", owner=ME, hold_reason="alarm 3")
    with pytest.raises(LotStateError, match=r"lot L1 is already held \(alarm 3\)"):
        await service.hold("L1", WHY)
    assert get_lot(db, "L1").request is None and calls.woken == []


async def test_an_unknown_lot_is_named(service: LotService) -> None:
    with pytest.raises(LotNotFound, match="no lot 'NOPE'"):
        await service.hold("NOPE", WHY)


# -- confirm ---------------------------------------------------------------------------------------


def _waiting(db: Database) -> int:
    new_lot(db, "L1", "waiting", event_seq=2)
    return _run(
        db, "L1", "waiting", kind="external",
        setpoints={"external": "front-end fab", "returns": ["wafer_map", "lot_ref"]},
    )  # fmt: skip


async def test_confirm_records_the_returned_fields_and_moves_on(
    db: Database, service: LotService
) -> None:
    run_id = _waiting(db)
    data = {"wafer_map": "MAP-1", "lot_ref": "FAB-9"}
    assert await service.confirm("L1", data, by="mes") == "lot L1: step fab confirmed"
    lot = get_lot(db, "L1")
    assert (lot.state, lot.next_step) == ("queued", 1)
    run = _step_run(db, run_id)
    assert (run.state, run.results) == ("confirmed", data) and run.ended_at is not None
    [confirmed] = events(db, "L1")
    assert (confirmed["type"], confirmed["seq"], confirmed["step_id"]) == (
        "external_confirmed", 3, "fab"
    )  # fmt: skip
    assert confirmed["data"] == {"returned": data, "by": "mes"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"wafer_map": "M"}, "step fab returns wafer_map, lot_ref; missing lot_ref"),
        (
            {"wafer_map": "M", "lot_ref": "R", "colour": "red"},
            "step fab returns wafer_map, lot_ref; unknown colour",
        ),
        (
            {"colour": "red"},
            "step fab returns wafer_map, lot_ref; missing wafer_map, lot_ref; unknown colour",
        ),
    ],
    ids=["missing", "unknown", "both"],
)
async def test_confirm_checks_the_returned_fields(
    db: Database, service: LotService, data: dict[str, str], message: str
) -> None:
    run_id = _waiting(db)
    with pytest.raises(ParameterError) as refused:
        await service.confirm("L1", data)
    assert str(refused.value) == message
    assert get_lot(db, "L1").state == "waiting" and _step_run(db, run_id).state == "waiting"


def _waiting_for_film(db: Database) -> int:
    new_lot(db, "L1", "waiting", event_seq=2)
    spec = {"artwork_scale": {"min": -2100.0, "max": -2055.0, "unit": "ppm"}}
    return _run(
        db, "L1", "waiting", kind="external",
        setpoints={"external": "film", "returns": ["film_lot", "artwork_scale"], "spec": spec},
    )  # fmt: skip


async def test_a_returned_field_inside_its_spec_confirms_and_moves_on(
    db: Database, service: LotService
) -> None:
    _waiting_for_film(db)
    data = {"film_lot": "F-7", "artwork_scale": "-0.2077 %"}  # any unit of the dimension
    assert await service.confirm("L1", data) == "lot L1: step fab confirmed"
    assert get_lot(db, "L1").state == "queued"


async def test_a_returned_field_outside_its_spec_is_recorded_and_holds_the_lot(
    db: Database, service: LotService
) -> None:
    run_id = _waiting_for_film(db)
    data = {"film_lot": "F-7", "artwork_scale": "-2000 ppm"}
    message = await service.confirm("L1", data)
    reason = "out of spec at step fab: artwork_scale -2000 ppm > -2055 ppm"
    assert message == f"lot L1: step fab confirmed, and held: {reason}"
    lot = get_lot(db, "L1")
    assert (lot.state, lot.next_step, lot.hold_kind, lot.hold_reason) == (
        "held", 1, "out_of_spec", reason
    )  # fmt: skip
    assert _step_run(db, run_id).results == data  # what came back is kept
    assert [e["type"] for e in events(db, "L1")] == ["external_confirmed", "hold"]


async def test_a_returned_field_that_is_not_a_quantity_is_refused_and_changes_nothing(
    db: Database, service: LotService
) -> None:
    run_id = _waiting_for_film(db)
    with pytest.raises(ParameterError) as refused:
        await service.confirm("L1", {"film_lot": "F-7", "artwork_scale": "small"})
    assert str(refused.value).startswith(
        "step fab: artwork_scale 'small' is not a quantity in ppm ("
    )
    assert get_lot(db, "L1").state == "waiting" and _step_run(db, run_id).state == "waiting"
    assert events(db, "L1") == []


async def test_confirm_of_a_lot_not_waiting_is_refused(db: Database, service: LotService) -> None:
    new_lot(db, "L1", "queued")
    with pytest.raises(LotStateError) as refused:
        await service.confirm("L1", {})
    assert str(refused.value) == "lot L1 is queued, not waiting at an external step"


# -- stopping a job on a tool ----------------------------------------------------------------------


@dataclass
class FakeTool:
    """The two calls stop_job_on makes of a driver."""

    state: ToolState
    job_id: str | None
    offline: bool = False
    tool_id: str = "DICE-1"
    aborted: int = 0

    async def status(self) -> object:
        if self.offline:
            raise ToolOffline(self.tool_id, "connection refused")
        return type("Status", (), {"state": self.state, "job_id": self.job_id})()

    async def abort(self) -> None:
        self.aborted += 1


@pytest.mark.parametrize(
    ("tool", "said", "aborted"),
    [
        (FakeTool(ToolState.RUNNING, "J-77"), "job J-77 stopped on DICE-1", 1),
        (FakeTool(ToolState.SETUP, "J-77"), "job J-77 stopped on DICE-1", 1),
        (FakeTool(ToolState.RUNNING, "J-78"), "job J-77 is not running on DICE-1", 0),
        (FakeTool(ToolState.COMPLETE, "J-77"), "job J-77 is not running on DICE-1", 0),
        (
            FakeTool(ToolState.RUNNING, "J-77", offline=True),
            "could not reach DICE-1 to stop job J-77 (DICE-1: connection refused)",
            0,
        ),
    ],
    ids=["running", "setting-up", "another-job", "finished", "offline"],
)
async def test_stop_job_on_stops_only_that_job(tool: FakeTool, said: str, aborted: int) -> None:
    assert await stop_job_on(tool, "J-77") == said  # type: ignore[arg-type]
    assert tool.aborted == aborted
