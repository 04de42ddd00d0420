"""The MES hook with real brokers: every event delivered in order (through an outage and a
controller crash), commands answered once, the spool, and the event schemas."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator

from controller.engine import Engine, EngineSettings
from controller.events import EVENT_TYPES
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.mes.command_handler import CommandHandler
from controller.mes.commands import sign, unsigned_command
from controller.mes.config import MesConfig, mes_config
from controller.mes.hook import mes_hook
from controller.mes.relay import outbox_stats
from controller.mes.schema import event_schema
from controller.recipes import find
from drivers.registry import make_driver
from simulators.line import INSTANT, SimLine, default_line
from tests import lots
from tests.services import Mosquitto, require_broker

FABLINE = str(Path(sys.executable).with_name("fabline"))
RECONNECT_BACKOFF = 0.2  # seconds
VALIDATORS = {t: Draft202012Validator(event_schema(t)) for t in EVENT_TYPES}


class Subscriber:
    """An independent MES-side consumer (aiomqtt), reconnecting until stopped."""

    def __init__(self, port: int, topic: str, client_id: str | None = None) -> None:
        self.port, self.topic, self.client_id = port, topic, client_id
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        persistent = self.client_id is not None
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.client_id,
                    clean_session=not persistent,
                    timeout=5,
                ) as c:
                    await c.subscribe(self.topic, qos=1)
                    self.ready.set()
                    async for m in c.messages:
                        body = json.loads(bytes(m.payload))  # type: ignore[arg-type]
                        self.received.append((str(m.topic), body))
                        self._changed.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(RECONNECT_BACKOFF)  # broker down: retry, as an MES would

    async def until(self, done: Callable[[], bool], timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def events(self) -> list[dict[str, Any]]:
        """Events in arrival order, duplicates (same event id) dropped."""
        seen: set[str] = set()
        out = []
        for topic, body in self.received:
            if topic.endswith("/events") and body.get("event_id") not in seen:
                seen.add(body["event_id"])
                out.append(body)
        return out


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def instant_line() -> AsyncIterator[SimLine]:
    async with SimLine(default_line(), time_scale=INSTANT, seed=21) as line:
        yield line


def station_config(url: str | None, **kw: Any) -> MesConfig:
    return mes_config(url, station=f"t{secrets.token_hex(4)}", **kw)


async def make_engine(line: SimLine, db_path: Path, mes: MesConfig) -> Engine:
    db = Database(f"sqlite:///{db_path}")
    await asyncio.to_thread(db.migrate)
    engine = Engine(
        db,
        [make_driver(t) for t in line.describe().tools],
        EngineSettings(station=mes.station, auto_confirm=True),
    )
    await engine.connect()
    return engine


async def create(engine: Engine, recipe_id: str, lot_id: str, **inputs: int) -> None:
    await lots.create(engine, find(recipe_id), lot_id, **inputs)


def lot_events(engine: Engine, lot_id: str) -> list[dict[str, Any]]:
    return engine.db.run_sync(lambda s: store.lot_events(s, lot_id))


def assert_in_order(received: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
    lot = stored[0]["lot_id"]
    mine = [e for e in received if e.get("lot_id") == lot]
    assert [e["seq"] for e in mine] == list(range(1, len(stored) + 1))
    assert mine == stored  # every event, exactly as the database recorded it
    for e in mine:
        VALIDATORS[e["type"]].validate(e)


# -- events out ---------------------------------------------------------------------------


async def test_full_flow_every_event_arrives_in_order(
    instant_line: SimLine, tmp_path: Path
) -> None:
    require_broker()
    mes = station_config("mqtt://127.0.0.1:1883")
    engine = await make_engine(instant_line, tmp_path / "g.db", mes)
    async with Subscriber(1883, f"{mes.prefix}/#") as sub:
        async with mes_hook(engine.db, mes):
            await create(engine, "substrate-first-fc-003-1", "F1", strips=1)
            assert (await engine.run_lot("F1")).state == "completed"
        stored = lot_events(engine, "F1")
        assert {e["type"] for e in stored} >= {
            "lot_created",
            "track_in",
            "step_started",
            "step_completed",
            "track_out",
            "genealogy_merge",
            "genealogy_split",
            "genealogy_consume",
            "lot_completed",
        }
        await sub.until(
            lambda: len([e for e in sub.events() if e.get("lot_id") == "F1"]) >= len(stored)
        )
        assert_in_order(sub.events(), stored)
        assert (await engine.db.run(outbox_stats))["pending"] == 0
    # the lot's current state is retained for an MES that connects later
    async with Subscriber(1883, mes.lot_state("F1")) as late:
        await late.until(lambda: bool(late.received))
        assert late.received[0][1]["state"] == "completed"
    await engine.close()
    engine.db.close()


async def test_broker_outage_mid_lot_loses_nothing(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    mes = station_config(broker.url)
    async with SimLine(default_line(), time_scale=3e4, seed=4) as line:
        engine = await make_engine(line, tmp_path / "g.db", mes)
        try:
            async with Subscriber(broker.port, f"{mes.prefix}/lots/#", client_id="mes-sub") as sub:
                async with mes_hook(engine.db, mes, drain_timeout=30):
                    await create(engine, "stacked-wlp-000-11", "O1")
                    running = asyncio.create_task(engine.run_lot("O1"))
                    await sub.until(lambda: len(sub.events()) >= 10)
                    broker.stop()  # the broker dies mid-lot
                    assert (await running).state == "completed"  # the line does not care
                    pending = (await engine.db.run(outbox_stats))["pending"]
                    assert pending > 0  # events waited in the outbox
                    broker.start()  # back: the relay reconnects and drains in order
                    stored = lot_events(engine, "O1")
                    await sub.until(lambda: len(sub.events()) >= len(stored), timeout=60)
                assert_in_order(sub.events(), stored)
        finally:
            broker.stop()
            await engine.close()
            engine.db.close()


async def test_controller_killed_with_events_pending_next_start_delivers(tmp_path: Path) -> None:
    require_broker()
    station = f"t{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "FABLINE_HOME": str(tmp_path),
        "FABLINE_STATION": station,
        "FABLINE_LOG": "warning",
    }
    sim = await asyncio.create_subprocess_exec(
        FABLINE, "sim", "--json", "--time-scale", "100000", stdout=PIPE, env=env
    )
    try:
        assert sim.stdout is not None and await sim.stdout.readline()
        common = ["--line", str(tmp_path / "sim-line.json"), "--db", str(tmp_path / "k.db")]
        dead = "mqtt://127.0.0.1:1"  # the MES broker is unreachable while the lot runs
        run = await asyncio.create_subprocess_exec(
            FABLINE,
            "run",
            "substrate-first-fc-003-1",
            "--lot",
            "P1",
            "-i",
            "strips=1",
            *common,
            "--mqtt",
            dead,
            stdout=PIPE,
            env=env,
        )
        assert run.stdout is not None
        async for line in run.stdout:
            if b"step 6/" in line:
                run.send_signal(signal.SIGKILL)
                break
        await run.wait()
        db = Database(f"sqlite:///{tmp_path / 'k.db'}")
        before = await db.run(outbox_stats)
        assert before["pending"] > 0 and before["sent"] == 0
        mes = mes_config("mqtt://127.0.0.1:1883", station=station)
        async with Subscriber(1883, f"{mes.prefix}/lots/P1/events") as sub:
            resumed = await asyncio.create_subprocess_exec(
                FABLINE,
                "resume",
                "P1",
                *common,
                "--mqtt",
                "mqtt://127.0.0.1:1883",
                "--json",
                env=env,
                stdout=PIPE,
            )
            stdout, _ = await resumed.communicate()
            assert resumed.returncode == 0 and json.loads(stdout)["state"] == "completed"
            stored = await db.run(lambda s: store.lot_events(s, "P1"))
            await sub.until(lambda: len(sub.events()) >= len(stored))
        assert_in_order(sub.events(), stored)
        assert (await db.run(outbox_stats))["pending"] == 0
        db.close()
    finally:
        sim.send_signal(signal.SIGTERM)
        await sim.wait()


async def test_no_broker_spools_each_event_once_and_keeps_it_pending(
    instant_line: SimLine, tmp_path: Path
) -> None:
    mes = station_config(None, spool=str(tmp_path / "spool.jsonl"))
    engine = await make_engine(instant_line, tmp_path / "g.db", mes)
    async with mes_hook(engine.db, mes):
        await create(engine, "substrate-first-fc-003-1", "S1", strips=1)
        assert (await engine.run_lot("S1")).state == "completed"
    async with mes_hook(engine.db, mes):  # a second start spools nothing twice
        pass
    lines = [json.loads(line) for line in (tmp_path / "spool.jsonl").read_text().splitlines()]
    stored = lot_events(engine, "S1")
    spooled = [e for e in lines if e.get("lot_id") == "S1"]
    assert spooled == stored
    assert len({e["event_id"] for e in lines}) == len(lines)
    assert (await engine.db.run(outbox_stats))["sent"] == 0  # a broker added later gets them
    await engine.close()
    engine.db.close()


# -- commands in --------------------------------------------------------------------------


async def test_commands_dispatch_reject_and_answer_repeats_once(
    instant_line: SimLine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_broker()
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name in ("substrate-first-fc-003-1",):
        text = find(name).path.read_text()
        (recipes / f"{name}.yaml").write_text(text)
        draft = text.replace("id: substrate-first-fc-003-1", "id: draft-fc").replace(
            "status: approved", "status: draft"
        )
        (recipes / "draft-fc.yaml").write_text(draft)
    monkeypatch.setenv("FABLINE_RECIPES", str(recipes))
    mes = station_config("mqtt://127.0.0.1:1883")
    mes.clients["mes-1"] = "s3cret"
    engine = await make_engine(instant_line, tmp_path / "g.db", mes)
    runs: list[asyncio.Task[Any]] = []
    handler = CommandHandler(
        lots.service(engine), mes, lambda lot: runs.append(asyncio.create_task(engine.run_lot(lot)))
    )

    def signed(**body: Any) -> bytes:
        cmd = unsigned_command(client="mes-1", site=mes.site, station=mes.station, **body)
        return json.dumps(sign(cmd, "s3cret")).encode()

    dispatch = signed(
        command="dispatch",
        lot_id="C1",
        recipe={"id": "substrate-first-fc-003-1"},
        inputs={"strips": 1},
    )
    forged = json.loads(signed(command="hold", lot_id="C1"))
    forged["reason"] = "tampered after signing"
    cases: list[tuple[bytes, str, str]] = [
        (dispatch, "accepted", "lot C1 dispatched"),
        (dispatch, "accepted", "lot C1 dispatched"),  # the same command id: answered again
        (b"{not json", "rejected", "malformed JSON"),
        (
            json.dumps({"schema": "fabline.command/0", "command_id": "x"}).encode(),
            "rejected",
            "wrong schema version",
        ),
        (json.dumps(forged).encode(), "rejected", "not authorised"),
        (
            json.dumps(
                {**json.loads(signed(command="hold", lot_id="C1")), "client": "nobody"}
            ).encode(),
            "rejected",
            "not authorised",
        ),
        (
            signed(command="dispatch", lot_id="C2", recipe={"id": "nope"}),
            "rejected",
            "unknown recipe 'nope'",
        ),
        (
            signed(command="dispatch", lot_id="C3", recipe={"id": "draft-fc"}),
            "rejected",
            "not approved",
        ),
        (
            signed(command="dispatch", lot_id="C1", recipe={"id": "substrate-first-fc-003-1"}),
            "rejected",
            "lot C1 already exists",
        ),
        (
            signed(
                command="dispatch",
                lot_id="C4",
                recipe={"id": "substrate-first-fc-003-1"},
                options={"bump_alloy": "tin_lead"},
            ),
            "rejected",
            "impossible option combination",
        ),
        (signed(command="launch", lot_id="C1"), "rejected", "unknown command 'launch'"),
        (
            signed(
                command="dispatch",
                lot_id="C5",
                recipe={"id": "substrate-first-fc-003-1"},
                sort_yield=0.9,
            ),
            "rejected",
            "takes no wafers: a wafer-sort map has nowhere to go",
        ),
    ]
    async with (
        Subscriber(1883, mes.replies) as sub,
        mes_hook(engine.db, mes, commands=handler) as h,
    ):
        assert h.relay is not None
        await asyncio.wait_for(h.relay.subscribed.wait(), 10)  # an MES waits for "online"
        async with aiomqtt.Client("127.0.0.1", 1883) as mes_client:
            for raw, _, _ in cases:
                await mes_client.publish(mes.commands, raw, qos=1)
        await sub.until(lambda: len(sub.received) >= len(cases))
        replies = [body["data"] for _, body in sub.received]
        for (_, status, reason), reply in zip(cases, replies, strict=True):
            assert reply["status"] == status and reason in (reply["reason"] or ""), reply
        assert [r["repeat"] for r in replies[:2]] == [False, True]
        assert len(runs) == 1  # dispatched once
        assert (await runs[0]).state == "completed"
        # the station keeps serving: hold a finished lot is refused, a new dispatch works
        async with aiomqtt.Client("127.0.0.1", 1883) as mes_client:
            await mes_client.publish(mes.commands, signed(command="hold", lot_id="C1"), qos=1)
        await sub.until(lambda: len(sub.received) > len(cases))
        assert "completed: nothing to hold" in sub.received[-1][1]["data"]["reason"]
    await engine.close()
    engine.db.close()


def test_schema_export_and_status(tmp_path: Path) -> None:
    env = {**os.environ, "FABLINE_HOME": str(tmp_path)}
    r = subprocess.run(
        [FABLINE, "mes", "schema", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "s").glob("*.schema.json"))
    assert len(files) == len(EVENT_TYPES) + 1
    for f in files:
        Draft202012Validator.check_schema(json.loads(f.read_text()))
    r = subprocess.run(
        [FABLINE, "mes", "status", "--json", "--db", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["broker"] == {"configured": False} and status["pending"] == 0
