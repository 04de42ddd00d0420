"""The station's configuration file (`fabline station --config FILE`): YAML checked by a
pydantic model; every problem is one line `FILE: path: reason`.

    station: st-07                      # default $FABLINE_STATION
    site: site-1                        # default $FABLINE_SITE
    line: /etc/fabline/line.yaml        # none: the embedded simulated line
    database: postgresql://fabline@db/fabline   # none: $FABLINE_DATABASE_URL, else SQLite
    mqtt: mqtts://st-07:secret@broker:8883      # none: $FABLINE_MQTT_URL, else the spool
    mqtt_ca: /etc/fabline/ca.pem
    mes_clients: /etc/fabline/mes-clients.yaml
    http:
      bind: 127.0.0.1:8080              # behind a reverse proxy that terminates TLS
      cert: /etc/fabline/tls/cert.pem   # or TLS here (cert and key)
      key: /etc/fabline/tls/key.pem
      proxies: [127.0.0.1]              # whose X-Forwarded-* headers are believed
      session_hours: 12
    retry_budget: 30
    time_scale: 20000                   # the embedded line only
    area: bumping                       # the line area this station serves (none: its own lots)
    standby: false                      # true: serve the area only when its station is gone
    areas:                              # the line's areas: the same on every station
      bumping: [sputter, litho, plating, coater, ball, clean]
      assembly: [bonder, grinder, mold, dicing, wirebonder]
    # or `areas: /etc/fabline/areas.yaml`: one file of {area: [kinds]} every station reads
    lease_ttl: 15                       # seconds: a standby takes over this long after a crash
    hold_codes:                         # default: controller/access/holds.py
      - {code: QA-SUSPECT, category: quality, text: suspect quality, release_role: engineer}
    hold_kinds: {out_of_spec: QA-SUSPECT, ...}
    scrap_codes:                        # default: controller/access/scrap.py
      - {code: BROKEN, category: handling, text: broken or cracked}

Relative paths are taken from the file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.access import HoldCode, HoldCodes, ScrapCode, ScrapCodes
from controller.access.holds import DEFAULT_CODES, DEFAULT_KINDS
from controller.access.scrap import DEFAULT_SCRAP_CODES
from controller.events import HoldKind
from controller.lots.areas import Areas
from drivers.errors import ParameterError


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    cert: Path | None = None
    key: Path | None = None
    proxies: tuple[str, ...] = ("127.0.0.1",)
    session_hours: float = 12.0

    @property
    def tls(self) -> bool:
        return self.cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def parse_bind(text: str) -> tuple[str, int]:
    """host:port, [v6]:port or :port (all interfaces)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (port 0-65535)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSection(_Model):
    bind: str = "127.0.0.1:8080"
    cert: Path | None = None
    key: Path | None = None
    proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0

    @field_validator("bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        parse_bind(v)
        return v


class StationFile(_Model):
    station: str | None = None
    site: str | None = None
    line: Path | None = None
    database: str | None = None
    mqtt: str | None = None
    mqtt_ca: Path | None = None
    mes_clients: Path | None = None
    http: HttpSection = Field(default_factory=HttpSection)
    retry_budget: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 30.0
    time_scale: Annotated[float, Field(gt=0)] = 2e4
    seed: int = 0
    monitor_interval: Annotated[float, Field(gt=0, le=60)] = 1.0
    hold_codes: list[HoldCode] = Field(default_factory=lambda: list(DEFAULT_CODES))
    hold_kinds: dict[HoldKind, str] = Field(default_factory=lambda: dict(DEFAULT_KINDS))  # type: ignore[arg-type]
    scrap_codes: list[ScrapCode] = Field(default_factory=lambda: list(DEFAULT_SCRAP_CODES))
    area: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    standby: bool = False
    areas: dict[str, list[str]] | Path = Field(default_factory=dict)
    lease_ttl: Annotated[float, Field(ge=0.5, le=3600)] | None = None  # default 15 s

    def line_areas(self) -> Areas:
        if isinstance(self.areas, Path):  # read (relative to the station file) at load
            raise ParameterError(f"areas: {self.areas} was not read")
        return Areas.parse(self.areas)

    def holds(self) -> HoldCodes:
        return HoldCodes(codes=self.hold_codes, kinds=self.hold_kinds)

    def scraps(self) -> ScrapCodes:
        return ScrapCodes(codes=self.scrap_codes)

    def http_settings(self, base: Path) -> HttpSettings:
        h = self.http
        host, port = parse_bind(h.bind)
        return HttpSettings(
            host=host,
            port=port,
            cert=_rel(base, h.cert),
            key=_rel(base, h.key),
            proxies=tuple(h.proxies),
            session_hours=h.session_hours,
        )


def _rel(base: Path, p: Path | None) -> Path | None:
    if p is None:
        return None
    p = p.expanduser()
    return p if p.is_absolute() else base / p


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(x) for x in loc) or "(top)"


def _areas_file(station_file: Path, path: Path) -> dict[str, list[str]]:
    """The line's areas from their own file, shared by every station of the line."""
    where = f"{station_file}: areas: {path}"
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ParameterError(f"{where}: {e.strerror or e}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ParameterError(f"{where}: not valid YAML") from None
    ok = isinstance(data, dict) and all(
        isinstance(a, str) and isinstance(k, list) and all(isinstance(x, str) for x in k)
        for a, k in data.items()
    )
    if not ok:
        raise ParameterError(f"{where}: expected a mapping of area: [tool kinds]")
    return data  # type: ignore[no-any-return]


def load_station_file(path: Path) -> tuple[StationFile, Path]:
    """The file checked, and the folder its relative paths start from."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ParameterError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ParameterError(f"{path}: not a text file") from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ParameterError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: (top): expected a mapping of settings")
    try:
        model = StationFile.model_validate(data)
        model.holds()
    except ValidationError as e:
        err = e.errors()[0]
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise ParameterError(f"{path}: {_where(err['loc'])}: {msg}{more}") from None
    base = path.resolve().parent
    if isinstance(model.areas, Path):
        model = model.model_copy(update={"areas": _areas_file(path, base / model.areas)})
    try:
        areas = model.line_areas()
    except ParameterError as e:
        raise ParameterError(f"{path}: {e}") from None
    if model.area is not None and model.area not in areas.names:
        have = ", ".join(areas.names) or "none: give the line's areas under `areas:`"
        raise ParameterError(f"{path}: area: {model.area!r} is not an area of the line ({have})")
    if model.standby and model.area is None:
        raise ParameterError(f"{path}: standby: a standby station needs the area it stands by for")
    h = model.http
    if (h.cert is None) != (h.key is None):
        raise ParameterError(f"{path}: http: give both cert and key for TLS, or neither")
    for what, p in (("http.cert", h.cert), ("http.key", h.key), ("line", model.line),
                    ("mes_clients", model.mes_clients), ("mqtt_ca", model.mqtt_ca)):  # fmt: skip
        full = _rel(base, p)
        if full is not None and not full.is_file():
            raise ParameterError(f"{path}: {what}: no file {full}")
    return model, base
