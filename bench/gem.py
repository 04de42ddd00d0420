"""GEM driver round trips next to raw HSMS request/reply on the same socket, in one run.

    .venv/bin/python bench/gem.py [--n 2000] [--jobs 300] [--rounds 3]

A `fabline sim` process (instant jobs) serves DICE-1 as GEM equipment, so client and server
run on separate cores as on a real line. Per round, on one connection:

- status: `driver.status()` (one S1F3 of the status SVIDs, decoded into a ToolStatus)
  against the same S1F3 as pre-encoded bytes through `HsmsConnection.exchange` (framing and
  system-byte matching only: no SECS-II encoding, decoding or GEM logic);
- short job: `driver.run(job)` (S2F41 PP-SELECT, S2F41 START with HCACK 4 and its
  JOB_STARTED event, the completion event; the process program is already on the tool)
  against the same two S2F41 exchanges as bytes plus the wait for the completion event;
- and, on a connection of its own after the driver closed, a bare asyncio client (struct
  frames, no fabline code at all) doing the status exchange: what the socket itself costs.

Figures are medians of the rounds; the ratio is driver time / raw time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from controller.logs import configure_logging
from drivers.base import Job
from drivers.gem_driver import GemDriver
from drivers.line import parse_line
from drivers.protocols import gem_map as gm
from drivers.protocols.secs2 import U4, A, L, encode
from drivers.registry import make_driver

DICE_JOB = {"blade": "HUB_30", "material": "SI", "stack_thickness": "100 µm",
            "cut_depth": "130 µm", "feed": "50 mm/s", "die_x": "5 mm", "die_y": "5 mm",
            "work_width": "20 mm"}  # fmt: skip
LINE = "line: bench-gem\ntools:\n  - {id: DICE-1, kind: dicing, protocol: gem}\n"


def start_sim() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    home = tempfile.mkdtemp(prefix="fabline-bench-")
    line = Path(home) / "line.yaml"
    line.write_text(LINE)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("fabline")), "sim", "--json", "--time-scale", "inf",
         "--line", str(line)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "FABLINE_HOME": home},
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


async def timed(n: int, fn: Callable[[int], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await fn(i)
    return n / (time.perf_counter() - t0)


def status_body(d: GemDriver) -> bytes:
    """The S1F3 body the driver's status() sends."""
    names = ["CONTROL_STATE", "PROCESS_STATE", "JOB_ID", "PROGRESS", "ALARMS_SET", "WARNINGS_SET"]
    names += [gm.consumable_level(c.name) for c in d.interface.consumables]
    names += [gm.setup_installed(f.name) for f in d.interface.setup]
    return encode(L(*(U4(d.map.vid(n)) for n in names)))


async def driver_round(line: Any, n: int, jobs: int, tag: str) -> dict[str, float]:
    d = make_driver(line.tool("DICE-1"), timeout=2.0)
    assert isinstance(d, GemDriver)
    await d.connect()
    await d.run(Job(f"W{tag}", "dice", DICE_JOB))  # downloads the process program once
    conn = d.link.conn
    assert conn is not None
    body = status_body(d)
    out = {
        "status raw": await timed(n, lambda i: conn.exchange(1, 3, body)),
        "status driver": await timed(n, lambda i: d.status()),
    }
    op, values = d.validate(Job("X", "dice", DICE_JOB))  # the program the warm-up job stored
    ppid = gm.ppid(d.kind, op, gm.pp_body(d.interface, op, values))
    select = encode(L(A("PP-SELECT"), L(L(A(gm.CP_PPID), A(ppid)))))

    async def raw_job(i: int) -> None:
        job_id = f"R{tag}-{i}"
        done = d.expect_event("DICE_COMPLETED", job_id)
        await conn.exchange(2, 41, select)
        await conn.exchange(2, 41, encode(L(A("START"), L(L(A(gm.CP_JOBID), A(job_id))))))
        await asyncio.wait_for(done, 2.0)

    out["job raw"] = await timed(jobs, raw_job)
    out["job driver"] = await timed(jobs, lambda i: d.run(Job(f"D{tag}-{i}", "dice", DICE_JOB)))
    await d.close()
    return out


async def bare_status(host: str, port: int, n: int, body: bytes) -> float:
    """A client with no fabline code: select, S1F13, S1F17, then S1F3 round trips."""
    reader, writer = await asyncio.open_connection(host, port)
    system = 0

    async def ask(header: bytes, payload: bytes = b"") -> None:
        writer.write(struct.pack(">I", 10 + len(payload)) + header + payload)
        n = struct.unpack(">I", await reader.readexactly(4))[0]
        await reader.readexactly(n)

    def data(stream: int, function: int) -> bytes:
        nonlocal system
        system += 1
        return struct.pack(">HBBBBI", 0, 0x80 | stream, function, 0, 0, system)

    await ask(b"\xff\xff\x00\x00\x00\x01\x00\x00\x00\x00")  # select.req
    await ask(data(1, 13), b"\x01\x00")
    await ask(data(1, 17))
    rate = await timed(n, lambda i: ask(data(1, 3), body))
    writer.close()
    return rate


async def main(n: int, jobs: int, rounds: int) -> None:
    proc, described = start_sim()
    line = parse_line(described, "fabline sim")
    entry = line.tool("DICE-1")
    samples: dict[str, list[float]] = {}
    try:
        for r in range(rounds):
            for k, v in (await driver_round(line, n, jobs, str(r))).items():
                samples.setdefault(k, []).append(v)
            probe = make_driver(entry)
            assert isinstance(probe, GemDriver)
            body = status_body(probe)
            samples.setdefault("status bare", []).append(
                await bare_status(entry.host, entry.port, n, body)
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()

    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"GEM driver vs raw HSMS on the same socket, medians of {rounds} rounds"
          f" ({n} status calls, {jobs} jobs)")  # fmt: skip
    print(f"{'path':<34}{'raw /s':>10}{'driver /s':>11}{'driver/raw time':>17}")
    for what, label in (
        ("status", "GEM status (S1F3)"),
        ("job", "GEM short job (S2F41 ×2 + event)"),
    ):
        raw, drv = med[f"{what} raw"], med[f"{what} driver"]
        print(f"{label:<34}{raw:>10.0f}{drv:>11.0f}{raw / drv:>16.2f}×")
    bare = med["status bare"]
    print(f"{'S1F3, bare asyncio client':<34}{bare:>10.0f}{'':>11}"
          f"{bare / med['status raw']:>16.2f}× (raw exchange / bare)")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="status calls per round")
    ap.add_argument("--jobs", type=int, default=300, help="jobs per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    configure_logging("error")
    asyncio.run(main(args.n, args.jobs, args.rounds))
