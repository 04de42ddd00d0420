"""The MES hook in a running controller: publish the outbox (relay, or spool with no broker),
take commands, report tool states; and the `fabline mes ...` commands."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog

from controller.console import EXIT_FAILED, EXIT_OK, out
from controller.genealogy.db import Database
from controller.mes.command_handler import CommandHandler
from controller.mes.commands import Rejected, sign, unsigned_command, validate
from controller.mes.config import MesConfig
from controller.mes.relay import Relay, Spool, age_seconds, outbox_stats
from drivers.errors import BrokerUnavailable, ParameterError

log = structlog.get_logger("fabline.mes")


@dataclass
class Hook:
    """A running publisher: `wake()` after writing events; `relay` is None when spooling."""

    relay: Relay | None
    spool: Spool | None

    def wake(self) -> None:
        (self.relay or self.spool).wake()  # type: ignore[union-attr]


@asynccontextmanager
async def mes_hook(
    db: Database,
    config: MesConfig,
    commands: CommandHandler | None = None,
    drain_timeout: float = 10.0,
) -> AsyncIterator[Hook]:
    """Publish while the block runs; on the way out, drain what this run wrote (within
    `drain_timeout`) — anything left stays in the outbox for the next start."""
    stop = asyncio.Event()
    if config.broker is None:
        hook = Hook(None, Spool(db, config.spool))
        task = asyncio.create_task(hook.spool.run(stop))  # type: ignore[union-attr]
    else:
        relay = Relay(db, config, commands=commands)
        hook = Hook(relay, None)
        task = asyncio.create_task(relay.run(stop))
    try:
        yield hook
    finally:
        if hook.relay is not None:
            deadline = time.monotonic() + drain_timeout
            while time.monotonic() < deadline:
                stats = await db.run(outbox_stats)
                if not stats["pending"]:
                    break
                hook.wake()
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        left = (await db.run(outbox_stats))["pending"]
        if hook.relay is not None and left:
            log.warning(
                "mes.pending_left",
                pending=left,
                hint="they are published at the next start (fabline mes relay)",
            )


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
            _stop_on_signals(stop)
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


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
