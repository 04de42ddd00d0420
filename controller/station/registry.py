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
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.genealogy.models import Station, utcnow
from controller.lots.lease import alive
from drivers.errors import StationRunning
from drivers.line import Line

HEARTBEAT = 2.0  # seconds between beats
STALE = timedelta(seconds=10)  # a station silent this long is taken for dead


def tool_addresses(line: Line) -> list[str]:
    """`id@address` of each tool: what two controllers must not both drive."""
    return [f"{t.id}@{t.resource or f'{t.host}:{t.port}'}" for t in line.tools]


def is_live(st: Station) -> bool:
    if st.seen_at is None:
        return False
    seen = st.seen_at if st.seen_at.tzinfo else st.seen_at.replace(tzinfo=utcnow().tzinfo)
    if utcnow() - seen > STALE:
        return False
    return alive(f"{st.host}:{st.pid}")


def _mine(st: Station) -> bool:
    return st.host == socket.gethostname() and st.pid == os.getpid()


def register(s: Session, name: str, tools: Sequence[str]) -> None:
    st = s.get(Station, name, with_for_update=True)
    if st is not None and is_live(st) and not _mine(st):
        assert st.seen_at is not None
        raise StationRunning(
            f"station {name} is already running on {st.host} (pid {st.pid}); stop it first"
        )
    if st is None:
        st = Station(name=name, host="", pid=0)
        s.add(st)
    st.host, st.pid, st.tools = socket.gethostname(), os.getpid(), list(tools)
    st.started_at = st.seen_at = utcnow()


def beat(s: Session, name: str) -> None:
    s.execute(
        update(Station)
        .where(
            col(Station.name) == name,
            col(Station.host) == socket.gethostname(),
            col(Station.pid) == os.getpid(),
        )
        .values(seen_at=utcnow())
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
    return st if st is not None and is_live(st) and not _mine(st) else None


def station_for_tools(s: Session, tools: Sequence[str]) -> Station | None:
    """A live station (not this process) that drives any of these tools."""
    wanted = set(tools)
    for st in s.query(Station).all():
        if not _mine(st) and is_live(st) and wanted & set(st.tools or []):
            return st
    return None
