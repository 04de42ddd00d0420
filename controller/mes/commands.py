"""The commands an MES sends a station, as typed models, and how one is signed and checked.

A command is one JSON object (`fabline.command/2`, docs/mes.md). Its `hmac` is HMAC-SHA256,
keyed with the MES client's shared secret, of the command's canonical JSON without the
`hmac` field; the signed content names the site and station it is for and when it was
issued, so a command captured on the way can neither be altered, nor replayed to another
station, nor replayed later than `ttl` seconds (a replay within that time to the same
station is answered from the record by its command id, never executed twice).

`verify` turns raw bytes into a `Command` or a `Rejected` with one line saying why; it
needs no broker and no database (the station checks for repeats after it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from controller.lots.carriers import CarrierSpec
from controller.lots.request import LotRequest

COMMAND_SCHEMA = "fabline.command/2"
MAX_BYTES = 64 * 1024  # a dispatch with 25 wafer ids is ~2 KB
TTL = timedelta(minutes=5)  # how long after `issued_at` a command is still taken
SKEW = timedelta(minutes=1)  # how far an MES clock may run ahead of the station's

NAME = r"^[A-Za-z0-9_.-]{1,64}$"
LOT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
UNIT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_UNITS = 1000  # ids in one input list

Name = Annotated[str, Field(pattern=NAME)]
Text = Annotated[str, Field(max_length=500)]


class RecipeRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{1,64}$")] | None = None


_UNIT_ID = re.compile(UNIT_ID)
_INPUT_TEXT = f"a count 0..{MAX_UNITS}, a list of 1..{MAX_UNITS} unit ids, or one unit id"


def _input_value(v: object) -> int | list[str] | str:
    """One input of a dispatch, checked with one message instead of one per union member."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_UNITS:
        return v
    if isinstance(v, str) and _UNIT_ID.match(v):
        return v
    if (
        isinstance(v, list)
        and 0 < len(v) <= MAX_UNITS
        and all(isinstance(u, str) and _UNIT_ID.match(u) for u in v)
    ):
        return list(v)
    raise ValueError(f"{_INPUT_TEXT} (unit ids: letters, digits, '.', '_', '-')")


InputValue = Annotated[
    int | list[str] | str,
    PlainValidator(_input_value),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_UNITS},
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": UNIT_ID},
                    "minItems": 1,
                    "maxItems": MAX_UNITS,
                },
                {"type": "string", "pattern": UNIT_ID},
            ]
        }
    ),
]


class _Command(BaseModel):
    """What every command carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["fabline.command/2"] = Field(alias="schema")
    command_id: Annotated[str, Field(min_length=1, max_length=64)]
    client: Name
    site: Name
    station: Name
    issued_at: datetime
    lot_id: Annotated[str, Field(pattern=LOT_ID)]
    reason: Text | None = None
    hmac: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Dispatch(_Command):
    """Create a lot and run it on the station's line."""

    command: Literal["dispatch"]
    recipe: RecipeRef
    options: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=200)]] = (
        Field(default_factory=dict, max_length=64)
    )
    inputs: dict[Annotated[str, Field(max_length=64)], InputValue] = Field(
        default_factory=dict, max_length=64
    )
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    # incoming wafer-sort maps (controller/lots/sort_maps.py): wafer or `WAFER:LAYER` -> an
    # E142 XML or JSON map; without a DeviceIdMap a 300 mm wafer's map fits the 64 KiB limit
    sort_maps: dict[Annotated[str, Field(min_length=1, max_length=72)], str] = Field(
        default_factory=dict, max_length=64
    )
    sort_yield: Annotated[float, Field(gt=0, le=1)] | None = None
    sort_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    # input -> the carrier its units arrive in (FOUP id, their slots)
    carriers: dict[Annotated[str, Field(max_length=64)], CarrierSpec] = Field(
        default_factory=dict, max_length=8
    )

    def request(self) -> LotRequest:
        return LotRequest(
            lot_id=self.lot_id,
            recipe=self.recipe.id,
            version=self.recipe.version,
            hash=self.recipe.hash,
            options=dict(self.options),
            inputs={k: [v] if isinstance(v, str) else v for k, v in self.inputs.items()},
            priority=self.priority,
            sort_maps=dict(self.sort_maps),
            sort_yield=self.sort_yield,
            sort_seed=self.sort_seed,
            carriers=dict(self.carriers),
        )


class Hold(_Command):
    """Hold the lot between steps."""

    command: Literal["hold"]


class Release(_Command):
    """Release a held or paused lot and run it on."""

    command: Literal["release"]


class Abort(_Command):
    """Abort the lot at once: its running job is stopped on the tool."""

    command: Literal["abort"]


LotId = Annotated[str, Field(pattern=LOT_ID)]
UnitId = Annotated[str, Field(pattern=UNIT_ID)]
UnitIds = Annotated[list[UnitId], Field(max_length=MAX_UNITS)]


class Split(_Command):
    """Move `units` of the lot into a new child lot (`into`, else `<lot>.N`) at the same step."""

    command: Literal["split"]
    units: Annotated[list[UnitId], Field(min_length=1, max_length=MAX_UNITS)]
    into: LotId | None = None


class Merge(_Command):
    """Merge `lots` (same recipe version, options, next step and state) into the lot."""

    command: Literal["merge"]
    lots: Annotated[list[LotId], Field(min_length=1, max_length=50)]


class Scrap(_Command):
    """Scrap `units` of the lot (none: the whole lot) with a scrap `code`; `reason` is the
    comment."""

    command: Literal["scrap"]
    units: UnitIds = Field(default_factory=list)
    code: Annotated[str, Field(max_length=32)] | None = None


class Rework(_Command):
    """Send the lot (with `units`: a child lot of them) back by its recipe's rework `route`."""

    command: Literal["rework"]
    route: Name
    units: UnitIds = Field(default_factory=list)
    into: LotId | None = None


AnyCommand = Dispatch | Hold | Release | Abort | Split | Merge | Scrap | Rework
Command = Annotated[AnyCommand, Field(discriminator="command")]
COMMANDS = ("dispatch", "hold", "release", "abort", "split", "merge", "scrap", "rework")
_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(Command)


def command_json_schema() -> dict[str, Any]:
    return _ADAPTER.json_schema(by_alias=True)


class Rejected(Exception):
    """A command refused before or while it ran; `reason` is the one line the MES reads."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical(command: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in command.items() if k != "hmac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(command: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """The command with its `hmac` (what an MES client does before publishing)."""
    mac = hmac.new(secret.encode(), canonical(command), hashlib.sha256).hexdigest()
    return {**command, "hmac": mac}


def unsigned_command(
    *, client: str, site: str, station: str, command: str, lot_id: str, **fields: Any
) -> dict[str, Any]:
    """A new command body with a fresh id and the current time, ready for `sign`."""
    return {
        "schema": COMMAND_SCHEMA,
        "command_id": str(uuid.uuid4()),
        "client": client,
        "site": site,
        "station": station,
        "issued_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "command": command,
        "lot_id": lot_id,
        **fields,
    }


def parse(raw: bytes) -> dict[str, Any]:
    """The JSON object of a payload, or Rejected."""
    if len(raw) > MAX_BYTES:
        raise Rejected(f"command of {len(raw)} bytes is larger than {MAX_BYTES // 1024} KiB")
    try:
        cmd = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Rejected(f"malformed JSON ({_short(str(e))})") from None
    except RecursionError:
        raise Rejected("malformed JSON: nested too deeply") from None
    if not isinstance(cmd, dict):
        raise Rejected("malformed JSON: not an object")
    return cmd


def authenticate(
    cmd: Mapping[str, Any], clients: Mapping[str, str], site: str, station: str
) -> None:
    """Schema version, signature, and that the command is addressed to this station."""
    if cmd.get("schema") != COMMAND_SCHEMA:
        hint = " (sign site, station and issued_at: docs/mes.md)" if _old(cmd) else ""
        raise Rejected(
            f"wrong schema version {_short(repr(cmd.get('schema')))}"
            f" (expected {COMMAND_SCHEMA!r}){hint}"
        )
    ident = cmd.get("command_id")
    if not isinstance(ident, str) or not 0 < len(ident) <= 64:
        raise Rejected("command_id missing or longer than 64")
    secret = clients.get(str(cmd.get("client")))
    mac = cmd.get("hmac")
    if secret is None or not isinstance(mac, str):
        raise Rejected("not authorised")
    expected = hmac.new(secret.encode(), canonical(cmd), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        raise Rejected("not authorised")
    for field, mine in (("site", site), ("station", station)):
        if cmd.get(field) != mine:
            raise Rejected(
                f"command is for {field} {_short(repr(cmd.get(field)))}, this is {mine!r}"
            )


def validate(cmd: Mapping[str, Any]) -> AnyCommand:
    """The typed command, or Rejected naming the first bad field."""
    kind = cmd.get("command")
    if kind not in COMMANDS:
        raise Rejected(f"unknown command {_short(repr(kind))} (commands: {', '.join(COMMANDS)})")
    try:
        return _ADAPTER.validate_python(dict(cmd))
    except ValidationError as e:
        raise Rejected(validation_text(e)) from None


def check_fresh(command: AnyCommand, now: datetime, ttl: timedelta = TTL) -> None:
    issued = command.issued_at
    if issued.tzinfo is None:
        raise Rejected("issued_at must carry a time zone (e.g. 2026-12-06T10:00:00Z)")
    if issued > now + SKEW:
        raise Rejected(
            f"issued_at {issued.isoformat()} is in the future"
            f" (more than {SKEW.total_seconds():.0f} s ahead of the station's clock)"
        )
    if issued < now - ttl:
        raise Rejected(
            f"stale command: issued {(now - issued).total_seconds():.0f} s ago,"
            f" commands are taken for {ttl.total_seconds():.0f} s"
        )


def validation_text(e: ValidationError) -> str:
    """One line: the first problem, naming the field path (never echoing a long value)."""
    first = e.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in first["loc"] if p not in COMMANDS)
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    return _short(f"{loc or 'command'}: {msg}{more}", 300)


def _old(cmd: Mapping[str, Any]) -> bool:
    return cmd.get("schema") == "fabline.command/1"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
