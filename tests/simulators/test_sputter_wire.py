"""Sputter wire interface with raw clients and literal commands from docs/tools/sputter.md.

Independent of the driver and of drivers/interfaces: if either drifts from the sheet, this
breaks.
"""

from __future__ import annotations

from drivers.line import Line
from tests.simulators.raw import RawScpi, stock_idn


async def test_pyvisa_stock_client_identifies(line: Line) -> None:
    t = line.tool("SPUT-1")
    reply = await stock_idn(t.port)
    assert reply.split(",") == ["FABLINE-SIM", "MAGNA-300", "SN-SPUT-1", "1.0.0"]


async def test_deposit_by_the_sheet(line: Line) -> None:
    t = line.tool("SPUT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'JOB:NEW "WIRE-1",DEPOSIT;:JOB:PAR TARGET,CU;:JOB:PAR THICKNESS,500;'
        ":JOB:PAR POWER,10;:JOB:STAR"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    while True:
        state, _progress, alarm = (await c.ask('JOB:STAT? "WIRE-1"')).split(",")
        assert alarm == "0"
        if state == "COMPLETE":
            break
        assert state == "RUNNING"
    fields = (await c.ask('job:result? "WIRE-1"')).split(",")  # long form, lower case
    assert fields[:4] == ["COMPLETE", "DEPOSIT", "0", "0"]  # no alarm, no warnings
    results = dict(zip(fields[4::2], map(float, fields[5::2]), strict=True))
    assert 450 < results["THICKNESS"] < 515
    assert results["ENERGY"] > 0
    c.close()


async def test_refusals_use_scpi_error_numbers(line: Line) -> None:
    t = line.tool("SPUT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send('JOB:NEW "WIRE-2",DEPOSIT;:JOB:PAR POWER,99')
    code, text = (await c.ask("SYST:ERR?")).split(",", 1)
    assert code == "-222" and "POWER" in text
    await c.send(":JOB:PAR TARGET,AU;:JOB:PAR THICKNESS,100;:JOB:PAR POWER,5;:JOB:STAR")
    assert (await c.ask("SYST:ERR?")).startswith("-241")  # AU target not installed
    await c.send("JOB:FLY")
    assert (await c.ask("SYST:ERR?")).startswith("-113")
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    # relative header after ';': ERR:COUN? resolves under SYST
    assert await c.ask("SYST:ERR?;ERR:COUN?") == '0,"No error";0'
    c.close()


async def test_status_queries(line: Line) -> None:
    t = line.tool("SPUT-1")
    c = await RawScpi.open(t.host, t.port)
    state = (await c.ask("TOOL:STAT?")).split(",")
    assert state[0] in {"IDLE", "SETUP", "COMPLETE", "RUNNING", "ABORTED", "ALARM"}
    setup = await c.ask("TOOL:SET?")
    assert setup == '1,TARGETS,"CU AL ALCU TI TIW"'
    cons = (await c.ask("TOOL:CONS?")).split(",")
    assert cons[0] == "8" and cons[1] == "TARGET_CU" and cons[3] == "2000"
    c.close()
