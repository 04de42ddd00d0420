"""The tool pool on fake drivers (a tool id, a kind and a setup check are all it reads): free
tools first, then waiters served by priority, then age, then arrival; a pinned tool or a
`fits` check respected; a cancelled waiter leaves neither a tool nor itself behind."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from controller.engine.pool import Fits, ToolPool
from drivers.base import ToolDriver
from drivers.errors import NoToolFits, ParameterError


@dataclass(eq=False)
class FakeTool:
    tool_id: str
    kind: str
    blades: set[str] = field(default_factory=lambda: {"HUB_30"})

    def setup_problem(self, operation: str, values: Mapping[str, object]) -> str | None:
        blade = values.get("blade")
        return None if blade is None or blade in self.blades else f"no blade {blade}"


def _tool(tool_id: str, kind: str, blades: set[str] | None = None) -> ToolDriver:
    """A fake standing in for a driver: the pool reads only what FakeTool has."""
    return cast(ToolDriver, FakeTool(tool_id, kind, blades or {"HUB_30"}))


def _pool(*tools: ToolDriver) -> ToolPool:
    return ToolPool(tools)


def _fits(blade: str) -> Fits:
    return lambda d: d.setup_problem("dice", {"blade": blade}) is None


async def _turn() -> None:
    """One turn of the event loop: every task made ready before this call runs its next step
    (a new taker queues; a taker handed a tool logs it) before this returns. Not a sleep."""
    await asyncio.sleep(0)


async def _waiting(pool: ToolPool, kind: str, n: int) -> None:
    await _turn()
    assert len(pool._waiting.get(kind, [])) == n


async def _served(log: list[str], n: int) -> None:
    await _turn()
    assert len(log) == n


def _taker(pool: ToolPool, log: list[str], name: str, **how: Any) -> asyncio.Task[ToolDriver]:
    async def take() -> ToolDriver:
        driver = await pool.take("dicing", **how)
        log.append(f"{name}<-{driver.tool_id}")
        return driver

    return asyncio.ensure_future(take())


D1, D2 = _tool("DICE-1", "dicing"), _tool("DICE-2", "dicing", {"HUB_30", "RESIN_150"})
S1 = _tool("SPUT-1", "sputter")


# -- at once ---------------------------------------------------------------------------------------


async def test_free_tools_are_taken_at_once_then_none() -> None:
    pool = _pool(D1, D2, S1)
    assert pool.kinds() == {"dicing", "sputter"}
    got = {pool.take_now("dicing"), pool.take_now("dicing")}
    assert got == {D1, D2}
    assert pool.take_now("dicing") is None
    assert pool.take_now("sputter") is S1


async def test_a_pinned_tool_is_that_tool() -> None:
    pool = _pool(D1, D2)
    assert pool.take_now("dicing", tool_id="DICE-2") is D2
    assert pool.take_now("dicing", tool_id="DICE-2") is None  # busy, though DICE-1 is free
    assert pool.take_now("dicing") is D1


async def test_fits_picks_a_tool_set_up_for_the_step() -> None:
    pool = _pool(D1, D2)
    assert pool.take_now("dicing", fits=_fits("RESIN_150")) is D2
    assert pool.take_now("dicing", fits=_fits("RESIN_150")) is None


@pytest.mark.parametrize(
    ("kind", "how", "error", "message"),
    [
        (
            "bonder",
            {},
            NoToolFits,
            "the line has no bonder tool (tools: DICE-1, DICE-2, SPUT-1)",
        ),
        ("dicing", {"tool_id": "DICE-9"}, ParameterError, "the line has no tool 'DICE-9'"),
        (
            "dicing",
            {"fits": _fits("METAL_200")},
            NoToolFits,
            "no dicing tool of the line is set up for this step",
        ),
        (
            "dicing",
            {"tool_id": "SPUT-1"},
            NoToolFits,
            "no dicing tool of the line is set up for this step",
        ),
        (
            "dicing",
            {"tool_id": "DICE-1", "fits": _fits("RESIN_150")},
            NoToolFits,
            "no dicing tool of the line is set up for this step",
        ),
    ],
    ids=["no-kind", "no-such-tool", "nothing-set-up", "pinned-other-kind", "pinned-not-set-up"],
)
async def test_a_step_no_tool_could_ever_serve_is_refused_at_once(
    kind: str, how: dict[str, Any], error: type[Exception], message: str
) -> None:
    pool = _pool(D1, D2, S1)
    with pytest.raises(error) as refused:
        pool.take_now(kind, **how)
    assert str(refused.value) == message
    with pytest.raises(error):  # and `take` does not queue it to wait forever
        await pool.take(kind, **how)
    assert pool._waiting == {}


async def test_no_tool_fits_even_when_every_tool_is_busy() -> None:
    pool = _pool(D1)
    assert pool.take_now("dicing") is D1
    with pytest.raises(NoToolFits):
        pool.take_now("dicing", fits=_fits("RESIN_150"))


# -- in line ---------------------------------------------------------------------------------------


async def test_waiters_are_served_by_priority_then_age_then_arrival() -> None:
    pool = _pool(D1)
    held = pool.take_now("dicing")
    assert held is D1
    log: list[str] = []
    tasks = [
        _taker(pool, log, "old-low", priority=0, since=1.0),
        _taker(pool, log, "new-high", priority=5, since=9.0),
        _taker(pool, log, "newer-low", priority=0, since=2.0),
        _taker(pool, log, "old-low-2", priority=0, since=1.0),  # same as the first: came later
        _taker(pool, log, "negative", priority=-3, since=0.0),
    ]
    await _waiting(pool, "dicing", len(tasks))
    for served in range(len(tasks)):
        pool.give_back(D1)  # handed on to the first waiter in line, at once
        await _served(log, served + 1)
    assert log == [
        "new-high<-DICE-1",
        "old-low<-DICE-1",
        "old-low-2<-DICE-1",
        "newer-low<-DICE-1",
        "negative<-DICE-1",
    ]


async def test_a_waiter_pinned_to_a_tool_lets_others_pass() -> None:
    pool = _pool(D1, D2)
    pool.take_now("dicing"), pool.take_now("dicing")
    log: list[str] = []
    pinned = _taker(pool, log, "pinned", priority=9, tool_id="DICE-2")
    _taker(pool, log, "anyone")
    await _waiting(pool, "dicing", 2)
    pool.give_back(D1)
    await _served(log, 1)
    assert log == ["anyone<-DICE-1"] and not pinned.done()
    pool.give_back(D2)
    await _served(log, 2)
    assert log[1] == "pinned<-DICE-2"


async def test_a_waiter_gets_only_a_tool_that_fits() -> None:
    pool = _pool(D1, D2)
    pool.take_now("dicing"), pool.take_now("dicing")
    log: list[str] = []
    _taker(pool, log, "resin", priority=9, fits=_fits("RESIN_150"))
    _taker(pool, log, "any")
    await _waiting(pool, "dicing", 2)
    pool.give_back(D1)  # DICE-1 has no resin blade: the next in line gets it
    await _served(log, 1)
    pool.give_back(D2)
    await _served(log, 2)
    assert log == ["any<-DICE-1", "resin<-DICE-2"]


async def test_a_tool_nobody_waits_for_is_free_again() -> None:
    pool = _pool(D1)
    log: list[str] = []
    pool.take_now("dicing")
    _taker(pool, log, "resin", fits=_fits("HUB_30"))
    await _waiting(pool, "dicing", 1)
    pool.give_back(D1)
    await _served(log, 1)
    pool.give_back(D1)
    assert pool.take_now("dicing") is D1


# -- cancellation ----------------------------------------------------------------------------------


async def test_a_waiter_cancelled_in_line_leaves_the_line() -> None:
    pool = _pool(D1)
    pool.take_now("dicing")
    log: list[str] = []
    first, second, third = (_taker(pool, log, name) for name in ("first", "second", "third"))
    await _waiting(pool, "dicing", 3)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert len(pool._waiting["dicing"]) == 2
    pool.give_back(D1)
    await _served(log, 1)
    pool.give_back(D1)
    await _served(log, 2)
    assert log == ["first<-DICE-1", "third<-DICE-1"]
    assert pool._waiting["dicing"] == [] and first.done() and third.done()


async def test_a_waiter_cancelled_as_its_tool_arrives_gives_the_tool_back() -> None:
    pool = _pool(D1)
    pool.take_now("dicing")
    log: list[str] = []
    late = _taker(pool, log, "late")
    await _waiting(pool, "dicing", 1)
    pool.give_back(D1)  # the waiter's future has the tool ...
    late.cancel()  # ... but it is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await late
    assert log == [] and pool._waiting["dicing"] == []
    assert pool.take_now("dicing") is D1  # not lost


async def test_a_timed_out_take_leaves_nothing_behind() -> None:
    pool = _pool(D1)
    pool.take_now("dicing")
    taker = asyncio.ensure_future(pool.take("dicing"))
    await _waiting(pool, "dicing", 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(taker, timeout=0)
    assert pool._waiting["dicing"] == []
    pool.give_back(D1)
    assert pool.take_now("dicing") is D1


# -- inhibited tools -------------------------------------------------------------------------------


async def test_an_inhibited_tool_is_given_to_no_lot_until_let_in() -> None:
    pool = _pool(D1, D2)
    pool.hold_out("DICE-1")
    assert pool.held_out("DICE-1") and not pool.held_out("DICE-2")
    assert pool.take_now("dicing") is D2
    assert pool.take_now("dicing") is None  # DICE-1 is free but inhibited
    # asked for by id, it is given: a job already on it is collected (re-attached after a
    # restart), which starts nothing new on it (the runner starts no new job there)
    assert pool.take_now("dicing", tool_id="DICE-1") is D1
    pool.give_back(D1)
    log: list[str] = []
    _taker(pool, log, "a")
    await _waiting(pool, "dicing", 1)
    pool.let_in("DICE-1")
    await _served(log, 1)
    assert log == ["a<-DICE-1"]


async def test_a_tool_inhibited_while_in_use_goes_back_to_no_waiter() -> None:
    pool = _pool(D1)
    taken = pool.take_now("dicing")
    assert taken is D1
    log: list[str] = []
    _taker(pool, log, "a")
    await _waiting(pool, "dicing", 1)
    pool.hold_out("DICE-1")  # the job on it finishes; then it is held out
    pool.give_back(D1)
    await _served(log, 0)
    pool.let_in("DICE-1")  # released: the waiter gets it at once
    await _served(log, 1)
    pool.let_in("DICE-1")  # (not held out: nothing to do)
    assert log == ["a<-DICE-1"]


async def test_a_preference_waits_for_its_tool_until_that_tool_is_inhibited() -> None:
    """A piece's job prefers its slot-order tool (a seeded run measures the same) and waits
    for it while another is free; once its tool is held out it takes any tool that fits,
    at once or when one comes free: a lot never waits on an inhibited tool."""
    pool = _pool(D1, D2)
    pool.take_now("dicing", tool_id="DICE-1")  # busy with another lot's job
    log: list[str] = []
    waiting = _taker(pool, log, "piece", prefer="DICE-1")
    await _waiting(pool, "dicing", 1)
    assert not waiting.done()  # DICE-2 is free, but not its tool
    pool.hold_out("DICE-1")  # inhibited (SPC or a technician) while the job on it runs
    await _served(log, 1)
    assert log == ["piece<-DICE-2"]
    assert pool.take_now("dicing", prefer="DICE-1") is None  # DICE-2 taken, DICE-1 out
    pool.give_back(D2)
    assert pool.take_now("dicing", prefer="DICE-1") is D2
    pool.give_back(D2)
    pool.let_in("DICE-1")
    pool.give_back(D1)
    assert pool.take_now("dicing", prefer="DICE-1") is D1  # its own tool again
