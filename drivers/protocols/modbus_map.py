"""The register map every fabline Modbus TCP tool publishes (see docs/tools/modbus-map.md).

Holding registers carry commands and the job block, input registers carry status and the
result of a queried job. 32-bit values are big-endian with the high word first; strings are
ASCII, two characters per register, high byte first, NUL-padded.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum

DEVICE_ID = 1  # Modbus unit id the tools answer on

# --- holding registers (FC3 read, FC6/FC16 write) ---
HR_COMMAND = 0  # u16, see Command; a write executes the command
HR_ARGUMENT = 1  # u16: operation code for START, consumable index for REPLACE
HR_JOB_ID = 2  # string, 16 registers (32 characters)
JOB_ID_REGS = 16
HR_PARAMS = 20  # f32 slot i at HR_PARAMS + 2*i, in the operation's parameter order
PARAM_SLOTS = 24
HR_QUERY_JOB_ID = 100  # string, 16 registers: selects the job shown at IR_QUERY_*
# a carrier at the load port (SEMI E87 slot-map verification): the host writes the carrier id
# and the slot map it expects; reading IR_CARRIER_* has the tool read the carrier's tag and
# map the slots
HR_CARRIER_ID = 128  # string, 16 registers
HR_CARRIER_EXPECTED = 144  # u16 × 25: SlotState expected per slot (slot 1 first)
CARRIER_SLOTS = 25

# --- input registers (FC4) ---
IR_STATE = 0  # u16 ToolState
IR_PROGRESS = 1  # u16, per mille of the current job
IR_ALARM_CODE = 2  # u16, first active alarm (0 = none)
IR_ALARM_COUNT = 3  # u16
IR_WARNING_CODE = 4  # u16, first active warning (0 = none)
IR_REFUSAL_CODE = 5  # u16 Refusal of the last refused write (0 = none)
IR_REFUSAL_REGISTER = 6  # u16 holding register the refusal is about
IR_JOBS_DONE = 7  # u32 jobs finished since power-on
IR_JOB_ID = 10  # string, 16 registers: current (or last) job id
IR_REFUSAL_TEXT = 26  # string, 32 registers (64 characters)
REFUSAL_TEXT_REGS = 32
IR_ALARM_CODES = 58  # u16 × 8 active alarm codes
ALARM_SLOTS = 8
IR_SETUP = 66  # u16 × 8: bitmask of installed choices per setup field (bit i = choice i)
SETUP_SLOTS = 8
IR_CONSUMABLE_LEVEL = 74  # f32 × 8: wear used, or supply left
IR_CONSUMABLE_LIMIT = 90  # f32 × 8
CONSUMABLE_SLOTS = 8
IR_WARNING_CODES = 106  # u16 × 8 active warning codes
WARNING_SLOTS = 8
STATUS_BLOCK = 114  # registers 0..113 are read in one request

IR_QUERY_JOB_ID = 200  # string, 16 registers (echo of HR_QUERY_JOB_ID)
IR_QUERY_STATE = 216  # u16 JobState
IR_QUERY_PROGRESS = 217  # u16 per mille
IR_QUERY_ALARM = 218  # u16 alarm code that ended the job (0 = none)
IR_QUERY_OPERATION = 219  # u16 operation code
IR_QUERY_RESULTS = 220  # f32 result i at IR_QUERY_RESULTS + 2*i, in the operation's result order
RESULT_SLOTS = 24
IR_QUERY_WARNING_COUNT = 268  # u16 process warnings the queried job raised at its end
IR_QUERY_WARNINGS = 269  # u16 × 8 their codes
QUERY_WARNING_SLOTS = 8
QUERY_BLOCK = 77  # registers 200..276

IR_CARRIER_ID = 300  # string, 16 registers: the carrier id the tool read from its tag
IR_SLOT_MAP = 316  # u16 × 25: SlotState the tool mapped per slot
CARRIER_BLOCK = 41  # registers 300..340


class Command(IntEnum):
    NONE = 0
    START = 1
    ABORT = 2
    CLEAR_ALARMS = 3
    RESET = 4
    REPLACE_CONSUMABLE = 5


class SlotState(IntEnum):
    """What a load port maps in one slot of a carrier."""

    EMPTY = 0
    OCCUPIED = 1  # one work piece, flat
    DOUBLE = 2  # two pieces in one slot
    CROSS = 3  # one piece across two slots


class Refusal(IntEnum):
    """Why the tool refused the last write; the text register says more."""

    NONE = 0
    OUT_OF_RANGE = 1
    UNKNOWN_OPERATION = 2
    BUSY = 3
    NOT_SET_UP = 4
    DUPLICATE_JOB = 5
    IN_ALARM = 6
    BAD_JOB_ID = 7
    RULE = 8
    CONSUMABLE_EXHAUSTED = 9
    NO_JOB = 10
    BAD_COMMAND = 11
    BAD_ADDRESS = 12


# Modbus exception codes the tools answer with
EXC_ILLEGAL_FUNCTION = 1
EXC_ILLEGAL_ADDRESS = 2
EXC_ILLEGAL_VALUE = 3
EXC_DEVICE_FAILURE = 4
EXC_DEVICE_BUSY = 6

# Read Device Identification (FC 43 / MEI 14) basic object ids
OBJ_VENDOR = 0x00
OBJ_PRODUCT_CODE = 0x01
OBJ_REVISION = 0x02
OBJ_PRODUCT_NAME = 0x04
OBJ_MODEL_NAME = 0x05
OBJ_SERIAL = 0x80  # first extended (private) object: serial number


# --- typed fields -------------------------------------------------------------------------
# Plain struct packing: these few lines are the whole wire format of a field, shared by the
# driver and the simulators so both sides agree by construction (the wire-level tests check
# the format independently with literal register values).


def u32_to_regs(value: int) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">I", value)))


def regs_to_u32(regs: Sequence[int]) -> int:
    value: int = struct.unpack(">I", struct.pack(">HH", regs[0], regs[1]))[0]
    return value


def i32_to_regs(value: int) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">i", value)))


def regs_to_i32(regs: Sequence[int]) -> int:
    value: int = struct.unpack(">i", struct.pack(">HH", regs[0], regs[1]))[0]
    return value


def f32_to_regs(value: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">f", value)))


def regs_to_f32(regs: Sequence[int]) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", regs[0], regs[1]))[0]
    return value


def str_to_regs(text: str, n_regs: int) -> list[int]:
    """ASCII, two characters per register, NUL-padded; longer text is an error."""
    raw = text.encode("ascii")
    if len(raw) > 2 * n_regs:
        raise ValueError(f"{text!r} is longer than {2 * n_regs} characters")
    raw = raw.ljust(2 * n_regs, b"\0")
    return list(struct.unpack(f">{n_regs}H", raw))


def regs_to_str(regs: Sequence[int]) -> str:
    raw = struct.pack(f">{len(regs)}H", *regs)
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
