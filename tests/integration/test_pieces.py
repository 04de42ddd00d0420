"""Lots run per work piece on the simulated line: one job per wafer (or boat of packages),
each piece's own results in genealogy and traces, consumables drawn for every piece, and an
out-of-spec piece split off into a held child lot."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from controller.engine import Engine
from controller.genealogy import store, trace
from controller.genealogy.db import Database
from controller.lots import HoldReason, LotRequest
from controller.lots.carriers import CarrierSpec
from controller.recipes import find
from drivers.registry import make_driver
from simulators.line import INSTANT, SimLine, default_line
from tests.integration.test_flows import close, make_engine
from tests.lots import create, run, service

WAFER_SITES = 4101 * 49  # wlcsp-002-24: 4,101 dies of 7 x 7 bumps on a 300 mm wafer


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=INSTANT, seed=5) as running:
        yield running


def _runs(engine: Engine, lot: str) -> list[Any]:
    def read(s: Any) -> list[Any]:
        return list(
            s.execute(
                text(
                    "SELECT step_index, step_id, piece, piece_count, tool_id, job_id, results,"
                    " state"
                    " FROM step_run WHERE lot_id = :l AND kind = 'tool' ORDER BY id"
                ),
                {"l": lot},
            )
        )

    return engine.db.run_sync(read)


def _value(results: Any, key: str) -> float:
    r = json.loads(results) if isinstance(results, str) else results
    return float(r[key]["value"])


def _fed_from_own_piece(engine: Engine, lot: str) -> int:
    """Every fed-forward setpoint of the lot was computed from its own wafer's measurement
    (each input equal to what the source step measured on that piece); how many were."""

    def read(s: Any) -> list[Any]:
        q = "SELECT step_id, piece, setpoints, results FROM step_run WHERE lot_id = :l"
        return list(s.execute(text(q), {"l": lot}))

    rows = engine.db.run_sync(read)
    measured = {(r.step_id, r.piece): _json(r.results) for r in rows}
    checked = 0
    for r in rows:
        for name, sp in _json(r.setpoints).items():
            for label, value in sp.get("inputs", {}).items():
                source, result = label.rsplit(".", 1)
                own = measured[(source, r.piece)][result]["value"]
                assert value == pytest.approx(own), (r.step_id, r.piece, name, label)
                checked += 1
    return checked


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


async def test_three_wafers_run_three_jobs_and_trace_to_their_own_data(
    line: SimLine, db_url: str
) -> None:
    engine = await make_engine(line, db_url)
    try:
        ball = engine.pool.drivers["BALL-1"]
        hopper = next(c for c in (await ball.status()).consumables if c.name == "ball_supply")
        out = await run(engine, find("wlcsp-002-24"), wafers=3)
        assert out.state == "completed", out.hold_reason
        lot = out.lot_id
        runs = _runs(engine, lot)
        by_step: dict[str, list[Any]] = {}
        for r in runs:
            by_step.setdefault(r.step_id, []).append(r)
        wafers = [f"{lot}-W01", f"{lot}-W02", f"{lot}-W03"]
        for step_id, rs in by_step.items():  # every step of the flow is wafer-level
            assert [r.piece for r in rs] == wafers, step_id
            assert {r.piece_count for r in rs} == {1}
            assert len({r.job_id for r in rs}) == 3
        bumps = by_step["bumps"]
        placed = sum(_value(r.results, "placed") + _value(r.results, "missing") for r in bumps)
        assert placed == 3 * WAFER_SITES  # every site of three wafers, not one
        used = sum(_value(r.results, "balls_used") for r in bumps)
        after = next(c for c in (await ball.status()).consumables if c.name == "ball_supply")
        assert hopper.level - after.level == used  # the hopper gave three wafers' balls
        assert sum(_value(r.results, "die_count") for r in by_step["dice"]) == 3 * 4101
        assert out.units["package"] == 3 * 4101

        def traces(s: Any) -> tuple[Any, Any]:
            one = trace.backward(s, f"{lot}-W01-X037Y037")
            three = trace.backward(s, f"{lot}-W03-X037Y037")
            return one, three

        one, three = engine.db.run_sync(traces)
        w1 = next(n for n in one if n.kind == "wafer")
        w3 = next(n for n in three if n.kind == "wafer")
        assert w1.name == f"{lot}-W01" and w3.name == f"{lot}-W03"
        assert len(w1.steps) == len(w3.steps) == len(by_step)
        jobs1 = {st["job_id"] for st in w1.steps}
        jobs3 = {st["job_id"] for st in w3.steps}
        assert not jobs1 & jobs3  # each wafer's own jobs
        seed1 = next(st for st in w1.steps if st["step"] == "seed")["results"]
        seed3 = next(st for st in w3.steps if st["step"] == "seed")["results"]
        assert seed1["thickness"] != seed3["thickness"]  # and its own measurements
        own = next(r for r in by_step["seed"] if r.piece == f"{lot}-W03")
        assert seed3["thickness"]["value"] == _value(own.results, "thickness")
        assert _fed_from_own_piece(engine, lot) >= 3 * 6  # (six fed steps in 002-24)
    finally:
        await close(engine)


async def test_packages_ride_in_boats_with_each_position_its_own(
    line: SimLine, tmp_path: Path
) -> None:
    """fcbga: 1,108 packages in boats of 40 (the recipe's work_pieces) are 28 jobs at every
    boat step; every package's 64 sites get a ball; a missing ball rejects its own package."""
    engine = await make_engine(line, f"sqlite:///{tmp_path / 'g.db'}")
    try:
        out = await run(engine, find("fcbga-thermal-001-19"))
        assert out.state == "completed", out.hold_reason
        lot, packages = out.lot_id, out.units["package"]
        balls = [r for r in _runs(engine, lot) if r.step_id == "balls"]
        assert len(balls) == -(-packages // 40) == 28
        assert sum(r.piece_count for r in balls) == packages
        sites = sum(_value(r.results, "placed") + _value(r.results, "missing") for r in balls)
        assert sites == packages * 64

        def pieces(s: Any) -> tuple[list[Any], dict[str, Any]]:
            rows = [p for p in store.run_pieces(s, lot) if p[0] in {r.id for r in s.execute(
                text("SELECT id FROM step_run WHERE lot_id = :l AND step_id = 'balls'"),
                {"l": lot})}]  # fmt: skip
            units = {u.name: u for u in store.lot_units(s, lot, active_only=False)}
            return rows, units

        rows, units = engine.db.run_sync(pieces)
        assert len(rows) == packages
        assert {pos for _, _, pos, _ in rows} == set(range(1, 41))  # boat positions
        missing = {name for _, name, _, res in rows if res["missing"]["value"] > 0}
        rejected = {n for n, u in units.items() if u.bin_reason == "missing ball"}
        assert missing == rejected
    finally:
        await close(engine)


async def test_an_out_of_spec_wafer_splits_into_a_held_child_lot(
    line: SimLine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe says `out_of_spec: split` at the seed sputter: the lot is first run in one
    database to learn each wafer's thickness (the seed noise is per wafer and reproducible),
    then with the spec's maximum between them in another: the thicker wafers go to a held
    child lot, the others complete."""
    src = find("wlcsp-002-24")
    first = await make_engine(line, f"sqlite:///{tmp_path / 'a.db'}")
    try:
        lot = await create(first, src, "SPLIT-1", None, wafers=3)
        assert (await first.run_lot(lot)).state == "completed"
        seed = {r.piece: _value(r.results, "thickness") for r in _runs(first, lot)
                if r.step_id == "seed"}  # fmt: skip
    finally:
        await close(first)
    ranked = sorted(seed, key=seed.__getitem__)
    limit = (seed[ranked[0]] + seed[ranked[1]]) / 2  # only the thinnest wafer passes
    spec = "spec: {thickness: {min: 270 nm, max: 330 nm}}\n    consume: [target_ti, target_cu]"
    text_ = src.path.read_text()
    assert spec in text_
    tight = text_.replace(
        spec,
        f"spec: {{thickness: {{min: 200 nm, max: {limit:.6f} nm}}}}\n    out_of_spec: split\n"
        "    consume: [target_ti, target_cu]",
    )
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / src.path.name).write_text(tight)
    monkeypatch.setenv("FABLINE_RECIPES", str(tmp_path / "recipes"))
    engine = await make_engine(line, f"sqlite:///{tmp_path / 'b.db'}")
    try:
        lot = await create(engine, find("wlcsp-002-24"), "SPLIT-1", None, wafers=3)
        out = await engine.run_lot(lot)
        assert out.state == "completed", out.hold_reason
        assert out.units["package"] == 4101  # the one wafer in spec went on
        child = engine.db.run_sync(lambda s: store.get_lot(s, "SPLIT-1.X1"))
        assert child.state == "held" and child.hold_kind == "out_of_spec"
        assert ranked[1] in (child.hold_reason or "") and ranked[2] in (child.hold_reason or "")
        assert child.next_step == 1  # after the seed step, where it failed

        def moved(s: Any) -> list[str]:
            return sorted(u.name for u in store.lot_units(s, "SPLIT-1.X1"))

        assert engine.db.run_sync(moved) == sorted(ranked[1:])
        types = [e["type"] for e in engine.db.run_sync(lambda s: store.lot_events(s, lot))]
        held = types.index("hold")
        assert types[held : held + 3] == ["hold", "lot_split", "release"]
    finally:
        await close(engine)


async def _cures_running(engine: Engine, lot: str, n: int) -> list[Any]:
    """Wait until `n` jobs of the lot's post-mould cure are on their presses (polled)."""
    deadline = time.monotonic() + 60
    while True:
        runs = [r for r in _runs(engine, lot) if r.step_id == "post-mold-cure"]
        started = [r for r in runs if r.job_id]
        if len(started) >= n:
            return started
        assert time.monotonic() < deadline, f"{n} cures of {lot} never ran at once: {runs}"
        await asyncio.sleep(0.02)


async def test_hold_takes_effect_between_jobs_and_abort_stops_every_running_job(
    tmp_path: Path,
) -> None:
    """Three strips over the line's two presses, an 8 h cure lasting ~1.5 s: a hold asked while
    two cures run lets them finish and be recorded, and starts no third; after release the
    third runs and the step finishes once. An abort asked while two run stops both jobs on
    their presses."""
    async with SimLine(default_line(), time_scale=20_000, seed=5) as slow:
        engine = await make_engine(slow, f"sqlite:///{tmp_path / 'g.db'}")
        try:
            lots = service(engine)
            lot = await create(engine, find("substrate-first-fc-003-1"), "PAR-1", None, strips=3)
            running = asyncio.create_task(engine.run_lot(lot))
            first = await _cures_running(engine, lot, 2)
            assert len({r.tool_id for r in first}) == 2  # at once, one strip on each press
            assert [r.piece for r in first] == ["PAR-1-S01", "PAR-1-S02"]  # slot order
            await lots.hold(lot, HoldReason("operator", "check the presses"))
            out = await running
            assert out.state == "held" and "check the presses" in (out.hold_reason or "")
            cures = [r for r in _runs(engine, lot) if r.step_id == "post-mold-cure"]
            assert [(r.piece, _value(r.results, "cure") > 0) for r in cures] == [
                ("PAR-1-S01", True),
                ("PAR-1-S02", True),
            ]  # both finished and recorded; the third never went out
            await lots.release(lot)
            out = await engine.run_lot(lot)
            assert out.state == "completed", out.hold_reason
            cures = [r for r in _runs(engine, lot) if r.step_id == "post-mold-cure"]
            assert sorted(r.piece for r in cures) == ["PAR-1-S01", "PAR-1-S02", "PAR-1-S03"]

            lot = await create(engine, find("substrate-first-fc-003-1"), "PAR-2", None, strips=3)
            running = asyncio.create_task(engine.run_lot(lot))
            jobs = await _cures_running(engine, lot, 2)
            await lots.abort(lot, HoldReason("operator", "wrong compound"))
            out = await running
            assert out.state == "aborted"
            for r in jobs:
                st = await engine.pool.drivers[r.tool_id].result(r.job_id)
                assert st.state.name == "ABORTED", r.job_id
            cures = [r for r in _runs(engine, lot) if r.step_id == "post-mold-cure"]
            assert [(r.piece, r.state) for r in cures] == [
                ("PAR-2-S01", "aborted"),
                ("PAR-2-S02", "aborted"),
            ]
        finally:
            await close(engine)


async def test_a_carrier_slot_map_mismatch_holds_the_lot_naming_carrier_and_slot(
    line: SimLine, tmp_path: Path
) -> None:
    """Three wafers in FOUP-7 slots 1, 2 and 5: recorded with the units and in lot_created;
    the sputter's load port maps slot 5 empty: the lot holds before the job goes out, the
    reason naming the carrier, the slot and the wafer; once the carrier is right (the fault
    was one read) release and resume complete it."""
    engine = await make_engine(line, f"sqlite:///{tmp_path / 'c.db'}")
    try:
        r = find("wlcsp-002-24")
        carrier = CarrierSpec(id="FOUP-7", slots=[1, 2, 5])
        request = LotRequest(lot_id="CAR-1", recipe=r.recipe.id, inputs={"wafers": 3},
                             carriers={"wafers": carrier})  # fmt: skip
        await service(engine).create(request, recipe=r)
        line.fault("SPUT-1", "slot_map", slot=5, state="empty")
        out = await engine.run_lot("CAR-1")
        assert out.state == "held" and out.hold_kind == "carrier"
        assert out.hold_reason == (
            "step seed: carrier FOUP-7 slot 5 at SPUT-1: CAR-1-W03 expected, mapped empty"
        )
        runs = _runs(engine, "CAR-1")
        assert [r.state for r in runs] == []  # no job went out

        def read(s: Any) -> tuple[dict[str, Any], list[Any]]:
            created = store.lot_events(s, "CAR-1")[0]
            return created, store.lot_units(s, "CAR-1")

        created, units = engine.db.run_sync(read)
        assert created["data"]["carriers"] == {
            "FOUP-7": {"1": "CAR-1-W01", "2": "CAR-1-W02", "5": "CAR-1-W03"}
        }
        assert [(u.name, u.slot, u.attributes["carrier"]) for u in units] == [
            ("CAR-1-W01", 1, "FOUP-7"), ("CAR-1-W02", 2, "FOUP-7"), ("CAR-1-W03", 5, "FOUP-7")
        ]  # fmt: skip
        await service(engine).release("CAR-1")
        out = await engine.run_lot("CAR-1")
        assert out.state == "completed", out.hold_reason
    finally:
        await close(engine)


async def test_an_inhibited_tool_gets_no_piece_and_its_lot_runs_on_the_others(
    line: SimLine, db_url: str
) -> None:
    """Pieces go round the tools of a kind in slot order, but never to an inhibited one:
    with one of the two presses held out, every strip moulds and cures on the other and
    the lot completes (before, the strips whose turn was the inhibited press waited on it)."""
    engine = await make_engine(line, db_url)
    try:
        engine.pool.hold_out("MOLD-1")
        lot = await create(engine, find("substrate-first-fc-003-1"), None, None, strips=3)
        out = await asyncio.wait_for(engine.run_lot(lot), timeout=120)
        assert out.state == "completed", out.hold_reason
        presses = {r.tool_id for r in _runs(engine, lot) if r.tool_id.startswith("MOLD-")}
        assert presses == {"MOLD-2"}
    finally:
        await close(engine)


async def test_a_job_left_on_a_tool_inhibited_since_is_collected_after_a_restart(
    tmp_path: Path,
) -> None:
    """A controller stops while a strip cures on a press; the press is inhibited before the
    next controller resumes the lot: the job already on it is collected (re-attached by its
    id, not sent again) and the rest of the lot runs on the other press."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    async with SimLine(default_line(), time_scale=20_000, seed=5) as slow:
        first = await make_engine(slow, url)
        lot = await create(first, find("substrate-first-fc-003-1"), "INH-1", None, strips=1)
        running = asyncio.create_task(first.run_lot(lot))
        (cure,) = await _cures_running(first, lot, 1)
        running.cancel()  # the controller goes away; the job runs on
        await asyncio.gather(running, return_exceptions=True)
        await close(first)
        second = Engine(Database(url), [make_driver(t, timeout=1.0) for t in slow.describe().tools],
                        first.settings)  # fmt: skip
        await second.connect()  # (no fresh consumables: a press is busy)
        try:
            second.pool.hold_out(cure.tool_id)
            out = await asyncio.wait_for(second.run_lot(lot), timeout=120)
            assert out.state == "completed", out.hold_reason
            cures = [r for r in _runs(second, lot) if r.step_id == "post-mold-cure"]
            assert [(r.job_id, r.tool_id, r.state) for r in cures] == [
                (cure.job_id, cure.tool_id, "done")
            ]  # collected from the inhibited press, once
            later = [r for r in _runs(second, lot) if r.step_index > cure.step_index]
            assert cure.tool_id not in {r.tool_id for r in later}
        finally:
            await close(second)
