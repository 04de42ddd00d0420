"""Which station processes serve a database, so only one controller drives a line's tools.

A station registers at start (refusing to start while another live process has its name),
beats every `HEARTBEAT` seconds and signs off when it stops. A row not refreshed for
`STALE` seconds (or whose pid is gone, on this host) is a dead station. Terminal commands
for a lot of a live station (resume, run on its tools) hand the lot to it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy.models import Station
from controller.lots.lease import alive, aware, db_now
from drivers.errors import StationRunning
from drivers.line import Line

HEARTBEAT = 2.0  # seconds between beats
STALE = timedelta(seconds=10)  # a station silent this long is taken for dead


def tool_addresses(line: Line) -> list[str]:
    """`id@address` of each tool: what two controllers must not both drive."""
    return [f"{t.id}@{t.resource or f'{t.host}:{t.port}'}" for t in line.tools]


def is_live(st: Station, now: datetime) -> bool:
    """Beat within `STALE` of `now` (the database's clock), and its process not gone."""
    if st.seen_at is None or now - aware(st.seen_at) > STALE:
        return False
    return alive(f"{st.host}:{st.pid}")


def _mine(st: Station) -> bool:
    return st.host == socket.gethostname() and st.pid == os.getpid()


def register(s: Session, name: str, tools: Sequence[str], area: str = "") -> None:
    """Record this process as the station `name`; refused while another live process is it,
    and on SQLite while another station serves the file (several stations need PostgreSQL:
    SQLite has no row locks to fence them with and lives on one host)."""
    now = db_now(s)
    st = s.get(Station, name, with_for_update=True)
    if st is not None and is_live(st, now) and not _mine(st):
        assert st.seen_at is not None
        raise StationRunning(
            f"station {name} is already running on {st.host} (pid {st.pid}); stop it first"
        )
    if s.get_bind().dialect.name == "sqlite":
        others = [o for o in s.query(Station).all() if o.name != name and is_live(o, now)]
        if others:
            raise StationRunning(
                f"station {others[0].name} already serves this SQLite database: a line of"
                " several stations needs PostgreSQL (FABLINE_DATABASE_URL=postgresql://...)"
            )
    if st is None:
        st = Station(name=name, host="", pid=0)
        s.add(st)
    st.host, st.pid, st.tools, st.area = socket.gethostname(), os.getpid(), list(tools), area
    st.started_at = st.seen_at = now


def beat(s: Session, name: str) -> None:
    s.execute(
        update(Station)
        .where(
            col(Station.name) == name,
            col(Station.host) == socket.gethostname(),
            col(Station.pid) == os.getpid(),
        )
        .values(seen_at=db_now(s))
    )


def sign_off(s: Session, name: str) -> None:
    s.execute(
        update(Station)
        .where(
            col(Station.name) == name,
            col(Station.host) == socket.gethostname(),
            col(Station.pid) == os.getpid(),
        )
        .values(seen_at=None)
    )


def live_station(s: Session, name: str) -> Station | None:
    st = s.get(Station, name)
    return st if st is not None and is_live(st, db_now(s)) and not _mine(st) else None


def station_for_tools(s: Session, tools: Sequence[str]) -> Station | None:
    """A live station (not this process) that drives any of these tools."""
    wanted, now = set(tools), db_now(s)
    for st in s.query(Station).all():
        if not _mine(st) and is_live(st, now) and wanted & set(st.tools or []):
            return st
    return None
