"""The Modbus register map (drivers/protocols/modbus_map.py): field encodings against
literal register words, and a layout whose blocks neither overlap nor outgrow their reads."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.protocols import modbus_map as mm


@pytest.mark.parametrize(
    ("value", "words"),
    [(1.0, [0x3F80, 0x0000]), (-2.5, [0xC020, 0x0000]), (20.0, [0x41A0, 0x0000]), (0.0, [0, 0])],
)
def test_f32_is_big_endian_high_word_first(value: float, words: list[int]) -> None:
    assert mm.f32_to_regs(value) == words
    assert mm.regs_to_f32(words) == value


def test_f32_keeps_single_precision_only() -> None:
    assert mm.regs_to_f32(mm.f32_to_regs(0.1)) == pytest.approx(0.1, rel=1e-7)
    assert mm.regs_to_f32(mm.f32_to_regs(0.1)) != 0.1
    assert math.isnan(mm.regs_to_f32([0x7FC0, 0x0000]))


@pytest.mark.parametrize(
    ("value", "words"), [(0x12345678, [0x1234, 0x5678]), (0, [0, 0]), (2**32 - 1, [0xFFFF, 0xFFFF])]
)
def test_u32(value: int, words: list[int]) -> None:
    assert mm.u32_to_regs(value) == words and mm.regs_to_u32(words) == value


@pytest.mark.parametrize(
    ("value", "words"), [(-1, [0xFFFF, 0xFFFF]), (-(2**31), [0x8000, 0]), (70000, [1, 4464])]
)
def test_i32_is_twos_complement(value: int, words: list[int]) -> None:
    assert mm.i32_to_regs(value) == words and mm.regs_to_i32(words) == value


def test_strings_are_two_ascii_characters_per_register_nul_padded() -> None:
    assert mm.str_to_regs("J1", 3) == [0x4A31, 0, 0]
    assert mm.str_to_regs("ABC", 2) == [0x4142, 0x4300]  # odd length: the last low byte is NUL
    assert mm.regs_to_str([0x4142, 0x4300, 0x4445]) == "ABC"  # stops at the first NUL
    assert mm.regs_to_str([0, 0]) == ""
    assert mm.regs_to_str([0x41FF]) == "A\ufffd"  # a non-ASCII byte never raises


def test_a_string_too_long_or_not_ascii_is_refused() -> None:
    with pytest.raises(ValueError, match="'ABCDE' is longer than 4 characters"):
        mm.str_to_regs("ABCDE", 2)
    with pytest.raises(ValueError):  # UnicodeEncodeError is a ValueError
        mm.str_to_regs("Jé", 4)


@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=32))
def test_a_job_id_round_trips(text: str) -> None:
    assert mm.regs_to_str(mm.str_to_regs(text, mm.JOB_ID_REGS)) == text


def _fields(fields: dict[str, tuple[int, int]]) -> list[tuple[int, int, str]]:
    return sorted((start, start + size, name) for name, (start, size) in fields.items())


INPUT_STATUS = {
    "state": (mm.IR_STATE, 1),
    "progress": (mm.IR_PROGRESS, 1),
    "alarm code": (mm.IR_ALARM_CODE, 1),
    "alarm count": (mm.IR_ALARM_COUNT, 1),
    "warning code": (mm.IR_WARNING_CODE, 1),
    "refusal code": (mm.IR_REFUSAL_CODE, 1),
    "refusal register": (mm.IR_REFUSAL_REGISTER, 1),
    "jobs done": (mm.IR_JOBS_DONE, 2),
    "job id": (mm.IR_JOB_ID, mm.JOB_ID_REGS),
    "refusal text": (mm.IR_REFUSAL_TEXT, mm.REFUSAL_TEXT_REGS),
    "alarm codes": (mm.IR_ALARM_CODES, mm.ALARM_SLOTS),
    "setup": (mm.IR_SETUP, mm.SETUP_SLOTS),
    "consumable levels": (mm.IR_CONSUMABLE_LEVEL, 2 * mm.CONSUMABLE_SLOTS),
    "consumable limits": (mm.IR_CONSUMABLE_LIMIT, 2 * mm.CONSUMABLE_SLOTS),
    "warning codes": (mm.IR_WARNING_CODES, mm.WARNING_SLOTS),
}
INPUT_QUERY = {
    "job id": (mm.IR_QUERY_JOB_ID, mm.JOB_ID_REGS),
    "state": (mm.IR_QUERY_STATE, 1),
    "progress": (mm.IR_QUERY_PROGRESS, 1),
    "alarm": (mm.IR_QUERY_ALARM, 1),
    "operation": (mm.IR_QUERY_OPERATION, 1),
    "results": (mm.IR_QUERY_RESULTS, 2 * mm.RESULT_SLOTS),
}
HOLDING = {
    "command": (mm.HR_COMMAND, 1),
    "argument": (mm.HR_ARGUMENT, 1),
    "job id": (mm.HR_JOB_ID, mm.JOB_ID_REGS),
    "parameters": (mm.HR_PARAMS, 2 * mm.PARAM_SLOTS),
    "query job id": (mm.HR_QUERY_JOB_ID, mm.JOB_ID_REGS),
}


@pytest.mark.parametrize(
    ("fields", "block"),
    [
        (INPUT_STATUS, (0, mm.STATUS_BLOCK)),
        (INPUT_QUERY, (mm.IR_QUERY_JOB_ID, mm.QUERY_BLOCK)),
        (HOLDING, (0, mm.HR_QUERY_JOB_ID + mm.JOB_ID_REGS)),
    ],
)
def test_fields_do_not_overlap_and_fit_their_block(
    fields: dict[str, tuple[int, int]], block: tuple[int, int]
) -> None:
    spans = _fields(fields)
    for (_, end, name), (start, _, following) in pairwise(spans):
        assert end <= start, f"{name} overlaps {following}"
    base, size = block
    assert spans[0][0] >= base and spans[-1][1] <= base + size
    assert size <= 125  # one Modbus read


def test_the_reads_the_driver_makes_cover_what_it_decodes() -> None:
    """A status read ends with the warning codes; a query by id ends with the warnings the
    job raised; a progress poll ends with the job id; a refusal read spans code, register
    and text."""
    assert mm.STATUS_BLOCK == mm.IR_WARNING_CODES + mm.WARNING_SLOTS
    assert mm.IR_QUERY_WARNING_COUNT == mm.IR_QUERY_RESULTS + 2 * mm.RESULT_SLOTS
    assert mm.QUERY_BLOCK == (mm.IR_QUERY_WARNINGS + mm.QUERY_WARNING_SLOTS - mm.IR_QUERY_JOB_ID)
    assert mm.IR_REFUSAL_TEXT + mm.REFUSAL_TEXT_REGS - mm.IR_REFUSAL_CODE == 53
    assert mm.IR_JOB_ID + mm.JOB_ID_REGS == 26
