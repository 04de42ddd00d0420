"""Test doubles for the driver half: transcript fakes at the transport seam.

A driver's protocol logic and its policy (lost-reply recovery in `start`, the link budget in
`wait`, garbled replies, the setup re-read after a refusal) are tested against a script of
exact wire requests and replies, with no socket and in milliseconds, in the manner of
pymeasure's `expected_protocol` and httpx's `MockTransport`. The simulators stay the system
test double (tests/drivers, tests/simulators); these are for tests/unit.

Nothing at runtime imports this package.
"""

from drivers.testing.modbus import (
    Identify,
    ModbusRefused,
    ModbusTranscript,
    ReadHolding,
    ReadInput,
    Registers,
    Write,
    expect_modbus,
    text_regs,
)
from drivers.testing.scpi import ScpiRefused, ScpiTranscript, expect_scpi
from drivers.testing.transcript import FakeClock, TranscriptError, TranscriptStepError

__all__ = [
    "FakeClock",
    "Identify",
    "ModbusRefused",
    "ModbusTranscript",
    "ReadHolding",
    "ReadInput",
    "Registers",
    "ScpiRefused",
    "ScpiTranscript",
    "TranscriptError",
    "TranscriptStepError",
    "Write",
    "expect_modbus",
    "expect_scpi",
    "text_regs",
]
