"""MES lot-tracking events: one versioned JSON envelope for every event type.

Events are written to the outbox in the same transaction as the change they report; the
outbox assigns each lot's events a gapless sequence number. docs/mes.md lists the types and
their data; `fabline mes schema` exports a JSON Schema for each.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

SCHEMA = "fabline.event/1"

EVENT_TYPES = (
    "lot_created",
    "track_in",
    "step_started",
    "step_completed",
    "track_out",
    "external_waiting",
    "external_confirmed",
    "hold",
    "release",
    "abort",
    "lot_completed",
    "genealogy_merge",
    "genealogy_split",
    "genealogy_consume",
    "tool_state",
    "alarm_set",
    "alarm_cleared",
    "command_reply",
    "tool_warning",
    "qtime_expired",
    "step_skipped",
)


def event(
    type_: str,
    *,
    lot_id: str | None = None,
    tool_id: str | None = None,
    step_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new event; `seq`, `station` are filled when it is written to the outbox."""
    assert type_ in EVENT_TYPES, type_
    return {
        "schema": SCHEMA,
        "type": type_,
        "event_id": str(uuid.uuid4()),
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "lot_id": lot_id,
        "seq": None,
        "station": None,
        "tool_id": tool_id,
        "step_id": step_id,
        "data": data or {},
    }
