"""Carriers as lot inputs: the FOUP or cassette an input's units arrive in, and their slots.

A carrier's id and each unit's slot are recorded with the units (the `slot` column, the
`carrier` attribute) and in the lot's `lot_created` event. At each tool step the tool's load
port reads the carrier (SEMI E87 slot-map verification, drivers `read_carrier`), and a
mismatch — an empty slot where a unit should be, a double- or cross-slotted one, a piece where
none should be, another carrier's tag — holds the lot with the carrier and slot named
(`check`, called by the engine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controller.lots.inputs import InputUnit
from drivers.errors import ParameterError
from drivers.protocols.modbus_map import CARRIER_SLOTS, SlotState

CARRIER_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"


class CarrierSpec(BaseModel):
    """The carrier an input arrives in, and the slot of each of its units in order (default:
    the units' own slots, 1..N)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=CARRIER_ID)]
    slots: list[Annotated[int, Field(ge=1, le=CARRIER_SLOTS)]] | None = None


def attach(
    inputs: Mapping[str, list[InputUnit]], carriers: Mapping[str, CarrierSpec]
) -> dict[str, list[InputUnit]]:
    """The inputs with their carrier and slots; ParameterError naming the input and slot."""
    out = dict(inputs)
    for name, spec in carriers.items():
        units = inputs.get(name)
        if units is None:
            have = ", ".join(inputs) or "none"
            raise ParameterError(f"carrier {spec.id}: the lot has no input {name!r} ({have})")
        slots = spec.slots or [u.slot or i + 1 for i, u in enumerate(units)]
        if len(slots) != len(units):
            raise ParameterError(
                f"carrier {spec.id}: {len(slots)} slots for {len(units)} {name} units"
            )
        if len(set(slots)) != len(slots):
            twice = sorted({s for s in slots if slots.count(s) > 1})
            raise ParameterError(f"carrier {spec.id}: slot {twice[0]} given twice")
        if max(slots) > CARRIER_SLOTS:
            raise ParameterError(f"carrier {spec.id}: slot {max(slots)} > {CARRIER_SLOTS}")
        out[name] = [
            InputUnit(u.name, slot, {**u.attributes, "carrier": spec.id})
            for u, slot in zip(units, slots, strict=True)
        ]
    return out


def expected(units: Sequence[tuple[str, int | None]]) -> tuple[int, ...]:
    """The slot map a carrier should show: one piece in each (name, slot) given."""
    slots = [int(SlotState.EMPTY)] * CARRIER_SLOTS
    for _, slot in units:
        if slot is not None and 1 <= slot <= CARRIER_SLOTS:
            slots[slot - 1] = int(SlotState.OCCUPIED)
    return tuple(slots)


def check(
    carrier_id: str,
    units: Sequence[tuple[str, int | None]],
    read_id: str,
    read: Sequence[int],
    tool_id: str,
) -> str | None:
    """Why what the tool read does not match the lot's record (None: it matches)."""
    if read_id != carrier_id:
        return f"carrier {carrier_id} at {tool_id}: its tag reads {read_id!r}"
    by_slot = {slot: name for name, slot in units if slot is not None}
    want = expected(units)
    for n, (w, r) in enumerate(zip(want, read, strict=False), start=1):
        if w == r:
            continue
        state = {0: "empty", 1: "one piece", 2: "double-slotted", 3: "cross-slotted"}.get(
            r, f"state {r}"
        )
        what = f"{by_slot[n]} expected" if n in by_slot else "expected empty"
        return f"carrier {carrier_id} slot {n} at {tool_id}: {what}, mapped {state}"
    return None
