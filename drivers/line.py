"""A line: the tools a station controls and how to reach them.

The same file format serves the simulator launcher (`fabline sim --line FILE`, where ports
may be 0 = pick a free one and `setup` says what is installed) and every command that talks
to tools (`--line FILE`). `fabline sim --json` prints a running line in this format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drivers.errors import LineError
from drivers.interfaces import KINDS, interface_for


class GemSettings(BaseModel):
    """How the host reaches a SECS/GEM tool over HSMS-SS (SEMI E37). Timers in seconds; a
    timer left out follows the driver's timeout (T3, T6, T8) or its reconnect back-off (T5),
    and T7 is 10 s."""

    model_config = ConfigDict(extra="forbid")

    device_id: int = Field(default=0, ge=0, le=0x7FFF)  # HSMS session id
    mode: Literal["active", "passive"] = "active"  # active: the host connects to the tool
    t3: float | None = Field(default=None, gt=0, le=600)  # reply timeout
    t5: float | None = Field(default=None, gt=0, le=240)  # connect separation
    t6: float | None = Field(default=None, gt=0, le=240)  # control transaction timeout
    t7: float | None = Field(default=None, gt=0, le=240)  # not-selected timeout
    t8: float | None = Field(default=None, gt=0, le=120)  # intercharacter timeout
    linktest: float | None = Field(default=None, gt=0, le=3600)  # period of link tests
    set_clock: bool = True  # S2F31 at connect; off for a tool without the Clock capability


class ToolEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
    kind: str
    # the kind's published protocol, or gem: every kind can be a SECS/GEM tool
    protocol: Literal["scpi", "modbus", "gem"] | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    resource: str | None = None  # any VISA resource string (SCPI tools); overrides host/port
    gem: GemSettings | None = None  # GEM tools: device id, HSMS mode and timers
    setup: dict[str, list[str]] | None = None  # simulator only: what is installed

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"unknown tool kind {v!r} (kinds: {', '.join(KINDS)})")
        return v

    def model_post_init(self, context: Any) -> None:
        published = interface_for(self.kind).protocol
        if self.protocol is None:
            self.protocol = "gem" if self.gem is not None else published
        elif self.protocol not in (published, "gem"):
            raise ValueError(f"{self.kind} tools speak {published} (or gem), not {self.protocol}")
        if self.protocol == "gem" and self.gem is None:
            self.gem = GemSettings()
        elif self.protocol != "gem" and self.gem is not None:
            raise ValueError(f"gem settings given for a {self.protocol} tool")


class FaultEndpoint(BaseModel):
    model_config = ConfigDict(extra="allow")

    host: str
    port: int
    protocol: str = "json-lines"


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: str = "line"
    tools: list[ToolEntry]
    faults: FaultEndpoint | None = None

    def tool(self, tool_id: str) -> ToolEntry:
        for t in self.tools:
            if t.id == tool_id:
                return t
        raise LineError(
            f"line {self.line!r} has no tool {tool_id!r} (tools: {', '.join(self.ids())})"
        )

    def ids(self) -> list[str]:
        return [t.id for t in self.tools]

    def model_post_init(self, context: Any) -> None:
        seen: set[str] = set()
        for t in self.tools:
            if t.id in seen:
                raise ValueError(f"duplicate tool id {t.id!r}")
            seen.add(t.id)


def parse_line(data: object, source: str) -> Line:
    try:
        return Line.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()
        )
        raise LineError(f"{source}: {problems}") from None


def load_line(path: str | Path) -> Line:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise LineError(f"{p}: cannot read line file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise LineError(f"{p}: not a line file (not UTF-8 text)") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise LineError(
            f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {e}"
        ) from None
    return parse_line(data, str(p))
