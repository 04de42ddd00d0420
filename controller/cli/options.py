"""Options shared by the commands, the one KEY=VALUE parser, and the station configuration a
command builds from its options and the environment (controller/settings.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from controller.mes.config import mes_config
from controller.settings import settings
from controller.station.runtime import StationConfig
from drivers.errors import ParameterError, shown

LineOption = Annotated[
    Path | None,
    typer.Option("--line", help="Line file (YAML/JSON); default: the running `fabline sim`."),
]
EngineLineOption = Annotated[
    Path | None,
    typer.Option(
        "--line",
        help="Line file (YAML/JSON) of the tools to drive; default: a simulated line embedded"
        " in this process.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite path (default $FABLINE_DATABASE_URL,"
        " else ~/.fabline/fabline.db).",
    ),
]
MqttOption = Annotated[
    str | None,
    typer.Option(
        "--mqtt",
        help="MES broker mqtt[s]://[user:pass@]host[:port] (default $FABLINE_MQTT_URL;"
        " none: events go to the spool file).",
    ),
]
StationOption = Annotated[
    str | None, typer.Option("--station", help="Station name (default $FABLINE_STATION).")
]
SiteOption = Annotated[str | None, typer.Option("--site", help="Site (default $FABLINE_SITE).")]
CaOption = Annotated[str | None, typer.Option("--mqtt-ca", help="CA file for mqtts://.")]
ClientsOption = Annotated[
    str | None,
    typer.Option("--clients", help="YAML file of MES client secrets (or $FABLINE_MES_CLIENTS)."),
]
TimeScaleOption = Annotated[
    float, typer.Option("--time-scale", help="Embedded line only: simulated s per real s.")
]
RetryOption = Annotated[
    float, typer.Option("--retry-budget", help="Seconds a tool may stay unreachable.")
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (recorded, sent to MES).")]


def key_values(items: list[str], what: str) -> dict[str, str]:
    """KEY=VALUE arguments (options, inputs, parameters, confirmed fields): each key once."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ParameterError(f"{what} {shown(item)!r} is not KEY=VALUE")
        if key in out:
            raise ParameterError(f"{what} {shown(key)!r} given twice")
        out[key] = value
    return out


def station_config(
    *,
    db: str | None,
    line: Path | None = None,
    time_scale: float = 2e4,
    seed: int = 0,
    retry_budget: float = 30.0,
    allow_draft: bool = False,
    mqtt: str | None = None,
    station: str | None = None,
    site: str | None = None,
    ca: str | None = None,
    clients: str | None = None,
    serve: bool = False,
) -> StationConfig:
    """The station a command opens, from its options over the environment."""
    if not time_scale > 0:  # also nan
        raise ParameterError("--time-scale must be > 0 (inf: instant jobs)")
    if not 0 <= retry_budget < math.inf:
        raise ParameterError("--retry-budget must be a number of seconds >= 0")
    return StationConfig(
        line=line,
        database_url=db or settings().database_url,
        mes=mes_config(mqtt, station=station, site=site, ca_file=ca, clients_file=clients),
        time_scale=time_scale,
        seed=seed,
        retry_budget=retry_budget,
        allow_draft=allow_draft,
        serve=serve,
        lease_ttl=settings().lease_ttl,
    )
