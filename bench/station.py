"""The station's page, API and live stream under load, each beside its raw path, in one run.

    .venv/bin/python bench/station.py [--tools 200] [--lots 10000] [--clients 50]
                                      [--requests 2000] [--events 200]

Set-up: a `fabline sim` line of `--tools` simulated tools (every kind, round robin) and an
SQLite database holding `--lots` lots (most completed, a few hundred held with their step
runs and events, so the queue is full), then `fabline station --config` on both, as a user
would run it. Measured from this process over loopback:

- page and API latency (p50, p95) and throughput with `--clients` concurrent clients sharing
  `--requests` requests: `/` (the operator page: 200 tiles and the lot queue),
  `/api/lots` (the queue) and `/api/tools`; beside it the raw path: the same queries straight
  on the database (sqlite3, no HTTP, no ORM), one at a time;
- event-to-browser latency of the live stream, with `--clients` pages connected: from an
  operator's action (POST, the event written and the feed woken in the station) to its
  event arriving on a page's stream, and from an event another process writes into the
  outbox (found by the feed's poll) to its arrival; beside it a bare SSE endpoint (uvicorn +
  starlette, a queue per client, no database) measured the same way: POST, then receipt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
FABLINE = str(Path(sys.executable).with_name("fabline"))
KINDS = ["sputter", "plating", "coater", "litho", "bonder", "dicing", "ball", "mold", "grinder",
         "wirebonder"]  # fmt: skip
USER, PASSWORD = "bench", "bench-password"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1e3:7.2f} ms  p95 {pct(values, 95) * 1e3:7.2f} ms"


# -- set-up ------------------------------------------------------------------------------------


def env(home: Path) -> dict[str, str]:
    e = {**os.environ, "FABLINE_HOME": str(home), "FABLINE_LOG": "warning"}
    for k in ("FABLINE_MQTT_URL", "FABLINE_DATABASE_URL", "FABLINE_STATION"):
        e.pop(k, None)
    return e


def start_sim(home: Path, tools: int) -> tuple[subprocess.Popen[str], Path]:
    kinds = [KINDS[i % len(KINDS)] for i in range(tools)]
    spec = {
        "line": "bench",
        "tools": [
            {"id": f"{k[:5].upper()}-{i // len(KINDS) + 1}", "kind": k} for i, k in enumerate(kinds)
        ],
    }
    path = home / "bench-line.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = subprocess.Popen(
        [FABLINE, "sim", "--line", str(path), "--json", "--time-scale", "1e4"],
        env=env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # printed once every tool listens
    return proc, home / "sim-line.json"


def fill_database(db: Path, lots: int) -> None:
    """`lots` lots straight into the schema: 97 % completed, 3 % held (each with its last
    step run and a few events), so the queue has real rows behind it."""
    from controller.genealogy.db import Database

    d = Database(f"sqlite:///{db}")
    d.migrate()
    d.close()
    now = datetime.now(UTC)
    c = sqlite3.connect(db)
    c.execute(
        "INSERT INTO recipe_version VALUES ('benchhash', 'wlcsp-002-42', 1, 'approved', 'x', ?)",
        (now.isoformat(),),
    )
    held = max(1, lots * 3 // 100)
    rows, runs, events = [], [], []
    for i in range(lots):
        lot = f"B{i:05d}"
        state = "held" if i < held else "completed"
        when = (now - timedelta(minutes=lots - i)).isoformat()
        rows.append((lot, "wlcsp-002-42", 1, "benchhash", "{}", state,
                     "QA-SUSPECT: bench" if state == "held" else None,
                     "operator" if state == "held" else None, i % 7, 5 if state == "held" else 20,
                     20, "archive", None, None, None, None, 3, "{}", when, when,
                     "QA-SUSPECT" if state == "held" else None))  # fmt: skip
        if state == "held":
            runs.append((lot, 5, "plate-cu", 1, "tool", "PLATI-1", "plating", "plate",
                         f"{lot}-5#0001", "wlcsp-002-42", "benchhash", "done", "{}", "{}", None,
                         when, when))  # fmt: skip
            for seq in (1, 2, 3):
                payload = {
                    "type": "hold", "lot_id": lot, "seq": seq, "event_id": str(uuid.uuid4()),
                    "data": {"reason": "bench", "kind": "operator"}, "time": when,
                }  # fmt: skip
                events.append(
                    (payload["event_id"], lot, seq, "hold", json.dumps(payload), when, when)
                )
    c.executemany(
        "INSERT INTO lot (id, recipe_id, recipe_version, recipe_hash, options, state, hold_reason,"
        " hold_kind, priority, next_step, step_count, station, owner, request, request_reason,"
        " request_kind, event_seq, supplies, created_at, updated_at, hold_code)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)  # fmt: skip
    c.executemany(
        "INSERT INTO step_run (lot_id, step_index, step_id, attempt, kind, tool_id, tool_kind,"
        " operation, job_id, recipe_id, recipe_hash, state, setpoints, results, message,"
        " started_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)  # fmt: skip
    c.executemany(
        "INSERT INTO outbox (event_id, lot_id, seq, type, payload, created_at, sent_at)"
        " VALUES (?,?,?,?,?,?,?)", events)  # fmt: skip
    c.commit()
    c.close()


def start_station(home: Path, line: Path, db: Path) -> tuple[subprocess.Popen[str], str]:
    config = home / "station.yaml"
    config.write_text(f"station: bench\nline: {line}\ndatabase: sqlite:///{db}\n"
                      "http: {bind: '127.0.0.1:0'}\n")  # fmt: skip
    subprocess.run([FABLINE, "users", "add", USER, "--role", "engineer", "--db", f"sqlite:///{db}"],
                   input=PASSWORD + "\n", text=True, env=env(home), check=True,
                   capture_output=True)  # fmt: skip
    log = (home / "station.log").open("w")
    proc = subprocess.Popen(
        [FABLINE, "station", "--config", str(config)],
        env=env(home), stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line_ in proc.stdout:
        if " on http" in line_:
            return proc, line_.split(" on ", 1)[1].split(";", 1)[0].strip()
    raise RuntimeError("the station did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


# -- raw paths ---------------------------------------------------------------------------------

QUEUE_SQL = """
SELECT * FROM lot WHERE state IN ('held', 'running', 'waiting', 'paused', 'queued')
ORDER BY CASE state WHEN 'held' THEN 0 WHEN 'running' THEN 1 WHEN 'waiting' THEN 2
  WHEN 'paused' THEN 3 WHEN 'queued' THEN 4 ELSE 5 END, priority DESC, created_at LIMIT 200
"""
RUNS_SQL = """
SELECT * FROM step_run WHERE id IN (SELECT max(id) FROM step_run WHERE lot_id IN ({})
GROUP BY lot_id)
"""


def raw_queue(c: sqlite3.Connection) -> None:
    lots = c.execute(QUEUE_SQL).fetchall()
    ids = [r[0] for r in lots]
    c.execute(RUNS_SQL.format(",".join("?" * len(ids))), ids).fetchall()


def raw_page(c: sqlite3.Connection) -> None:
    raw_queue(c)
    c.execute("SELECT * FROM tool_inhibit WHERE released_at IS NULL").fetchall()
    c.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchall()


def time_raw(db: Path, fn: Callable[[sqlite3.Connection], None], n: int) -> list[float]:
    c = sqlite3.connect(db)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn(c)
        out.append(time.perf_counter() - t)
    c.close()
    return out


# -- load ------------------------------------------------------------------------------------


async def login(url: str) -> tuple[dict[str, str], str]:
    async with httpx.AsyncClient(base_url=url) as c:
        r = await c.post("/api/login", json={"name": USER, "password": PASSWORD})
        r.raise_for_status()
        return dict(c.cookies), r.json()["csrf"]


async def load(
    url: str, path: str, clients: int, requests: int, cookies: dict[str, str]
) -> tuple[list[float], float]:
    times: list[float] = []
    left = [requests]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(c: httpx.AsyncClient) -> None:
        while left[0] > 0:
            left[0] -= 1
            t = time.perf_counter()
            r = await c.get(path)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text[:200]

    async with httpx.AsyncClient(base_url=url, cookies=cookies, limits=limits, timeout=60) as c:
        await c.get(path)  # warm
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(clients)))
        wall = time.perf_counter() - start
    return times, requests / wall


async def stream_latency(
    url: str, path: str, cookies: dict[str, str], clients: int, n: int,
    trigger: Callable[[int], Awaitable[None]], marker: Callable[[str, int], bool],
) -> list[float]:  # fmt: skip
    """Open `clients` streams; `n` times: trigger, and time until every stream has the event
    (the figure is per event, per stream)."""
    got: list[dict[int, float]] = [{} for _ in range(clients)]
    ready, arrived = asyncio.Event(), asyncio.Event()
    current = [-1]  # the event being waited for (only it is looked for in each line)
    opened = [0]

    async def listen(i: int, c: httpx.AsyncClient) -> None:
        async with c.stream("GET", path) as r:
            opened[0] += 1
            if opened[0] == clients:
                ready.set()
            async for line in r.aiter_lines():
                k = current[0]
                if k >= 0 and k not in got[i] and marker(line, k):
                    got[i][k] = time.perf_counter()
                    arrived.set()

    limits = httpx.Limits(max_connections=clients + 5)
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=None, limits=limits) as c:
        tasks = [asyncio.create_task(listen(i, c)) for i in range(clients)]
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.5)  # (bench only) let every stream pass its first bytes
        sent: list[float] = []
        for k in range(n):
            current[0] = k
            sent.append(time.perf_counter())
            await trigger(k)
            deadline = time.monotonic() + 10
            while any(k not in g for g in got) and time.monotonic() < deadline:
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), max(0.0, deadline - time.monotonic()))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [g[k] - sent[k] for g in got for k in range(n) if k in g]


BARE = """
import asyncio
from starlette.applications import Starlette
from starlette.responses import StreamingResponse, Response
from starlette.routing import Route
queues = set()
async def stream(request):
    q = asyncio.Queue(); queues.add(q)
    async def body():
        try:
            yield "retry: 1000\\n\\n"
            while True:
                k = await q.get()
                yield f"id: {k}\\nevent: bare\\ndata: {{\\"k\\": {k}}}\\n\\n"
        finally:
            queues.discard(q)
    return StreamingResponse(body(), media_type="text/event-stream")
async def emit(request):
    k = int(request.query_params["k"])
    for q in queues: q.put_nowait(k)
    return Response("ok")
app = Starlette(routes=[Route("/stream", stream), Route("/emit", emit, methods=["POST"])])
"""


def start_bare(home: Path) -> tuple[subprocess.Popen[str], str]:
    (home / "bare_sse.py").write_text(BARE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_sse:app", "--port", str(port),
                             "--log-level", "warning"], cwd=home, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.post(f"{url}/emit?k=-1")
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("bare SSE server did not start")


async def main(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="fabline-bench-station-"))
    db = home / "station.db"
    t0 = time.perf_counter()
    sim, line = start_sim(home, args.tools)
    fill_database(db, args.lots)
    station, url = start_station(home, line, db)
    bare, bare_url = start_bare(home)
    try:
        cookies, csrf = await login(url)
        async with httpx.AsyncClient(base_url=url, cookies=cookies) as c:
            for _ in range(600):  # until every tool has been looked at
                tools = (await c.get("/api/tools")).json()
                if len(tools) == args.tools:
                    break
                await asyncio.sleep(0.1)
        print(f"station on {url}: {len(tools)} tools, {args.lots} lots"
              f" (set-up {time.perf_counter() - t0:.0f} s); {args.clients} clients,"
              f" {args.requests} requests per path")  # fmt: skip
        raw = {"/": time_raw(db, raw_page, 300), "/api/lots": time_raw(db, raw_queue, 300)}
        for path in ("/", "/api/lots", "/api/tools"):
            times, rate = await load(url, path, args.clients, args.requests, cookies)
            one, _ = await load(url, path, 1, min(300, args.requests), cookies)
            print(f"  GET {path:<11} {args.clients} clients: {ms(times)}  {rate:6.0f} req/s;"
                  f"  1 client: {ms(one)}")  # fmt: skip
            if path in raw:
                print(f"      raw: the same queries on sqlite3, one at a time: {ms(raw[path])}")
            else:
                print("      raw: none (the tiles are in the station's memory: JSON only)")
        # live stream: an operator's action -> its event on every open page
        headers = {"X-CSRF-Token": csrf}
        async with httpx.AsyncClient(base_url=url, cookies=cookies, headers=headers) as api:

            async def act(k: int) -> None:
                r = await api.post("/api/tools/WIREB-1/e10",
                                   json={"state": "ENGINEERING" if k % 2 == 0 else "AUTO",
                                         "comment": f"bench-{k}"})  # fmt: skip
                r.raise_for_status()

            action = await stream_latency(
                url, "/api/events", cookies, args.clients, args.events, act,
                lambda line, k: f'"comment":"bench-{k}"' in line.replace(" ", ""),
            )  # fmt: skip
            page = await stream_latency(
                url, "/ui/stream?view=audit", cookies, args.clients, min(50, args.events),
                lambda k: act(10_000 + k), lambda line, k: f"bench-{10_000 + k}<" in line,
            )  # fmt: skip

        def insert(k: int) -> Awaitable[None]:
            c = sqlite3.connect(db, timeout=10)
            payload = {"type": "alarm_cleared", "event_id": str(uuid.uuid4()), "tool_id": "X",
                       "data": {"code": 1, "name": f"bench{k}x", "text": ""}}  # fmt: skip
            c.execute("INSERT INTO outbox (event_id, type, payload, created_at) VALUES (?,?,?,?)",
                      (payload["event_id"], "alarm_cleared", json.dumps(payload),
                       datetime.now(UTC).isoformat()))  # fmt: skip
            c.commit()
            c.close()
            return asyncio.sleep(0)

        polled = await stream_latency(
            url, "/api/events", cookies, args.clients, min(50, args.events), insert,
            lambda line, k: f'"bench{k}x"' in line.replace(" ", ""),
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=bare_url) as b:

            async def emit(k: int) -> None:
                (await b.post(f"/emit?k={k}")).raise_for_status()

            bare_times = await stream_latency(
                bare_url, "/stream", {}, args.clients, args.events, emit,
                lambda line, k: line == f'data: {{"k": {k}}}',
            )  # fmt: skip
        print(f"  live stream, {args.clients} streams open, event -> every stream:")
        print(f"    action (POST, event written, feed woken) -> /api/events: {ms(action)}")
        print(f"    action -> the audit page's stream (HTML fragment):     {ms(page)}")
        print(f"    event written by another process -> /api/events:       {ms(polled)}"
              "  (found by the feed's 0.1 s poll)")  # fmt: skip
        print(f"    raw: bare SSE endpoint (uvicorn+starlette), POST -> stream: {ms(bare_times)}")
    finally:
        for p in (bare, station, sim):
            stop(p)
        print(f"  (station log: {home / 'station.log'})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tools", type=int, default=200)
    ap.add_argument("--lots", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--events", type=int, default=100)
    asyncio.run(main(ap.parse_args()))
