"""`fabline mes ...`: the MES hook from a terminal — event and command schemas, the outbox
(status, relay), the station daemon (`serve`) and a reference MES client (`send`)."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import aiomqtt
import typer

from controller.cli.command import run
from controller.cli.display import EXIT_FAILED, EXIT_OK, out
from controller.cli.options import (
    CaOption,
    ClientsOption,
    DbOption,
    EngineLineOption,
    JsonOption,
    MqttOption,
    RetryOption,
    SiteOption,
    StationOption,
    TimeScaleOption,
    key_values,
    station_config,
)
from controller.genealogy.db import Database
from controller.logs import configure_logging
from controller.mes.commands import Rejected, sign, unsigned_command, validate
from controller.mes.config import MesConfig, mes_config
from controller.mes.hook import Hook, mes_hook
from controller.mes.relay import age_seconds, outbox_stats
from controller.mes.schema import write_schemas
from controller.station.runtime import Station, StationConfig
from drivers.errors import BrokerUnavailable, ParameterError

app = typer.Typer(
    help="The MES lot-tracking hook: event schemas, relay, status, station service.",
    no_args_is_help=True,
)


@app.command("schema")
def mes_schema(
    directory: Annotated[Path, typer.Argument(help="Where to write the schemas.")] = Path(
        "mes-schema"
    ),
) -> None:
    """Write a JSON Schema for every event type and for commands."""

    def write() -> int:
        for p in write_schemas(directory):
            out.print(str(p))
        return 0

    run(write)


@app.command("status")
def mes_status(
    db: DbOption = None,
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Broker connection, pending and sent events, age of the oldest pending one."""
    run(
        lambda: status_command(
            db, mes_config(mqtt, station=station, site=site, ca_file=ca), as_json
        )
    )


@app.command("relay")
def mes_relay(
    db: DbOption = None,
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep publishing until stopped.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(help="Give up after this many seconds without reaching the broker."),
    ] = 30.0,
) -> None:
    """Publish the events waiting in the outbox (after an outage or a crash)."""
    run(
        lambda: relay_command(
            db, mes_config(mqtt, station=station, site=site, ca_file=ca), follow, timeout
        )
    )


@app.command("serve")
def mes_serve(
    line: EngineLineOption = None,
    db: DbOption = None,
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    clients: ClientsOption = None,
    time_scale: TimeScaleOption = 2e4,
    retry_budget: RetryOption = 30.0,
) -> None:
    """Serve the station: take MES commands (dispatch, hold, release, abort, split, merge,
    scrap, rework), run dispatched
    lots on the line (embedded simulated line by default), publish every event."""
    configure_logging(None, default="info")  # a daemon's log is its record (-v or FABLINE_LOG)
    run(
        lambda: serve(
            station_config(
                db=db, line=line, time_scale=time_scale, retry_budget=retry_budget, mqtt=mqtt,
                station=station, site=site, ca=ca, clients=clients, serve=True,
            )
        )
    )  # fmt: skip


async def serve(config: StationConfig) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with Station(config) as st:
        mes = config.mes
        where = mes.broker.describe() if mes.broker else f"spool {mes.spool}"
        out.print(
            f"station {st.name} serving line '{st.line.line}' ({len(st.line.tools)} tools);"
            f" MES: {where}; commands on {mes.commands}"
        )
        out.file.flush()
        await st.serve(stop)
    return EXIT_OK


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


@app.command("send")
def mes_send(
    command: Annotated[
        str,
        typer.Argument(help="dispatch, hold, release, abort, split, merge, scrap or rework."),
    ],
    lot: Annotated[str, typer.Option("--lot", help="Lot id.")],
    recipe: Annotated[str | None, typer.Option(help="dispatch: recipe id.")] = None,
    version: Annotated[int | None, typer.Option(help="dispatch: recipe version.")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", "-i")] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    unit: Annotated[
        list[str] | None, typer.Option("--unit", "-u", help="split, scrap, rework: a unit.")
    ] = None,
    into: Annotated[str | None, typer.Option(help="split, rework: the child lot id.")] = None,
    merge: Annotated[
        list[str] | None, typer.Option("--merge", help="merge: a lot merged into --lot.")
    ] = None,
    code: Annotated[str | None, typer.Option(help="scrap: the scrap code.")] = None,
    route: Annotated[str | None, typer.Option(help="rework: the recipe's rework route.")] = None,
    sort_map: Annotated[
        list[str] | None, typer.Option("--sort-map", help="dispatch: WAFER=FILE (repeatable).")
    ] = None,
    sort_yield: Annotated[
        float | None, typer.Option(help="dispatch: generated sort maps' yield.")
    ] = None,
    client: Annotated[str, typer.Option(help="MES client id to sign as.")] = "mes",
    mqtt: MqttOption = None,
    station: StationOption = None,
    site: SiteOption = None,
    ca: CaOption = None,
    clients: ClientsOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 10.0,
) -> None:
    """Send one signed command to a station, as an MES would, and print its reply."""

    def work() -> Coroutine[Any, Any, int]:
        body: dict[str, Any] = {"command": command, "lot_id": lot}
        if recipe:
            body["recipe"] = {"id": recipe, **({"version": version} if version else {})}
        if option:
            body["options"] = key_values(option, "option")
        if input_:
            body["inputs"] = {
                k: int(v) if v.isdigit() else v.split(",")
                for k, v in key_values(input_, "input").items()
            }
        if reason:
            body["reason"] = reason
        given = {"units": unit, "into": into, "lots": merge, "code": code, "route": route}
        body |= {k: v for k, v in given.items() if v}
        if sort_map:
            body["sort_maps"] = {
                k: _read_map(v) for k, v in key_values(sort_map, "sort map").items()
            }
        if sort_yield is not None:
            body["sort_yield"] = sort_yield
        if not 0 < timeout < math.inf:
            raise ParameterError("--timeout must be a number of seconds > 0")
        config = mes_config(mqtt, station=station, site=site, ca_file=ca, clients_file=clients)
        return send_command(config, body, client, timeout)

    run(work)


def _read_map(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ParameterError(f"sort map: cannot read {path}: {e}") from None


async def relay_command(
    db_url: str | None, config: MesConfig, follow: bool, timeout: float = 30.0
) -> int:
    """Publish what the outbox holds (and keep publishing with --follow). Without --follow,
    give up when the broker stays unreachable for `timeout` seconds: the events stay in the
    outbox for the next try."""
    if config.broker is None:
        raise ParameterError("no broker: give --mqtt URL or set FABLINE_MQTT_URL")
    if not 0 < timeout < float("inf"):
        raise ParameterError("--timeout must be a number of seconds > 0")
    db = Database(db_url)
    await asyncio.get_running_loop().run_in_executor(None, db.migrate)
    try:
        stop = asyncio.Event()
        if follow:
            stop_on_signals(stop)
        async with mes_hook(db, config, drain_timeout=10.0 if follow else 0.0) as hook:
            if follow:
                await stop.wait()
            else:
                await _drain(db, hook, config, timeout)
        stats = await db.run(outbox_stats)
        out.print(f"outbox: {stats['sent']} sent, {stats['pending']} pending")
        return EXIT_OK if not stats["pending"] else EXIT_FAILED
    finally:
        db.close()


async def _drain(db: Database, hook: Hook, config: MesConfig, timeout: float) -> None:
    assert hook.relay is not None and config.broker is not None
    contact = time.monotonic()
    while (await db.run(outbox_stats))["pending"]:
        if hook.relay.connected:
            contact = time.monotonic()
        elif time.monotonic() - contact > timeout:
            pending = (await db.run(outbox_stats))["pending"]
            raise BrokerUnavailable(
                f"broker {config.broker.describe()} not reachable for {timeout:g} s"
                f" ({hook.relay.last_error or 'no answer'}); {pending} events stay pending"
            )
        hook.wake()
        await asyncio.sleep(0.05)


async def status_command(db_url: str | None, config: MesConfig, as_json: bool) -> int:
    db = Database(db_url)
    await asyncio.get_running_loop().run_in_executor(None, db.migrate)
    try:
        stats = await db.run(outbox_stats)
    finally:
        db.close()
    broker: dict[str, Any] = {"configured": config.broker is not None}
    if config.broker is not None:
        broker["url"] = config.broker.describe()
        try:
            async with aiomqtt.Client(
                config.broker.host,
                config.broker.port,
                username=config.broker.username,
                password=config.broker.password,
                tls_context=config.broker.tls_context(),
                timeout=2,
            ):
                broker["reachable"] = True
        except (aiomqtt.MqttError, OSError, TimeoutError) as e:
            broker["reachable"], broker["error"] = False, str(e) or type(e).__name__
    age = age_seconds(stats["oldest_pending"])
    report = {
        "broker": broker,
        "database": db.describe(),
        "pending": stats["pending"],
        "sent": stats["sent"],
        "oldest_pending_age_s": None if age is None else round(age, 1),
        "topic_prefix": config.prefix,
        "spool": None if config.broker else str(config.spool),
    }
    if as_json:
        print(json.dumps(report))
        return EXIT_OK
    where = broker.get("url", "none configured (events go to the spool file)")
    reach = (
        ""
        if "reachable" not in broker
        else (" — reachable" if broker["reachable"] else f" — NOT reachable ({broker['error']})")
    )
    out.print(f"broker: {where}{reach}")
    out.print(
        f"outbox: {report['pending']} pending, {report['sent']} sent"
        + (f", oldest pending {age:.0f} s old" if age is not None else "")
    )
    out.print(f"topics: {config.prefix}/...")
    if config.broker is None:
        out.print(f"spool: {config.spool}")
    return EXIT_OK


async def send_command(
    config: MesConfig, command: dict[str, Any], client: str, timeout: float
) -> int:
    """Sign and publish one command as MES client `client`; print the station's reply."""
    if config.broker is None:
        raise ParameterError("no broker: give --mqtt URL or set FABLINE_MQTT_URL")
    secret = config.clients.get(client)
    if secret is None:
        raise ParameterError(
            f"no secret for MES client {client!r} (--clients FILE or FABLINE_MES_CLIENTS)"
        )
    cmd = sign(
        unsigned_command(client=client, site=config.site, station=config.station, **command),
        secret,
    )
    try:
        validate(cmd)  # refused here, as the station would, before anything is sent
    except Rejected as e:
        raise ParameterError(e.reason) from None
    b = config.broker
    try:
        async with aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=config.client_id(station=False),
            tls_context=b.tls_context(),
            timeout=timeout,
        ) as mqtt:
            await mqtt.subscribe(config.replies, qos=1)
            await mqtt.publish(config.commands, json.dumps(cmd), qos=1, timeout=timeout)
            async with asyncio.timeout(timeout):
                async for message in mqtt.messages:
                    try:
                        data = json.loads(bytes(message.payload))["data"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    if data.get("command_id") == cmd["command_id"]:
                        print(json.dumps(data))
                        return EXIT_OK if data["status"] == "accepted" else EXIT_FAILED
    except TimeoutError:
        raise BrokerUnavailable(
            f"no reply within {timeout:g} s: is `fabline mes serve`"
            f" running for station {config.station}?"
        ) from None
    except (aiomqtt.MqttError, OSError) as e:
        raise BrokerUnavailable(f"broker {b.describe()}: {e}") from None
    return EXIT_FAILED
