"""Raw clients that speak the literal wire protocol of the simulated tools.

Deliberately independent of drivers/ and drivers/interfaces/: nothing here imports a driver,
an interface or a transport, so the wire tests that use these helpers check the simulators
against docs/tools/*.md themselves. If a driver or an interface drifts from the sheets, those
tests still hold the sheets' line; if a simulator drifts, they break. Only drivers.line.Line is
used, to find a tool's host and port.

- SCPI over a TCP socket (docs/tools/scpi-commands.md): `RawScpi`, a bare asyncio line client,
  and `stock_idn`, a stock pyvisa client asking `*IDN?`.
- Modbus TCP (docs/tools/modbus-map.md): `client`, a stock pymodbus client, and the register
  codecs `f32`, `unf32`, `text`, `untext`, `job_block` and `reason`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence

import pyvisa
from pymodbus.client import AsyncModbusTcpClient

from drivers.line import Line

# --- SCPI -------------------------------------------------------------------------------------


class RawScpi:
    """A bare asyncio line client: what any SCPI-over-socket program does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> RawScpi:
        return cls(*await asyncio.open_connection(host, port))

    async def ask(self, line: str) -> str:
        """Send one line and return the one line of the reply."""
        await self.send(line)
        return (await asyncio.wait_for(self.reader.readline(), 2)).decode().strip()

    async def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def error(self) -> tuple[int, str]:
        """Pop the oldest entry of the error queue: `SYST:ERR?` as (code, quoted text)."""
        code, text = (await self.ask("SYST:ERR?")).split(",", 1)
        return int(code), text

    async def finish(self, job_id: str) -> dict[str, float]:
        """Poll the job to its end; return its results by name (see `finish_warned`)."""
        return (await self.finish_warned(job_id))[0]

    async def finish_warned(self, job_id: str) -> tuple[dict[str, float], list[int]]:
        """Poll the job to its end; return its results by name and its warning codes."""
        while True:
            state, _progress, alarm = (await self.ask(f'JOB:STAT? "{job_id}"')).split(",")
            assert alarm == "0"
            if state == "COMPLETE":
                break
            assert state == "RUNNING"
        # <state>,<OPERATION>,<alarm>,<n warnings>{,<code>}{,<NAME>,<value>}
        fields = (await self.ask(f'JOB:RES? "{job_id}"')).split(",")
        assert fields[0] == "COMPLETE" and fields[2] == "0"
        n = int(fields[3])
        warnings, pairs = [int(c) for c in fields[4 : 4 + n]], fields[4 + n :]
        return dict(zip(pairs[0::2], map(float, pairs[1::2]), strict=True)), warnings

    def close(self) -> None:
        self.writer.close()


async def stock_idn(port: int) -> str:
    """`*IDN?` through a stock pyvisa-py socket resource on 127.0.0.1, off the event loop."""
    rm = pyvisa.ResourceManager("@py")

    def idn() -> str:
        inst = rm.open_resource(f"TCPIP0::127.0.0.1::{port}::SOCKET")
        assert isinstance(inst, pyvisa.resources.MessageBasedResource)
        inst.read_termination = inst.write_termination = "\n"
        inst.timeout = 2000
        try:
            return str(inst.query("*IDN?"))
        finally:
            inst.close()

    return await asyncio.to_thread(idn)


# --- Modbus TCP -------------------------------------------------------------------------------


def f32(v: float) -> list[int]:
    """An IEEE-754 f32 as two registers, high word first."""
    return list(struct.unpack(">HH", struct.pack(">f", v)))


def unf32(regs: Sequence[int]) -> float:
    """Two registers, high word first, as an IEEE-754 f32."""
    return float(struct.unpack(">f", struct.pack(">HH", *regs))[0])


def text(s: str, regs: int) -> list[int]:
    """An ASCII string in `regs` registers, two characters each, high byte first, NUL-padded."""
    return list(struct.unpack(f">{regs}H", s.encode().ljust(2 * regs, b"\0")))


def untext(regs: Sequence[int]) -> bytes:
    """A NUL-padded string register block, up to its first NUL."""
    return struct.pack(f">{len(regs)}H", *regs).split(b"\0", 1)[0]


def job_block(op: int, job_id: str, params: Sequence[float]) -> list[int]:
    """The one FC16 write from holding register 0 that starts a job."""
    block = [1, op, *text(job_id, 16), 0, 0]  # START, operation code, job id at HR 2, 2 spare
    for p in params:  # parameter slot i at HR 20 + 2i
        block += f32(p)
    return block


async def client(line: Line, tool_id: str) -> AsyncModbusTcpClient:
    """A stock pymodbus client, connected to the tool's Modbus TCP port."""
    t = line.tool(tool_id)
    c = AsyncModbusTcpClient(t.host, port=t.port, timeout=2, retries=0)
    assert await c.connect()
    return c


async def reason(c: AsyncModbusTcpClient) -> bytes:
    """The refusal text of the last refused write (input registers 26-57), NULs stripped."""
    regs = (await c.read_input_registers(26, count=32, device_id=1)).registers
    return struct.pack(">32H", *regs).rstrip(b"\0")
