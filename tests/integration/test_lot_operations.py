"""Lot operations from the outside: `fabline lot split|merge|scrap|rework` as processes on a
SQLite file, and the same operations as MES commands to a `fabline mes serve` station on a
real broker. A lot of wlcsp-002-42 whose plating-opening CD limit is set tighter than the
simulated litho reaches (37-38 µm; it prints ~40 µm) holds after `plate-expose` every time,
which is where the recipe's rework route `plate-recoat` applies: strip the resist (a rework
step that otherwise never runs), recoat, expose again. Bad requests get one line (one
rejected reply) and change nothing; traces and events show every operation."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from controller.mes.schema import event_schema
from controller.recipes import find
from controller.recipes.catalog import recipes_dir
from tests.services import require_broker
from tests.station import MesClient, StationProcess, fabline, new_station, station_env

RECIPE = "wlcsp-002-42"
HELD_AT = "plate-expose"
OPERATION_EVENTS = (
    "lot_split", "lot_merged", "lot_merged_into", "lot_scrapped", "units_scrapped",
    "lot_reworked",
)  # fmt: skip


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    """The recipe with a CD window the simulated exposure misses."""
    text = (recipes_dir() / f"{RECIPE}.yaml").read_text(encoding="utf-8")
    tight = text.replace(
        "spec: {cd: {min: 37 µm, max: 43 µm}", "spec: {cd: {min: 37 µm, max: 38 µm}"
    )
    assert tight != text
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / f"{RECIPE}.yaml").write_text(tight, encoding="utf-8")
    return folder


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0].removeprefix("error: ")


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


# -- the command line ------------------------------------------------------------------------------


async def test_split_merge_rework_and_scrap_from_the_command_line(
    tmp_path: Path, recipes: Path
) -> None:
    db = tmp_path / "ops.db"
    env = station_env(tmp_path / "home", "cli", None, FABLINE_RECIPES=str(recipes))
    env["FABLINE_LOG"] = "warning"  # stderr: the one line of a refusal

    async def cli(*args: str) -> tuple[int, str, str]:
        return await fabline(*args, "--db", str(db), env=env)

    def state() -> Any:  # everything a refused operation must leave as it was
        return (
            rows(db, "SELECT id, state, next_step, event_seq FROM lot ORDER BY id"),
            rows(db, "SELECT name, lot_id, state, bin FROM unit ORDER BY id"),
            rows(db, "SELECT count(*) FROM lot_link"),
        )

    code, out, err = await cli("run", RECIPE, "--lot", "C1", "--wafers", "3")
    assert code == 3, (out, err)
    assert f"out of spec at step {HELD_AT}" in out

    # split two wafers off, merge one of them back
    code, out, _ = await cli("lot", "split", "C1", "C1-W02", "C1-W03")
    assert (code, out.strip()) == (
        0,
        "lot C1: 2 unit(s) split into lot C1.1 (held, next step 11/22)",
    )
    code, out, _ = await cli("lot", "split", "C1.1", "C1-W03", "--into", "C1-B")
    assert code == 0, out
    code, out, _ = await cli("lot", "merge", "C1", "C1-B")
    assert (code, out.strip()) == (0, "lot C1: merged C1-B (1 unit(s)); held, next step 11/22")
    assert rows(db, "SELECT id, state FROM lot ORDER BY id") == [
        ("C1", "held"), ("C1-B", "merged"), ("C1.1", "held")
    ]  # fmt: skip

    # bad requests: one line, the error tree's exit code, nothing changed
    before = state()
    refusals = [
        (("lot", "split", "C1", "C1-W02"), 2,
         "lot C1 has no active unit C1-W02 (its units: C1-W01, C1-W03)"),
        (("lot", "split", "NOPE", "C1-W01"), 5, "no lot 'NOPE'"),
        (("lot", "merge", "C1", "C1-B"), 6, "lot C1-B is merged: nothing to merge_into"),
        (("lot", "scrap", "C1", "C1-W01"), 2, "scrap of lot C1 needs a reason code (codes: "),
        (("lot", "scrap", "C1", "--code", "GONE"), 2, "unknown scrap code 'GONE'"),
        (("lot", "rework", "C1", "--route", "reball"), 2,
         f"recipe {RECIPE} v{find(RECIPE).recipe.version} has no rework route 'reball'"
         " (routes: plate-recoat)"),
        (("lot", "split", "C1", "C1-W01", "C1-W03"), 2, "a split leaves at least one unit"),
    ]  # fmt: skip
    for args, want_code, text in refusals:
        code, _, err = await cli(*args)
        assert code == want_code, (args, err)
        assert text in one_line(err), (args, err)
    assert state() == before

    # rework the child: queued at the strip, run again, held again at the same exposure
    code, out, _ = await cli("lot", "rework", "C1.1", "--route", "plate-recoat", "--comment", "CD")
    assert (code, out.strip()) == (
        0, "lot C1.1: rework route plate-recoat, queued at step 8/22 plate-rework-strip"
    )  # fmt: skip
    code, _, err = await cli("lot", "merge", "C1", "C1.1")  # no longer at the same step
    assert (code, one_line(err)) == (
        6, "lot C1.1 cannot merge into lot C1: next step 8 is not 11"
    )  # fmt: skip
    code, out, _ = await cli("resume", "C1.1")
    assert code == 3 and f"out of spec at step {HELD_AT}" in out, out
    runs = rows(
        db, "SELECT step_id, attempt, state FROM step_run WHERE lot_id = 'C1.1' ORDER BY id"
    )
    assert runs == [
        ("plate-rework-strip", 1, "done"), ("plate-resist", 1, "done"), ("plate-expose", 1, "done")
    ]  # fmt: skip

    # scrap the child with a code; a partial scrap of the parent
    code, out, _ = await cli("lot", "scrap", "C1.1", "--code", "OOS", "--comment", "CD twice")
    assert (code, out.strip()) == (0, "lot C1.1: lot scrapped (OOS: CD twice)")
    code, out, _ = await cli("lot", "scrap", "C1", "C1-W03", "--code", "BROKEN")
    assert (code, out.strip()) == (0, "lot C1: 1 unit(s) (BROKEN: broken or cracked)")
    code, out, _ = await cli("lot", "show", "C1", "--json")
    assert json.loads(out)["units"]["wafer"] == 1  # the scrapped wafer left the count

    # the trace of the reworked wafer: its steps in C1, then in C1.1 with the loop
    code, out, _ = await cli("trace", "C1-W02", "--json")
    node = json.loads(out)["nodes"][0]
    assert (node["lot"], node["bin"]) == ("C1.1", "scrapped: OOS: CD twice")
    steps = [(s["step"], s.get("lot", "C1.1")) for s in node["steps"]]
    assert steps[:3] == [("dl-coat", "C1"), ("dl-cure", "C1"), ("strip-resist", "C1")]
    assert steps[-4:] == [
        ("plate-expose", "C1"),
        ("plate-rework-strip", "C1.1"), ("plate-resist", "C1.1"), ("plate-expose", "C1.1"),
    ]  # fmt: skip
    assert [(o["kind"], o["from_lot"], o["to_lot"]) for o in node["operations"]] == [
        ("split", "C1", "C1.1"), ("rework", "C1.1", "C1.1")
    ]  # fmt: skip
    assert (node["operations"][1]["from_step"], node["operations"][1]["to_step"]) == (10, 8)
    # the wafer merged back: C1's steps before the split, C1's after the merge
    code, out, _ = await cli("trace", "C1-W03", "--json")
    merged = json.loads(out)["nodes"][0]
    assert [o["kind"] for o in merged["operations"]] == ["split", "split", "merge"]
    assert merged["bin"] == "scrapped: BROKEN: broken or cracked"
    # every operation is an MES event in the outbox, valid against its schema
    payloads = [json.loads(p) for (p,) in rows(db, "SELECT payload FROM outbox ORDER BY id")]
    seen = {p["type"] for p in payloads}
    assert set(OPERATION_EVENTS) <= seen, seen
    for p in payloads:
        if p["type"] in OPERATION_EVENTS:
            assert list(Draft202012Validator(event_schema(p["type"])).iter_errors(p)) == []


# -- the MES ---------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def station(tmp_path: Path, recipes: Path) -> AsyncIterator[tuple[StationProcess, MesClient]]:
    require_broker()
    name = new_station()
    env = station_env(tmp_path, name, "mqtt://127.0.0.1:1883", FABLINE_RECIPES=str(recipes))
    args = ["--db", str(tmp_path / "st.db"), "--time-scale", "20000"]
    async with MesClient(1883, "site-1", name) as mes, StationProcess(env, args) as st:
        await mes.until(lambda: (mes.status() or {}).get("state") == "online")
        yield st, mes


def retained(mes: MesClient, lot_id: str) -> list[str]:
    """The states the station published retained for the lot, in order."""
    return [b["state"] for t, b in mes.received if t.endswith(f"/lots/{lot_id}/state")]


def types(mes: MesClient, lot_id: str) -> list[str]:
    return [e["type"] for e in mes.events(lot_id)]


async def test_lot_operations_as_mes_commands(station: tuple[StationProcess, MesClient]) -> None:
    st, mes = station

    async def ok(command: str, lot_id: str, **body: Any) -> str:
        reply = await mes.send(command, lot_id, **body)
        assert reply["status"] == "accepted", (reply, st.log[-3000:])
        return str(reply["reason"])

    async def refused(command: str, lot_id: str, **body: Any) -> str:
        reply = await mes.send(command, lot_id, **body)
        assert reply["status"] == "rejected", reply
        return str(reply["reason"])

    await ok("dispatch", "M1", recipe={"id": RECIPE}, inputs={"wafers": 3})
    await mes.until(lambda: "hold" in types(mes, "M1"), timeout=60)

    assert await ok("split", "M1", units=["M1-W02", "M1-W03"]) == (
        "lot M1: 2 unit(s) split into lot M1.1 (held, next step 11/22)"
    )
    await mes.until(lambda: "lot_split" in types(mes, "M1.1"))
    await mes.until(lambda: retained(mes, "M1.1")[-1:] == ["held"])  # as its parent
    assert await ok("merge", "M1", lots=["M1.1"]) == (
        "lot M1: merged M1.1 (2 unit(s)); held, next step 11/22"
    )
    await mes.until(lambda: "lot_merged_into" in types(mes, "M1.1"))
    assert types(mes, "M1")[-2:] == ["lot_merged", "operator_action"]

    # refusals: one reply each, nothing changed
    assert await refused("split", "M1", units=["M1-W09"]) == (
        "lot M1 has no active unit M1-W09 (its units: M1-W01, M1-W02, M1-W03)"
    )
    assert await refused("merge", "M1", lots=["M1.1"]) == (
        "lot M1.1 is merged: nothing to merge_into"
    )
    assert await refused("scrap", "M1", units=["M1-W01"]) == (
        "scrap of lot M1 needs a reason code (codes: BROKEN, DROPPED, CONTAMINATED, OOS,"
        " REWORK-LIMIT, TOOL-DAMAGE, ENG)"
    )
    assert await refused("rework", "NOPE", route="plate-recoat") == "no lot 'NOPE'"
    assert (await refused("split", "M1", units=[])).startswith("units: List should have")

    # rework two wafers as a child lot: it runs the loop at once and holds again
    reason = await ok(
        "rework", "M1", route="plate-recoat", units=["M1-W02", "M1-W03"], into="M1-RW",
        reason="CD 40 µm",
    )  # fmt: skip
    assert reason == (
        "lot M1-RW (split from M1: 2 unit(s)): rework route plate-recoat, queued at step 8/22"
        " plate-rework-strip"
    )
    await mes.until(lambda: types(mes, "M1-RW").count("hold") == 1, timeout=60)
    rw = mes.events("M1-RW")
    assert [e["type"] for e in rw[:3]] == ["lot_split", "lot_reworked", "operator_action"]
    # the steps it started, in order (each once per wafer: two jobs a step)
    started = [e["step_id"] for e in rw if e["type"] == "step_started"]
    assert list(dict.fromkeys(started)) == ["plate-rework-strip", "plate-resist", "plate-expose"]
    assert len(started) == 2 * 3
    assert rw[1]["data"]["reason"] == (
        "plating openings out of spec (CD, unopened) - strip the resist, recoat and expose"
        " again: CD 40 µm"
    )

    # scrap one wafer of the child, then the rest: the child is scrapped
    assert await ok("scrap", "M1-RW", units=["M1-W03"], code="BROKEN") == (
        "lot M1-RW: 1 unit(s) (BROKEN: broken or cracked)"
    )
    assert await ok("scrap", "M1-RW", code="OOS", reason="CD twice") == (
        "lot M1-RW: lot scrapped (OOS: CD twice)"
    )

    await mes.until(lambda: retained(mes, "M1-RW")[-1:] == ["scrapped"])
    for lot_id in ("M1", "M1.1", "M1-RW"):
        for e in mes.events(lot_id):
            if e["type"] in OPERATION_EVENTS:
                assert list(Draft202012Validator(event_schema(e["type"])).iter_errors(e)) == []
    seqs = [e["seq"] for e in mes.events("M1-RW")]
    assert seqs == list(range(1, len(seqs) + 1))
    # the reference client sends them too: a merge of a scrapped lot is rejected, exit 1
    code, out, _ = await fabline(
        "mes", "send", "merge", "--lot", "M1", "--merge", "M1-RW", "--station", mes.station,
        env=st.env,
    )  # fmt: skip
    reply = json.loads(out)
    assert (code, reply["status"], reply["reason"]) == (
        1, "rejected", "lot M1-RW is scrapped: nothing to merge_into"
    )  # fmt: skip
