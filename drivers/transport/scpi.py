"""SCPI over PyVISA (pyvisa-py by default; any VISA resource string).

PyVISA is blocking, so each instrument gets one worker thread: its I/O is serialised and the
event loop never blocks. Every message is sent as `<units>;:SYST:ERR?`, so one round trip both
runs the command and tells whether the tool refused it. After a timeout or a garbled reply
the link is dropped, because a late or partial reply would otherwise be read as the answer to
the next message; the next call reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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
from drivers.interfaces.scpi_syntax import parse_error, split_top
from drivers.transport.backoff import Backoff, retry_until

log = structlog.get_logger("fabline.scpi")
T = TypeVar("T")

# SCPI errors that mean "not now" rather than "never": -213 init ignored (busy), -200 in alarm
BUSY_CODES = (-213, -200)

_rm_lock = threading.Lock()
_resource_managers: dict[str, pyvisa.ResourceManager] = {}


class _NoReply(Exception):
    """Raised in the worker when no reply byte arrived within the call's timeout."""


def _resource_manager(library: str) -> pyvisa.ResourceManager:
    with _rm_lock:
        rm = _resource_managers.get(library)
        if rm is None:
            rm = _resource_managers[library] = pyvisa.ResourceManager(library)
        return rm


def socket_resource(host: str, port: int) -> str:
    """VISA resource string of a raw SCPI socket."""
    return f"TCPIP0::{host}::{port}::SOCKET"


class ScpiTransport:
    """One SCPI instrument. Safe to share between tasks: calls run one at a time, in order."""

    # extra seconds the event loop waits beyond the VISA timeout before abandoning a worker
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
        `ValueRefused` naming the tool's code and text. An idempotent message is sent once
        more if the link dropped under it."""
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

    # -- internals ------------------------------------------------------------------------

    async def _exchange(self, message: str, deadline: float) -> list[str]:
        await self._ensure_open(deadline)
        if not await self._in_worker(self._link_is_clean, message, 1.0):
            log.info("scpi.reconnect", tool_id=self.tool_id, reason="peer closed or stale bytes")
            await self._discard()
            await self._ensure_open(deadline)
        line = f"{message};:SYST:ERR?"
        remaining = max(0.001, deadline - time.monotonic())
        reply = await self._in_worker(
            lambda: self._roundtrip(line, remaining), message, remaining
        )
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

    async def _drain_errors(self) -> None:
        """Clear the rest of the error queue so the next call starts clean."""
        try:
            await self._in_worker(lambda: self._roundtrip("*CLS;:SYST:ERR?", 1.0), "*CLS", 1.0)
        except ToolError:
            pass

    # pyvisa-py reads a socket the tool closed as "no data yet" until the timeout. Where the
    # backend exposes its socket, watch it directly; other VISA backends report it themselves.

    def _socket(self) -> tuple[socket.socket, Any] | None:
        inst = self._inst
        sessions = getattr(getattr(inst, "visalib", None), "sessions", {})
        session = sessions.get(getattr(inst, "session", None))
        sock = getattr(session, "interface", None)
        return (sock, session) if isinstance(sock, socket.socket) else None

    def _link_is_clean(self) -> bool:
        """False if the tool closed the link or left unread bytes (a late reply)."""
        found = self._socket()
        if found is None:
            return True
        sock, session = found
        if getattr(session, "_pending_buffer", b""):
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable

    def _await_reply(self, timeout: float) -> None:
        found = self._socket()
        if found is None or getattr(found[1], "_pending_buffer", b""):
            return
        readable, _, _ = select.select([found[0]], [], [], timeout)
        if not readable:
            raise _NoReply
        if found[0].recv(1, socket.MSG_PEEK) == b"":
            raise ConnectionResetError("the tool closed the connection")

    def _roundtrip(self, line: str, timeout: float) -> str:
        inst = self._inst
        if inst is None:
            raise ConnectionResetError("link closed")
        inst.timeout = max(1, int(timeout * 1000))
        inst.write(line)
        self._await_reply(timeout)
        reply: str = inst.read()
        return reply

    async def _ensure_open(self, deadline: float) -> None:
        if self._inst is not None:
            return

        async def attempt() -> None:
            remaining = max(0.05, deadline - time.monotonic())
            await self._in_worker(lambda: self._open(remaining), "open", remaining)

        await retry_until(attempt, deadline=deadline, backoff=self.backoff, retry_on=(ToolError,))

    def _open(self, timeout: float) -> None:
        rm = _resource_manager(self._library)
        with _rm_lock:
            inst: Any = rm.open_resource(self.resource, open_timeout=int(timeout * 1000))
        try:
            inst.read_termination = "\n"
            inst.write_termination = "\n"
            inst.timeout = max(1, int(timeout * 1000))
            inst.write("*IDN?")
            self.identity = inst.read().strip()
        except BaseException:
            inst.close()
            raise
        self._inst = inst
        log.info("scpi.connected", tool_id=self.tool_id, resource=self.resource)

    async def _in_worker(self, fn: Callable[[], T], where: str, timeout: float) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"scpi-{self.tool_id}")
        fut = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        try:
            return await asyncio.wait_for(fut, timeout + self._GUARD)
        except TimeoutError:
            # The worker is stuck beyond its VISA timeout: abandon it and its link.
            self._abandon_worker()
            raise ToolTimeout(self.tool_id, f"no reply within {timeout:.3g} s", where) from None
        except _NoReply:
            await self._discard()
            raise ToolTimeout(self.tool_id, f"no reply within {timeout:.3g} s", where) from None
        except pyvisa.errors.VisaIOError as e:
            await self._discard()
            if e.error_code == pyvisa.constants.StatusCode.error_timeout:
                raise ToolTimeout(
                    self.tool_id, f"no reply within {timeout:.3g} s", where
                ) from None
            raise ToolOffline(self.tool_id, f"I/O error: {e.description}", where) from None
        except UnicodeDecodeError as e:
            await self._discard()
            raise GarbledReply(self.tool_id, f"reply is not text ({e.reason})", where) from None
        except (OSError, pyvisa.errors.Error, Exception) as e:  # noqa: BLE001 - library edge
            if isinstance(e, ToolError):
                raise
            await self._discard()
            raise ToolOffline(self.tool_id, f"link failed: {e}", where) from None

    async def _discard(self) -> None:
        inst, self._inst = self._inst, None
        if inst is None or self._executor is None:
            return
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self._executor, inst.close), 1.0
            )
        except Exception:  # noqa: BLE001 - closing a broken link may fail any way it likes
            self._abandon_worker()

    def _abandon_worker(self) -> None:
        self._inst = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
