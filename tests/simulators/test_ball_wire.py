"""Ball mounter wire interface with a stock pymodbus client and literal registers from
docs/tools/ball.md and docs/tools/modbus-map.md (independent of drivers/interfaces)."""

from __future__ import annotations

import struct

from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

from drivers.line import Line
from simulators.line import SimLine
from tests.simulators.raw import client, job_block, text, unf32, untext


async def test_identification(line: Line) -> None:
    c = await client(line, "BALL-1")
    rr = await c.read_device_information(read_code=1, device_id=1)
    assert isinstance(rr, ReadDeviceInformationResponse)
    assert rr.information[0] == b"FABLINE-SIM"
    assert rr.information[1] == b"SPHERA-760"
    assert rr.information[2] == b"1.0.0"
    c.close()


async def test_wafer_bump_by_the_register_map(line: Line) -> None:
    c = await client(line, "BALL-1")
    # setup bitmasks: alloy SAC305 = bit 1, ball_size D300 = bit 5
    assert (await c.read_input_registers(66, count=2, device_id=1)).registers == [2, 32]
    supply_before = unf32((await c.read_input_registers(74, count=2, device_id=1)).registers)
    # wafer_bump (op 3): alloy SAC305=1, ball_size D300=5, ball_count 5000, work_pieces 1,
    # pitch 500, pad 250, hole 0 x 0, warpage 0, flux 120, missing_limit 10,
    # peak 245, peak_limit 260, tal 75, o2 100
    params = [1, 5, 5000, 1, 500, 250, 0, 0, 0, 120, 10, 245, 260, 75, 100]
    rr = await c.write_registers(0, job_block(3, "WIRE-B1", params), device_id=1)
    assert not rr.isError()
    await c.write_registers(100, text("WIRE-B1", 16), device_id=1)
    while True:
        q = (await c.read_input_registers(200, count=68, device_id=1)).registers
        if q[16] == 3:  # COMPLETE
            break
        assert q[16] == 2  # RUNNING
    assert q[19] == 3  # operation code

    def result(i: int) -> float:
        return unf32(q[20 + 2 * i : 22 + 2 * i])

    assert result(0) + result(1) == 5000  # placed + missing
    assert 240 < result(7) < 255  # ball_height: D 300 µm on a 250 µm pad, h ≈ 249 µm
    assert result(13) == 0  # nonwet
    supply_after = unf32((await c.read_input_registers(74, count=2, device_id=1)).registers)
    assert supply_before - supply_after == result(6)  # balls_used
    c.close()


async def test_out_of_range_gives_exception_3_and_reason(line: Line) -> None:
    c = await client(line, "BALL-1")
    # reflow (op 2) with peak_temp (slot 10) at 380 °C, above the oven's 370 °C hard limit
    params = [1, 5, 0, 5000, 1, 500, 250, 0, 0, 0, 380, 260, 75, 100]
    rr = await c.write_registers(0, job_block(2, "WIRE-B2", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    r = (await c.read_input_registers(5, count=2, device_id=1)).registers
    assert r == [1, 20 + 2 * 10]  # OUT_OF_RANGE at the peak_temp slot
    reason = (await c.read_input_registers(26, count=32, device_id=1)).registers
    assert b"PEAK_TEMP" in struct.pack(">32H", *reason)
    c.close()


async def test_rule_and_setup_refusals(line: Line) -> None:
    c = await client(line, "BALL-1")
    # ball_place (op 1) with flux 80 µm for a 300 µm ball: refusal 8 (RULE)
    place = [1, 5, 0, 5000, 1, 500, 250, 0, 0, 0, 80, 10]
    rr = await c.write_registers(0, job_block(1, "WIRE-B3", place), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=1, device_id=1)).registers == [8]
    reason = struct.pack(
        ">32H", *(await c.read_input_registers(26, count=32, device_id=1)).registers
    )
    assert reason.startswith(b"flux_thickness 80 um not in 100-150 um")
    # SNPB63 (0) balls are not loaded: refusal 4 (NOT_SET_UP)
    place[0], place[10] = 0, 120
    rr = await c.write_registers(0, job_block(1, "WIRE-B4", place), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=1, device_id=1)).registers == [4]
    reason = struct.pack(
        ">32H", *(await c.read_input_registers(26, count=32, device_id=1)).registers
    )
    assert reason.startswith(b"alloy SNPB63 not set up (installed: SAC305)")
    c.close()


async def test_a_boat_of_units_reports_each_position(line: Line) -> None:
    """ball_place (op 1) of a boat of 4 units of 64 sites (work_pieces 4): the job places
    256 balls; each position is queried as job `WIRE-B9/<n>`, and the job's missing balls
    are each missing at one of them."""
    c = await client(line, "BALL-1")
    # alloy SAC305=1, ball_size D300=5, carrier BOAT=2, ball_count 64, work_pieces 4,
    # pitch 500, pad 250, hole 0 x 0, warpage 0, flux 120, missing_limit 10
    place = [1, 5, 2, 64, 4, 500, 250, 0, 0, 0, 120, 10]
    rr = await c.write_registers(0, job_block(1, "WIRE-B9", place), device_id=1)
    assert not rr.isError()

    async def query(job_id: str) -> list[int]:
        await c.write_registers(100, text(job_id, 16), device_id=1)
        return (await c.read_input_registers(200, count=68, device_id=1)).registers

    while (q := await query("WIRE-B9"))[16] != 3:
        assert q[16] == 2
    assert unf32(q[20:22]) + unf32(q[22:24]) == 256  # placed + missing, the whole boat
    missing = 0.0
    for n in (1, 2, 3, 4):
        p = await query(f"WIRE-B9/{n}")
        assert p[16] == 3 and p[19] == 1  # COMPLETE, ball_place
        assert 0 < unf32(p[20:22]) <= 64  # placed at this position, of its 64 sites
        missing += unf32(p[22:24])
    assert missing == unf32(q[22:24])  # each missing ball is missing at one position
    assert (await query("WIRE-B9/5"))[16] == 0  # UNKNOWN: the boat held 4
    c.close()


async def test_the_load_port_reads_a_carrier_by_registers(line: Line, sim_line: SimLine) -> None:
    """Holding 128-168: carrier id and expected map; input 300-340: the tag and the map the
    load port read. A slot-map fault (slot 2 double-slotted, another tag) shows once."""
    c = await client(line, "BALL-2")
    expected = [1, 1, 1] + [0] * 22
    await c.write_registers(128, text("FOUP-7", 16) + expected, device_id=1)
    r = (await c.read_input_registers(300, count=41, device_id=1)).registers
    assert untext(r[:16]) == b"FOUP-7" and r[16:] == expected
    sim_line.fault("BALL-2", "slot_map", slot=2, state="double", carrier="FOUP-8")
    r = (await c.read_input_registers(300, count=41, device_id=1)).registers
    assert untext(r[:16]) == b"FOUP-8" and r[16:19] == [1, 2, 1]
    c.close()
