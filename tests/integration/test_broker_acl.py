"""The broker configuration and ACL shipped in deploy/mosquitto/ do what docs/mes.md says, on
a real Mosquitto: the MES commands a station and reads everything; a station cannot command
anyone; a viewer only reads; anonymous clients are refused."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest
import pytest_asyncio

from tests.services import Mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PREFIX = "fabline/v1/site-1/st-07"
USERS = {"station-st-07": "pw-station", "mes": "pw-mes", "viewer": "pw-viewer"}
OWN = re.compile(r"^\s*(listener|persistence_location|autosave_interval|password_file|acl_file)\b")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed")
    d = tmp_path_factory.mktemp("acl")
    passwd = d / "passwd"
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if not passwd.exists() else []),
                        str(passwd), user, password], check=True)  # fmt: skip
    shutil.copy(DEPLOY / "acl", d / "acl")
    shipped = [line for line in (DEPLOY / "fabline.conf").read_text().splitlines()
               if not OWN.match(line)]  # fmt: skip
    settings = "\n".join([*shipped, f"password_file {passwd}", f"acl_file {d / 'acl'}"])
    m = Mosquitto(d, settings)
    m.start()
    yield m
    m.stop()


def client(broker: Mosquitto, user: str | None) -> aiomqtt.Client:
    password = USERS.get(user or "")
    return aiomqtt.Client("127.0.0.1", broker.port, username=user, password=password, timeout=5)


@pytest_asyncio.fixture
async def station_inbox(broker: Mosquitto) -> AsyncIterator[asyncio.Queue[str]]:
    """What the station receives on its command topic and its own marker topic."""
    inbox: asyncio.Queue[str] = asyncio.Queue()
    async with client(broker, "station-st-07") as c:
        await c.subscribe(f"{PREFIX}/commands", qos=1)
        await c.subscribe(f"{PREFIX}/status", qos=1)

        async def pump() -> None:
            async for m in c.messages:
                inbox.put_nowait(f"{m.topic}={m.payload!r}")

        task = asyncio.create_task(pump())
        yield inbox
        task.cancel()


async def publish_then_mark(broker: Mosquitto, user: str, topic: str, inbox: asyncio.Queue[str],
                            marker_client: str = "station-st-07") -> list[str]:  # fmt: skip
    """`user` publishes to `topic`; then the station publishes a marker it receives itself.
    Returns what arrived before the marker (the broker delivers in order)."""
    async with client(broker, user) as c:
        await c.publish(topic, b"cmd", qos=1)
    async with client(broker, marker_client) as c:
        await c.publish(f"{PREFIX}/status", b"marker", qos=1)
    got = []
    while True:
        item = await asyncio.wait_for(inbox.get(), 5)
        if item.endswith("b'marker'"):
            return got
        got.append(item)


async def test_the_mes_commands_the_station(
    broker: Mosquitto, station_inbox: asyncio.Queue[str]
) -> None:
    got = await publish_then_mark(broker, "mes", f"{PREFIX}/commands", station_inbox)
    assert got == [f"{PREFIX}/commands=b'cmd'"]


@pytest.mark.parametrize("user", ["station-st-07", "viewer"])
async def test_others_cannot_command_a_station(
    broker: Mosquitto, station_inbox: asyncio.Queue[str], user: str
) -> None:
    assert await publish_then_mark(broker, user, f"{PREFIX}/commands", station_inbox) == []


async def test_mes_and_viewer_read_the_station_events(broker: Mosquitto) -> None:
    async with client(broker, "mes") as mes, client(broker, "viewer") as viewer:
        for c in (mes, viewer):
            await c.subscribe("fabline/v1/#", qos=1)
        async with client(broker, "station-st-07") as station:
            await station.publish(f"{PREFIX}/lots/L1/events", b"ev", qos=1)
        for c in (mes, viewer):
            m = await asyncio.wait_for(anext(c.messages), 5)
            assert (str(m.topic), m.payload) == (f"{PREFIX}/lots/L1/events", b"ev")


async def test_anonymous_clients_are_refused(broker: Mosquitto) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, None):
            pass
