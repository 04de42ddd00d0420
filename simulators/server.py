"""Listening socket shared by the SCPI and Modbus servers, with the link faults."""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from typing import Any

import structlog

from simulators.faults import Reply
from simulators.tool import SimTool

log = structlog.get_logger("fabline.sim")


class ToolServer(ABC):
    protocol: str

    def __init__(self, tool: SimTool) -> None:
        self.tool = tool
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._reopen: asyncio.TimerHandle | None = None
        self._garbage = random.Random(f"garbage/{tool.tool_id}")
        self._tasks: set[asyncio.Future[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._reopen:
            self._reopen.cancel()
        self.tool.faults.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def go_offline(self, seconds: float) -> None:
        """Refuse connections (like a powered-off tool) for `seconds`, then listen again."""
        loop = asyncio.get_running_loop()
        self.tool.faults.offline_until = loop.time() + seconds
        self.tool.faults.drop_connections()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._reopen:
            self._reopen.cancel()
        self._reopen = loop.call_later(seconds, lambda: self._spawn(self._listen_again()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    def bring_online(self) -> None:
        """Schedule `come_online` (for callers that are not coroutines)."""
        self._spawn(self.come_online())

    async def come_online(self) -> None:
        if self._reopen:
            self._reopen.cancel()
            self._reopen = None
        self.tool.faults.offline_until = 0.0
        await self._listen_again()

    async def _listen_again(self) -> None:
        if self._server is None:
            try:
                self._server = await asyncio.start_server(self._accept, self.host, self.port)
            except OSError as e:  # the port was taken meanwhile
                log.error("sim.relisten_failed", tool_id=self.tool.tool_id, error=str(e))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns = self.tool.faults.connections
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        conns.add(transport)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the loop is shutting down; nothing to hand back to
        finally:
            conns.discard(transport)
            writer.close()

    async def reply(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Send one reply, applying the injected link faults."""
        action, delay = self.tool.faults.next_reply()
        if delay:
            await asyncio.sleep(delay)
        if action is Reply.STALL:
            return
        if action is Reply.GARBLE:
            data = self.garbled(data)
        writer.write(data)
        await writer.drain()

    def garbled(self, data: bytes) -> bytes:
        """Line noise of about the reply's length."""
        return bytes(self._garbage.randrange(256) for _ in range(max(8, len(data))))

    def switch_control(self, local: bool) -> str:
        """The operator's local/remote switch; only GEM tools have a control state."""
        raise ValueError(f"{self.tool.tool_id} speaks {self.protocol}: it has no control state")

    @abstractmethod
    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle one client connection until it closes."""
