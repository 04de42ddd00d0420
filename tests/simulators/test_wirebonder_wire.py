"""Wire bonder wire interface with a stock pymodbus client and literal registers from
docs/tools/wirebonder.md and docs/tools/modbus-map.md (independent of drivers/interfaces)."""

from __future__ import annotations

from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

from drivers.line import Line
from tests.simulators.raw import client, job_block, reason, text, unf32

# wire_bond (op 1), slots 0-20: wire AU=0, wire_size D25=3, bond_type BALL_STITCH=0,
# pad_metal AL=0, lead_finish NIAU=0, units 4, wires_per_unit 32, span 1 mm, loop 150 µm,
# pad_opening 80 µm, fab 0 (standard), bond force/power/time 0, stitch force/power/time 0
# (standard), bond_temp 175 °C, temp_limit 300 °C, forming_gas 0 L/min, nonstick_limit 10
STANDARD_JOB: list[float] = [0, 3, 0, 0, 0, 4, 32, 1, 150, 80, 0, 0, 0, 0, 0, 0, 0, 175, 300, 0, 10]


async def test_identification(line: Line) -> None:
    c = await client(line, "WB-1")
    rr = await c.read_device_information(read_code=1, device_id=1)
    assert isinstance(rr, ReadDeviceInformationResponse)
    assert rr.information[0] == b"FABLINE-SIM"
    assert rr.information[1] == b"LOOPER-1"
    assert rr.information[2] == b"1.0.0"
    c.close()


async def test_wire_bond_by_the_register_map(line: Line) -> None:
    c = await client(line, "WB-1")
    # setup bitmasks: wire AU = bit 0, wire_size D25 = bit 3
    assert (await c.read_input_registers(66, count=2, device_id=1)).registers == [1, 8]
    # consumables: capillary (0) at IR 74, wire_spool (1) at IR 76; limits at IR 90, 92
    levels = (await c.read_input_registers(74, count=20, device_id=1)).registers
    capillary_before, spool_before = unf32(levels[0:2]), unf32(levels[2:4])
    assert unf32(levels[16:18]) == 2_000_000 and unf32(levels[18:20]) == 500
    rr = await c.write_registers(0, job_block(1, "WIRE-WB1", STANDARD_JOB), device_id=1)
    assert not rr.isError()
    await c.write_registers(100, text("WIRE-WB1", 16), device_id=1)
    while True:
        q = (await c.read_input_registers(200, count=68, device_id=1)).registers
        if q[16] == 3:  # COMPLETE
            break
        assert q[16] == 2  # RUNNING
    assert q[18] == 0 and q[19] == 1  # no alarm; operation code

    def result(i: int) -> float:
        return unf32(q[20 + 2 * i : 22 + 2 * i])

    assert 55 < result(0) < 65  # ball_diameter: 1.33 × the 45 µm free-air ball
    assert 25 < result(3) < 38  # ball_shear, gf
    assert 4 < result(4) < 9  # wire_pull, gf
    assert 144 < result(5) < 156  # loop_height
    assert result(6) == result(7) == result(8) == 0  # nsop, nsol, craters
    assert result(9) == 128 and result(10) == 256  # wires, bonds
    levels = (await c.read_input_registers(74, count=4, device_id=1)).registers
    assert unf32(levels[0:2]) - capillary_before == 256  # two touchdowns per Au wire
    assert abs(spool_before - unf32(levels[2:4]) - result(11)) < 1e-3  # wire_used, m
    assert 0.12 < result(11) < 0.17  # ≈ 1.26 mm per wire
    c.close()


async def test_out_of_range_gives_exception_3_and_reason(line: Line) -> None:
    c = await client(line, "WB-1")
    params = list(STANDARD_JOB)
    params[8] = 600  # loop_height above 500 µm
    rr = await c.write_registers(0, job_block(1, "WIRE-WB2", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    r = (await c.read_input_registers(5, count=2, device_id=1)).registers
    assert r == [1, 20 + 2 * 8]  # OUT_OF_RANGE at the loop_height slot
    assert b"LOOP_HEIGHT" in await reason(c)
    c.close()


async def test_rule_and_setup_refusals(line: Line) -> None:
    c = await client(line, "WB-1")
    # Al wire (2) ball-bonded: refusal 8 (RULE)
    params = list(STANDARD_JOB)
    params[0] = 2
    rr = await c.write_registers(0, job_block(1, "WIRE-WB3", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=1, device_id=1)).registers == [8]
    assert (await reason(c)).startswith(b"wire AL needs bond_type WEDGE")
    # a loop taller than its 0.15 mm span: RULE
    params = list(STANDARD_JOB)
    params[7], params[8] = 0.15, 200
    rr = await c.write_registers(0, job_block(1, "WIRE-WB4", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=1, device_id=1)).registers == [8]
    assert (await reason(c)).startswith(b"loop_height 200 um > span 150 um")
    # the D33 (5) spool is not loaded: refusal 4 (NOT_SET_UP) at the wire_size slot
    params = list(STANDARD_JOB)
    params[1] = 5
    rr = await c.write_registers(0, job_block(1, "WIRE-WB5", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    r = (await c.read_input_registers(5, count=2, device_id=1)).registers
    assert r == [4, 20 + 2 * 1]
    assert (await reason(c)).startswith(b"wire_size D33 not set up (installed: D25)")
    c.close()
