"""MES relay throughput next to raw aiomqtt, in one run, against the same Mosquitto.

    .venv/bin/python bench/mes.py [--events 10000] [--rounds 3] [--db sqlite|postgres|both]

- raw: aiomqtt publishing the same event payloads at QoS 1, awaited one by one, and with the
  relay's window of publishes in flight (the fair comparison);
- fabline: the relay draining an outbox of the same events (reading them from the database,
  publishing with the window, marking the acknowledged ones sent);
- drain: time for the relay to publish 10,000 events that piled up while the broker was away.
Figures are medians of the rounds; the relay is compared with the windowed raw path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time

import aiomqtt
from genealogy import PG_ADMIN, PgTarget, SqliteTarget, Target  # bench/genealogy.py
from sqlalchemy import text

from controller.events import Quantity, StepCompleted, StepCompletedData
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.logs import configure_logging
from controller.mes.config import MesConfig, mes_config
from controller.mes.relay import Relay, outbox_stats

WINDOW = 64


def sample_events(n: int, lot: str) -> list[StepCompleted]:
    results = {f"r{i}": Quantity(value=1.2345 * i, unit="µm") for i in range(8)}
    return [
        StepCompleted(
            lot_id=lot,
            tool_id="SPUT-1",
            step_id=f"step-{i}",
            data=StepCompletedData(
                job_id=f"{lot}-{i}",
                operation="deposit",
                setpoints={"power": "5 kW", "thickness": "300 nm"},
                results=results,
                in_spec=True,
            ),
        )
        for i in range(n)
    ]


def fill(db: Database, station: str, events: list[StepCompleted]) -> None:
    db.run_sync(lambda s: store.add_events(s, station, events))
    if db.url.startswith("sqlite"):  # the fill's deferred WAL checkpoint is not relay work
        db.run_sync(lambda s: s.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")))


async def raw_rate(config: MesConfig, payloads: list[bytes], window: int) -> float:
    b = config.broker
    assert b is not None
    topic = config.lot_events("RAW")
    async with aiomqtt.Client(b.host, b.port, max_inflight_messages=window, timeout=10) as c:
        gate = asyncio.Semaphore(window)

        async def one(p: bytes) -> None:
            async with gate:
                await c.publish(topic, p, qos=1, timeout=10)

        t0 = time.perf_counter()
        if window == 1:
            for p in payloads:
                await c.publish(topic, p, qos=1, timeout=10)
        else:
            await asyncio.gather(*(one(p) for p in payloads))
        return len(payloads) / (time.perf_counter() - t0)


async def relay_rate(
    config: MesConfig, url: str, events: list[dict[str, object]], *, outage: bool = False
) -> float:
    """Events/s from the moment they are committed to the outbox until the last one is
    acknowledged by the broker and marked sent. Connected relay, or (outage) a relay that
    starts with the events already waiting, connection set-up included."""
    db = Database(url)
    relay = Relay(db, config, window=WINDOW)
    stop = asyncio.Event()
    if outage:
        fill(db, config.station, events)
    task = asyncio.create_task(relay.run(stop))
    if not outage:
        while not relay.connected:  # noqa: ASYNC110 (polling is fine in a benchmark)
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # past the first (empty) outbox read
        await asyncio.to_thread(fill, db, config.station, events)
        relay.wake()
    t0 = time.perf_counter()
    while relay.sent < len(events):  # noqa: ASYNC110 (counted once marked sent)
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - t0
    stop.set()
    await task
    assert (await db.run(outbox_stats))["pending"] == 0
    db.close()
    return len(events) / elapsed


async def main(broker: str, n: int, rounds: int, targets: list[Target]) -> None:
    station = f"bench{secrets.token_hex(3)}"
    config = mes_config(broker, station=station)
    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        events = sample_events(n, f"B{r}")
        payloads = [json.dumps({**e, "station": station}).encode() for e in events]
        samples.setdefault("raw awaited", []).append(await raw_rate(config, payloads, 1))
        samples.setdefault("raw windowed", []).append(await raw_rate(config, payloads, WINDOW))
        for t in targets:
            samples.setdefault(t.name, []).append(await relay_rate(config, t.fresh(), events))
    med = {k: statistics.median(v) for k, v in samples.items()}
    raw = med["raw windowed"]
    print(f"MES events to Mosquitto at QoS 1, {n} events, medians of {rounds} rounds")
    print(f"  raw aiomqtt, awaited one by one  : {med['raw awaited']:8.0f} /s")
    print(f"  raw aiomqtt, {WINDOW} in flight        : {raw:8.0f} /s")
    for t in targets:
        print(
            f"  fabline relay, outbox on {t.name:10s}: {med[t.name]:8.0f} /s"
            f"  = {med[t.name] / raw:.0%} of raw windowed (target >= 80 %)"
        )
    # an outage: 10,000 events pile up, then the broker is back and the relay drains them
    for t in targets:
        rate = await relay_rate(config, t.fresh(), sample_events(10_000, "OUT"), outage=True)
        print(f"  drain 10,000 events after an outage ({t.name}): {10_000 / rate:.2f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--pg-admin", default=PG_ADMIN, help="PostgreSQL to create a bench db in")
    args = ap.parse_args()
    configure_logging("error")
    targets: list[Target] = []
    try:
        if args.db in ("sqlite", "both"):
            targets.append(SqliteTarget())
        if args.db in ("postgres", "both"):
            targets.append(PgTarget(args.pg_admin))
        asyncio.run(main(args.broker, args.events, args.rounds, targets))
    finally:
        for t in targets:
            t.close()
