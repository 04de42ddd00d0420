"""JSON Schemas (draft 2020-12) for every MES event type and for inbound commands.

`fabline mes schema DIR` writes one file per event type plus `command.schema.json`; the
tests validate every event a flow produces against these.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from controller.events import EVENT_TYPES, SCHEMA
from controller.mes.commands import COMMAND_SCHEMA, command_json_schema
from drivers.errors import UsageError

BASE = "https://fabline.invalid/schema"
STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
NULLABLE_STR = {"type": ["string", "null"]}
QUANTITY = {
    "type": "object",
    "required": ["value", "unit"],
    "properties": {"value": {"type": ["number", "string"]}, "unit": STR},
}
QUANTITIES = {"type": "object", "additionalProperties": QUANTITY}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


STEP = {"step_index": INT, "operation": STR, "job_id": STR, "attempt": INT, "role": NULLABLE_STR}

DATA: dict[str, dict[str, Any]] = {
    "lot_created": _obj(
        {
            "recipe_id": STR,
            "recipe_version": INT,
            "recipe_hash": STR,
            "options": {"type": "object"},
            "inputs": {"type": "object", "additionalProperties": INT},
            "steps": INT,
            "units": {"type": "array", "items": STR},
        }
    ),
    "track_in": _obj(STEP),
    "step_started": _obj({**STEP, "setpoints": QUANTITIES}),
    "step_completed": _obj(
        {
            "job_id": STR,
            "operation": STR,
            "setpoints": {"type": "object", "additionalProperties": STR},
            "results": QUANTITIES,
            "in_spec": {"type": "boolean"},
        }
    ),
    "track_out": _obj({"step_index": INT, "job_id": STR}),
    "external_waiting": _obj({"external": STR, "returns": {"type": "array", "items": STR}}),
    "external_confirmed": _obj({"returned": {"type": "object"}, "by": STR}),
    "hold": _obj({"reason": STR}),
    "release": _obj({"was": NULLABLE_STR, "note": NULLABLE_STR}),
    "abort": _obj({"reason": STR}),
    "lot_completed": _obj({"units": {"type": "object", "additionalProperties": INT}}),
    "genealogy_merge": _obj({"into": STR, "units": INT, "parts": INT}),
    "genealogy_split": _obj({"parent": STR, "into": STR, "count": INT, "die_map": STR}),
    "genealogy_consume": _obj({"consumable": STR, "consumable_lot": STR, "units": INT}),
    "tool_state": _obj(
        {
            "state": {"enum": ["idle", "busy", "alarm", "offline"]},
            "e10": {
                "enum": [
                    "PRODUCTIVE",
                    "STANDBY",
                    "ENGINEERING",
                    "SCHEDULED_DOWN",
                    "UNSCHEDULED_DOWN",
                    "NON_SCHEDULED",
                ]
            },
            "tool_state": NULLABLE_STR,
            "job_id": NULLABLE_STR,
            "alarms": {"type": "array", "items": INT},
        }
    ),
    "alarm_set": _obj({"code": INT, "name": STR, "text": STR}),
    "alarm_cleared": _obj({"code": INT, "name": STR, "text": STR}),
    "command_reply": _obj(
        {
            "command_id": NULLABLE_STR,
            "client": NULLABLE_STR,
            "command": NULLABLE_STR,
            "lot_id": NULLABLE_STR,
            "status": {"enum": ["accepted", "rejected"]},
            "reason": NULLABLE_STR,
            "repeat": {"type": "boolean"},
        }
    ),
}
assert set(DATA) == set(EVENT_TYPES)

LOT_EVENTS = {
    t for t in EVENT_TYPES if t not in ("tool_state", "alarm_set", "alarm_cleared", "command_reply")
}


def event_schema(kind: str) -> dict[str, Any]:
    lot = LOT_EVENTS.__contains__(kind)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE}/{SCHEMA}/{kind}.schema.json",
        "title": f"fabline event {kind}",
        "type": "object",
        "required": [
            "schema",
            "type",
            "event_id",
            "time",
            "lot_id",
            "seq",
            "station",
            "tool_id",
            "step_id",
            "data",
        ],
        "properties": {
            "schema": {"const": SCHEMA},
            "type": {"const": kind},
            "event_id": {"type": "string", "format": "uuid"},
            "time": {"type": "string", "format": "date-time"},
            "lot_id": STR if lot else NULLABLE_STR,
            "seq": {"type": "integer", "minimum": 1} if lot else {"type": ["integer", "null"]},
            "station": STR,
            "tool_id": NULLABLE_STR,
            "step_id": NULLABLE_STR,
            "data": DATA[kind],
        },
        "additionalProperties": False,
    }


def command_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE}/{COMMAND_SCHEMA}/command.schema.json",
        "title": "fabline station command",
        **command_json_schema(),
    }


def write_schemas(directory: Path) -> list[Path]:
    """One file per event type and one for commands. Each file is written whole to a new
    temporary file and renamed over its name, so a symlink planted under that name is
    replaced, never followed, and a reader never sees half a schema."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        schemas = {f"{kind}.schema.json": event_schema(kind) for kind in EVENT_TYPES}
        schemas["command.schema.json"] = command_schema()
        return [_write(directory, name, schema) for name, schema in schemas.items()]
    except OSError as e:
        raise UsageError(f"cannot write schemas to {directory}: {e.strerror}") from None


def _write(directory: Path, name: str, schema: dict[str, Any]) -> Path:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(schema, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        target = directory / name
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
