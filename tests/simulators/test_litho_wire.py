"""Patterning cell wire interface with raw clients and literal commands from docs/tools/litho.md.

Independent of the driver and of drivers/interfaces: if either drifts from the sheet, this
breaks.
"""

from __future__ import annotations

from drivers.line import Line
from tests.simulators.raw import RawScpi, stock_idn


async def test_pyvisa_stock_client_identifies(line: Line) -> None:
    t = line.tool("LITHO-1")
    reply = await stock_idn(t.port)
    assert reply.split(",") == ["FABLINE-SIM", "PATTERNA-2", "SN-LITHO-1", "1.0.0"]


async def test_expose_by_the_sheet(line: Line) -> None:
    """20 µm thick resist, 30 µm openings, dose left to the tool (dose-to-size)."""
    t = line.tool("LITHO-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'JOB:NEW "LWIRE-1",EXPOSE;:JOB:PAR RESIST,THICK_PR;:JOB:PAR RESIST_THICKNESS,20;'
        ":JOB:PAR MASK_CD,30;:JOB:STAR"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r = await c.finish("LWIRE-1")
    assert 462.7 < r["DOSE_TO_SIZE"] < 462.9  # 1.6 · 138 · e^(0.037 · 20) mJ/cm²
    assert 440 < r["DOSE_MEASURED"] < 485
    assert 29 < r["CD"] < 31 and r["UNOPENED"] < 1e-6
    assert r["SHOTS"] == 42 and r["OVERLAY"] < 1.0
    assert 4.6 < r["DURATION"] < 4.7  # 88 s of exposure + 191 s of develop, rinse, dry
    assert set(r) >= {"CD_BIAS", "RESIST_REMAINING", "DOSE_TO_CLEAR", "EXPOSURE_TIME",
                      "LAMP_OUTPUT", "DEVELOPER_USED"}  # fmt: skip
    c.close()


async def test_seed_etch_by_the_sheet(line: Line) -> None:
    """Cu seed wet etch, long-form lower-case headers; defaults fill what is not sent."""
    t = line.tool("LITHO-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'job:new "LWIRE-2",etch;:job:parameter target,cu_seed;:job:parameter method,wet;'
        ":job:parameter depth,0.3;:job:parameter open_area,80;:job:start"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r = await c.finish("LWIRE-2")
    assert 0.27 < r["RATE"] < 0.33  # 300 nm/min: the film clears in ≈ 1 min on average
    # the endpoint fires when the slow 2σ tail has cleared (σ = the uniformity, ≈ 5 %)
    assert abs(r["ENDPOINT_TIME"] - 0.3 / r["RATE"] * (1 + 0.02 * r["UNIFORMITY"])) < 1e-6
    assert abs(r["ETCH_TIME"] - 1.2 * r["ENDPOINT_TIME"]) < 1e-6  # 20 % over-etch
    assert 0.0550 < r["CHEMISTRY_USED"] < 0.0551
    assert r["MASK_REMAINING"] == 0 and r["RESIDUE"] < 0.05
    c.close()


async def test_refusals_use_scpi_error_numbers(line: Line) -> None:
    t = line.tool("LITHO-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send('JOB:NEW "LWIRE-3",EXPOSE;:JOB:PAR DOSE,5000')
    code, text = await c.error()
    assert code == -222 and "DOSE" in text
    # 300 mJ/cm² is in range but outside the thin-resist window: a rule, checked at start
    await c.send(
        ":JOB:PAR RESIST,THIN_PR;:JOB:PAR RESIST_THICKNESS,1.5;:JOB:PAR MASK_CD,10;"
        ":JOB:PAR DOSE,300;:JOB:STAR"
    )
    code, text = await c.error()
    assert code == -221 and "THIN_PR window" in text
    # the mask aligner is not fitted (the stepper is)
    await c.send(":JOB:PAR DOSE,150;:JOB:PAR ALIGNER,ALIGNER;:JOB:STAR")
    code, text = await c.error()
    assert code == -241 and "ALIGNER" in text
    # a blind etch the tool's rate model says would outlast max_time
    await c.send(
        'JOB:NEW "LWIRE-4",ETCH;:JOB:PAR TARGET,SI;:JOB:PAR METHOD,RIE;:JOB:PAR DEPTH,200;'
        ":JOB:PAR ENDPOINT,TIMED;:JOB:STAR"
    )
    code, text = await c.error()
    assert code == -221 and "max_time" in text
    # via counts are whole numbers
    await c.send('JOB:NEW "LWIRE-5",LASER_VIA;:JOB:PAR VIA_COUNT,10.5')
    code, text = await c.error()
    assert code == -222 and "VIA_COUNT" in text and "whole" in text
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    c.close()


async def test_status_queries(line: Line) -> None:
    t = line.tool("LITHO-1")
    c = await RawScpi.open(t.host, t.port)
    setup = await c.ask("TOOL:SET?")
    assert setup == '3,ALIGNER,"STEPPER",ETCH_MODULES,"DRIE RIE WET",STRIP_MODULES,"WET PLASMA"'
    cons = (await c.ask("TOOL:CONS?")).split(",")
    assert cons[0] == "8" and cons[1] == "LAMP_HOURS" and cons[3] == "2000"
    assert cons[4::3] == [
        "DEVELOPER", "DRIE_CHAMBER", "RIE_CHAMBER", "CU_ETCHANT", "TI_ETCHANT", "STRIPPER",
        "LASER_HOURS",
    ]  # fmt: skip
    c.close()
