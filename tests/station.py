"""A station as a separate process (`fabline mes serve`) and an MES client on a real broker,
for tests that exercise the station from the outside as an MES or an operator would."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiomqtt

FABLINE = str(Path(sys.executable).with_name("fabline"))
SECRET = "s3cret"


def station_env(home: Path, station: str, broker_url: str | None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FABLINE_HOME": str(home),
        "FABLINE_STATION": station,
        "FABLINE_LOG": "info",
        "FABLINE_MES_CLIENTS": f"mes={SECRET}",
        **extra,
    }
    if broker_url:
        env["FABLINE_MQTT_URL"] = broker_url
    else:
        env.pop("FABLINE_MQTT_URL", None)
    return env


async def fabline(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """Run one `fabline` command; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(FABLINE, *args, stdout=PIPE, stderr=PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class StationProcess:
    """`fabline mes serve` in its own process; stopped with SIGTERM (or killed) by pid."""

    def __init__(self, env: dict[str, str], args: Sequence[str] = ()) -> None:
        self.env = env
        self.args = list(args)
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> StationProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 30) -> None:
        self.stdout.clear()
        self.proc = await asyncio.create_subprocess_exec(
            FABLINE, "mes", "serve", *self.args, stdout=PIPE, stderr=PIPE, env=self.env
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        serving = asyncio.Event()
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout, self.stdout, serving)),
            asyncio.create_task(self._read(self.proc.stderr, self.stderr, None)),
        ]
        waiter = asyncio.create_task(serving.wait())
        exited = asyncio.create_task(self.proc.wait())
        done, _ = await asyncio.wait(
            [waiter, exited], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        exited.cancel()
        if waiter not in done:
            await self.stop()
            raise AssertionError(f"station did not start: {''.join(self.stderr)[-2000:]}")

    @staticmethod
    async def _read(
        stream: asyncio.StreamReader, into: list[str], serving: asyncio.Event | None
    ) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace")
            into.append(line)
            if serving is not None and "serving line" in line:
                serving.set()

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 60)
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    @property
    def log(self) -> str:
        return "".join(self.stderr)


class MesClient:
    """An MES on the broker: signs commands, publishes them, collects the station's replies
    and every event it publishes."""

    def __init__(self, port: int, site: str, station: str, *, client: str = "mes") -> None:
        self.port = port
        self.site, self.station, self.client = site, station, client
        self.prefix = f"fabline/v1/{site}/{station}"
        self.replies: dict[str, dict[str, Any]] = {}
        self.received: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        self._mqtt: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MesClient:
        self._mqtt = aiomqtt.Client("127.0.0.1", self.port, timeout=10)
        await self._mqtt.__aenter__()
        await self._mqtt.subscribe(f"{self.prefix}/#", qos=1)
        self._task = asyncio.create_task(self._listen())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None and self._mqtt is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._mqtt.__aexit__(None, None, None)

    async def _listen(self) -> None:
        assert self._mqtt is not None
        async for m in self._mqtt.messages:
            try:
                body = json.loads(bytes(m.payload))  # type: ignore[arg-type]
            except (ValueError, RecursionError):  # our own bad commands, echoed back to us
                body = None
            topic = str(m.topic)
            self.received.append((topic, body))
            if topic.endswith("/replies") and isinstance(body, dict):
                data = body.get("data", {})
                if data.get("command_id"):
                    self.replies[data["command_id"]] = data
            self._changed.set()

    async def until(self, done: Callable[[], Any], timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def command(self, command: str, lot_id: str, **body: Any) -> dict[str, Any]:
        from controller.mes.commands import sign, unsigned_command

        cmd = unsigned_command(
            client=self.client,
            site=self.site,
            station=self.station,
            command=command,
            lot_id=lot_id,
            **body,
        )
        return sign(cmd, SECRET)

    async def publish(self, payload: bytes | str | dict[str, Any]) -> None:
        assert self._mqtt is not None
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        await self._mqtt.publish(f"{self.prefix}/commands", payload, qos=1)

    async def send(self, command: str, lot_id: str, timeout: float = 30, **body: Any) -> Any:
        """Send one signed command and wait for its reply's data."""
        cmd = self.command(command, lot_id, **body)
        await self.publish(cmd)
        ident = cmd["command_id"]
        await self.until(lambda: ident in self.replies, timeout)
        return self.replies[ident]

    def events(self, lot_id: str) -> list[dict[str, Any]]:
        seen: set[str] = set()
        out = []
        for topic, body in self.received:
            if topic == f"{self.prefix}/lots/{lot_id}/events" and body["event_id"] not in seen:
                seen.add(body["event_id"])
                out.append(body)
        return out

    def status(self) -> Any:
        found = [b for t, b in self.received if t == f"{self.prefix}/status"]
        return found[-1] if found else None


def new_station() -> str:
    return f"t{secrets.token_hex(4)}"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
