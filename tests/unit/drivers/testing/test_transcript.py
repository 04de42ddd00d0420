"""The transcript fakes fail loudly: a wrong, extra or missing request fails the test with the
expected and the actual request side by side, even when the code under test swallows it."""

from __future__ import annotations

import contextlib

import pytest

from drivers.errors import GarbledReply, ToolBusy, ToolError, ToolOffline, ToolTimeout, ValueRefused
from drivers.interfaces.sputter import SPUTTER
from drivers.testing import (
    FakeClock,
    Identify,
    ModbusRefused,
    ModbusTranscript,
    ReadHolding,
    ReadInput,
    Registers,
    ScpiRefused,
    ScpiTranscript,
    TranscriptError,
    TranscriptStepError,
    Write,
    expect_scpi,
)


async def test_replies_in_order_as_the_transport_returns_them() -> None:
    link = ScpiTranscript(
        [("*IDN?", "V,M,S,1"), ("A?;:B?", "1;2"), ("JOB:ABOR", ""), ("X?", '"a;b",c')]
    )
    assert await link.connect() == "V,M,S,1" and link.identity == "V,M,S,1"
    assert await link.query("A?;:B?") == ["1", "2"]
    await link.command("JOB:ABOR")
    assert await link.query("X?") == ['"a;b",c']  # split on ; outside strings only
    link.assert_done()
    assert link.sent == ["*IDN?", "A?;:B?", "JOB:ABOR", "X?"]


async def test_a_wrong_message_fails_with_expected_and_actual() -> None:
    link = ScpiTranscript([("TOOL:STAT?", "IDLE"), ('JOB:STAT? "J1"', "RUNNING,1,0")], tool_id="T")
    await link.query("TOOL:STAT?")
    with pytest.raises(TranscriptError) as e:
        await link.query('JOB:STAT? "J2"')
    assert str(e.value) == (
        "T: step 2 of 2:\n  expected 'JOB:STAT? \"J1\"'\n  got      'JOB:STAT? \"J2\"'"
    )


async def test_a_message_after_the_end_fails() -> None:
    link = ScpiTranscript([("A?", "1")], tool_id="T")
    await link.query("A?")
    with pytest.raises(TranscriptError, match=r"step 2: unexpected 'A\?'; the transcript ended"):
        await link.query("A?")


async def test_steps_left_over_fail_at_the_end_naming_the_next_one() -> None:
    link = ScpiTranscript([("A?", "1"), ("B?", "2"), ("C?", "3")], tool_id="T")
    await link.query("A?")
    with pytest.raises(
        TranscriptError, match=r"2 step\(s\) .* never sent; next expected step 2: 'B\?'"
    ):
        link.assert_done()


async def test_a_mismatch_the_code_swallows_still_fails_at_the_end() -> None:
    link = ScpiTranscript([("A?", "1")])
    with contextlib.suppress(Exception):  # code under test that catches too much
        await link.query("B?")
    with pytest.raises(TranscriptError, match=r"expected 'A\?'"):
        link.assert_done()


async def test_expect_scpi_checks_the_end_only_when_the_block_succeeds() -> None:
    with pytest.raises(TranscriptError, match="never sent"), expect_scpi(SPUTTER, [("*IDN?", "")]):
        pass
    # the test's own failure is not hidden behind the unsent step
    with pytest.raises(KeyError), expect_scpi(SPUTTER, [("*IDN?", "")]):
        raise KeyError("the test's own error")


@pytest.mark.parametrize("error", [ToolOffline, ToolTimeout, GarbledReply])
async def test_link_errors_are_raised_as_the_transport_raises_them(error: type[ToolError]) -> None:
    link = ScpiTranscript([("A?", error)], tool_id="T")
    with pytest.raises(error) as e:
        await link.query("A?")
    assert (e.value.tool_id, e.value.where) == ("T", "A?")


@pytest.mark.parametrize(
    ("code", "error"), [(-213, ToolBusy), (-200, ToolBusy), (-222, ValueRefused)]
)
async def test_scpi_refusals_map_to_errors_as_the_transport_maps_them(
    code: int, error: type[ToolError]
) -> None:
    link = ScpiTranscript([("JOB:STAR", ScpiRefused(code, "text"))], tool_id="T")
    with pytest.raises(error) as e:
        await link.command("JOB:STAR")
    assert type(e.value) is error and e.value.code == code
    assert str(e.value) == f"T [JOB:STAR]: refused: {code} text"


async def test_a_reply_to_a_command_or_an_unsplittable_line_is_garbled() -> None:
    link = ScpiTranscript([("JOB:ABOR", "1"), ("A?", '"open')])
    with pytest.raises(GarbledReply, match="unexpected reply"):
        await link.command("JOB:ABOR")
    with pytest.raises(GarbledReply, match="garbled reply"):
        await link.query("A?")


async def test_a_timeout_takes_the_calls_timeout_and_a_step_may_take_longer() -> None:
    clock = FakeClock()
    steps = [("A?", ToolTimeout), ("A?", ToolTimeout), ("A?", "1", 7.5), ("A?", ToolOffline)]
    link = ScpiTranscript(steps, timeout=2.0, clock=clock)
    for timeout in (None, 0.5):
        with pytest.raises(ToolTimeout):
            await link.query("A?", timeout=timeout)
    assert clock() == 2.5
    await link.query("A?")
    with pytest.raises(ToolOffline):
        await link.query("A?")
    assert clock.now == 10.0


def test_a_step_that_cannot_be_a_step_is_refused_when_built() -> None:
    with pytest.raises(TranscriptStepError, match="step 1"):
        ScpiTranscript([("A?", 42)])  # type: ignore[list-item]
    with pytest.raises(TranscriptStepError, match="needs 26 registers, got 3"):
        ModbusTranscript([(ReadInput(0, 26), [1, 2, 3])])
    with pytest.raises(TranscriptStepError, match="a write is answered with None"):
        ModbusTranscript([(Write(0, [2]), [0])])
    with pytest.raises(TranscriptStepError, match="dict of objects"):
        ModbusTranscript([(Identify(), None)])


async def test_modbus_requests_and_replies() -> None:
    link = ModbusTranscript(
        [
            (ReadInput(0, 2), [3, 1000]),
            (ReadHolding(100, 1), (0x4A31,)),
            (Write(0, (2,)), None),
            (Identify(), {0: "V"}),
        ]
    )
    await link.connect()
    assert await link.read_input(0, 2) == [3, 1000]
    assert await link.read_holding(100, 1) == [0x4A31]
    await link.write(0, [2])  # any sequence of the same values
    assert await link.identify() == {0: "V"}
    await link.close()
    link.assert_done()


@pytest.mark.parametrize(
    ("exception", "error", "name"),
    [(6, ToolBusy, "server device busy"), (3, ValueRefused, "illegal data value")],
)
async def test_modbus_exceptions_map_to_errors_as_the_transport_maps_them(
    exception: int, error: type[ToolError], name: str
) -> None:
    link = ModbusTranscript([(Write(0, [1, 2]), ModbusRefused(exception))], tool_id="T")
    with pytest.raises(error) as e:
        await link.write(0, [1, 2])
    assert type(e.value) is error
    assert str(e.value) == f"T [HR 0]: refused: exception {exception} ({name})"


async def test_a_wrong_write_names_the_first_register_that_differs() -> None:
    link = ModbusTranscript([(Write(0, [1, 3, 0x4A31, 0, 0]), None)])
    with pytest.raises(
        TranscriptError, match="first difference at register 2: expected 18993, got 18994"
    ):
        await link.write(0, [1, 3, 0x4A32, 0, 0])


async def test_a_read_link_error_names_the_registers() -> None:
    link = ModbusTranscript([(ReadInput(200, 68), GarbledReply)], tool_id="T")
    with pytest.raises(GarbledReply) as e:
        await link.read_input(200, 68)
    assert e.value.where == "IR 200+68"


def test_registers_are_filled_in_the_maps_encodings() -> None:
    r = Registers(8, base=10).u16(10, 7).u32(11, 0x12345678).f32(13, 1.0).text(15, "ABC", 2)
    assert r == [7, 0x1234, 0x5678, 0x3F80, 0x0000, 0x4142, 0x4300, 0]
    with pytest.raises(IndexError, match=r"registers 17\.\.18 outside this block 10\.\.17"):
        r.f32(17, 1.0)
    with pytest.raises(ValueError, match="16 bits"):
        r.u16(10, 70000)
