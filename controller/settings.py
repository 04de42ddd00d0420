"""Every setting fabline takes from its environment, read in this one place.

    FABLINE_HOME          fabline's folder (SQLite database, sim line, spool)   ~/.fabline
    FABLINE_DATABASE_URL  genealogy database              SQLite $FABLINE_HOME/fabline.db
    FABLINE_LINE          the line file commands talk to  the running `fabline sim`
    FABLINE_RECIPES       recipe folder                   the recipes shipped with fabline
    FABLINE_MQTT_URL      MES broker                      none: events go to the spool
    FABLINE_SITE          site name                       site-1
    FABLINE_STATION       station name                    station-1
    FABLINE_MES_CLIENTS   MES client secrets              none (client=secret,...)
    FABLINE_LOG           log level                       error (commands), info (daemons)
    FABLINE_LOG_JSON      1: JSON log lines
    FABLINE_LEASE_TTL     seconds a lot's or an area's lease lasts unrenewed      15

Command-line options override these; `Settings.from_env()` is called when a command starts,
so a test or a process that changes its environment gets what it set.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from drivers.errors import ParameterError


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None = None
    line: Path | None = None
    recipes: Path | None = None
    mqtt_url: str | None = None
    site: str = "site-1"
    station: str = "station-1"
    mes_clients: str = ""  # client=secret,client2=secret2
    log: str | None = None
    log_json: bool = False
    lease_ttl: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env

        def path(name: str) -> Path | None:
            return Path(e[name]) if e.get(name) else None

        return cls(
            home=path("FABLINE_HOME") or Path.home() / ".fabline",
            database_url=e.get("FABLINE_DATABASE_URL") or None,
            line=path("FABLINE_LINE"),
            recipes=path("FABLINE_RECIPES"),
            mqtt_url=e.get("FABLINE_MQTT_URL") or None,
            site=e.get("FABLINE_SITE") or "site-1",
            station=e.get("FABLINE_STATION") or "station-1",
            mes_clients=e.get("FABLINE_MES_CLIENTS", ""),
            log=e.get("FABLINE_LOG") or None,
            log_json=e.get("FABLINE_LOG_JSON") == "1",
            lease_ttl=_seconds(e, "FABLINE_LEASE_TTL", 15.0),
        )

    def but(self, **changes: object) -> Settings:
        """These settings with the options a command was given (None: not given)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def _seconds(e: Mapping[str, str], name: str, default: float) -> float:
    raw = e.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.5 <= value <= 3600:
        raise ParameterError(f"{name}={raw!r}: give seconds from 0.5 to 3600")
    return value


def settings() -> Settings:
    return Settings.from_env()


def fabline_home() -> Path:
    return settings().home
