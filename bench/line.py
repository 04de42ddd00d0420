"""A line of several stations on one PostgreSQL: lots per hour and database CPU per step for
1, 2 and 4 stations, and for two areas with a hand-over, beside the single station in the
same run.

    .venv/bin/python bench/line.py [--lots 6] [--stations 1,2,4]

Each scenario gets a fresh PostgreSQL database (127.0.0.1:5432) and the Mosquitto broker
(127.0.0.1:1883). A station is `fabline station --config` as a user runs it, driving its own
`fabline sim --time-scale inf` line (jobs finish at once, so what is measured is the
controller: step transactions, leases, the outbox relay, the pickup and the database), and
is given `--lots` lots through its HTTP API (alternately wlcsp-002-42 with one wafer and
fcbga-thermal-001-19 with one wafer and one panel). The "areas" scenario runs two stations
sharing one simulated line, st-bump (bumping) and st-asm (assembly): every lot is handed over
between them. Measured from the first dispatch to the last lot completed: lots per hour,
steps per second, and the CPU time of the PostgreSQL server processes per step recorded
(from /proc: the server runs on this host); the ratio column is lots per hour against the
single station of the same run. On 2 cores the stations, their simulators and PostgreSQL
share the CPU: more stations on one host measure contention, not a line's capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import yaml

FABLINE = str(Path(sys.executable).with_name("fabline"))
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
USER, PASSWORD = "bench", "bench-password"
RECIPES = [("wlcsp-002-42", {"wafers": 1}), ("fcbga-thermal-001-19", {"wafers": 1, "panels": 1})]
AREAS = {
    "bumping": ["sputter", "litho", "plating", "coater", "clean", "ball"],
    "assembly": ["bonder", "grinder", "mold", "dicing", "wirebonder"],
}
TICKS = os.sysconf("SC_CLK_TCK")


def env(home: Path) -> dict[str, str]:
    e = {**os.environ, "FABLINE_HOME": str(home), "FABLINE_LOG": "warning"}
    for k in ("FABLINE_MQTT_URL", "FABLINE_DATABASE_URL", "FABLINE_STATION", "FABLINE_LINE"):
        e.pop(k, None)
    return e


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"fabline_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f"DROP DATABASE IF EXISTS {name}")


def postgres_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of every PostgreSQL server process now, by pid."""
    out: dict[int, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if comm.startswith("postgres") or comm.startswith("postmaster"):
            fields = stat[stat.rindex(")") + 2 :].split()
            out[int(pid)] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def cpu_since(before: dict[int, float]) -> float:
    """Server CPU used since `before` (a backend that ended meanwhile is not counted)."""
    return sum(t - before.get(pid, 0.0) for pid, t in postgres_cpu().items())


@dataclass
class Proc:
    proc: subprocess.Popen[str]
    lines: list[str]
    url: str = ""


def start(args: list[str], home: Path, ready: str) -> Proc:
    proc = subprocess.Popen([FABLINE, *args], env=env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    p = Proc(proc, [])
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            p.lines.append(line)
            if ready in line and not seen.is_set():
                if " on http" in line:
                    p.url = line.split(" on ", 1)[1].split(";", 1)[0].strip()
                seen.set()
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    if not seen.wait(90) or proc.poll() is not None:
        proc.kill()
        raise SystemExit(f"fabline {args[0]} did not start:\n{''.join(p.lines)[-3000:]}")
    return p


def stop(procs: list[Proc]) -> None:
    for p in procs:
        if p.proc.poll() is None:
            p.proc.terminate()
    for p in procs:
        try:
            p.proc.wait(30)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()


def sim_line(home: Path) -> dict[str, object]:
    sim = start(["sim", "--time-scale", "inf", "--json"], home, "{")
    line: dict[str, object] = json.loads(next(x for x in sim.lines if x.startswith("{")))
    SIMS.append(sim)
    return line


SIMS: list[Proc] = []


@dataclass(frozen=True)
class Result:
    name: str
    stations: int
    lots: int
    steps: int
    wall: float
    db_cpu: float

    @property
    def lots_per_hour(self) -> float:
        return self.lots / self.wall * 3600


def scenario(name: str, tmp: Path, stations: int, lots: int, areas: bool) -> Result:
    site = f"bench-{secrets.token_hex(3)}"
    with fresh_database() as db:
        procs: list[Proc] = []
        try:
            shared = sim_line(tmp) if areas else None
            for i in range(stations):
                home = tmp / f"{name}-st{i}"
                home.mkdir()
                line = shared if shared is not None else sim_line(home)
                assert line is not None
                cfg: dict[str, object] = {
                    "station": f"st{i}", "site": site, "database": db,
                    "mqtt": "mqtt://127.0.0.1:1883", "http": {"bind": "127.0.0.1:0"},
                    "monitor_interval": 1.0,
                }  # fmt: skip
                if areas:
                    area = list(AREAS)[i]
                    tools = [t for t in line["tools"] if t["kind"] in AREAS[area]]  # type: ignore[index, union-attr, attr-defined]
                    cfg.update(area=area, areas=AREAS)
                    line = {**line, "line": area, "tools": tools}
                (home / "line.json").write_text(json.dumps(line))
                cfg["line"] = str(home / "line.json")
                (home / "station.yaml").write_text(yaml.safe_dump(cfg))
                if i == 0:
                    subprocess.run([FABLINE, "users", "add", USER, "--role", "operator",
                                    "--config", str(home / "station.yaml")],
                                   input=PASSWORD + "\n", text=True, env=env(home), check=True,
                                   capture_output=True)  # fmt: skip
                procs.append(start(["station", "--config", str(home / "station.yaml")], home,
                                   " on http"))  # fmt: skip
            targets = procs[:1] if areas else procs  # on a line of areas: dispatch anywhere
            # the areas share one simulated line: one line's worth of lots (twice that wore
            # its dicing blade past the cut depth and emptied its flux-clean chemistry)
            per = lots
            before, t0 = postgres_cpu(), time.perf_counter()
            for k, p in enumerate(targets):
                with httpx.Client(base_url=p.url, timeout=30) as c:
                    r = c.post("/api/login", json={"name": USER, "password": PASSWORD})
                    r.raise_for_status()
                    headers = {"X-CSRF-Token": r.json()["csrf"]}
                    for j in range(per):
                        recipe, inputs = RECIPES[j % len(RECIPES)]
                        body = {"lot_id": f"B{k}-{j:03d}", "recipe": recipe, "inputs": inputs}
                        c.post("/api/lots", json=body, headers=headers).raise_for_status()
            total = per * len(targets)
            with psycopg.connect(db.replace("+psycopg", ""), autocommit=True) as conn:
                while True:
                    done, bad = conn.execute(
                        "SELECT count(*) FILTER (WHERE state = 'completed'),"
                        " count(*) FILTER (WHERE state IN ('held', 'aborted')) FROM lot"
                    ).fetchone() or (0, 0)
                    if done + bad >= total:
                        break
                    if any(p.proc.poll() is not None for p in procs):
                        raise SystemExit("a station died:\n" + "".join(procs[0].lines)[-3000:])
                    time.sleep(0.05)
                wall = time.perf_counter() - t0
                cpu = cpu_since(before)
                if bad:
                    why = conn.execute(
                        "SELECT id, state, hold_reason FROM lot"
                        " WHERE state IN ('held', 'aborted') ORDER BY id"
                    ).fetchall()
                    shown = "".join(f"\n  {i} {st}: {r}" for i, st, r in why)
                    raise SystemExit(f"{name}: {bad} lots held or aborted{shown}")
                (steps,) = conn.execute(
                    "SELECT count(*) FROM step_run WHERE state = 'done'"
                ).fetchone() or (0,)
            return Result(name, stations, total, steps, wall, cpu)
        finally:
            stop(procs)
            stop(SIMS)
            SIMS.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lots", type=int, default=6, help="lots per station")
    ap.add_argument("--stations", default="1,2,4", help="station counts to run")
    a = ap.parse_args()
    counts = [int(x) for x in a.stations.split(",")]
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for n in counts:
            results.append(scenario(f"{n} station{'s' * (n > 1)}", tmp, n, a.lots, False))
            print(f"  ... {results[-1].name}: {results[-1].wall:.1f} s", file=sys.stderr)
        results.append(scenario("2 areas, hand-over", tmp, 2, a.lots, True))
    single = next((r for r in results if r.stations == 1), results[0])
    print(f"\nbench/line.py: {a.lots} lots per station, one PostgreSQL, one broker, "
          f"{os.cpu_count()} cores, jobs instant (sim --time-scale inf)\n")  # fmt: skip
    print(f"{'scenario':<22}{'lots':>6}{'steps':>7}{'wall s':>8}{'lots/h':>9}{'steps/s':>9}"
          f"{'DB CPU ms/step':>16}{'vs 1 station':>14}")  # fmt: skip
    for r in results:
        print(f"{r.name:<22}{r.lots:>6}{r.steps:>7}{r.wall:>8.1f}{r.lots_per_hour:>9.0f}"
              f"{r.steps / r.wall:>9.1f}{r.db_cpu / max(r.steps, 1) * 1000:>16.2f}"
              f"{r.lots_per_hour / single.lots_per_hour:>13.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
