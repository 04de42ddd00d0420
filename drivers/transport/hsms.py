"""The host's HSMS-SS link to one tool: it connects (active) or waits for the tool to
connect (passive), selects, reconnects with back-off, and turns every failure into a typed
error within the call's bound — T3 for a reply, T6 for a control transaction, T7 for the
select after a connect, T8 between the bytes of a message, T5 between connect attempts. The
frame and the session machinery both ends share: drivers/protocols/hsms.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import structlog

from drivers.errors import ToolError, ToolOffline, ToolTimeout
from drivers.protocols.hsms import Handler, HsmsConnection, Timers
from drivers.protocols.secs2 import Item
from drivers.transport.backoff import Backoff, retry_until

log = structlog.get_logger("fabline.hsms")


async def open_connection(
    host: str, port: int, *, name: str, session: int, timers: Timers, handler: Handler | None,
    timeout: float,
) -> HsmsConnection:  # fmt: skip
    """Active side: connect and select."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as e:
        raise ToolOffline(name, f"cannot connect to {host}:{port} ({e})", "connect") from None
    conn = HsmsConnection(reader, writer, name=name, session=session, timers=timers,
                          handler=handler)  # fmt: skip
    conn.start()
    try:
        await conn.select()
    except ToolError:
        conn.close()
        raise
    return conn


OnConnect = Callable[[HsmsConnection], Awaitable[None]]


class HsmsTransport:
    """The host's HSMS link to one tool.

    Active mode connects to the tool; passive mode listens on (host, port) and waits for
    the tool to connect and select. Every new selected connection runs `on_connect` (the
    GEM layer establishes communications there) before any request goes out on it. A
    request that loses its connection is resent once after a reconnect only when the
    caller says it is idempotent; replies are matched by system bytes, so requests may
    overlap.
    """

    def __init__(
        self,
        tool_id: str,
        host: str,
        port: int,
        *,
        session: int = 0,
        mode: Literal["active", "passive"] = "active",
        timers: Timers | None = None,
        backoff: Backoff | None = None,
        handler: Handler | None = None,
        on_connect: OnConnect | None = None,
    ) -> None:
        self.tool_id = tool_id
        self.host, self.port = host, port
        self.session = session
        self.mode = mode
        self.timers = timers or Timers()
        self.backoff = backoff or Backoff(
            initial=self.timers.t5, maximum=max(self.timers.t5, Backoff().maximum)
        )
        self.handler = handler
        self.on_connect = on_connect
        self.conn: HsmsConnection | None = None
        self._lock = asyncio.Lock()
        self._server: asyncio.Server | None = None
        self._incoming: asyncio.Queue[HsmsConnection] = asyncio.Queue()
        self._next_attempt = 0.0  # monotonic time before which no new connect is tried (T5)

    @property
    def connected(self) -> bool:
        return self.conn is not None and self.conn.alive and self.conn.selected.is_set()

    async def connect(self, timeout: float | None = None) -> HsmsConnection:
        async with self._lock:
            return await self._ensure(time.monotonic() + (timeout or self.timers.t3))

    async def request(
        self,
        stream: int,
        function: int,
        item: Item | bytes | None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Item | None:
        budget = timeout or self.timers.t3
        deadline = time.monotonic() + budget
        conn = self.conn if self.connected else None
        if conn is None:
            async with self._lock:
                conn = await self._ensure(deadline)
        try:
            return await conn.request(stream, function, item, timeout=budget)
        except ToolOffline:
            if not idempotent or time.monotonic() >= deadline:
                raise
            log.info("hsms.resend", tool_id=self.tool_id, message=f"S{stream}F{function}")
            async with self._lock:
                conn = await self._ensure(deadline)
            return await conn.request(
                stream, function, item, timeout=max(0.001, deadline - time.monotonic())
            )

    async def close(self) -> None:
        async with self._lock:
            if self.conn is not None:
                self.conn.separate()
                await self.conn.wait_closed()
                self.conn = None
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None

    @property
    def listen_port(self) -> int:
        """Passive mode: the port the host listens on (after the first connect call)."""
        assert self._server is not None, "not listening"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def listen(self) -> int:
        """Passive mode: start listening now (the tool may connect before the first call)."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accepted, self.host, self.port)
        return self.listen_port

    # -- internals -------------------------------------------------------------------------

    async def _ensure(self, deadline: float) -> HsmsConnection:
        if self.conn is not None and self.conn.alive and self.conn.selected.is_set():
            return self.conn
        if self.conn is not None:
            self.conn.close()
            self.conn = None

        async def establish() -> HsmsConnection:
            if self.mode == "passive":
                conn = await self._accept(deadline)
            else:
                conn = await self._attempt(deadline)
            try:
                if self.on_connect is not None:
                    async with asyncio.timeout(max(0.001, deadline - time.monotonic())):
                        await self.on_connect(conn)
            except TimeoutError:
                conn.close()
                raise ToolTimeout(self.tool_id, "communications not established in time") from None
            except BaseException:
                conn.close()  # a link lost while establishing is tried again (ToolOffline)
                raise
            return conn

        conn = await retry_until(
            establish, deadline=deadline, backoff=self.backoff, retry_on=(ToolOffline,)
        )
        self.conn = conn
        log.info("hsms.selected", tool_id=self.tool_id, mode=self.mode)
        return conn

    async def _attempt(self, deadline: float) -> HsmsConnection:
        wait = self._next_attempt - time.monotonic()
        if wait > 0:
            if time.monotonic() + wait >= deadline:
                raise ToolOffline(
                    self.tool_id,
                    f"cannot connect to {self.host}:{self.port} (next attempt in {wait:.2g} s,"
                    f" T5 = {self.timers.t5:g} s)",
                    "connect",
                )
            await asyncio.sleep(wait)
        remaining = max(0.01, deadline - time.monotonic())
        try:
            return await open_connection(
                self.host, self.port, name=self.tool_id, session=self.session,
                timers=self.timers, handler=self.handler, timeout=remaining,
            )  # fmt: skip
        except ToolError as e:
            self._next_attempt = time.monotonic() + self.timers.t5
            if isinstance(e, ToolOffline):
                raise
            raise ToolOffline(self.tool_id, f"cannot select ({e.detail})", "select.req") from None

    async def _accept(self, deadline: float) -> HsmsConnection:
        await self.listen()
        while True:
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(0.001, remaining)):
                    conn = await self._incoming.get()
                    if not conn.alive:
                        continue
                    done = asyncio.ensure_future(conn.closed.wait())
                    sel = asyncio.ensure_future(conn.selected.wait())
                    try:
                        await asyncio.wait((done, sel), return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        done.cancel()
                        sel.cancel()
                    if conn.selected.is_set():
                        return conn
            except TimeoutError:
                raise ToolOffline(
                    self.tool_id,
                    f"the tool did not connect and select on port {self.listen_port}",
                    "accept",
                ) from None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.conn is not None and self.conn.alive:
            writer.close()  # HSMS-SS: one session at a time
            return
        conn = HsmsConnection(
            reader, writer, name=self.tool_id, session=self.session, timers=self.timers,
            handler=self.handler, passive=True,
        )  # fmt: skip
        conn.start()
        self._incoming.put_nowait(conn)
