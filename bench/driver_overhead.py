"""Driver overhead next to the raw client, against the same simulator, in one run.

    .venv/bin/python bench/driver_overhead.py [--n 2000] [--rounds 3]

A `fabline sim` process (instant jobs) serves the tools, so client and server run on
separate cores as on a real line. For one SCPI tool (SPUT-1) and one Modbus tool (DICE-1)
it times `status()` and a whole short job (`run()`: start, poll, result) through the driver,
and the raw client doing the same reads and writes: PyVISA called directly for SCPI (the
fastest way to use it, no event loop), the pymodbus async client for Modbus. Figures are
medians of the rounds; the ratio is driver time / raw time (target ≤ 1.3).
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

import pyvisa
from pymodbus.client import AsyncModbusTcpClient

from controller.logs import configure_logging
from drivers.base import Job
from drivers.line import parse_line
from drivers.registry import make_driver

SPUT_JOB = {"target": "CU", "thickness": "300 nm", "power": "5 kW"}
DICE_JOB = {"blade": "HUB_30", "material": "SI", "stack_thickness": "100 µm",
            "cut_depth": "130 µm", "feed": "50 mm/s", "die_x": "5 mm", "die_y": "5 mm",
            "work_width": "20 mm"}  # fmt: skip
SCPI_STATUS = "TOOL:STAT?;:TOOL:ALAR?;:TOOL:CONS?;:TOOL:SET?;:SYST:ERR?"


def start_sim() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    home = tempfile.mkdtemp(prefix="fabline-bench-")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("fabline")), "sim", "--json", "--time-scale", "inf"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "FABLINE_HOME": home},
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def rate(n: int, seconds: float) -> float:
    return n / seconds


async def timed_async(n: int, fn: Callable[[int], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await fn(i)
    return rate(n, time.perf_counter() - t0)


def timed_sync(n: int, fn: Callable[[int], Any]) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return rate(n, time.perf_counter() - t0)


def raw_scpi(port: int, n: int, jobs: int, tag: str) -> tuple[float, float]:
    rm = pyvisa.ResourceManager("@py")
    inst: Any = rm.open_resource(f"TCPIP0::127.0.0.1::{port}::SOCKET")
    inst.read_termination = inst.write_termination = "\n"
    inst.timeout = 2000
    status = timed_sync(n, lambda i: inst.query(SCPI_STATUS))

    def job(i: int) -> None:
        jid = f"R{tag}-{i}"
        inst.query(
            f'JOB:NEW "{jid}",DEPOSIT;:JOB:PAR TARGET,CU;:JOB:PAR THICKNESS,300;'
            ":JOB:PAR POWER,5;:JOB:PAR PRESSURE,4;:JOB:PAR CHUCK_TEMP,25;:JOB:STAR;:SYST:ERR?"
        )
        inst.query(f'JOB:STAT? "{jid}";:SYST:ERR?')
        inst.query(f'JOB:RES? "{jid}";:SYST:ERR?')

    jobs_rate = timed_sync(jobs, job)
    inst.close()
    return status, jobs_rate


async def raw_modbus(port: int, n: int, jobs: int, tag: str) -> tuple[float, float]:
    c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await c.connect()
    status = await timed_async(n, lambda i: c.read_input_registers(0, count=114, device_id=1))
    params = [0, 1, 0, 100, 130, 0, 30, 50, 1.5, 5, 5, 0, 20, 0]
    pregs = [r for p in params for r in struct.unpack(">HH", struct.pack(">f", p))]

    async def job(i: int) -> None:
        jid = f"R{tag}-{i}".encode().ljust(32, b"\0")
        id_regs = list(struct.unpack(">16H", jid))
        await c.write_registers(0, [1, 1, *id_regs, 0, 0, *pregs], device_id=1)
        await c.read_input_registers(0, count=26, device_id=1)
        await c.write_registers(100, id_regs, device_id=1)
        await c.read_input_registers(200, count=68, device_id=1)

    jobs_rate = await timed_async(jobs, job)
    c.close()
    return status, jobs_rate


async def via_driver(line: Any, tool: str, params: dict[str, str], op: str, n: int, jobs: int,
                     tag: str) -> tuple[float, float]:  # fmt: skip
    d = make_driver(line.tool(tool))
    await d.connect()
    status = await timed_async(n, lambda i: d.status())
    jobs_rate = await timed_async(jobs, lambda i: d.run(Job(f"D{tag}-{i}", op, params)))
    await d.close()
    return status, jobs_rate


async def main(n: int, jobs: int, rounds: int) -> None:
    proc, described = start_sim()
    line = parse_line(described, "fabline sim")
    sput, dice = line.tool("SPUT-1").port, line.tool("DICE-1").port
    samples: dict[str, list[float]] = {}

    def keep(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    try:
        for r in range(rounds):
            s, j = await asyncio.to_thread(raw_scpi, sput, n, jobs, f"{r}")
            keep("scpi status raw", s)
            keep("scpi job raw", j)
            s, j = await via_driver(line, "SPUT-1", SPUT_JOB, "deposit", n, jobs, f"{r}")
            keep("scpi status driver", s)
            keep("scpi job driver", j)
            s, j = await raw_modbus(dice, n, jobs, f"{r}")
            keep("modbus status raw", s)
            keep("modbus job raw", j)
            s, j = await via_driver(line, "DICE-1", DICE_JOB, "dice", n, jobs, f"{r}")
            keep("modbus status driver", s)
            keep("modbus job driver", j)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()

    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"driver vs raw client, medians of {rounds} rounds ({n} status calls, {jobs} jobs)")
    print(f"{'path':<28}{'raw /s':>10}{'driver /s':>11}{'driver/raw time':>17}")
    for proto, what, label in (
        ("scpi", "status", "SCPI status (SPUT-1)"),
        ("scpi", "job", "SCPI short job"),
        ("modbus", "status", "Modbus status (DICE-1)"),
        ("modbus", "job", "Modbus short job"),
    ):
        raw, drv = med[f"{proto} {what} raw"], med[f"{proto} {what} driver"]
        print(f"{label:<28}{raw:>10.0f}{drv:>11.0f}{raw / drv:>16.2f}×")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="status calls per round")
    ap.add_argument("--jobs", type=int, default=300, help="jobs per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    configure_logging("error")
    asyncio.run(main(args.n, args.jobs, args.rounds))
