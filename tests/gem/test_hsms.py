"""HSMS-SS transport against raw asyncio peers that send literal bytes: the handshake, every
timer (T3, T5, T6, T7, T8), garbage, reject, S9, separate and reconnect — each failure a
typed error within its bound, never a hang."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable

import pytest

from drivers.errors import GarbledReply, ToolOffline, ToolTimeout, ValueRefused
from drivers.protocols.hsms import Timers
from drivers.protocols.secs2 import A, L
from drivers.transport.backoff import Backoff
from drivers.transport.hsms import HsmsTransport

SELECT_RSP_OK = b"\xff\xff\x00\x00\x00\x02"
FAST = Timers(t3=0.3, t5=0.05, t6=0.3, t7=0.3, t8=0.2)

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_frame(r: asyncio.StreamReader) -> tuple[bytes, bytes]:
    n = struct.unpack(">I", await r.readexactly(4))[0]
    data = await r.readexactly(n)
    return data[:10], data[10:]


def frame(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">I", 10 + len(body)) + header + body


async def answer_select(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    header, _ = await read_frame(r)
    assert header[:6] == b"\xff\xff\x00\x00\x00\x01"  # select.req
    w.write(frame(SELECT_RSP_OK + header[6:]))


class RawPeer:
    """A listening socket whose connections run `peer`."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        async def run(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.peer(r, w)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                w.close()

        self.server = await asyncio.start_server(run, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def link(port: int, timers: Timers = FAST) -> HsmsTransport:
    return HsmsTransport("T-1", "127.0.0.1", port, timers=timers)


async def test_select_then_request_and_reply_by_system_bytes() -> None:
    async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await answer_select(r, w)
        header, body = await read_frame(r)
        assert header[:6] == b"\x00\x00\x81\x01\x00\x00" and body == b""  # S1F1 W, device 0
        # the reply: S1F2 <L [2] <A "M"> <A "1">> with the request's system bytes
        w.write(frame(b"\x00\x00\x01\x02\x00\x00" + header[6:], b"\x01\x02\x41\x01M\x41\x011"))
        await r.read()

    async with RawPeer(peer) as port:
        t = link(port)
        reply = await t.request(1, 1, None)
        assert reply == L(A("M"), A("1"))
        await t.close()


@pytest.mark.parametrize(
    ("behaviour", "error", "match"),
    [
        ("silent", ToolTimeout, "no reply within T3 = 0.3 s"),
        ("garbage_length", GarbledReply, "message length 4294967295"),
        ("half_message", GarbledReply, "nothing for T8 = 0.2 s"),
        ("bad_body", GarbledReply, "malformed S1F2: unknown format code"),
        ("s9f7", ValueRefused, "S9F7 illegal data"),
        ("abort", ValueRefused, r"aborted the transaction \(S1F0\)"),
        ("reject", GarbledReply, "rejected"),
        ("drop", ToolOffline, "connection lost"),
        ("separate", ToolOffline, "separated"),
    ],
)
async def test_every_failure_is_typed_and_bounded(
    behaviour: str, error: type[Exception], match: str
) -> None:
    async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await answer_select(r, w)
        header, _ = await read_frame(r)
        sys = header[6:]
        if behaviour == "garbage_length":
            w.write(b"\xff\xff\xff\xff" + b"noise")
        elif behaviour == "half_message":
            w.write(struct.pack(">I", 20) + b"\x00\x00\x01\x02")
        elif behaviour == "bad_body":
            w.write(frame(b"\x00\x00\x01\x02\x00\x00" + sys, b"\xfd\x00"))
        elif behaviour == "s9f7":  # S9F7 <B[10] header of the refused message>
            w.write(frame(b"\x00\x00\x09\x07\x00\x00\x00\x00\x00\x63", b"\x21\x0a" + header))
        elif behaviour == "abort":
            w.write(frame(b"\x00\x00\x01\x00\x00\x00" + sys))
        elif behaviour == "reject":  # reject.req, reason 1 (SType not supported)
            w.write(frame(b"\xff\xff\x00\x01\x00\x07" + sys))
        elif behaviour == "drop":
            w.transport.abort()
            return
        elif behaviour == "separate":
            w.write(frame(b"\xff\xff\x00\x00\x00\x09\x00\x00\x00\x01"))
        await r.read()

    async with RawPeer(peer) as port:
        t = link(port)
        t0 = time.monotonic()
        with pytest.raises(error, match=match) as e:
            await t.request(1, 1, None)
        assert time.monotonic() - t0 < 1.5  # bounded: T3 / T8 at most, plus slack
        assert e.value.tool_id == "T-1"  # type: ignore[attr-defined]
        assert e.value.where == "S1F1"  # type: ignore[attr-defined]
        await t.close()


async def test_t6_select_timeout_and_t5_between_connect_attempts() -> None:
    async def mute(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # never answers select

    async with RawPeer(mute) as port:
        t = HsmsTransport("T-1", "127.0.0.1", port, timers=Timers(t3=1.0, t5=0.5, t6=0.2),
                          backoff=Backoff(initial=0.5, maximum=0.5))  # fmt: skip
        t0 = time.monotonic()
        with pytest.raises(ToolOffline, match="cannot select"):
            await t.request(1, 1, None, timeout=0.6)
        assert 0.2 <= time.monotonic() - t0 < 1.0
        # the next call comes within T5 of the failed attempt: refused at once, no new attempt
        with pytest.raises(ToolOffline, match=r"T5 = 0\.5 s"):
            await t.request(1, 1, None, timeout=0.1)
        await t.close()


async def test_connection_refused_is_offline_within_the_call_budget() -> None:
    async with RawPeer(answer_select) as port:
        pass  # closed: nothing listens on the port any more
    t = link(port)
    t0 = time.monotonic()
    with pytest.raises(ToolOffline, match="cannot connect"):
        await t.request(1, 1, None)
    assert time.monotonic() - t0 < 1.0


async def test_t7_passive_side_closes_a_connection_never_selected() -> None:
    t = HsmsTransport("T-1", "127.0.0.1", 0, mode="passive", timers=FAST)
    port = await t.listen()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    assert await asyncio.wait_for(r.read(), 2) == b""  # closed by the host after T7
    assert 0.25 < time.monotonic() - t0 < 1.5
    w.close()
    await t.close()


async def test_reconnects_and_resends_an_idempotent_request() -> None:
    async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await answer_select(r, w)
        header, _ = await read_frame(r)
        if link_peer.connections == 1:
            w.transport.abort()  # the first connection dies under the request
            return
        w.write(frame(b"\x00\x00\x01\x04\x00\x00" + header[6:], b"\x01\x00"))
        await r.read()

    link_peer = RawPeer(peer)
    async with link_peer as port:
        t = link(port)
        assert await t.request(1, 3, L(), idempotent=True) == L()
        assert link_peer.connections == 2
        await t.close()


async def test_linktest_and_data_before_select_are_answered() -> None:
    """The host's own side of the protocol: it answers a peer's linktest and rejects data
    from a peer that never selected (passive host, raw tool)."""
    t = HsmsTransport("T-1", "127.0.0.1", 0, mode="passive", timers=Timers(t7=5.0))
    port = await t.listen()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(frame(b"\x00\x00\x81\x01\x00\x00\x00\x00\x00\x05"))  # S1F1 before select
    assert (await read_frame(r))[0] == b"\xff\xff\x00\x04\x00\x07\x00\x00\x00\x05"
    w.write(frame(b"\xff\xff\x00\x00\x00\x05\x00\x00\x00\x06"))  # linktest.req
    assert (await read_frame(r))[0] == b"\xff\xff\x00\x00\x00\x06\x00\x00\x00\x06"
    w.close()
    await t.close()


async def test_reject_not_selected_starts_the_link_over() -> None:
    """A tool that rejects our first message as 'not selected' (it had not counted our
    select yet, as secsgem can) gets a fresh connection and select within the call."""

    async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await answer_select(r, w)
        header, _ = await read_frame(r)
        if reset_peer.connections == 1:  # reject.req, reason 4: entity not selected
            w.write(frame(b"\xff\xff\x00\x04\x00\x07" + header[6:]))
            await r.read()
            return
        w.write(frame(b"\x00\x00\x01\x0e\x00\x00" + header[6:], b"\x01\x00"))
        await r.read()

    reset_peer = RawPeer(peer)
    async with reset_peer as port:
        t = link(port)
        assert await t.request(1, 13, L(), idempotent=True) == L()
        assert reset_peer.connections == 2
        await t.close()
