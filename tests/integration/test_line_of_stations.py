"""A line of several stations on one PostgreSQL database and one broker, each station its own
`fabline station` process: lots flow across the hand-over between areas; a standby takes
over from a killed station within its lease; a station paused past its lease is fenced off
and stands down; a station that loses the database stops driving; every step is recorded
once and every lot's events are numbered without a gap and reach the broker."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import psycopg
import yaml

from controller.lots.areas import Areas
from controller.recipes import find
from tests.services import fresh_postgres, require_broker
from tests.station import FABLINE, SECRET, MesClient

T = TypeVar("T")

AREAS = {
    "bumping": ["sputter", "litho", "plating", "coater", "ball", "clean"],
    "assembly": ["bonder", "grinder", "mold", "dicing", "wirebonder"],
}
ONE_AREA = {"line": [k for kinds in AREAS.values() for k in kinds]}
LEASE_S = 2.0  # short, so take-overs happen within a test
TIME_SCALE = 16000  # simulated seconds per real second: a fcbga lot (28 boats) in ~20 s
LOTS = {  # lot -> (recipe, inputs); no external steps (a line file confirms none itself)
    "X1": ("fcbga-thermal-001-19", {"wafers": 1, "panels": 1}),
    "X2": ("wlcsp-002-42", {"wafers": 1}),
    "X3": ("fcbga-thermal-001-19", {"wafers": 1, "panels": 1}),
}


def _env(home: Path) -> dict[str, str]:
    e = {**os.environ, "FABLINE_HOME": str(home), "FABLINE_LOG": "info",
         "FABLINE_MES_CLIENTS": f"mes={SECRET}"}  # fmt: skip
    for k in ("FABLINE_MQTT_URL", "FABLINE_DATABASE_URL", "FABLINE_STATION", "FABLINE_LINE"):
        e.pop(k, None)
    return e


@dataclass
class StationProc:
    name: str
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "".join(self.output)


@dataclass
class Line:
    """A simulated line in its own process, a fresh PostgreSQL database, the broker, and the
    stations started on them."""

    home: Path
    db: str
    site: str
    areas: dict[str, list[str]]
    tools: dict[str, Path]  # area -> its line file
    stations: dict[str, StationProc] = field(default_factory=dict)

    def start(self, name: str, area: str, *, standby: bool = False) -> StationProc:
        config = self.home / f"{name}.yaml"
        config.write_text(yaml.safe_dump({
            "station": name, "site": self.site, "line": str(self.tools[area]),
            "database": self.db, "mqtt": "mqtt://127.0.0.1:1883",
            "http": {"bind": "127.0.0.1:0"}, "monitor_interval": 0.5, "retry_budget": 5,
            "area": area, "standby": standby, "areas": self.areas, "lease_ttl": LEASE_S,
        }))  # fmt: skip
        proc = subprocess.Popen([FABLINE, "station", "--config", str(config)],
                                env=_env(self.home), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
        st = StationProc(name, proc)
        started = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                st.output.append(line)
                if " on http" in line:
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        assert started.wait(60) and proc.poll() is None, f"{name} did not start:\n{st.log}"
        self.stations[name] = st
        return st

    def stop_all(self) -> None:
        for st in self.stations.values():
            if st.proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.kill(st.proc.pid, signal.SIGCONT)
                st.proc.terminate()
        for st in self.stations.values():
            try:
                st.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                st.proc.kill()
                st.proc.wait()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db.replace("+psycopg", ""), autocommit=True) as c:
            return c.execute(sql, args).fetchall()  # type: ignore[arg-type]


@contextmanager
def line_of_stations(tmp: Path, areas: dict[str, list[str]]) -> Iterator[Line]:
    require_broker()
    home = tmp / "home"
    home.mkdir()
    sim = subprocess.Popen([FABLINE, "sim", "--json", "--time-scale", str(TIME_SCALE),
                            "--seed", "5"], env=_env(home), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # the running line, once every tool listens
        every = json.loads((home / "sim-line.json").read_text())
        tools = {}
        for area, kinds in areas.items():  # each area's station drives the area's tools
            mine = dict(every, line=area, tools=[t for t in every["tools"] if t["kind"] in kinds])
            tools[area] = home / f"line-{area}.json"
            tools[area].write_text(json.dumps(mine))
        with fresh_postgres() as db:
            line = Line(home, db, f"s{secrets.token_hex(3)}", areas, tools)
            try:
                yield line
            finally:
                line.stop_all()
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def until(
    what: Callable[[], T], timeout: float = 120, every: float = 0.2, line: Line | None = None
) -> T:
    """`what()` once it is true; past the timeout, a failure showing the line's lots."""
    deadline = time.monotonic() + timeout
    while not (got := what()):
        if time.monotonic() > deadline:
            lots = line.query(LOTS_SEEN) if line is not None else "?"
            raise AssertionError(f"timed out after {timeout:g} s; lots: {lots}")
        time.sleep(every)
    return got


LOTS_SEEN = (
    "SELECT id, state, next_step, owner, lease_epoch, lease_expires > now(), hold_reason"
    " FROM lot ORDER BY id"
)


async def dispatch(line: Line, station: str) -> None:
    async with MesClient(1883, line.site, station) as mes:
        for lot, (recipe, inputs) in LOTS.items():
            reply = await mes.send("dispatch", lot, recipe={"id": recipe}, inputs=inputs)
            assert reply["status"] == "accepted", reply


class Events:
    """Every lot event the broker delivers, from any station of the site (collected in a
    thread of its own; the message loop is never cancelled mid-message)."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.got: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with aiomqtt.Client("127.0.0.1", 1883) as c:
            await c.subscribe(f"fabline/v1/{self.site}/+/lots/+/events", qos=1)
            self.ready.set()

            async def collect() -> None:
                async for m in c.messages:
                    self.got.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]

            task = asyncio.create_task(collect())
            await self._stop.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def __enter__(self) -> Events:
        self._thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def of(self, lot: str) -> dict[str, dict[str, Any]]:
        return {e["event_id"]: e for e in list(self.got) if e.get("lot_id") == lot}


def all_completed(line: Line, timeout: float = 240) -> None:
    """Every lot completes; on a timeout, the lots and leases as the database has them."""
    try:
        until(lambda: line.query(
            "SELECT count(*) FROM lot WHERE state = 'completed' HAVING count(*) = %s",
            len(LOTS)), timeout=timeout)  # fmt: skip
    except AssertionError:
        print(line.query("SELECT id, state, owner, station, lease_epoch, lease_expires FROM lot"))
        print(line.query("SELECT name, station, holder, epoch, expires FROM lease"))
        for st in line.stations.values():
            print(f"--- {st.name} (exit {st.proc.poll()}):\n{st.log[-6000:]}")
        raise


async def release_lost_jobs(line: Line, station: str) -> None:
    """Once every lot has completed or held: release those held because the tool had no
    record of their job (stopped between a step's intent and its send, the job never went
    out; an engineer checks the material and releases), through the MES to `station`."""
    until(lambda: line.query(
        "SELECT count(*) FROM lot WHERE state IN ('completed', 'held') HAVING count(*) = %s",
        len(LOTS)), timeout=240, line=line)  # fmt: skip
    held = line.query("SELECT id, hold_kind FROM lot WHERE state = 'held'")
    assert all(kind == "lost_job" for _, kind in held), line.query(LOTS_SEEN)
    async with MesClient(1883, line.site, station) as mes:
        for lot, _ in held:
            reply = await mes.send("release", lot, reason="engineer checked: never sent")
            assert reply["status"] == "accepted", reply


def check_lot(line: Line, lot: str, events: Events, hand_overs: int | None = None) -> None:
    """Completed; each step run once; its events numbered 1..n, each published."""
    recipe = LOTS[lot][0]
    [(state, seq)] = line.query("SELECT state, event_seq FROM lot WHERE id = %s", lot)
    assert state == "completed", (lot, state)
    runs = line.query(
        "SELECT step_index, piece, state FROM step_run WHERE lot_id = %s ORDER BY id", lot
    )
    done = [(i, p) for i, p, s in runs if s == "done"]
    expected = [s.index for s in find(recipe).expand({}).steps if not s.rework]
    assert sorted({i for i, _ in done}) == expected, (lot, runs)  # every step ran
    assert len(set(done)) == len(done), (lot, runs)  # none twice: each piece's job once
    rows = line.query(
        "SELECT seq, event_id, sent_at IS NOT NULL, type FROM outbox WHERE lot_id = %s"
        " AND seq IS NOT NULL ORDER BY seq", lot,
    )  # fmt: skip
    assert [r[0] for r in rows] == list(range(1, seq + 1)), lot  # contiguous, no repeat
    until(lambda: all(r[2] for r in line.query(
        "SELECT seq, event_id, sent_at IS NOT NULL FROM outbox WHERE lot_id = %s", lot)),
        timeout=60)  # fmt: skip
    published = until(lambda: (got := events.of(lot)) and len(got) >= len(rows) and got, 60)
    assert {r[1] for r in rows} <= set(published), lot  # every event reached the broker
    if hand_overs is not None:
        assert [r[3] for r in rows].count("lot_handed_over") == hand_overs, lot


def _hand_overs(recipe: str, areas: dict[str, list[str]]) -> int:
    line_areas, steps = Areas.parse(areas), find(recipe).expand({}).steps
    area, n = line_areas.first(steps), 0
    for i in range(1, len(steps)):
        nxt = line_areas.at(steps, i, area)
        n, area = n + (nxt != area), nxt
    return n


def _running_on(line: Line, kinds: list[str]) -> tuple[str, int] | None:
    """A lot with a job running on a tool of these kinds now: (lot, its lease epoch)."""
    rows = line.query(
        "SELECT r.lot_id, l.lease_epoch FROM step_run r JOIN lot l ON l.id = r.lot_id"
        " WHERE r.state = 'started' AND r.tool_kind = ANY(%s)", kinds,
    )  # fmt: skip
    return rows[0] if rows else None


async def test_lots_cross_areas_and_a_standby_takes_over_a_killed_station(
    tmp_path: Path,
) -> None:
    with line_of_stations(tmp_path, AREAS) as line, Events(line.site) as events:
        line.start("st-bump", "bumping")
        active = line.start("st-asm", "assembly")
        until(lambda: line.query("SELECT station FROM lease WHERE name = 'area:assembly'"))
        line.start("st-asm-sb", "assembly", standby=True)
        await dispatch(line, "st-bump")
        lot, epoch = until(lambda: _running_on(line, AREAS["assembly"]), timeout=180)
        killed = time.monotonic()
        active.proc.kill()  # SIGKILL, mid-step
        active.proc.wait()
        until(
            lambda: line.query(
                "SELECT 1 FROM lease WHERE name = 'area:assembly' AND station = 'st-asm-sb'"
            )
        )
        area_s = time.monotonic() - killed
        until(lambda: line.query(
            "SELECT 1 FROM lot WHERE id = %s AND (lease_epoch > %s OR state = 'completed')",
            lot, epoch))  # fmt: skip
        lot_s = time.monotonic() - killed
        all_completed(line)
        for name, (recipe, _) in LOTS.items():
            check_lot(line, name, events, _hand_overs(recipe, AREAS))
        after = line.query(
            "SELECT DISTINCT payload->>'station' FROM outbox WHERE lot_id = %s AND seq >"
            " (SELECT min(seq) FROM outbox WHERE lot_id = %s AND type = 'step_completed'"
            "  AND payload->>'station' = 'st-asm-sb')", lot, lot,
        )  # fmt: skip
        assert ("st-asm",) not in after  # the dead station wrote nothing after the take-over
        print(f"take-over after SIGKILL: area {area_s:.1f} s, lot {lot_s:.1f} s"
              f" (lease {LEASE_S:g} s)")  # fmt: skip
        assert area_s < LEASE_S + 5  # well within a lease and a few beats


async def test_a_station_paused_past_its_lease_is_fenced_off_and_stands_down(
    tmp_path: Path,
) -> None:
    with line_of_stations(tmp_path, ONE_AREA) as line, Events(line.site) as events:
        paused = line.start("st-a", "line")
        until(lambda: line.query("SELECT station FROM lease WHERE name = 'area:line'"))
        line.start("st-b", "line", standby=True)
        await dispatch(line, "st-a")
        until(lambda: _running_on(line, ONE_AREA["line"]), timeout=120)
        os.kill(paused.proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            # the lots it had not finished when it stopped (the one seen running may have
            # completed in between): one of them is taken over
            left = dict(line.query("SELECT id, lease_epoch FROM lot WHERE state = 'running'"))
            assert left, "every lot completed before the station was stopped"
            ((lot,),) = until(
                lambda: line.query(
                    "SELECT id FROM lot WHERE id = ANY(%s) AND lease_epoch >"
                    " (%s::jsonb ->> id)::int LIMIT 1", list(left), json.dumps(left),
                ),
                line=line,
            )  # fmt: skip
            # alive but silent: the standby waits the lease out (as for a host cut off)
            print(f"take-over after SIGSTOP: lot {time.monotonic() - stopped:.1f} s"
                  f" (lease {LEASE_S:g} s)")  # fmt: skip
            await asyncio.sleep(LEASE_S)  # the new owner drives on meanwhile
        finally:
            os.kill(paused.proc.pid, signal.SIGCONT)
        until(lambda: "station.stood_down" in paused.log, timeout=30)
        await release_lost_jobs(line, "st-b")
        all_completed(line)
        for name in LOTS:
            check_lot(line, name, events)
        late = line.query(
            "SELECT count(*) FROM outbox WHERE lot_id = %s AND payload->>'station' = 'st-a'"
            " AND seq > (SELECT min(seq) FROM outbox WHERE lot_id = %s"
            "  AND payload->>'station' = 'st-b')", lot, lot,
        )  # fmt: skip
        assert late == [(0,)]  # nothing of st-a's after st-b took the lot
        assert paused.proc.poll() is None  # it stood down; it did not crash


async def test_a_station_that_loses_the_database_stops_driving(tmp_path: Path) -> None:
    with line_of_stations(tmp_path, ONE_AREA) as line, Events(line.site) as events:
        st = line.start("st-a", "line")
        await dispatch(line, "st-a")
        until(lambda: _running_on(line, ONE_AREA["line"]), timeout=120)
        name = line.db.rsplit("/", 1)[1]
        admin = psycopg.connect(line.db.rsplit("/", 1)[0] + "/test", autocommit=True)
        try:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s", (name,))  # fmt: skip
            try:
                until(lambda: "station.database_lost" in st.log, timeout=LEASE_S * 3 + 30)
            except AssertionError:
                print("".join(x for x in st.output if x[:2] == "20" or " in " in x))
                raise
        finally:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
            admin.close()
        all_completed(line)
        for lot in LOTS:
            check_lot(line, lot, events)
        assert st.proc.poll() is None


def test_areas_on_sqlite_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "st.yaml"
    config.write_text(yaml.safe_dump({
        "station": "st-a", "database": f"sqlite:///{tmp_path / 'f.db'}", "area": "line",
        "areas": ONE_AREA, "http": {"bind": "127.0.0.1:0"},
    }))  # fmt: skip
    done = subprocess.run([FABLINE, "station", "--config", str(config)], capture_output=True,
                          text=True, env=_env(tmp_path), timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: areas and standby stations make a line of several stations, which needs"
        " PostgreSQL (database_url postgresql://...); SQLite serves one station"
    )
