"""Modbus TCP over pymodbus' async client.

One request at a time per link (a lock, not pymodbus' own queueing, so reconnects are
serialised too). pymodbus' own retries and reconnects are switched off: a resent START could
run a job twice, so only idempotent reads are resent here, once, after a reconnect. Garbage
on the wire makes pymodbus wait for its timeout; a packet trace tells that case apart so the
caller gets `GarbledReply`, not `ToolTimeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse

from drivers.errors import GarbledReply, ToolBusy, ToolError, ToolOffline, ToolTimeout, ValueRefused
from drivers.protocols import modbus_map as mm
from drivers.transport.backoff import Backoff, retry_until

log = structlog.get_logger("fabline.modbus")
# pymodbus logs every bad frame as a hex dump at ERROR; fabline reports them as typed errors.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

EXCEPTION_NAMES = {
    mm.EXC_ILLEGAL_FUNCTION: "illegal function",
    mm.EXC_ILLEGAL_ADDRESS: "illegal data address",
    mm.EXC_ILLEGAL_VALUE: "illegal data value",
    mm.EXC_DEVICE_FAILURE: "server device failure",
    mm.EXC_DEVICE_BUSY: "server device busy",
}


class ModbusLink(Protocol):
    """What a driver needs of a Modbus link: `ModbusTransport`, or a transcript fake in tests
    (`drivers.testing.ModbusTranscript`)."""

    async def connect(self, timeout: float | None = None) -> None: ...

    async def read_input(
        self, address: int, count: int, *, timeout: float | None = None
    ) -> list[int]: ...

    async def read_holding(
        self, address: int, count: int, *, timeout: float | None = None
    ) -> list[int]: ...

    async def write(
        self, address: int, values: Sequence[int], *, timeout: float | None = None
    ) -> None: ...

    async def identify(self, *, timeout: float | None = None) -> dict[int, str]: ...

    async def close(self) -> None: ...


class ModbusTransport:
    """One Modbus TCP link to one tool."""

    def __init__(
        self,
        tool_id: str,
        host: str,
        port: int,
        *,
        device_id: int = mm.DEVICE_ID,
        timeout: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.tool_id = tool_id
        self.host = host
        self.port = port
        self.device_id = device_id
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._rx_unparsed = b""
        self._client_no = 0  # which client the connection callbacks belong to
        self._inflight: asyncio.Task[Any] | None = None  # the task awaiting a reply
        self._dropped = False  # set when the connection dropped under _inflight

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self, timeout: float | None = None) -> None:
        async with self._lock:
            await self._ensure_open(time.monotonic() + (timeout or self.timeout))

    async def close(self) -> None:
        async with self._lock:
            self._discard()

    async def read_input(
        self, address: int, count: int, *, timeout: float | None = None
    ) -> list[int]:
        return await self._read(
            lambda c: c.read_input_registers(address, count=count, device_id=self.device_id),
            f"IR {address}+{count}",
            timeout,
            count,
        )

    async def read_holding(
        self, address: int, count: int, *, timeout: float | None = None
    ) -> list[int]:
        return await self._read(
            lambda c: c.read_holding_registers(address, count=count, device_id=self.device_id),
            f"HR {address}+{count}",
            timeout,
            count,
        )

    async def _read(
        self,
        fn: Callable[[AsyncModbusTcpClient], Awaitable[Any]],
        where: str,
        timeout: float | None,
        count: int,
    ) -> list[int]:
        regs: list[int] = await self._call(fn, where, timeout, idempotent=True, expect=count)
        return regs

    async def write(
        self, address: int, values: Sequence[int], *, timeout: float | None = None
    ) -> None:
        """FC6 for one register, FC16 for several. Never resent."""
        vals = list(values)
        if len(vals) == 1:

            def fn(c: AsyncModbusTcpClient) -> Awaitable[Any]:
                return c.write_register(address, vals[0], device_id=self.device_id)
        else:

            def fn(c: AsyncModbusTcpClient) -> Awaitable[Any]:
                return c.write_registers(address, vals, device_id=self.device_id)

        await self._call(fn, f"HR {address}", timeout, idempotent=False, expect=None)

    async def identify(self, *, timeout: float | None = None) -> dict[int, str]:
        """Read Device Identification (FC 43 / MEI 14), extended stream (all objects)."""
        rr = await self._call(
            lambda c: c.read_device_information(read_code=3, device_id=self.device_id),
            "FC43/14",
            timeout,
            idempotent=True,
            expect=None,
        )
        info: dict[int, bytes] = rr.information
        return {k: v.decode("ascii", errors="replace") for k, v in info.items()}

    # -- internals ------------------------------------------------------------------------

    async def _call(
        self,
        fn: Callable[[AsyncModbusTcpClient], Awaitable[Any]],
        where: str,
        timeout: float | None,
        *,
        idempotent: bool,
        expect: int | None,
    ) -> Any:
        async with self._lock:
            deadline = time.monotonic() + (timeout or self.timeout)
            try:
                return await self._once(fn, where, deadline, expect)
            except ToolOffline:
                if not idempotent or time.monotonic() >= deadline:
                    raise
                log.info("modbus.resend", tool_id=self.tool_id, where=where)
                return await self._once(fn, where, deadline, expect)

    async def _once(
        self,
        fn: Callable[[AsyncModbusTcpClient], Awaitable[Any]],
        where: str,
        deadline: float,
        expect: int | None,
    ) -> Any:
        await self._ensure_open(deadline)
        client = self._client
        assert client is not None
        remaining = max(0.001, deadline - time.monotonic())
        client.comm_params.timeout_connect = remaining
        self._rx_unparsed = b""
        task = asyncio.current_task()
        assert task is not None
        self._inflight, self._dropped = task, False
        try:
            async with asyncio.timeout(remaining + 0.5):
                rr = await fn(client)
        except asyncio.CancelledError:
            if not self._dropped:
                raise  # a real cancellation from our caller
            task.uncancel()
            self._discard()
            raise ToolOffline(
                self.tool_id, "connection lost while waiting for the reply", where
            ) from None
        except (TimeoutError, ModbusIOException):
            garbage = self._rx_unparsed
            self._discard()  # resynchronise: a late reply must not answer the next request
            if garbage:
                raise GarbledReply(
                    self.tool_id, f"unparseable reply {garbage[:16].hex(' ')}", where
                ) from None
            raise ToolTimeout(self.tool_id, f"no reply within {remaining:.3g} s", where) from None
        except ConnectionException as e:
            self._discard()
            raise ToolOffline(self.tool_id, f"connection lost ({e})", where) from None
        except ModbusException as e:
            self._discard()
            raise GarbledReply(self.tool_id, f"bad reply ({e})", where) from None
        finally:
            self._inflight = None
        if isinstance(rr, ExceptionResponse) or rr.isError():
            code = getattr(rr, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "exception")
            cls = ToolBusy if code == mm.EXC_DEVICE_BUSY else ValueRefused
            raise cls(self.tool_id, f"refused: exception {code} ({name})", where)
        if expect is not None and len(rr.registers) != expect:
            self._discard()
            raise GarbledReply(
                self.tool_id, f"expected {expect} registers, got {len(rr.registers)}", where
            )
        return rr.registers if expect is not None else rr

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_unparsed = data
        return data

    def _watch(self, client_no: int) -> Callable[[bool], None]:
        """Connection callback bound to one client. pymodbus would wait out the whole timeout
        for a reply that cannot come once the connection drops; cancel the waiting request
        instead. Bound to the client so a stale client's close never hits its successor."""

        def on_connect(up: bool) -> None:
            if up or client_no != self._client_no:
                return
            log.info("modbus.disconnected", tool_id=self.tool_id)
            if self._inflight is not None and not self._inflight.done():
                self._dropped = True
                self._inflight.cancel()

        return on_connect

    async def _ensure_open(self, deadline: float) -> None:
        if self._client is not None and self._client.connected:
            return
        self._discard()

        async def attempt() -> None:
            remaining = max(0.05, deadline - time.monotonic())
            self._client_no += 1
            client = AsyncModbusTcpClient(
                self.host,
                port=self.port,
                timeout=remaining,
                retries=0,
                reconnect_delay=0,
                name=self.tool_id,
                trace_packet=self._trace,
                trace_connect=self._watch(self._client_no),
            )
            try:
                ok = await asyncio.wait_for(client.connect(), remaining + 0.5)
            except (TimeoutError, OSError, ModbusException):
                ok = False
            if not ok:
                client.close()
                raise ToolOffline(
                    self.tool_id, f"cannot connect to {self.host}:{self.port}", "connect"
                )
            self._client = client
            log.info("modbus.connected", tool_id=self.tool_id, host=self.host, port=self.port)

        await retry_until(attempt, deadline=deadline, backoff=self.backoff, retry_on=(ToolError,))

    def _discard(self) -> None:
        client, self._client = self._client, None
        self._client_no += 1  # callbacks of the closing client no longer count
        if client is not None:
            client.close()
