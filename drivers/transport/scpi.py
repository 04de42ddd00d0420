"""SCPI over PyVISA (pyvisa-py by default; any VISA resource string).

PyVISA is blocking; the event loop must never wait on it. Each instrument gets one worker
thread that opens and closes the link and carries the I/O of resources that give no socket
to watch (GPIB, USB, serial, or another VISA library). For pyvisa-py TCPIP SOCKET resources
the I/O stays on the event loop without ever blocking it: a message is a few hundred bytes
written into an idle socket, and PyVISA reads the reply only once the loop has seen a whole
line arrive. That saves two thread hops per message — on a 2-core VM a hop costs more than
the round trip itself (bench/driver_overhead.py measures both).

Every message is sent as `<units>;:SYST:ERR?`, so one round trip both runs the command and
tells whether the tool refused it. After a timeout or a garbled reply the link is dropped,
because a late or partial reply would otherwise answer the next message; the next call
reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import pyvisa
import pyvisa.constants
import pyvisa.errors
import structlog

from drivers.errors import (
    GarbledReply,
    ToolBusy,
    ToolError,
    ToolOffline,
    ToolTimeout,
    ValueRefused,
)
from drivers.protocols.scpi_syntax import parse_error, split_top
from drivers.transport.backoff import Backoff, retry_until

log = structlog.get_logger("fabline.scpi")
T = TypeVar("T")

# SCPI errors that mean "not now" rather than "never": -213 init ignored (busy), -200 in alarm
BUSY_CODES = (-213, -200)

_rm_lock = threading.Lock()
_resource_managers: dict[str, pyvisa.ResourceManager] = {}


class _NoReply(Exception):
    """No reply line arrived within the call's timeout."""


class _StaleLink(Exception):
    """Before sending: the tool closed the link or left unread bytes. Nothing was sent."""


def _resource_manager(library: str) -> pyvisa.ResourceManager:
    with _rm_lock:
        rm = _resource_managers.get(library)
        if rm is None:
            rm = _resource_managers[library] = pyvisa.ResourceManager(library)
        return rm


def _raw_socket(inst: Any) -> tuple[socket.socket | None, Any]:
    """The socket under a pyvisa-py TCPIP SOCKET resource, or (None, None)."""
    sessions = getattr(getattr(inst, "visalib", None), "sessions", {})
    session = sessions.get(getattr(inst, "session", None))
    sock = getattr(session, "interface", None)
    if isinstance(sock, socket.socket) and hasattr(session, "_pending_buffer"):
        return sock, session
    return None, None


def socket_resource(host: str, port: int) -> str:
    """VISA resource string of a raw SCPI socket."""
    return f"TCPIP0::{host}::{port}::SOCKET"


class ScpiLink(Protocol):
    """What a driver needs of an SCPI link: `ScpiTransport`, or a transcript fake in tests
    (`drivers.testing.ScpiTranscript`)."""

    identity: str | None

    async def connect(self, timeout: float | None = None) -> str: ...

    async def query(
        self, message: str, *, timeout: float | None = None, idempotent: bool = True
    ) -> list[str]: ...

    async def command(self, message: str, *, timeout: float | None = None) -> None: ...

    async def close(self) -> None: ...


class ScpiTransport:
    """One SCPI instrument. Safe to share between tasks: calls run one at a time, in order."""

    # extra seconds the loop waits beyond the VISA timeout before abandoning a stuck worker
    _GUARD = 1.0

    def __init__(
        self,
        tool_id: str,
        resource: str,
        *,
        timeout: float = 2.0,
        backoff: Backoff | None = None,
        visa_library: str = "@py",
    ) -> None:
        self.tool_id = tool_id
        self.resource = resource
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self._library = visa_library
        self._inst: Any = None
        # pyvisa-py's socket and session, when it exposes them (the event-loop path)
        self._sock: socket.socket | None = None
        self._session: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self.identity: str | None = None

    # -- public surface -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._inst is not None

    async def connect(self, timeout: float | None = None) -> str:
        """Open the link (retrying with backoff within `timeout`) and return `*IDN?`."""
        async with self._lock:
            await self._ensure_open(time.monotonic() + (timeout or self.timeout))
            assert self.identity is not None
            return self.identity

    async def close(self) -> None:
        async with self._lock:
            await self._discard()
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    async def query(
        self, message: str, *, timeout: float | None = None, idempotent: bool = True
    ) -> list[str]:
        """Send `message` (one or more `;`-separated units) and return the reply units.

        The tool's error queue is read in the same round trip: a refusal raises
        `ValueRefused` (or `ToolBusy`) with the tool's code and text. An idempotent message
        is sent once more if the link dropped under it."""
        async with self._lock:
            deadline = time.monotonic() + (timeout or self.timeout)
            try:
                return await self._exchange(message, deadline)
            except ToolOffline:
                if not idempotent or time.monotonic() >= deadline:
                    raise
                log.info("scpi.resend", tool_id=self.tool_id, message=message)
                return await self._exchange(message, deadline)

    async def command(self, message: str, *, timeout: float | None = None) -> None:
        """Send commands that produce no reply; raise if the tool refused any of them."""
        units = await self.query(message, timeout=timeout, idempotent=False)
        if units:
            raise GarbledReply(self.tool_id, f"unexpected reply {units!r}", message)

    # -- one message ----------------------------------------------------------------------

    async def _exchange(self, message: str, deadline: float) -> list[str]:
        line = f"{message};:SYST:ERR?"
        while True:
            await self._ensure_open(deadline)
            remaining = max(0.001, deadline - time.monotonic())
            try:
                if self._sock is not None:
                    reply = await self._on_loop(line, remaining, message)
                else:
                    reply = await self._in_worker(
                        lambda: self._blocking_roundtrip(line), message, remaining
                    )
                break
            except _StaleLink:
                log.info("scpi.reconnect", tool_id=self.tool_id, reason="closed or stale link")
                await self._discard()
        try:
            units = split_top(reply, ";")
            code, text = parse_error(units[-1])
        except ValueError:
            await self._discard()
            raise GarbledReply(self.tool_id, f"garbled reply {reply[:80]!r}", message) from None
        if code != 0:
            await self._drain_errors()
            cls = ToolBusy if code in BUSY_CODES else ValueRefused
            raise cls(self.tool_id, f"refused: {code} {text}", message, code=code)
        return units[:-1]

    async def _on_loop(self, line: str, timeout: float, where: str) -> str:
        """Write, wait on the loop for a whole reply line, then let PyVISA read it."""
        sock = self._sock
        assert sock is not None
        readable, writable, _ = select.select([sock], [sock], [], 0)
        if readable or not writable or self._session._pending_buffer:
            # bytes before we asked (EOF or a late reply), or a tool that stopped reading
            raise _StaleLink
        try:
            self._inst.write(line)
            await self._line_ready(sock, timeout)
            reply: str = self._inst.read()
            return reply
        except BaseException as e:
            raise await self._io_error(e, where, timeout) from None

    async def _line_ready(self, sock: socket.socket, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def check() -> None:
            if ready.done():
                return
            try:
                data = sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as e:
                ready.set_exception(e)
                return
            if not data:
                ready.set_exception(ConnectionResetError("the tool closed the connection"))
            elif b"\n" in data:
                ready.set_result(None)

        fd = sock.fileno()
        loop.add_reader(fd, check)
        try:
            async with asyncio.timeout(timeout):
                await ready
        except TimeoutError:
            raise _NoReply from None
        finally:
            loop.remove_reader(fd)

    def _blocking_roundtrip(self, line: str) -> str:
        """Worker-thread path: PyVISA's own timeout bounds the read."""
        inst = self._inst
        if inst is None:
            raise ConnectionResetError("link closed")
        inst.write(line)
        reply: str = inst.read()
        return reply

    async def _drain_errors(self) -> None:
        """Clear the rest of the error queue so the next call starts clean."""
        with contextlib.suppress(ToolError, _StaleLink):
            await self._exchange_raw("*CLS;:SYST:ERR?")

    async def _exchange_raw(self, line: str) -> str:
        if self._sock is not None:
            return await self._on_loop(line, 1.0, line)
        return await self._in_worker(lambda: self._blocking_roundtrip(line), line, 1.0)

    # -- link management ------------------------------------------------------------------

    async def _ensure_open(self, deadline: float) -> None:
        if self._inst is not None:
            return

        async def attempt() -> None:
            remaining = max(0.05, deadline - time.monotonic())
            await self._in_worker(lambda: self._open(remaining), "open", remaining)
            if self._sock is not None:
                # on the loop, so the deadline bounds the whole reply: a tool trickling a
                # byte at a time would keep a blocking read (and the worker) busy for ever
                try:
                    reply = await self._on_loop(
                        "*IDN?", max(0.05, deadline - time.monotonic()), "*IDN?"
                    )
                except _StaleLink:  # closed (or talking) before we asked: not our tool yet
                    await self._discard()
                    raise ToolOffline(self.tool_id, "closed on connect", "*IDN?") from None
                self.identity = reply.strip()
            log.info("scpi.connected", tool_id=self.tool_id, resource=self.resource)

        await retry_until(attempt, deadline=deadline, backoff=self.backoff, retry_on=(ToolError,))

    def _open(self, timeout: float) -> None:
        rm = _resource_manager(self._library)
        with _rm_lock:
            inst: Any = rm.open_resource(self.resource, open_timeout=int(timeout * 1000))
        try:
            inst.read_termination = "\n"
            inst.write_termination = "\n"
            inst.timeout = max(1, int(timeout * 1000))
            sock, session = _raw_socket(inst)
            if sock is None:  # no socket to watch: identify here, bounded by VISA's timeout
                inst.write("*IDN?")
                self.identity = inst.read().strip()
            inst.timeout = max(1, int(self.timeout * 1000))
        except BaseException:
            inst.close()
            raise
        self._inst = inst
        self._sock, self._session = sock, session

    async def _in_worker(self, fn: Callable[[], T], where: str, timeout: float) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"scpi-{self.tool_id}")
        fut = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        try:
            async with asyncio.timeout(timeout + self._GUARD):
                return await fut
        except TimeoutError:
            # The worker is stuck beyond its VISA timeout: abandon it and its link.
            self._abandon_worker()
            raise ToolTimeout(self.tool_id, f"no reply within {timeout:.3g} s", where) from None
        except BaseException as e:
            raise await self._io_error(e, where, timeout) from None

    async def _io_error(self, e: BaseException, where: str, timeout: float) -> BaseException:
        """Map a failure of one exchange to the typed error the caller sees; drop the link
        unless nothing was sent."""
        if isinstance(e, _StaleLink | ToolError | asyncio.CancelledError):
            return e
        await self._discard()
        if isinstance(e, _NoReply) or (
            isinstance(e, pyvisa.errors.VisaIOError)
            and e.error_code == pyvisa.constants.StatusCode.error_timeout
        ):
            return ToolTimeout(self.tool_id, f"no reply within {timeout:.3g} s", where)
        if isinstance(e, UnicodeDecodeError):
            return GarbledReply(self.tool_id, f"reply is not text ({e.reason})", where)
        if isinstance(e, pyvisa.errors.VisaIOError):
            return ToolOffline(self.tool_id, f"I/O error: {e.description}", where)
        if isinstance(e, Exception):
            return ToolOffline(self.tool_id, f"link failed: {e}", where)
        return e

    async def _discard(self) -> None:
        inst, self._inst = self._inst, None
        self._sock = self._session = None
        if inst is None or self._executor is None:
            return
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self._executor, inst.close), 1.0
            )
        except Exception:
            self._abandon_worker()

    def _abandon_worker(self) -> None:
        self._inst = self._sock = self._session = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
