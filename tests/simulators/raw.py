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


# --- HSMS / SECS-II (docs/tools/gem.md) ---------------------------------------------------------

SELECT_REQ = b"\xff\xff\x00\x00\x00\x01"  # header bytes 0-5 of a select.req (session FFFF)
LINKTEST_REQ = b"\xff\xff\x00\x00\x00\x05"


class RawHsms:
    """A bare asyncio HSMS client: 4-byte length, 10-byte header, SECS-II body as given.
    Unsolicited primaries (S6F11, S5F1) are kept in `primaries` and acknowledged with a
    literal ACK 0 when they carry the W-bit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.primaries: list[tuple[bytes, bytes]] = []
        self.system = 100

    @classmethod
    async def open(cls, line: Line, tool_id: str) -> RawHsms:
        t = line.tool(tool_id)
        return cls(*await asyncio.open_connection(t.host, t.port))

    def send(self, header: bytes, body: bytes = b"") -> None:
        assert len(header) == 10
        self.writer.write(struct.pack(">I", 10 + len(body)) + header + body)

    async def recv(self) -> tuple[bytes, bytes]:
        n = struct.unpack(">I", await asyncio.wait_for(self.reader.readexactly(4), 2))[0]
        data = await asyncio.wait_for(self.reader.readexactly(n), 2)
        return data[:10], data[10:]

    async def select(self) -> bytes:
        self.send(SELECT_REQ + b"\x00\x00\x00\x01")
        header, _ = await self.recv()
        return header

    async def ask(self, stream: int, function: int, body: bytes = b"") -> tuple[bytes, bytes]:
        """A primary with the W-bit on device id 0; returns the message that answers it
        (its reply, or an S9 report naming it)."""
        self.system += 1
        sys = struct.pack(">I", self.system)
        header = b"\x00\x00" + bytes([0x80 | stream, function]) + b"\x00\x00" + sys
        self.send(header, body)
        while True:
            h, b = await self.recv()
            if h[6:10] == sys or (h[2] == 9 and b[2 + 6 : 2 + 10] == sys):
                return h, b
            self.primaries.append((h, b))
            if h[2] & 0x80:  # acknowledge: S6F12 / S5F2 with <B 0x00>
                self.send(h[:2] + bytes([h[2] & 0x7F, h[3] + 1]) + h[4:], b"\x21\x01\x00")

    async def event(self, ceid: int) -> bytes:
        """Wait for the S6F11 of `ceid` (acknowledging it); returns its body."""
        ceid_bytes = b"\xb1\x04" + struct.pack(">I", ceid)
        while True:
            for h, b in self.primaries:
                if h[2:4] == b"\x86\x0b" and b[8:14] == ceid_bytes:
                    return b
            h, b = await self.recv()
            self.primaries.append((h, b))
            if h[2] & 0x80:
                self.send(h[:2] + bytes([h[2] & 0x7F, h[3] + 1]) + h[4:], b"\x21\x01\x00")

    def close(self) -> None:
        self.writer.close()


def a(text: str) -> bytes:
    """A SECS-II <A> item of up to 255 characters."""
    raw = text.encode()
    return b"\x41" + bytes([len(raw)]) + raw
