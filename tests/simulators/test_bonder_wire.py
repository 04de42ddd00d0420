"""Bonder wire interface with a stock pymodbus client and literal registers from
docs/tools/bonder.md and docs/tools/modbus-map.md (independent of drivers/interfaces)."""

from __future__ import annotations

import pytest

from drivers.line import Line
from tests.simulators.raw import client, job_block, text, unf32, untext

# flip_chip (op 3): bump_type SOLDER=0, bump_count 400, bump_height 30 µm, coplanarity 3 µm,
# pitch 150 µm, force_per_bump 10 gf, head 300 °C, stage 100 °C, bond_time 4 s, die 10 mm,
# substrate ORGANIC=0, die_count 2
FLIP = [0, 400, 30, 3, 150, 10, 300, 100, 4, 10, 0, 2]


async def test_identification(line: Line) -> None:
    c = await client(line, "BOND-1")
    rr = await c.read_device_information(read_code=1, device_id=1)
    assert rr.information[0] == b"FABLINE-SIM"
    assert rr.information[1] == b"UNIBOND-8"
    assert rr.information[2] == b"1.0.0"
    rr = await c.read_device_information(read_code=4, object_id=0x80, device_id=1)
    assert rr.information[0x80] == b"SN-BOND-1"
    c.close()


async def test_flip_chip_by_the_register_map(line: Line) -> None:
    c = await client(line, "BOND-1")
    status = (await c.read_input_registers(0, count=106, device_id=1)).registers
    assert status[66] == 0b11101  # films: TC_FILM, LEAD, CIRCUIT_FILM, ADHESIVE_FILM
    assert unf32(status[90:92]) == 200_000  # bond_head limit
    head_before = unf32(status[74:76])

    rr = await c.write_registers(0, job_block(3, "WIRE-B1", FLIP), device_id=1)
    assert not rr.isError()
    await c.write_registers(100, text("WIRE-B1", 16), device_id=1)
    while True:
        q = (await c.read_input_registers(200, count=68, device_id=1)).registers
        if q[16] == 3:  # COMPLETE
            break
        assert q[16] == 2  # RUNNING
    assert untext(q[:16]) == b"WIRE-B1"
    assert q[18] == 0 and q[19] == 3  # no alarm; operation flip_chip
    # bump at 100 + 0.85·(300 − 100) = 270 °C: δ = 10 gf / (20 gf/µm·e^(−245/80)) ≈ 10.7 µm
    assert 9.5 < unf32(q[30:32]) < 12  # collapse, result 5 at IR 230
    assert unf32(q[32:34]) == 0  # opens
    # 7.07 mm × (2.6e-6 × 275 K − 17e-6 × 75 K) ≈ −3.96 µm at the die corner
    assert abs(unf32(q[28:30]) - 3.96) < 0.05  # runout, result 4 at IR 228
    assert abs(unf32(q[36:38]) - 46 / 60) < 1e-5  # duration (30 s + 2 × (3 + 4 + 1) s)
    status = (await c.read_input_registers(0, count=106, device_id=1)).registers
    assert unf32(status[74:76]) == head_before + 2  # two bond cycles
    c.close()


@pytest.mark.parametrize(
    ("op", "params", "refusal", "register", "reason"),
    [
        # head_temp 400 °C (slot 6) is outside 250–350: OUT_OF_RANGE at HR 32
        (3, [0, 400, 30, 3, 150, 10, 400, 100, 4, 10, 0, 2], 1, 32, b"HEAD_TEMP 400"),
        # Au bumps at 10 gf: a RULE of the operation, about the command
        (3, [1, 400, 30, 3, 150, 10, 300, 100, 4, 10, 0, 2], 8, 0,
         b"force_per_bump 10 gf is outside the AU window 30-100 gf"),
        # laminate DIE_ATTACH_FILM=1, which is not installed: NOT_SET_UP at the material slot
        (4, [1, 50, 150, 0.5, 30, 0, 0, 200, 0, 150, 0], 4, 20,
         b"material DIE_ATTACH_FILM not set up (installed: TC_FILM LEAD"),
    ],
)  # fmt: skip
async def test_refusal_gives_exception_3_and_reason(
    line: Line, op: int, params: list[float], refusal: int, register: int, reason: bytes
) -> None:
    c = await client(line, "BOND-1")
    job_id = f"WIRE-R{refusal}"
    rr = await c.write_registers(0, job_block(op, job_id, params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    r = (await c.read_input_registers(5, count=2, device_id=1)).registers
    assert r == [refusal, register]
    why = untext((await c.read_input_registers(26, count=32, device_id=1)).registers)
    assert why.startswith(reason)
    assert len(why) <= 64
    # nothing was started: the tool is not running and knows no such job
    assert (await c.read_input_registers(0, count=1, device_id=1)).registers[0] != 2
    await c.write_registers(100, text(job_id, 16), device_id=1)
    assert (await c.read_input_registers(216, count=1, device_id=1)).registers[0] == 0
    c.close()


async def test_job_warnings_by_the_register_map(line: Line) -> None:
    """w2w_adhesive (op 1): POLYIMIDE=0, 11 µm, 300 °C, 10 kN, 30 min, 1e-4 mbar, 200 mm. The
    PI is ~60 % cured at unload: the job completes with warning 381 (UNDERCURED) at IR 268/269."""
    c = await client(line, "BOND-1")
    rr = await c.write_registers(
        0, job_block(1, "WIRE-BW", [0, 11, 300, 10, 30, 1e-4, 200]), device_id=1
    )
    assert not rr.isError()
    await c.write_registers(100, text("WIRE-BW", 16), device_id=1)
    while True:
        q = (await c.read_input_registers(200, count=77, device_id=1)).registers
        if q[16] == 3:  # COMPLETE
            break
        assert q[16] == 2
    assert q[18] == 0  # no alarm
    assert unf32(q[20 + 2 * 7 : 22 + 2 * 7]) < 80  # cure, result 7
    assert q[68] == 1 and q[69] == 381  # one warning: UNDERCURED
    assert q[70:77] == [0] * 7
    c.close()
