"""A station (`fabline station --config FILE`) as a separate process, with its own
FABLINE_HOME, database and free port, users of every role, and one completed lot whose
packages a genealogy test can look up; an HTTP client logged in as any of them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from controller.access import Actor, Role
from controller.genealogy.db import Database
from controller.station.users import add_user
from simulators.line import default_line

FABLINE = str(Path(sys.executable).with_name("fabline"))
ROLES = ("viewer", "operator", "technician", "engineer", "admin")
USERS = {role: (f"{role[:4]}-user", f"pw-{role}-secret") for role in ROLES}
GENEALOGY_LOT = "G1"
TOOLS = len(default_line().tools)  # the embedded line the station starts on
START_TIMEOUT = 60


@dataclass
class Running:
    url: str
    home: Path
    db: str
    proc: subprocess.Popen[str]
    output: list[str]
    package: str  # a package of GENEALOGY_LOT
    wafer: str  # the wafer it was diced from

    def client(self, role: str | None = None) -> Client:
        c = Client(self.url)
        if role is not None:
            c.login(*USERS[role])
        return c

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


class Client(httpx.Client):
    """httpx with the station's session cookie and CSRF header once logged in."""

    def __init__(self, url: str) -> None:
        super().__init__(base_url=url, timeout=30)
        self.csrf: str | None = None

    def login(self, name: str, password: str) -> None:
        r = self.post("/api/login", json={"name": name, "password": password})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf"]
        self.headers["X-CSRF-Token"] = self.csrf


def env(home: Path) -> dict[str, str]:
    e = {**os.environ, "FABLINE_HOME": str(home), "FABLINE_LOG": "info"}
    for k in ("FABLINE_MQTT_URL", "FABLINE_DATABASE_URL", "FABLINE_STATION", "FABLINE_LINE"):
        e.pop(k, None)
    return e


def prepare(home: Path, db: str) -> tuple[str, str]:
    """Users of every role, and a completed lot diced into packages: (package, wafer)."""
    e = env(home)
    d = Database(db)  # (the command `fabline users add` is tested in test_deploy.py)
    d.migrate()
    try:
        for role, (name, password) in USERS.items():
            d.run_sync(
                lambda s, n=name, r=role, p=password: add_user(s, "", Actor.cli(), n, Role(r), p)
            )
    finally:
        d.close()
    subprocess.run(
        [FABLINE, "run", "wlcsp-002-42", "--lot", GENEALOGY_LOT, "--wafers", "1", "--db", db,
         "--time-scale", "inf", "--json"],
        env=e, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as c:
        wafer, wid = c.execute(
            "SELECT name, id FROM unit WHERE lot_id = ? AND kind = 'wafer' AND state = 'split'",
            (GENEALOGY_LOT,),
        ).fetchone()
        package = c.execute(
            "SELECT u.name FROM edge e JOIN unit u ON u.id = e.child_id"
            " WHERE e.parent_id = ? AND e.kind = 'split' ORDER BY u.id LIMIT 1",
            (wid,),
        ).fetchone()[0]
    return package, wafer


def start_station(
    config: Path, home: Path, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `fabline station`; its process, URL and output lines so far."""
    proc = subprocess.Popen(
        [FABLINE, "station", "--config", str(config)],
        env={**env(home), **(env_extra or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    output: list[str] = []
    found: list[str] = []
    started = threading.Event()

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if " on http" in line and not found:
                found.append(line.split(" on ", 1)[1].split(";", 1)[0].strip())
                started.set()
        started.set()

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            output.append(line)

    threading.Thread(target=read_out, daemon=True).start()
    threading.Thread(target=read_err, daemon=True).start()
    started.wait(START_TIMEOUT)
    if not found:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        raise AssertionError("station did not start:\n" + "".join(output)[-3000:])
    return proc, found[0], output


def station(tmp: Path, time_scale: float = 2000) -> Iterator[Running]:
    home = tmp / "home"
    home.mkdir()
    db = f"sqlite:///{tmp / 'station.db'}"
    package, wafer = prepare(home, db)
    config = tmp / "station.yaml"
    config.write_text(
        f"station: web-test\ndatabase: {db}\nhttp: {{bind: '127.0.0.1:0'}}\n"
        f"time_scale: {time_scale}\nseed: 3\nmonitor_interval: 0.5\n"
    )
    proc, url, output = start_station(config, home)
    running = Running(url, home, db, proc, output, package, wafer)
    try:
        yield running
    finally:
        running.stop()
