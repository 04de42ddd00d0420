"""`fabline station`: the station daemon — the line's tools, its lots, the MES hook and the
operator page and HTTP API — from one configuration file (controller/station/config.py).
With no file it serves the embedded simulated line with an SQLite database in
$FABLINE_HOME on http://127.0.0.1:8080."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.command import run
from controller.cli.display import EXIT_OK, out
from controller.cli.mes import stop_on_signals
from controller.logs import configure_logging
from controller.mes.config import mes_config
from controller.settings import settings
from controller.station.config import HttpSettings, StationFile, load_station_file, parse_bind
from controller.station.runtime import Station, StationConfig
from controller.station.sdnotify import keep_watchdog, notify
from controller.station.users import list_users
from drivers.errors import ParameterError

app = typer.Typer()

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Station file (YAML); default: the embedded line."),
]


def station_config(path: Path | None, bind: str | None = None) -> StationConfig:
    """The station a file describes (relative paths from its folder); options override."""
    file, base = load_station_file(path) if path is not None else (StationFile(), Path.cwd())

    def rel(p: Path | None) -> str | None:
        if p is None:
            return None
        return str(p if p.is_absolute() else base / p)

    http = file.http_settings(base)
    if bind is not None:
        try:
            host, port = parse_bind(bind)
        except ValueError as e:
            raise ParameterError(f"--bind: {e}") from None
        http = HttpSettings(host, port, http.cert, http.key, http.proxies, http.session_hours)
    line = rel(file.line)
    return StationConfig(
        line=Path(line) if line else None,
        database_url=file.database or settings().database_url,
        mes=mes_config(
            file.mqtt,
            station=file.station,
            site=file.site,
            ca_file=rel(file.mqtt_ca),
            clients_file=rel(file.mes_clients),
        ),
        time_scale=file.time_scale,
        seed=file.seed,
        retry_budget=file.retry_budget,
        serve=True,
        http=http,
        holds=file.holds(),
        scrap_codes=file.scraps(),
        monitor_interval=file.monitor_interval,
        area=file.area,
        standby=file.standby,
        areas=file.line_areas(),
        lease_ttl=file.lease_ttl or settings().lease_ttl,
    )


@app.command("station")
def station_command(
    config: ConfigOption = None,
    bind: Annotated[
        str | None, typer.Option("--bind", help="HOST:PORT to serve on (overrides the file).")
    ] = None,
) -> None:
    """Serve the station: connect the line's tools, recover unfinished lots, run dispatched
    lots, publish MES events and take MES commands, and serve the operator page and HTTP
    API. SIGTERM stops it; jobs running on tools go on and are re-attached at the next
    start."""
    configure_logging(None, default="info")
    run(lambda: serve(station_config(config, bind)))


async def serve(config: StationConfig) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with Station(config) as st:
        mes = config.mes
        where = mes.broker.describe() if mes.broker else f"spool {mes.spool}"
        nobody = not await st.db.run(list_users)

        def ready() -> None:
            out.print(
                f"station {st.name} serving line '{st.line.line}' ({len(st.line.tools)} tools)"
                f" on {st.http_url}; MES: {where}; commands on {mes.commands}",
                soft_wrap=True,
            )
            if nobody:
                out.print("no users yet: add one with `fabline users add NAME --role admin`")
            out.file.flush()
            notify("READY=1")

        watchdog = asyncio.create_task(keep_watchdog(stop))
        try:
            await st.serve(stop, ready)
        finally:
            notify("STOPPING=1")
            await asyncio.gather(watchdog, return_exceptions=True)
    return EXIT_OK
