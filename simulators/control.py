"""Fault injection into a running simulated line from another process.

A JSON-lines TCP endpoint on loopback: one request object per line, one reply per line.
    {"tool": "SPUT-1", "fault": "alarm", "code": 103, "at": 0.5}
    {"ok": true, "detail": "SPUT-1: alarm 103 at 50 % of the running or next job"}
Faults: alarm (code, at), drop, garble (count, on), stall (count, on), slow (delay, count),
offline (seconds), exhaust (consumable), local and remote (a GEM tool's control switch),
clear. `"on": "start"` arms garble or stall for the reply to the tool's next job start (the
job runs; the host cannot see that it did).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from simulators.faults import FAULTS
from simulators.server import ToolServer


class FaultRequestError(ValueError):
    pass


def apply_fault(servers: Mapping[str, ToolServer], req: Mapping[str, Any]) -> str:
    """Apply one fault request; return what was done. Raises FaultRequestError."""
    tool_id = req.get("tool")
    fault = req.get("fault")
    if fault not in FAULTS:
        raise FaultRequestError(f"unknown fault {fault!r} (faults: {', '.join(FAULTS)})")
    if not isinstance(tool_id, str) or tool_id not in servers:
        raise FaultRequestError(f"unknown tool {tool_id!r} (tools: {', '.join(servers)})")
    server = servers[tool_id]
    tool, plan = server.tool, server.tool.faults

    def number(key: str, default: float, lo: float, hi: float) -> float:
        value = req.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
            raise FaultRequestError(f"{fault}: {key} must be a number in {lo:g}..{hi:g}")
        return float(value)

    if fault == "alarm":
        fatal = [a.code for a in tool.interface.alarms if not a.warning]
        code = int(number("code", fatal[0], 1, 65535))
        at = number("at", 0.5, 0.0, 1.0)
        tool.inject_alarm(code, at)
        return f"{tool_id}: alarm {code} at {at:.0%} of the running or next job"
    if fault == "drop":
        return f"{tool_id}: dropped {plan.drop_connections()} connection(s)"
    if fault in ("garble", "stall"):
        count = int(number("count", 1, 1, 1_000_000))
        replies = f"{count} repl{'y' if count == 1 else 'ies'}"
        on = req.get("on")
        if on == "start":
            plan.on_start[fault] = count
            return f"{tool_id}: {replies} {fault}d from the reply to the next job start"
        if on is not None:
            raise FaultRequestError(f"{fault}: on must be 'start' (or left out)")
        setattr(plan, fault, count)
        return f"{tool_id}: next {replies} {fault}d"
    if fault == "slow":
        plan.slow_delay = number("delay", 0.5, 0.0, 3600.0)
        plan.slow_count = int(number("count", 1_000_000, 1, 1_000_000))
        return f"{tool_id}: replies delayed {plan.slow_delay:g} s"
    if fault == "offline":
        seconds = number("seconds", 5.0, 0.0, 86_400.0)
        server.go_offline(seconds)
        return f"{tool_id}: offline for {seconds:g} s"
    if fault == "exhaust":
        names = [c.name for c in tool.interface.consumables]
        name = req.get("consumable", names[0] if names else None)
        try:
            tool.exhaust(str(name))
        except ValueError as e:
            raise FaultRequestError(str(e)) from None
        return f"{tool_id}: {name} exhausted"
    if fault == "slot_map":
        slot = req.get("slot")
        if slot is not None:
            n = int(number("slot", 1, 1, 25))
            state = req.get("state", "empty")
            codes = {"empty": 0, "occupied": 1, "double": 2, "cross": 3}
            if state not in codes:
                raise FaultRequestError(f"slot_map: state must be one of {', '.join(codes)}")
            plan.slot_map[n] = codes[str(state)]
        carrier = req.get("carrier")
        if carrier is not None:
            plan.carrier_read = str(carrier)[:32]
        if slot is None and carrier is None:
            raise FaultRequestError("slot_map: give slot (and state) or carrier")
        return (
            f"{tool_id}: the next carrier read maps {req.get('state', 'empty')} at slot"
            + (f" {slot}" if slot is not None else "s as expected")
            + (f", tag {carrier}" if carrier is not None else "")
        )
    if fault in ("local", "remote"):
        try:
            return server.switch_control(fault == "local")
        except ValueError as e:
            raise FaultRequestError(str(e)) from None
    plan.clear()
    server.bring_online()
    with contextlib.suppress(ValueError):
        server.switch_control(False)  # a GEM tool goes back to remote
    return f"{tool_id}: faults cleared"


class FaultControlServer:
    def __init__(self, servers: Mapping[str, ToolServer]) -> None:
        self.servers = servers
        self._server: asyncio.Server | None = None
        self.host = "127.0.0.1"
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write((json.dumps(self._answer(line)) + "\n").encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise FaultRequestError("request must be a JSON object")
            return {"ok": True, "detail": apply_fault(self.servers, req)}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"ok": False, "error": "request is not JSON"}
        except FaultRequestError as e:
            return {"ok": False, "error": str(e)}


async def send_fault(host: str, port: int, request: Mapping[str, Any], timeout: float = 5.0) -> str:
    """Client side: send one fault request; return the detail or raise FaultRequestError."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write((json.dumps(dict(request)) + "\n").encode())
        await writer.drain()
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), timeout))
    finally:
        writer.close()
    if not reply.get("ok"):
        raise FaultRequestError(str(reply.get("error")))
    return str(reply["detail"])
