"""Plating wire interface with raw clients and literal commands from docs/tools/plating.md.

Independent of the driver and of drivers/interfaces: if either drifts from the sheet, this
breaks.
"""

from __future__ import annotations

from drivers.line import Line
from tests.simulators.raw import RawScpi, stock_idn


async def test_pyvisa_stock_client_identifies(line: Line) -> None:
    t = line.tool("PLAT-1")
    reply = await stock_idn(t.port)
    assert reply.split(",") == ["FABLINE-SIM", "ELECTRA-300", "SN-PLAT-1", "1.0.0"]


async def test_electroplate_by_the_sheet(line: Line) -> None:
    t = line.tool("PLAT-1")
    c = await RawScpi.open(t.host, t.port)
    # 5 µm Cu at 20 mA/cm² on a 300 mm blanket wafer
    await c.send(
        'JOB:NEW "PWIRE-1",ELECTROPLATE;:JOB:PAR CHEMISTRY,CU_ACID;:JOB:PAR THICKNESS,5;'
        ":JOB:PAR CURRENT_DENSITY,20;:JOB:STAR"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r = await c.finish("PWIRE-1")
    assert 11.55 < r["DURATION"] < 11.65  # Faraday: 5 / (0.221 · 2 · 0.975) min
    assert 4.85 < r["THICKNESS"] < 5.05
    assert 14.13 < r["CURRENT"] < 14.14  # 20 mA/cm² × 706.9 cm²
    assert 2.72 < r["CHARGE"] < 2.75  # A·h
    assert r["VIA_VOIDS"] == 0
    assert set(r) >= {"WIW", "SHEET_RESISTANCE", "STRESS", "RATE", "EFFICIENCY", "BATH_TEMP"}
    c.close()


async def test_en_ni_then_immersion_au_by_the_sheet(line: Line) -> None:
    """ENIG on pads: long-form, lower-case headers; defaults fill what is not sent."""
    t = line.tool("PLAT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'job:new "PWIRE-2",electroless;:job:parameter chemistry,en_ni;:job:parameter'
        " thickness,4;:job:parameter open_area,15;:job:start"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r = await c.finish("PWIRE-2")
    assert 15.5 < r["DURATION"] < 17.5  # 4 µm at ≈15 µm/h (85 °C) in a young bath
    assert 3.8 < r["THICKNESS"] < 4.2 and 5 < r["PHOSPHORUS"] < 10
    await c.send('JOB:NEW "PWIRE-3",IMMERSION;:JOB:PAR TIME,10;:JOB:STAR')
    r = await c.finish("PWIRE-3")
    assert 0.085 < r["THICKNESS"] < 0.1  # 0.1 µm · (1 − e^(−10/4))
    c.close()


async def test_refusals_use_scpi_error_numbers(line: Line) -> None:
    t = line.tool("PLAT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send('JOB:NEW "PWIRE-4",ELECTROPLATE;:JOB:PAR CURRENT_DENSITY,99')
    code, text = (await c.ask("SYST:ERR?")).split(",", 1)
    assert code == "-222" and "CURRENT_DENSITY" in text
    # 40 mA/cm² is in range but outside the acid Cu window: a rule, checked at start
    await c.send(
        ":JOB:PAR CHEMISTRY,CU_ACID;:JOB:PAR THICKNESS,5;:JOB:PAR CURRENT_DENSITY,40;:JOB:STAR"
    )
    code, text = (await c.ask("SYST:ERR?")).split(",", 1)
    assert code == "-221" and "CU_ACID" in text
    # electroless Cu is not installed by default
    await c.send('JOB:NEW "PWIRE-5",ELECTROLESS;:JOB:PAR CHEMISTRY,EL_CU;:JOB:PAR THICKNESS,1')
    await c.send("JOB:STAR")
    code, text = (await c.ask("SYST:ERR?")).split(",", 1)
    assert code == "-241" and "EL_CU" in text
    # zincate passes are whole numbers
    await c.send('JOB:NEW "PWIRE-6",ZINCATE;:JOB:PAR PASSES,1.5;:JOB:STAR')
    code, text = (await c.ask("SYST:ERR?")).split(",", 1)
    assert code == "-222" and "PASSES" in text and "whole" in text
    code, text = (await c.ask("SYST:ERR?")).split(",", 1)  # so the start is refused too
    assert code == "-221" and "refused parameters" in text
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    c.close()


async def test_status_queries(line: Line) -> None:
    t = line.tool("PLAT-1")
    c = await RawScpi.open(t.host, t.port)
    setup = await c.ask("TOOL:SET?")
    assert (
        setup == '1,BATHS,"CU_ACID NI_SULFAMATE AU_ELECTROLYTIC EN_NI IMM_AU ZINCATE PD_ACTIVATOR"'
    )
    cons = (await c.ask("TOOL:CONS?")).split(",")
    assert cons[0] == "8" and cons[1] == "BATH_CU_ACID" and cons[3] == "20000"
    assert cons[4::3] == [
        "BATH_NI_SULFAMATE", "BATH_AU_ELECTROLYTIC", "BATH_EN_NI", "BATH_EL_CU", "BATH_IMM_AU",
        "BATH_ZINCATE", "BATH_PD_ACTIVATOR",
    ]  # fmt: skip
    c.close()
