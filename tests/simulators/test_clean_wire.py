"""Clean station wire interface with raw clients and literal commands from docs/tools/clean.md.

Independent of the driver and of drivers/interfaces: if either drifts from the sheet, this
breaks.
"""

from __future__ import annotations

from drivers.line import Line
from simulators.line import SimLine
from tests.simulators.raw import RawScpi, stock_idn


async def test_pyvisa_stock_client_identifies(line: Line) -> None:
    t = line.tool("CLEAN-1")
    reply = await stock_idn(t.port)
    assert reply.split(",") == ["FABLINE-SIM", "PURE-3", "SN-CLEAN-1", "1.0.0"]


async def test_plasma_by_the_sheet(line: Line) -> None:
    """Ar/H₂ at the default 400 W for 30 s on Cu: the 5 nm default film ashes at 4 nm/min,
    leaving ~3 nm: the job completes with warning 1180 (RESIDUE_HIGH)."""
    t = line.tool("CLEAN-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'JOB:NEW "CLWIRE-1",PLASMA;:JOB:PAR GAS,AR_H2;:JOB:PAR SURFACE,CU;:JOB:PAR TIME,30'
    )
    await c.send("JOB:STAR")
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r, warnings = await c.finish_warned("CLWIRE-1")
    assert 2.0 < r["RESIDUE"] < 4.2
    assert 1.5 < r["OXIDE"] < 2.2  # 3 nm native oxide reduced with τ = 60 s: 3·e^(−½)
    assert r["DURATION"] == (60 + 30 + 30) / 60
    assert warnings == [1180]
    c.close()


async def test_bake_by_the_sheet(line: Line) -> None:
    t = line.tool("CLEAN-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'job:new "CLWIRE-2",bake;:job:parameter material,organic;:job:parameter thickness,300;'
        ":job:parameter time,4;:job:start"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r, warnings = await c.finish_warned("CLWIRE-2")
    assert r["MOISTURE"] < 0.01 and r["DESORBED"] > 99
    assert warnings == []
    c.close()


async def test_o2_on_solder_is_refused_with_the_rule(line: Line) -> None:
    t = line.tool("CLEAN-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'JOB:NEW "CLWIRE-3",PLASMA;:JOB:PAR GAS,O2;:JOB:PAR SURFACE,SOLDER;:JOB:PAR TIME,60;'
        ":JOB:STAR"
    )
    code, text = await c.error()
    assert code == -221 and "SOLDER" in text  # Settings conflict: the published rule
    c.close()


async def test_a_batch_reports_each_piece_as_its_own_job(line: Line) -> None:
    """A batch of 3 wafers (`WORK_PIECES 3`): the job's record is the batch, and each piece
    is queried as `<job id>/<n>` with its own noise; a 4th piece does not exist."""
    t = line.tool("CLEAN-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'JOB:NEW "CLWIRE-B",PLASMA;:JOB:PAR GAS,AR_H2;:JOB:PAR SURFACE,CU;:JOB:PAR TIME,30;'
        ":JOB:PAR WORK_PIECES,3"
    )
    await c.send("JOB:STAR")
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    batch = await c.finish("CLWIRE-B")
    pieces = [await c.finish(f"CLWIRE-B/{n}") for n in (1, 2, 3)]
    assert all(2.0 < p["RESIDUE"] < 4.2 for p in pieces)
    assert len({p["RESIDUE"] for p in pieces}) == 3  # each piece its own noise
    assert all(p["DURATION"] == batch["DURATION"] for p in pieces)
    assert (await c.ask('JOB:STAT? "CLWIRE-B/4"')).startswith("UNKNOWN")
    c.close()


async def test_the_load_port_reads_a_carrier(line: Line, sim_line: SimLine) -> None:
    """`CARR:MAP?` with the expected map: the simulated carrier holds what the host says,
    unless a slot-map fault armed the next read (slot 3 mapped empty)."""
    t = line.tool("CLEAN-1")
    c = await RawScpi.open(t.host, t.port)
    assert await c.ask('CARR:MAP? "FOUP-9","11100"') == '"FOUP-9","1110000000000000000000000"'
    assert "slot 3" in sim_line.fault("CLEAN-1", "slot_map", slot=3, state="empty")
    assert await c.ask('CARR:MAP? "FOUP-9","11100"') == '"FOUP-9","1100000000000000000000000"'
    assert await c.ask('CARR:MAP? "FOUP-9","11100"') == '"FOUP-9","1110000000000000000000000"'
    c.close()
