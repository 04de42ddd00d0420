"""Dicing wire interface with a stock pymodbus client and literal registers from
docs/tools/dicing.md and docs/tools/modbus-map.md (independent of drivers/interfaces)."""

from __future__ import annotations

import struct

from drivers.line import Line
from tests.simulators.raw import client, job_block, text, unf32


async def test_identification(line: Line) -> None:
    c = await client(line, "DICE-1")
    rr = await c.read_device_information(read_code=1, device_id=1)
    assert rr.information[0] == b"FABLINE-SIM"
    assert rr.information[1] == b"KERF-6000"
    assert rr.information[2] == b"1.0.0"
    c.close()


async def test_dice_by_the_register_map(line: Line) -> None:
    c = await client(line, "DICE-1")
    # dice (op 1): mode SINGLE=0, blade HUB_30=1, material SI=0, stack 100, depth 130, z1 0,
    # spindle 30, feed 50, coolant 1.5, die 5 x 5, shape ROUND=0, width 200, length 0
    params = [0, 1, 0, 100, 130, 0, 30, 50, 1.5, 5, 5, 0, 200, 0]
    rr = await c.write_registers(0, job_block(1, "WIRE-D1", params), device_id=1)
    assert not rr.isError()
    await c.write_registers(100, text("WIRE-D1", 16), device_id=1)
    while True:
        q = (await c.read_input_registers(200, count=68, device_id=1)).registers
        if q[16] == 3:  # COMPLETE
            break
        assert q[16] == 2  # RUNNING
    assert q[19] == 1  # operation code
    assert unf32(q[20 + 2 * 6 : 22 + 2 * 6]) > 1000  # die_count (result 6)
    c.close()


async def test_out_of_range_gives_exception_3_and_reason(line: Line) -> None:
    c = await client(line, "DICE-1")
    params = [0, 1, 0, 100, 130, 0, 30, 999, 1.5, 5, 5, 0, 200, 0]  # feed 999 mm/s
    rr = await c.write_registers(0, job_block(1, "WIRE-D2", params), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    r = (await c.read_input_registers(5, count=2, device_id=1)).registers
    assert r == [1, 20 + 2 * 7]  # OUT_OF_RANGE at the feed slot
    reason = (await c.read_input_registers(26, count=32, device_id=1)).registers
    assert b"FEED" in struct.pack(">32H", *reason)
    c.close()
