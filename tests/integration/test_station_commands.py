"""A station process on a real broker, driven from outside as an MES and an operator would:
every payload answered once and the station never deaf; MES hold and abort obeyed as the
terminal's are; a second process beside the station never takes its MQTT session or its
lots; signed commands bound to their station and their time. (Reliability issue, items 1,
2, 3, 5 and 6.)"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from controller.mes.commands import sign, unsigned_command
from controller.recipes import find
from drivers.interface import JobState
from drivers.line import load_line
from drivers.registry import make_driver
from tests.services import Mosquitto, require_broker
from tests.station import (
    FABLINE,
    SECRET,
    MesClient,
    StationProcess,
    fabline,
    new_station,
    station_env,
)

RECIPE = "substrate-first-fc-003-1"  # tool steps only, no external step
STEPS = sum(not s.rework for s in find(RECIPE).expand({}).steps)  # steps run without rework


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


@pytest_asyncio.fixture(loop_scope="session")
async def station(tmp_path: Path) -> AsyncIterator[tuple[StationProcess, MesClient]]:
    """A station on the embedded line (a lot of RECIPE in ~7 s, its 8 h cures ~1.4 s each)
    and an MES client."""
    require_broker()
    name = new_station()
    env = station_env(tmp_path, name, "mqtt://127.0.0.1:1883")
    args = ["--db", str(tmp_path / "st.db"), "--time-scale", "20000"]
    async with MesClient(1883, "site-1", name) as mes, StationProcess(env, args) as st:
        await mes.until(lambda: (mes.status() or {}).get("state") == "online")
        yield st, mes


# -- 1. every payload answered once; the station never goes deaf --------------------------


async def test_bad_payloads_each_get_one_reply_and_the_station_keeps_serving(
    station: tuple[StationProcess, MesClient],
) -> None:
    st, mes = station

    def signed(**fields: Any) -> dict[str, Any]:
        body = unsigned_command(
            client="mes", site=mes.site, station=mes.station, command="dispatch", **fields
        )
        return sign(body, SECRET)

    recipe = {"id": RECIPE}
    typed = [  # signed, so only the field type is wrong
        (signed(lot_id="B1", recipe=recipe, priority="abc"), "priority"),
        (signed(lot_id="B2", recipe=recipe, priority=1e300), "priority"),
        (signed(lot_id="B3", recipe=recipe, priority=[1]), "priority"),
        (signed(lot_id="B4", recipe=recipe, inputs=[1, 2]), "inputs"),
        (signed(lot_id="B5", recipe=recipe, inputs="strips"), "inputs"),
        (signed(lot_id="B6", recipe=recipe, options={"x": "y" * 1_000_000}), "larger than"),
        (signed(lot_id="B7", recipe="not-an-object"), "recipe"),
        (signed(lot_id="-3", recipe=recipe), "lot_id"),
        (signed(lot_id="B8", recipe=recipe, inputs={"strips": -3}), "inputs"),
        (signed(lot_id="B9", recipe=recipe, inputs={"strips": ["-3"]}), "inputs"),
    ]
    unparsable: list[tuple[bytes, str]] = [
        (b"[" * 4096, "nested too deeply"),
        (b"{" * 50_000, "nested too deeply"),
        (b"\xff\xfe garbage", "malformed JSON"),
        (b"", "malformed JSON"),
        (b"[1, 2]", "not an object"),
        (b" " * 70_000, "larger than 64 KiB"),
    ]
    for raw, _ in unparsable:
        await mes.publish(raw)
    for cmd, _ in typed:
        await mes.publish(cmd)
    ids = [cmd["command_id"] for cmd, _ in typed]
    named = [i for i, (_, field) in zip(ids, typed, strict=True) if field != "larger than"]
    # the station answers every one of them, then still takes a good command
    try:
        await mes.until(lambda: all(i in mes.replies for i in named))
    except TimeoutError:
        raise AssertionError(f"{mes.replies}\n{st.log[-3000:]}") from None
    nameless = lambda: [  # noqa: E731
        b["data"]
        for t, b in mes.received
        if t.endswith("/replies") and b["data"]["command_id"] is None
    ]
    await mes.until(lambda: len(nameless()) >= len(unparsable))
    for (_, field), ident in zip(typed, ids, strict=True):
        if field == "larger than":  # too big to parse: answered without a command id
            continue
        reply = mes.replies[ident]
        assert reply["status"] == "rejected" and field in reply["reason"], reply
        assert len(reply["reason"]) < 400
    reasons = sorted(r["reason"] for r in nameless())
    for _, expected in unparsable:
        assert any(expected in r for r in reasons), (expected, reasons)
    good = await mes.send("dispatch", "G1", recipe=recipe, inputs={"strips": 1})
    assert good["status"] == "accepted", good
    await mes.until(lambda: "lot_completed" in types(mes.events("G1")), timeout=60)
    # exactly one reply per payload: nothing answered twice
    replies = [b["data"] for t, b in mes.received if t.endswith("/replies")]
    assert len(replies) == len(typed) + len(unparsable) + 1
    assert mes.status()["state"] == "online"
    assert "Traceback" not in st.log


async def test_a_lost_broker_session_reconnects_and_says_online_again(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    name = new_station()
    env = station_env(tmp_path, name, broker.url)
    try:
        async with StationProcess(env, ["--db", str(tmp_path / "st.db")]) as st:
            async with MesClient(broker.port, "site-1", name) as mes:
                await mes.until(lambda: (mes.status() or {}).get("state") == "online")
            broker.stop(signal.SIGKILL)  # the session dies without a goodbye
            broker.start()
            async with MesClient(broker.port, "site-1", name) as mes:
                await mes.until(lambda: (mes.status() or {}).get("state") == "online", 30)
                reply = await mes.send("hold", "NO-SUCH")
                assert reply["status"] == "rejected" and "no lot" in reply["reason"]
            assert st.proc is not None and st.proc.returncode is None
    finally:
        broker.stop()


# -- 2. MES hold between steps, then release ------------------------------------------------


async def test_mes_hold_takes_effect_between_steps_and_release_runs_on(
    station: tuple[StationProcess, MesClient],
) -> None:
    st, mes = station
    reply = await mes.send("dispatch", "H1", recipe={"id": RECIPE}, inputs={"strips": 1})
    assert reply["status"] == "accepted", reply
    await mes.until(lambda: "track_in" in types(mes.events("H1")))
    held = await mes.send("hold", "H1", reason="SPC excursion on bumps")
    assert held["status"] == "accepted" and "between steps" in held["reason"], held
    await mes.until(lambda: "hold" in types(mes.events("H1")))
    await asyncio.sleep(0)  # nothing may follow the hold: check what the broker has now
    events = mes.events("H1")
    after = types(events)[types(events).index("hold") :]
    assert after == ["hold"], after
    hold = events[types(events).index("hold")]
    assert hold["data"] == {"reason": "SPC excursion on bumps", "kind": "mes"}
    assert types(events).count("track_in") == types(events).count("track_out")
    # the hold's kind in every view of the lot: a page or the MES can filter on it
    db = st.args[st.args.index("--db") + 1]
    code, out, err = await fabline("lots", "--state", "held", "--json", "--db", db, env=st.env)
    assert code == 0, err
    assert [(x["lot"], x["hold_kind"]) for x in json.loads(out)] == [("H1", "mes")]
    code, out, err = await fabline("lot", "show", "H1", "--json", "--db", db, env=st.env)
    shown = json.loads(out)
    assert shown["hold_kind"] == "mes" and shown["hold_reason"] == "SPC excursion on bumps"
    retained = [b for t, b in mes.received if t == f"{mes.prefix}/lots/H1/state"]
    assert retained[-1]["state"] == "held" and retained[-1]["kind"] == "mes"
    released = await mes.send("release", "H1", reason="engineer checked")
    assert released["status"] == "accepted", released
    await mes.until(lambda: "lot_completed" in types(mes.events("H1")), timeout=60)
    done = mes.events("H1")
    assert types(done).count("track_in") == STEPS  # every step once, none twice


# -- 3. abort stops the tool's job through every front door, keeping the reason -------------


async def test_abort_stops_the_running_job_from_the_mes_and_the_terminal(tmp_path: Path) -> None:
    require_broker()
    name = new_station()
    env = station_env(tmp_path, name, "mqtt://127.0.0.1:1883")
    sim = await asyncio.create_subprocess_exec(
        FABLINE, "sim", "--json", "--time-scale", "8000", stdout=asyncio.subprocess.PIPE, env=env
    )
    assert sim.stdout is not None and json.loads(await sim.stdout.readline())["tools"]
    line_file = tmp_path / "sim-line.json"
    db = str(tmp_path / "st.db")
    try:
        async with (
            MesClient(1883, "site-1", name) as mes,
            StationProcess(env, ["--db", db, "--line", str(line_file)]),
        ):
            await mes.until(lambda: (mes.status() or {}).get("state") == "online")

            async def abort_in_cure(lot: str, abort: Any) -> tuple[str, dict[str, Any]]:
                reply = await mes.send("dispatch", lot, recipe={"id": RECIPE}, inputs={"strips": 1})
                assert reply["status"] == "accepted", reply

                def cure() -> dict[str, Any] | None:
                    ins = [e for e in mes.events(lot) if e["type"] == "track_in"]
                    return next(
                        (e for e in ins if e["data"]["operation"] == "post_mold_cure"), None
                    )

                await mes.until(lambda: cure() is not None, timeout=60)
                track_in = cure()
                assert track_in is not None
                await abort()
                await mes.until(lambda: "abort" in types(mes.events(lot)), timeout=30)
                ev = next(e for e in mes.events(lot) if e["type"] == "abort")
                return track_in["data"]["job_id"], ev

            async def mes_abort() -> None:
                r = await mes.send("abort", "A1", reason="wrong strip loaded")
                assert r["status"] == "accepted", r

            async def cli_abort() -> None:
                code, _, err = await fabline(
                    "abort", "A2", "--reason", "operator: smoke alarm", "--db", db, env=env
                )
                assert code == 0, err

            mold = make_driver(load_line(line_file).tool("MOLD-1"))
            await mold.connect()
            try:
                for lot, abort, reason in (
                    ("A1", mes_abort, "wrong strip loaded"),
                    ("A2", cli_abort, "operator: smoke alarm"),
                ):
                    job_id, ev = await abort_in_cure(lot, abort)
                    assert ev["data"]["reason"].startswith(reason), ev
                    assert f"job {job_id} stopped on MOLD-1" in ev["data"]["reason"]
                    assert (await mold.job_progress(job_id)).state is JobState.ABORTED
                    _, out, _ = await fabline("lot", "show", lot, "--json", "--db", db, env=env)
                    shown = json.loads(out)
                    assert shown["state"] == "aborted"
                    assert shown["hold_reason"].startswith(reason)
                    assert shown["hold_kind"] == ("mes" if lot == "A1" else "operator")
                    assert ev["data"]["kind"] == shown["hold_kind"]
            finally:
                await mold.close()
    finally:
        sim.send_signal(signal.SIGTERM)
        await sim.wait()


# -- 5. a second process beside the station ---------------------------------------------------


async def test_a_run_beside_the_station_never_takes_its_session(
    station: tuple[StationProcess, MesClient], tmp_path: Path
) -> None:
    st, mes = station
    env = {**st.env, "FABLINE_HOME": str(tmp_path / "other")}
    run = asyncio.create_task(
        fabline(
            "run", RECIPE, "--lot", "R1", "-i", "strips=1", "--time-scale", "20000",
            "--db", str(tmp_path / "other.db"), env=env,
        )
    )  # fmt: skip
    # the run publishes its lot's events under the same station name: its relay is on
    await mes.until(lambda: "track_in" in types(mes.events("R1")), timeout=60)
    sent = [mes.command("hold", f"NOPE{i}") for i in range(20)]
    for cmd in sent:
        await mes.publish(cmd)
    code, _, err = await run
    assert code == 0, err
    await mes.until(lambda: all(c["command_id"] in mes.replies for c in sent), timeout=30)
    assert all(mes.replies[c["command_id"]]["status"] == "rejected" for c in sent)
    assert mes.status()["state"] == "online"  # the run did not say the station went away
    offline = [b for t, b in mes.received if t.endswith("/status") and b["state"] == "offline"]
    assert offline == []


async def test_terminal_release_and_resume_go_to_the_running_station(
    station: tuple[StationProcess, MesClient],
) -> None:
    st, mes = station
    db = st.args[st.args.index("--db") + 1]
    reply = await mes.send("dispatch", "T1", recipe={"id": RECIPE}, inputs={"strips": 1})
    assert reply["status"] == "accepted"
    await mes.until(lambda: "track_in" in types(mes.events("T1")))
    code, _, err = await fabline("hold", "T1", "--reason", "operator check", "--db", db, env=st.env)
    assert code == 0, err
    await mes.until(lambda: "hold" in types(mes.events("T1")), timeout=30)
    code, out, err = await fabline("release", "T1", "--db", db, env=st.env)
    assert code == 0, err
    # resume on the terminal follows the lot the station runs; it starts no controller
    code, out, err = await fabline("resume", "T1", "--db", db, "--json", env=st.env)
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["state"] == "completed"
    events = mes.events("T1")
    assert types(events).count("track_in") == STEPS
    assert {e["station"] for e in events} == {mes.station}
    assert "Traceback" not in st.log


async def test_a_second_station_process_of_the_same_name_refuses_to_start(
    station: tuple[StationProcess, MesClient],
) -> None:
    st, _ = station
    env = {**st.env, "FABLINE_LOG": "warning"}
    code, _, err = await fabline("mes", "serve", *st.args, env=env, timeout=60)
    assert code == 6, err  # conflict
    assert err.count("\n") == 1 and "already running" in err


# -- 6. a signed command is bound to its station and its time ----------------------------------


async def test_commands_for_another_station_or_too_old_are_rejected(
    station: tuple[StationProcess, MesClient],
) -> None:
    _, mes = station
    elsewhere = sign(
        unsigned_command(
            client="mes", site=mes.site, station="other-station", command="hold", lot_id="X1"
        ),
        SECRET,
    )
    old = unsigned_command(
        client="mes", site=mes.site, station=mes.station, command="hold", lot_id="X1"
    )
    old["issued_at"] = "2026-01-01T00:00:00Z"
    future = {**old, "command_id": "f-1", "issued_at": "2999-01-01T00:00:00Z"}
    v1 = {**old, "schema": "fabline.command/1", "command_id": "v1-1"}
    cases = [
        (elsewhere, "this is"),
        (sign(old, SECRET), "stale command"),
        (sign(future, SECRET), "in the future"),
        (sign(v1, SECRET), "fabline.command/2"),
    ]
    for cmd, _ in cases:
        await mes.publish(cmd)
    await mes.until(lambda: all(c["command_id"] in mes.replies for c, _ in cases[1:]))
    for cmd, expected in cases[1:]:
        reply = mes.replies[cmd["command_id"]]
        assert reply["status"] == "rejected" and expected in reply["reason"], reply
    # the command for the other station got no execution here, only a rejection
    await mes.until(lambda: elsewhere["command_id"] in mes.replies)
    assert "other-station" in mes.replies[elsewhere["command_id"]]["reason"]
    # the same command, tampered to name this station, fails its signature
    tampered = {**elsewhere, "station": mes.station, "command_id": "t-1"}
    await mes.publish(tampered)
    await mes.until(lambda: "t-1" in mes.replies)
    assert mes.replies["t-1"]["reason"] == "not authorised"
