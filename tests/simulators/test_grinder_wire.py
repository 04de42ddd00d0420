"""Grinder wire interface with a stock pymodbus client and literal registers from
docs/tools/grinder.md and docs/tools/modbus-map.md (independent of drivers/interfaces)."""

from __future__ import annotations

from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

from drivers.line import Line
from tests.simulators.raw import client, job_block, reason, text, unf32


async def test_identification(line: Line) -> None:
    c = await client(line, "GRIND-1")
    rr = await c.read_device_information(read_code=1, device_id=1)
    assert isinstance(rr, ReadDeviceInformationResponse)
    assert rr.information[0] == b"FABLINE-SIM"
    assert rr.information[1] == b"PLANAR-5"
    assert rr.information[2] == b"1.0.0"
    c.close()


async def test_back_grind_by_the_register_map(line: Line) -> None:
    c = await client(line, "GRIND-1")
    # setup bitmasks: coarse_wheel G320 = bit 0, fine_wheel G2000 = bit 0, slurry CU = bit 0
    assert (await c.read_input_registers(66, count=3, device_id=1)).registers == [1, 1, 1]
    wheels_before = (await c.read_input_registers(74, count=4, device_id=1)).registers
    # back_grind (op 1): work SI=0, target 100, incoming 775, stack_below 0, backing_ttv 1,
    # incoming_ttv 2, warpage 0, wheel BOTH=2, fine_removal 30, coarse_infeed 6,
    # fine_infeed 0.3, spindle 4800, chuck 200, work_size 300, tolerance 2
    params = [0, 100, 775, 0, 1, 2, 0, 2, 30, 6, 0.3, 4800, 200, 300, 2]
    rr = await c.write_registers(0, job_block(1, "WIRE-G1", params), device_id=1)
    assert not rr.isError()
    await c.write_registers(100, text("WIRE-G1", 16), device_id=1)
    while True:
        q = (await c.read_input_registers(200, count=68, device_id=1)).registers
        if q[16] == 3:  # COMPLETE
            break
        assert q[16] == 2  # RUNNING
    assert q[19] == 1  # operation code

    def result(i: int) -> float:
        return unf32(q[20 + 2 * i : 22 + 2 * i])

    assert 98.5 < result(0) < 101.5  # thickness at the 100 µm target (gauge σ 0.3 µm)
    assert result(1) == result(0)  # stack_thickness: nothing under a single wafer
    assert abs(result(2) - (775 - result(0))) < 1e-3  # removed
    assert 1.0 < result(4) < 3.0  # ttv: 2·(1 − 0.85) + 300 mm·2 µrad + 1 µm tape
    assert 5 < result(5) < 12  # ra, nm, of the #2000 wheel
    assert result(6) == 2000  # finish_grit
    # coarse and fine wheel wear counted up by this job's wear (IR 74, IR 76)
    wheels_after = (await c.read_input_registers(74, count=4, device_id=1)).registers
    coarse = unf32(wheels_after[0:2]) - unf32(wheels_before[0:2])
    fine = unf32(wheels_after[2:4]) - unf32(wheels_before[2:4])
    assert abs(coarse - result(7)) < 1e-3 and result(7) > 1
    assert abs(fine - result(8)) < 1e-3 and result(8) > 0.1
    assert (await c.read_input_registers(0, count=1, device_id=1)).registers == [3]
    c.close()


async def test_out_of_range_gives_exception_3_and_reason(line: Line) -> None:
    c = await client(line, "GRIND-1")
    # cmp (op 3) with pressure (slot 1) at 40 kPa, above 35: material CU=0, pressure 40,
    # velocity 1, endpoint CLEAR=0, time 60, overburden 3000, overpolish 20,
    # feature_width 10, slurry_flow 200, work_size 300
    params = [0, 40, 1, 0, 60, 3000, 20, 10, 200, 300]
    rr = await c.write_registers(0, job_block(3, "WIRE-G2", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    r = (await c.read_input_registers(5, count=2, device_id=1)).registers
    assert r == [1, 20 + 2 * 1]  # OUT_OF_RANGE at the pressure slot
    assert b"PRESSURE 40 out of range 14-35 kPa" in await reason(c)
    c.close()


async def test_rule_and_setup_refusals(line: Line) -> None:
    c = await client(line, "GRIND-1")
    # back_grind with coarse_infeed (slot 9) at 12 µm/s: refusal 8 (RULE)
    params = [0, 100, 775, 0, 1, 2, 0, 2, 30, 12, 0.3, 4800, 200, 300, 2]
    rr = await c.write_registers(0, job_block(1, "WIRE-G3", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=1, device_id=1)).registers == [8]
    assert (await reason(c)).startswith(
        b"coarse_infeed 12 um/s outside the coarse wheel window 5-10 um/s"
    )
    # cmp of OXIDE (1) while Cu slurry is loaded: refusal 4 (NOT_SET_UP) at the material slot
    cmp = [1, 20, 1, 1, 60, 0, 20, 0, 200, 300]
    rr = await c.write_registers(0, job_block(3, "WIRE-G4", cmp), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=2, device_id=1)).registers == [4, 20]
    assert (await reason(c)).startswith(b"material OXIDE not set up (installed: CU)")
    c.close()
