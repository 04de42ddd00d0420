"""Where the MES hook publishes: broker URL, topic prefix, client identities."""

from __future__ import annotations

import os
import re
import secrets
import socket
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import yaml

from controller.settings import fabline_home, settings
from drivers.errors import ParameterError, shown

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    def describe(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.ca_file)


def parse_broker(url: str, ca_file: str | None = None) -> Broker:
    """mqtt://[user[:password]@]host[:port], mqtts://...[?ca=/path/ca.pem]."""
    u = urlparse(url)
    try:
        port = u.port
    except ValueError:
        port = -1
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname or port == -1:
        raise ParameterError(
            f"MQTT URL {shown(url)!r}: expected mqtt://host[:port] or mqtts://host[:port]"
            " (port 1-65535)"
        )
    tls = u.scheme == "mqtts"
    ca = ca_file or next(iter(parse_qs(u.query).get("ca", [])), None)
    if ca and not Path(ca).exists():
        raise ParameterError(f"MQTT CA file {ca!r} does not exist")
    return Broker(
        host=u.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(u.username) if u.username else None,
        password=unquote(u.password) if u.password else None,
        ca_file=ca,
    )


@dataclass(frozen=True)
class MesConfig:
    """`broker` None: no MES connected; events stay in the outbox and go to the spool file."""

    broker: Broker | None
    site: str = "site-1"
    station: str = "station-1"
    prefix_template: str = "fabline/v1/{site}/{station}"
    spool: Path = field(default_factory=lambda: fabline_home() / "mes-spool.jsonl")
    clients: dict[str, str] = field(default_factory=dict)  # MES client id -> shared secret
    command_ttl: timedelta = timedelta(minutes=5)  # how long after issue a command is taken

    def client_id(self, *, station: bool) -> str:
        """The station's fixed MQTT client id, or a unique one for any other process."""
        base = f"fabline-{self.site}-{self.station}"
        if station:
            return base
        return f"{base}-{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(2)}"

    @property
    def prefix(self) -> str:
        return self.prefix_template.format(site=self.site, station=self.station)

    # -- topics ---------------------------------------------------------------------------

    def lot_events(self, lot_id: str) -> str:
        return f"{self.prefix}/lots/{lot_id}/events"

    def lot_state(self, lot_id: str) -> str:
        return f"{self.prefix}/lots/{lot_id}/state"

    def tool_events(self, tool_id: str) -> str:
        return f"{self.prefix}/tools/{tool_id}/events"

    def tool_state(self, tool_id: str) -> str:
        return f"{self.prefix}/tools/{tool_id}/state"

    @property
    def commands(self) -> str:
        return f"{self.prefix}/commands"

    @property
    def replies(self) -> str:
        return f"{self.prefix}/replies"

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def station_events(self) -> str:
        return f"{self.prefix}/events"


def load_clients(path: str | None) -> dict[str, str]:
    """MES client secrets: a YAML file {client: secret}, and/or FABLINE_MES_CLIENTS as
    "client=secret,client2=secret2". Secrets stay out of command lines and process lists."""
    clients: dict[str, str] = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ParameterError(f"MES clients file {path}: {e.strerror}") from None
        except (yaml.YAMLError, UnicodeDecodeError):
            raise ParameterError(f"MES clients file {path}: not YAML text") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and NAME.match(k) and isinstance(v, str) and v
            for k, v in data.items()
        ):
            raise ParameterError(
                f"MES clients file {path}: expected a mapping client: secret"
                " (client names of letters, digits, '.', '_', '-'; secrets not empty)"
            )
        clients |= data
    for item in filter(None, settings().mes_clients.split(",")):
        name, sep, secret = item.partition("=")
        if not sep or not NAME.match(name) or not secret:
            raise ParameterError("FABLINE_MES_CLIENTS: expected client=secret[,client=secret]")
        clients[name] = secret
    return clients


def mes_config(
    url: str | None,
    *,
    site: str | None = None,
    station: str | None = None,
    ca_file: str | None = None,
    clients_file: str | None = None,
    spool: str | None = None,
) -> MesConfig:
    """From options, else FABLINE_MQTT_URL / FABLINE_SITE / FABLINE_STATION."""
    env = settings()
    url = url or env.mqtt_url
    site = site or env.site
    station = station or env.station
    for what, value in (("site", site), ("station", station)):
        if not NAME.match(value):
            raise ParameterError(f"{what} {value!r}: letters, digits, '.', '_' or '-'")
    return MesConfig(
        broker=parse_broker(url, ca_file) if url else None,
        site=site,
        station=station,
        spool=Path(spool) if spool else fabline_home() / "mes-spool.jsonl",
        clients=load_clients(clients_file),
    )
