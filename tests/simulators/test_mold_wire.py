"""Molding press wire interface with a stock pymodbus client and literal registers from
docs/tools/mold.md and docs/tools/modbus-map.md (independent of drivers/interfaces)."""

from __future__ import annotations

from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

from drivers.line import Line
from tests.simulators.raw import client, job_block, reason, text, unf32

# mold (op 1), in sheet order: compound EMC_TABLET=0, method TRANSFER=0, film_assist NONE=0,
# substrate ORGANIC=1, substrate_thickness 300 µm, thickness 500 µm, work_shape RECT=1,
# work_width 70 mm, work_length 240 mm, work_pieces 1, units 200, exposed_height 0,
# feature_coplanarity 5 µm, occupied_volume 0 %, min_gap 0, mold_temp 175 °C,
# temp_limit 190 °C, pressure 0 (standard 7 MPa), cure_time 0 (standard 90 s), vacuum 5 mbar,
# cavity_share 100 % (one cavity over the strip: a slot left 0 would be out of its 5-100 %)
STRIP = [0, 0, 0, 1, 300, 500, 1, 70, 240, 1, 200, 0, 5, 0, 0, 175, 190, 0, 0, 5, 100]


async def test_identification(line: Line) -> None:
    c = await client(line, "MOLD-1")
    rr = await c.read_device_information(read_code=1, device_id=1)
    assert isinstance(rr, ReadDeviceInformationResponse)
    assert rr.information[0] == b"FABLINE-SIM"
    assert rr.information[1] == b"MOLDMASTER-3"
    assert rr.information[2] == b"1.0.0"
    c.close()


async def test_transfer_mold_by_the_register_map(line: Line) -> None:
    c = await client(line, "MOLD-1")
    # compounds bitmask: EMC_TABLET, EMC_TABLET_LOW_CTE, EMC_GRANULE, LMC_LIQUID (not EMC_MUF)
    assert (await c.read_input_registers(66, count=1, device_id=1)).registers == [0b11011]
    supply_before = unf32((await c.read_input_registers(74, count=2, device_id=1)).registers)
    shots_before = unf32((await c.read_input_registers(78, count=2, device_id=1)).registers)
    rr = await c.write_registers(0, job_block(1, "WIRE-M1", STRIP), device_id=1)
    assert not rr.isError()
    await c.write_registers(100, text("WIRE-M1", 16), device_id=1)
    while True:
        q = (await c.read_input_registers(200, count=68, device_id=1)).registers
        if q[16] == 3:  # COMPLETE
            break
        assert q[16] == 2  # RUNNING
    assert q[19] == 1  # operation code

    def result(i: int) -> float:
        return unf32(q[20 + 2 * i : 22 + 2 * i])

    assert 490 < result(0) < 506  # thickness: the 500 µm cavity less 0.2 % shrinkage
    assert result(7) == 0  # short_shot
    assert 80 < result(8) < 95  # cure, %
    assert 10 < result(10) < 40  # gel_time, s (20–40 s fresh, shorter as it ages)
    assert abs(result(11) - 8.4) < 0.05  # fill_time = V/Q = 8.4 cm³ / 1 cm³/s
    assert result(12) > 100  # flow_reach, %
    assert abs(result(17) - 135.24) < 0.01  # clamp_force = 7 MPa × 16 800 mm² × 1.15
    emc = 8.4 * 1.98 * 1.2 + 2  # part + runners (20 %) + one cull
    assert abs(result(18) - emc) < 1e-3  # emc_used, g
    assert result(19) == 0  # film_used
    supply_after = unf32((await c.read_input_registers(74, count=2, device_id=1)).registers)
    shots_after = unf32((await c.read_input_registers(78, count=2, device_id=1)).registers)
    assert abs(supply_before - supply_after - emc) < 0.01
    assert shots_after - shots_before == 1
    c.close()


async def test_refusals_give_exception_3_and_reason(line: Line) -> None:
    c = await client(line, "MOLD-1")
    # mold_temp (slot 15) at 190 °C, above the 185 °C maximum: OUT_OF_RANGE at HR 50
    params = list(STRIP)
    params[15] = 190
    rr = await c.write_registers(0, job_block(1, "WIRE-M2", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=2, device_id=1)).registers == [1, 50]
    assert b"MOLD_TEMP" in await reason(c)
    # 160 °C is inside the range but outside the TRANSFER window: refusal 8 (RULE)
    params[15] = 160
    rr = await c.write_registers(0, job_block(1, "WIRE-M3", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=1, device_id=1)).registers == [8]
    assert (await reason(c)).startswith(b"mold_temp 160 degC outside the TRANSFER window 165-185")
    # EMC_MUF (2) is not loaded: refusal 4 (NOT_SET_UP) at the compound slot, HR 20
    params[15], params[0] = 175, 2
    rr = await c.write_registers(0, job_block(1, "WIRE-M4", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    assert (await c.read_input_registers(5, count=2, device_id=1)).registers == [4, 20]
    assert (await reason(c)).startswith(b"compound EMC_MUF not set up (installed: EMC_TABLET")
    c.close()
