"""JSON Schemas (draft 2020-12) for every MES event type and for inbound commands.

`fabline mes schema DIR` writes one file per event type plus `command.schema.json`; the
tests validate every event a flow produces against these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controller.events import EVENT_TYPES, SCHEMA

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
    "tool_warning": _obj(
        {
            "code": INT,
            "name": STR,
            "text": STR,
            "action": {"enum": ["hold", "record"]},
            "expected": {"type": "boolean"},
        }
    ),
    "qtime_expired": _obj(
        {
            "step_index": INT,
            "from_index": INT,
            "from_step": STR,
            "limit_s": NUM,
            "waited_s": NUM,
            "action": {"enum": ["hold", "rework"]},
            "rework_step": NULLABLE_STR,
            "reason": STR,
        }
    ),
    "step_skipped": _obj({"reason": STR}),
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


COMMAND_SCHEMA = "fabline.command/1"


def command_schema() -> dict[str, Any]:
    recipe = {
        "type": "object",
        "required": ["id"],
        "properties": {"id": STR, "version": INT, "hash": STR},
    }
    inputs = {
        "type": "object",
        "additionalProperties": {"oneOf": [INT, {"type": "array", "items": STR}, STR]},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE}/{COMMAND_SCHEMA}/command.schema.json",
        "title": "fabline station command",
        "type": "object",
        "required": ["schema", "command_id", "client", "command", "lot_id", "hmac"],
        "properties": {
            "schema": {"const": COMMAND_SCHEMA},
            "command_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "client": STR,
            "command": {"enum": ["dispatch", "hold", "release", "abort"]},
            "lot_id": STR,
            "recipe": recipe,
            "options": {"type": "object", "additionalProperties": STR},
            "inputs": inputs,
            "priority": INT,
            "reason": STR,
            "hmac": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
        "additionalProperties": False,
    }


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in EVENT_TYPES:
        p = directory / f"{kind}.schema.json"
        p.write_text(json.dumps(event_schema(kind), indent=2) + "\n")
        written.append(p)
    p = directory / "command.schema.json"
    p.write_text(json.dumps(command_schema(), indent=2) + "\n")
    return [*written, p]
