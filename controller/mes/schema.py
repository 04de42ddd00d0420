"""JSON Schemas (draft 2020-12) of every MES event type and of the commands, generated from
the models the station writes and validates with (controller/events.py,
controller/mes/commands.py).

`fabline mes schema DIR` writes one file per event type plus `command.schema.json`; the tests
validate every event of every flow against them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from controller.events import EVENT_CLASSES, EVENT_TYPES, LOT_EVENTS, SCHEMA
from controller.mes.commands import COMMAND_SCHEMA, command_json_schema
from drivers.errors import UsageError

BASE = "https://fabline.invalid/schema"


def _tolerant(node: Any) -> Any:
    """The published schema lets an event carry fields it does not name: version 1 may gain
    fields (never lose or rename one), and an MES validating with today's schema must keep
    accepting tomorrow's events. fabline's own models stay strict."""
    if isinstance(node, dict):
        return {k: _tolerant(v) for k, v in node.items() if k != "additionalProperties"}
    if isinstance(node, list):
        return [_tolerant(v) for v in node]
    return node


def event_schema(kind: str) -> dict[str, Any]:
    schema = _tolerant(EVENT_CLASSES[kind].model_json_schema(by_alias=True, mode="serialization"))
    props = schema["properties"]
    props["station"] = {"type": "string"}  # written with the event into the outbox
    if kind in LOT_EVENTS:  # the outbox numbers a lot's events 1, 2, 3, ...
        props["lot_id"] = {"type": "string"}
        props["seq"] = {"type": "integer", "minimum": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE}/{SCHEMA}/{kind}.schema.json",
        "title": f"fabline event {kind}",
        **{k: v for k, v in schema.items() if k != "title"},
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


# -- the event table of docs/mes.md -----------------------------------------------------------

TABLE_BEGIN = "<!-- event table: generated from controller/events.py -->"
TABLE_END = "<!-- end of event table -->"


def event_table() -> str:
    """The docs table of every event type: when it is sent and what its data holds."""
    rows = ["| type | when | `data` |", "|---|---|---|"]
    for kind, cls in EVENT_CLASSES.items():
        when = " ".join((cls.__doc__ or "").split())
        data = cls.model_fields["data"].annotation
        fields = []
        for name, f in data.model_fields.items():  # type: ignore[union-attr]
            fields.append(f"`{name}`" + (f" ({f.description})" if f.description else ""))
        rows.append(f"| `{kind}` | {when} | {', '.join(fields)} |")
    return "\n".join([TABLE_BEGIN, *rows, TABLE_END])


def rewrite_table(doc: Path) -> bool:
    """Put the generated table into `doc` between its markers; whether anything changed."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(TABLE_BEGIN), text.index(TABLE_END) + len(TABLE_END)
    new = text[:start] + event_table() + text[end:]
    if new != text:
        doc.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python -m controller.mes.schema docs/mes.md
    import sys

    for name in sys.argv[1:]:
        print(f"{name}: {'rewritten' if rewrite_table(Path(name)) else 'up to date'}")
