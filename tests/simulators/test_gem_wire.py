"""GEM equipment (dicing saw and bonder on `protocol: gem`) with a bare asyncio socket and
literal HSMS frames and SECS-II bytes from docs/tools/gem.md (independent of drivers/).

SECS-II format bytes used: 01 L, 21 B, 25 BOOLEAN, 41 A, 81 F8, 91 F4, A5 U1, B1 U4."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import pytest_asyncio

from drivers.line import Line, ToolEntry
from simulators.line import SimLine
from tests.simulators.raw import LINKTEST_REQ, RawHsms, a

DICE_PP = (
    "# fabline process program 1\nkind: dicing\noperation: dice\nmode: SINGLE\nblade: HUB_30\n"
    "material: SI\nstack_thickness: 100 µm\ncut_depth: 130 µm\nz1_depth: 0 µm\n"
    "spindle: 30 krpm\nfeed: 50 mm/s\ncoolant: 1.5 L/min\ndie_x: 5 mm\ndie_y: 5 mm\n"
    "work_shape: ROUND\nwork_width: 200 mm\nwork_length: 0 mm\n"
).encode()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gem_line() -> AsyncIterator[SimLine]:
    spec = Line(tools=[ToolEntry(id="DICE-1", kind="dicing", protocol="gem"),
                       ToolEntry(id="BOND-1", kind="bonder", protocol="gem")])  # fmt: skip
    async with SimLine(spec, time_scale=1e5, seed=3) as line:
        yield line


async def online(line: SimLine, tool_id: str) -> RawHsms:
    """Select, establish communications (S1F13) and go on-line (S1F17)."""
    c = await RawHsms.open(line.describe(), tool_id)
    assert await c.select() == b"\xff\xff\x00\x00\x00\x02\x00\x00\x00\x01"  # select.rsp OK
    await c.ask(1, 13, b"\x01\x00")
    await c.ask(1, 17)
    return c


async def test_select_then_establish_communications(gem_line: SimLine) -> None:
    c = await RawHsms.open(gem_line.describe(), "DICE-1")
    # a data message before select is rejected: reject.req, reason 4 (entity not selected)
    c.send(b"\x00\x00\x81\x01\x00\x00\x00\x00\x00\x07")
    header, _ = await c.recv()
    assert header == b"\xff\xff\x00\x04\x00\x07\x00\x00\x00\x07"
    assert await c.select() == b"\xff\xff\x00\x00\x00\x02\x00\x00\x00\x01"
    c.send(LINKTEST_REQ + b"\x00\x00\x00\x09")
    assert (await c.recv())[0] == b"\xff\xff\x00\x00\x00\x06\x00\x00\x00\x09"
    # S1F1 before S1F13: the tool is not communicating and aborts the transaction (S1F0)
    header, body = await c.ask(1, 1)
    assert header[2:4] == b"\x01\x00" and body == b""
    header, body = await c.ask(1, 13, b"\x01\x00")
    assert header[:4] == b"\x00\x00\x01\x0e"  # S1F14, W-bit clear
    assert body == b"\x01\x02\x21\x01\x00\x01\x02\x41\x09KERF-6000\x41\x051.0.0"
    # off-line until the host asks: S1F3 is aborted, S1F17 grants on-line (ONLACK 0), then 2
    assert (await c.ask(1, 3, b"\x01\x01\xb1\x04\x00\x00\x00\x02"))[0][2:4] == b"\x01\x00"
    assert (await c.ask(1, 17))[1] == b"\x21\x01\x00"
    assert (await c.ask(1, 17))[1] == b"\x21\x01\x02"
    c.close()


async def test_status_variables_and_error_reports(gem_line: SimLine) -> None:
    c = await online(gem_line, "DICE-1")
    # SVID 2 CONTROL_STATE, 3 PROCESS_STATE, 11 VENDOR, 999 (none)
    _, body = await c.ask(1, 3, b"\x01\x04" + b"".join(b"\xb1\x04" + struct.pack(">I", v)
                                                        for v in (2, 3, 11, 999)))  # fmt: skip
    assert body == b"\x01\x04\xa5\x01\x05\xa5\x01\x00\x41\x0bFABLINE-SIM\x01\x00"
    # ECID 2100: BLADE_WEAR_LIMIT 800 µm, as F8
    _, body = await c.ask(2, 13, b"\x01\x01\xb1\x04\x00\x00\x08\x34")
    assert body == b"\x01\x01\x81\x08" + struct.pack(">d", 800.0)
    # an unknown function of a known stream: S9F5 carrying our header; unknown stream: S9F3
    header, body = await c.ask(1, 99)
    assert header[2:4] == b"\x09\x05" and body[:2] == b"\x21\x0a" and body[4:6] == b"\x81\x63"
    header, _ = await c.ask(99, 1)
    assert header[2:4] == b"\x09\x03"
    # a body the tool cannot read: S9F7 (illegal data)
    header, _ = await c.ask(2, 41, b"\xfd\x00")
    assert header[2:4] == b"\x09\x07"
    # unknown remote command: HCACK 1, no CPACKs
    _, body = await c.ask(2, 41, b"\x01\x02" + a("FLY") + b"\x01\x00")
    assert body == b"\x01\x02\x21\x01\x01\x01\x00"
    c.close()


async def test_dice_job_by_process_program_remote_command_and_event(gem_line: SimLine) -> None:
    c = await online(gem_line, "DICE-1")
    # S7F1 may I send 'WIRE/dice/1' of this length? PPGNT 0; S7F3 send it: ACKC7 0
    ppid = a("WIRE/dice/1")
    length = b"\xb1\x04" + struct.pack(">I", len(DICE_PP))
    assert (await c.ask(7, 1, b"\x01\x02" + ppid + length))[1] == b"\x21\x01\x00"
    ppbody = b"\x22" + struct.pack(">H", len(DICE_PP)) + DICE_PP  # B with 2 length bytes
    assert (await c.ask(7, 3, b"\x01\x02" + ppid + ppbody))[1] == b"\x21\x01\x00"
    assert (await c.ask(7, 5, ppid))[1] == b"\x01\x02" + ppid + ppbody  # upload: as sent
    # report 7 = [DVID 1000 EVENT_JOB_ID, DVID 1106 RESULT_DIE_COUNT] on CEID 101 DICE_COMPLETED
    report = (
        b"\x01\x02\xb1\x04\x00\x00\x00\x07\x01\x02\xb1\x04\x00\x00\x03\xe8\xb1\x04\x00\x00\x04\x52"
    )
    dataid = b"\xb1\x04\x00\x00\x00\x01"
    assert (await c.ask(2, 33, b"\x01\x02" + dataid + b"\x01\x01" + report))[1] == b"\x21\x01\x00"
    link = b"\x01\x02\xb1\x04\x00\x00\x00\x65\x01\x01\xb1\x04\x00\x00\x00\x07"
    assert (await c.ask(2, 35, b"\x01\x02" + dataid + b"\x01\x01" + link))[1] == b"\x21\x01\x00"
    enable = b"\x01\x02\x25\x01\x01\x01\x01\xb1\x04\x00\x00\x00\x65"
    assert (await c.ask(2, 37, enable))[1] == b"\x21\x01\x00"
    # S2F41 PP-SELECT (PPID) → HCACK 0; START (JOBID) → HCACK 4, completion by event
    select = b"\x01\x02" + a("PP-SELECT") + b"\x01\x01\x01\x02" + a("PPID") + ppid
    assert (await c.ask(2, 41, select))[1] == b"\x01\x02\x21\x01\x00\x01\x00"
    start = b"\x01\x02" + a("START") + b"\x01\x01\x01\x02" + a("JOBID") + a("WIRE-GEM-1")
    assert (await c.ask(2, 41, start))[1] == b"\x01\x02\x21\x01\x04\x01\x00"
    body = await c.event(101)
    # <L [3] <U4 DATAID> <U4 101> <L [1] <L [2] <U4 7> <L [2] <A job> <F8 die count>>>>>
    assert body[14:30] == b"\x01\x01\x01\x02\xb1\x04\x00\x00\x00\x07\x01\x02" + a("WIRE-GEM-1")[:4]
    die_count = struct.unpack(">d", body[-8:])[0]
    assert body[-10:-8] == b"\x81\x08" and die_count > 1000
    # S14F1 GetAttr JOB WIRE-GEM-1 JOBSTATE → 3 (COMPLETE)
    getattr_ = (b"\x01\x05" + a("") + a("JOB") + b"\x01\x01" + a("WIRE-GEM-1") + b"\x01\x00"
                + b"\x01\x01" + a("JOBSTATE"))  # fmt: skip
    _, body = await c.ask(14, 1, getattr_)
    found = b"\x01\x01\x01\x02" + a("WIRE-GEM-1") + b"\x01\x01\x01\x02" + a("JOBSTATE")
    assert (
        body == b"\x01\x02\x01\x01" + found[2:] + b"\xa5\x01\x03" + b"\x01\x02\xa5\x01\x00\x01\x00"
    )
    c.close()


async def test_local_control_refuses_remote_commands(gem_line: SimLine) -> None:
    c = await online(gem_line, "DICE-1")
    try:
        gem_line.fault("DICE-1", "local")
        _, body = await c.ask(2, 41, b"\x01\x02" + a("ABORT") + b"\x01\x00")
        assert body == b"\x01\x02\x21\x01\x02\x01\x00"  # HCACK 2: cannot perform now
        # SVID 2 CONTROL_STATE 4 (on-line local), SVID 14 REFUSAL_TEXT says why
        _, body = await c.ask(1, 3, b"\x01\x02\xb1\x04\x00\x00\x00\x02\xb1\x04\x00\x00\x00\x0e")
        assert body[:5] == b"\x01\x02\xa5\x01\x04" and b"local" in body
    finally:
        gem_line.fault("DICE-1", "remote")
    c.close()


async def test_bonder_identity_and_flip_chip_job(gem_line: SimLine) -> None:
    c = await online(gem_line, "BOND-1")
    _, body = await c.ask(1, 1)
    assert body == b"\x01\x02\x41\x09UNIBOND-8\x41\x051.0.0"
    pp = (
        "# fabline process program 1\nkind: bonder\noperation: flip_chip\nbump_type: SOLDER\n"
        "bump_count: 400\nbump_height: 30 µm\nbump_coplanarity: 3 µm\nbump_pitch: 150 µm\n"
        "force_per_bump: 10 gf\nhead_temp: 300 °C\nstage_temp: 100 °C\nbond_time: 4 s\n"
        "die_size: 10 mm\nsubstrate: ORGANIC\ndie_count: 2\n"
    ).encode()
    ppid = a("WIRE/flip/1")
    ppbody = b"\x22" + struct.pack(">H", len(pp)) + pp
    assert (await c.ask(7, 3, b"\x01\x02" + ppid + ppbody))[1] == b"\x21\x01\x00"
    select = b"\x01\x02" + a("PP-SELECT") + b"\x01\x01\x01\x02" + a("PPID") + ppid
    assert (await c.ask(2, 41, select))[1] == b"\x01\x02\x21\x01\x00\x01\x00"
    start = b"\x01\x02" + a("START") + b"\x01\x01\x01\x02" + a("JOBID") + a("WIRE-GEM-B1")
    assert (await c.ask(2, 41, start))[1] == b"\x01\x02\x21\x01\x04\x01\x00"
    getattr_ = (b"\x01\x05" + a("") + a("JOB") + b"\x01\x01" + a("WIRE-GEM-B1") + b"\x01\x00"
                + b"\x01\x02" + a("JOBSTATE") + a("OPERATION"))  # fmt: skip
    while True:
        _, body = await c.ask(14, 1, getattr_)
        if a("JOBSTATE") + b"\xa5\x01\x03" in body:  # COMPLETE
            break
        assert a("JOBSTATE") + b"\xa5\x01\x02" in body  # RUNNING
    assert a("OPERATION") + a("flip_chip") in body
    c.close()
