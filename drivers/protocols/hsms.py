"""HSMS-SS (SEMI E37, E37.1): the frame, the header, the control messages, and one
connection's session machinery, the same on both ends.

A frame is a 4-byte big-endian length, a 10-byte header (session id, byte 2 = W-bit and
stream, byte 3 = function, PType 0, SType, 4 system bytes) and a SECS-II body. SType 0 is a
data message; the others are the control messages select, deselect, linktest, reject and
separate. `HsmsConnection` is one TCP connection, either side: a reader task matches
replies to requests by system bytes, answers control messages, and hands primaries to a
handler. The host's link (reconnect, back-off, passive listening) is
drivers/transport/hsms.py; the simulated equipment is simulators/gem_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum

import structlog

from drivers.errors import GarbledReply, ToolError, ToolOffline, ToolTimeout, ValueRefused
from drivers.protocols.secs2 import Item, SecsFormatError, decode, encode

log = structlog.get_logger("fabline.hsms")

HEADER = struct.Struct(">HBBBBI")  # session id, byte 2, byte 3, PType, SType, system bytes
LENGTH = struct.Struct(">I")
CONTROL_SESSION = 0xFFFF
MAX_MESSAGE = 16 * 1024 * 1024  # larger length fields are line noise, not a message


class SType(IntEnum):
    DATA = 0
    SELECT_REQ = 1
    SELECT_RSP = 2
    DESELECT_REQ = 3
    DESELECT_RSP = 4
    LINKTEST_REQ = 5
    LINKTEST_RSP = 6
    REJECT_REQ = 7
    SEPARATE_REQ = 9


class SelectStatus(IntEnum):
    OK = 0
    ALREADY_ACTIVE = 1
    NOT_READY = 2
    EXHAUSTED = 3


class RejectReason(IntEnum):
    STYPE_NOT_SUPPORTED = 1
    PTYPE_NOT_SUPPORTED = 2
    TRANSACTION_NOT_OPEN = 3
    NOT_SELECTED = 4


S9_TEXT = {
    1: "unrecognized device id",
    3: "unrecognized stream type",
    5: "unrecognized function type",
    7: "illegal data",
    9: "transaction timer timeout",
    11: "data too long",
    13: "conversation timeout",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One HSMS message. For data messages `stream`/`function` are the SxFy; for control
    messages they are header bytes 2 and 3 (e.g. the select status in byte 3)."""

    session: int
    stream: int
    function: int
    wbit: bool
    stype: SType
    system: int
    body: bytes = b""

    @property
    def name(self) -> str:
        if self.stype is SType.DATA:
            return f"S{self.stream}F{self.function}"
        return self.stype.name.lower().replace("_", ".")

    def item(self) -> Item | None:
        """The decoded body (None for a header-only message). Raises SecsFormatError."""
        return decode(self.body) if self.body else None

    def header(self) -> bytes:
        byte2 = (0x80 if self.wbit else 0) | self.stream
        return HEADER.pack(self.session, byte2, self.function, 0, self.stype, self.system)

    def frame(self) -> bytes:
        return LENGTH.pack(10 + len(self.body)) + self.header() + self.body


def parse(data: bytes) -> Message:
    """A message from its header and body (the length field already stripped)."""
    session, byte2, function, ptype, stype, system = HEADER.unpack_from(data)
    if ptype != 0:
        raise _Reject(RejectReason.PTYPE_NOT_SUPPORTED, ptype, system)
    try:
        kind = SType(stype)
    except ValueError:
        raise _Reject(RejectReason.STYPE_NOT_SUPPORTED, stype, system) from None
    return Message(session, byte2 & 0x7F, function, bool(byte2 & 0x80), kind, system, data[10:])


class _Reject(Exception):
    def __init__(self, reason: RejectReason, value: int, system: int) -> None:
        super().__init__(reason)
        self.reason, self.value, self.system = reason, value, system


class _Garbage(Exception):
    """The byte stream is no longer HSMS: the connection cannot be resynchronised."""


@dataclass(frozen=True)
class Timers:
    """HSMS timers in seconds (SEMI E37 defaults); `linktest`: period of the host's link
    test, None for none."""

    t3: float = 45.0  # reply timeout
    t5: float = 10.0  # connect separation
    t6: float = 5.0  # control transaction timeout
    t7: float = 10.0  # not-selected timeout
    t8: float = 5.0  # network intercharacter timeout
    linktest: float | None = None


Handler = Callable[["HsmsConnection", Message], Awaitable[None]]


class HsmsConnection:
    """One HSMS connection over a connected stream pair.

    `handler` gets every data primary except S9 error reports that answer a request of
    ours (those fail the request); it runs on the reader task, so it must not await a
    reply on this same connection (spawn a task for that). A primary with the W-bit and no
    handler is answered SxF0 (transaction aborted).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        name: str,
        session: int,
        timers: Timers,
        handler: Handler | None = None,
        passive: bool = False,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.name = name
        self.session = session
        self.timers = timers
        self.handler = handler
        self.passive = passive
        self.max_message = max_message
        self.selected = asyncio.Event()
        self.closed = asyncio.Event()
        self.error: ToolError | None = None  # why the connection closed
        self._pending: dict[int, tuple[asyncio.Future[Message], str]] = {}
        self._system = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._read_loop()))
        if self.passive:
            self._tasks.append(asyncio.create_task(self._expect_select()))
        if self.timers.linktest:
            self._tasks.append(asyncio.create_task(self._linktest_loop(self.timers.linktest)))

    # -- sending ---------------------------------------------------------------------------

    def next_system(self) -> int:
        self._system = self._system % 0xFFFFFFFF + 1
        return self._system

    def write(self, msg: Message) -> None:
        if self.closed.is_set():
            raise self._offline(msg.name)
        self.writer.write(msg.frame())

    def send(self, stream: int, function: int, item: Item | None, *, system: int = 0) -> None:
        """A message that expects no reply (W-bit clear): a reply, or an S9 report."""
        body = encode(item) if item is not None else b""
        self.write(Message(self.session, stream, function, False, SType.DATA, system, body))

    def reply(self, primary: Message, item: Item | None, *, function: int | None = None) -> None:
        fn = primary.function + 1 if function is None else function
        self.send(primary.stream, fn, item, system=primary.system)

    async def request(
        self,
        stream: int,
        function: int,
        item: Item | bytes | None,
        *,
        timeout: float | None = None,
    ) -> Item | None:
        """Send a primary with the W-bit (its body an item, or one already encoded) and
        return the decoded body of its reply."""
        where = f"S{stream}F{function}"
        if not self.selected.is_set() and self.alive:
            raise ToolOffline(self.name, "HSMS connection is not selected", where)
        body = item if isinstance(item, bytes) else encode(item) if item is not None else b""
        system = self.next_system()
        msg = Message(self.session, stream, function, True, SType.DATA, system, body)
        reply = await self._transact(msg, where, timeout or self.timers.t3, "T3")
        if reply.function == 0:
            raise ValueRefused(
                self.name, f"the tool aborted the transaction (S{stream}F0)", where, code=0
            )
        if reply.stream != stream or reply.function != function + 1:
            raise GarbledReply(self.name, f"{reply.name} is no reply to {where}", where)
        if reply.session != self.session:
            raise GarbledReply(
                self.name, f"reply from device id {reply.session}, not {self.session}", where
            )
        try:
            return reply.item()
        except SecsFormatError as e:
            raise GarbledReply(self.name, f"malformed {reply.name}: {e}", where) from None

    async def exchange(
        self, stream: int, function: int, body: bytes, *, timeout: float | None = None
    ) -> Message:
        """A request with an already encoded body; the reply undecoded. The bare HSMS
        round trip, for benchmarks and diagnostics."""
        msg = Message(self.session, stream, function, True, SType.DATA, self.next_system(), body)
        return await self._transact(msg, msg.name, timeout or self.timers.t3, "T3")

    async def control(self, stype: SType) -> Message:
        """A control transaction (select, deselect, linktest) under T6; a T6 expiry is a
        communication failure and closes the connection (E37 §7)."""
        msg = Message(CONTROL_SESSION, 0, 0, False, stype, self.next_system())
        try:
            return await self._transact(msg, msg.name, self.timers.t6, "T6")
        except ToolTimeout as e:
            self.close(e)
            raise

    async def select(self) -> None:
        rsp = await self.control(SType.SELECT_REQ)
        if rsp.function not in (SelectStatus.OK, SelectStatus.ALREADY_ACTIVE):
            try:
                why = SelectStatus(rsp.function).name.lower().replace("_", " ")
            except ValueError:
                why = f"status {rsp.function}"
            error = ToolOffline(self.name, f"select refused ({why})", "select.req")
            self.close(error)
            raise error
        self.selected.set()

    async def linktest(self) -> None:
        await self.control(SType.LINKTEST_REQ)

    def separate(self) -> None:
        """Tell the other side we end the session, then close."""
        if self.alive:
            with contextlib.suppress(ToolError):
                self.write(Message(CONTROL_SESSION, 0, 0, False, SType.SEPARATE_REQ, 0))
        self.close(ToolOffline(self.name, "separated", "separate.req"))

    def close(self, error: ToolError | None = None) -> None:
        if self.closed.is_set():
            return
        self.error = error or ToolOffline(self.name, "connection closed")
        self.closed.set()
        self.selected.clear()
        for fut, where in self._pending.values():
            if not fut.done():
                fut.set_exception(self._failure(where))
        self._pending.clear()
        current = asyncio.current_task()
        for t in self._tasks:
            if t is not current:
                t.cancel()
        self.writer.close()

    async def wait_closed(self) -> None:
        await self.closed.wait()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    # -- internals -------------------------------------------------------------------------

    def _failure(self, where: str) -> ToolError:
        err = self.error
        if isinstance(err, GarbledReply):
            return GarbledReply(self.name, err.detail, where)
        detail = err.detail if err is not None else "connection closed"
        return ToolOffline(self.name, f"connection lost ({detail})", where)

    def _offline(self, where: str) -> ToolError:
        return self._failure(where)

    async def _transact(self, msg: Message, where: str, timeout: float, timer: str) -> Message:
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[msg.system] = (fut, where)
        try:
            self.write(msg)
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise ToolTimeout(
                self.name, f"no reply within {timer} = {timeout:g} s", where
            ) from None
        finally:
            self._pending.pop(msg.system, None)

    async def _read_loop(self) -> None:
        try:
            while True:
                first = await self.reader.readexactly(1)  # an idle link waits here, unbounded
                try:
                    msg = parse(await self._read_rest(first))
                except _Reject as r:
                    self._reject(r.reason, r.value, r.system)
                    continue
                await self._dispatch(msg)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close(ToolOffline(self.name, "closed by the other side"))
        except _Garbage as e:
            log.warning("hsms.garbage", name=self.name, detail=str(e))
            self.close(GarbledReply(self.name, f"protocol garbage: {e}"))
        except ToolError as e:
            self.close(e)

    async def _read_rest(self, first: bytes) -> bytes:
        """The rest of a message whose first byte came: no gap longer than T8 between its
        bytes (one timer per message, pushed on only when a chunk leaves bytes to come)."""
        t8 = self.timers.t8
        loop = asyncio.get_running_loop()
        got, n = 0, 0
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(t8) as cm:
                n = LENGTH.unpack(first + await self.reader.readexactly(3))[0]
                if not 10 <= n <= self.max_message:
                    raise _Garbage(f"message length {n} (expected 10..{self.max_message})")
                while got < n:
                    chunk = await self.reader.read(n - got)
                    if not chunk:
                        raise asyncio.IncompleteReadError(b"".join(chunks), n)
                    chunks.append(chunk)
                    got += len(chunk)
                    if got < n:
                        cm.reschedule(loop.time() + t8)
        except TimeoutError:
            raise _Garbage(
                f"message incomplete: {got} of {n} bytes, then nothing for T8 = {t8:g} s"
            ) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _dispatch(self, msg: Message) -> None:
        st = msg.stype
        if st is SType.DATA:
            if not self.selected.is_set():
                self._reject(RejectReason.NOT_SELECTED, 0, msg.system)
                return
            if msg.function % 2 == 0:  # a reply (or SxF0): match it to its request
                pending = self._pending.get(msg.system)
                if pending is not None and not pending[0].done():
                    pending[0].set_result(msg)
                else:
                    log.info("hsms.unexpected_reply", name=self.name, message=msg.name)
                return
            if msg.stream == 9 and self._s9_fails_request(msg):
                return
            if self.handler is not None:
                try:
                    await self.handler(self, msg)
                except (ToolError, asyncio.CancelledError):
                    raise
                except Exception:  # a handler's bug must not take the link down
                    log.exception("hsms.handler_failed", name=self.name, message=msg.name)
                    if msg.wbit:
                        self.reply(msg, None, function=0)
            elif msg.wbit:
                self.reply(msg, None, function=0)
        elif st is SType.SELECT_REQ:
            status = SelectStatus.ALREADY_ACTIVE if self.selected.is_set() else SelectStatus.OK
            self.write(Message(CONTROL_SESSION, 0, status, False, SType.SELECT_RSP, msg.system))
            self.selected.set()
        elif st is SType.LINKTEST_REQ:
            self.write(Message(CONTROL_SESSION, 0, 0, False, SType.LINKTEST_RSP, msg.system))
        elif st is SType.DESELECT_REQ:
            self.write(Message(CONTROL_SESSION, 0, 0, False, SType.DESELECT_RSP, msg.system))
            self.selected.clear()
        elif st is SType.SEPARATE_REQ:
            self.close(ToolOffline(self.name, "separated by the other side", "separate.req"))
        elif st is SType.REJECT_REQ:
            try:
                why = RejectReason(msg.function).name.lower().replace("_", " ")
            except ValueError:
                why = f"reason {msg.function}"
            if msg.function == RejectReason.NOT_SELECTED:
                # the other side does not count this link as selected: start over
                self.close(ToolOffline(self.name, f"rejected ({why})"))
                return
            pending = self._pending.get(msg.system)
            if pending is not None and not pending[0].done():
                pending[0].set_exception(
                    GarbledReply(self.name, f"rejected ({why})", pending[1], code=msg.function)
                )
        else:  # a response: SELECT_RSP, DESELECT_RSP, LINKTEST_RSP
            pending = self._pending.get(msg.system)
            if pending is not None and not pending[0].done():
                pending[0].set_result(msg)

    def _s9_fails_request(self, msg: Message) -> bool:
        """An S9 report names the header of the message it refuses: fail that request."""
        try:
            item = msg.item()
            mhead = item.binary() if item is not None else b""
        except SecsFormatError:
            return False
        if len(mhead) != 10:
            return False
        _, byte2, function, _, _, system = HEADER.unpack(mhead)
        pending = self._pending.get(system)
        if pending is None or pending[0].done():
            log.warning(
                "hsms.s9", name=self.name, message=msg.name, about=f"S{byte2 & 0x7F}F{function}"
            )
            return False
        text = S9_TEXT.get(msg.function, "error")
        pending[0].set_exception(
            ValueRefused(self.name, f"{msg.name} {text}", pending[1], code=msg.function)
        )
        return True

    def _reject(self, reason: RejectReason, value: int, system: int) -> None:
        log.warning("hsms.reject", name=self.name, reason=reason.name)
        with contextlib.suppress(ToolError):
            self.write(Message(CONTROL_SESSION, value, reason, False, SType.REJECT_REQ, system))

    async def _expect_select(self) -> None:
        """Passive side: a connection not selected within T7 is closed (E37 §6)."""
        try:
            async with asyncio.timeout(self.timers.t7):
                await self.selected.wait()
        except TimeoutError:
            self.close(ToolTimeout(self.name, f"not selected within T7 = {self.timers.t7:g} s"))

    async def _linktest_loop(self, period: float) -> None:
        while self.alive:
            await asyncio.sleep(period)
            if self.selected.is_set():
                try:
                    await self.linktest()
                except ToolError as e:
                    self.close(e)
                    return
