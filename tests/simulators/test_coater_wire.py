"""Coater wire interface with raw clients and literal commands from docs/tools/coater.md.

Independent of the driver and of drivers/interfaces: if either drifts from the sheet, this
breaks.
"""

from __future__ import annotations

from drivers.line import Line
from tests.simulators.raw import RawScpi, stock_idn


async def test_pyvisa_stock_client_identifies(line: Line) -> None:
    t = line.tool("COAT-1")
    reply = await stock_idn(t.port)
    assert reply.split(",") == ["FABLINE-SIM", "SPINJET-4", "SN-COAT-1", "1.0.0"]


async def test_spin_coat_then_cure_by_the_sheet(line: Line) -> None:
    """PI at 3000 rpm (defaults: 30 s spin, 110 °C / 120 s soft bake, 3 mL, 2 mm EBR), then a
    350 °C N₂ cure of that film."""
    t = line.tool("COAT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send('JOB:NEW "CWIRE-1",SPIN_COAT;:JOB:PAR MATERIAL,POLYIMIDE;:JOB:PAR SPIN_SPEED,3000')
    await c.send("JOB:STAR")
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r = await c.finish("CWIRE-1")
    assert 7.6 < r["THICKNESS"] < 8.4  # PI-2611 class, as coated at 3000 rpm
    assert 2995 < r["SPEED_MEASURED"] < 3005
    assert r["MATERIAL_USED"] == 3
    assert abs(r["DURATION"] - 220 / 60) < 1e-6  # dispense, spin, EBR, transfer, bake, cool
    assert set(r) >= {"UNIFORMITY", "EDGE_BEAD", "RESIDUAL_SOLVENT"}
    await c.send(
        f'job:new "CWIRE-2",cure;:job:parameter material,polyimide;:job:parameter temp,350;'
        f":job:parameter thickness,{r['THICKNESS']};:job:start"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    cured = await c.finish("CWIRE-2")
    assert cured["DEGREE_OF_CURE"] > 99.9
    assert abs(cured["CURED_THICKNESS"] - 0.6 * r["THICKNESS"]) < 0.01  # PI shrinks 40 %
    assert cured["O2_MEASURED"] < 50  # default O₂ limit
    assert 215 < cured["DURATION"] < 220  # 34 min purge + 65 ramp + 60 hold + 58 cool
    c.close()


async def test_capillary_underfill_by_the_sheet(line: Line) -> None:
    t = line.tool("COAT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send(
        'JOB:NEW "CWIRE-3",DISPENSE;:JOB:PAR MATERIAL,UNDERFILL;:JOB:PAR PATTERN,CAPILLARY;'
        ":JOB:PAR VOLUME,7;:JOB:PAR SITES,50;:JOB:PAR GAP,50;:JOB:PAR FLOW_LENGTH,10;:JOB:STAR"
    )
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r = await c.finish("CWIRE-3")
    assert 50 < r["FILL_TIME"] < 70  # Washburn across 10 mm at 90 °C
    assert r["FILL_FRACTION"] == 100
    assert abs(r["PRESSURE"] - 300) < 1e-3  # the tool runs at half its 600 kPa limit
    assert abs(r["MATERIAL_USED"] - (50 * 7e-3 + 0.05)) < 1e-9
    assert 250 < r["FILLET"] < 450
    c.close()


async def test_refusals_use_scpi_error_numbers(line: Line) -> None:
    t = line.tool("COAT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send('JOB:NEW "CWIRE-4",SPIN_COAT;:JOB:PAR SPIN_SPEED,6000')
    code, text = await c.error()
    assert code == -222 and "SPIN_SPEED" in text
    # BCB is not loaded by default
    await c.send(":JOB:PAR MATERIAL,BCB;:JOB:PAR SPIN_SPEED,3000;:JOB:STAR")
    code, text = await c.error()
    assert code == -241 and "BCB" in text
    # PI cured at 250 °C is in range but outside its full-cure window: a rule, at start
    await c.send('JOB:NEW "CWIRE-5",CURE;:JOB:PAR MATERIAL,POLYIMIDE;:JOB:PAR TEMP,250;:JOB:STAR')
    code, text = await c.error()
    assert code == -221 and "POLYIMIDE full-cure window" in text
    # spray passes are whole numbers; the start is then refused too
    await c.send(
        'JOB:NEW "CWIRE-6",SPRAY_COAT;:JOB:PAR MATERIAL,POLYIMIDE;:JOB:PAR THICKNESS,2;'
        ":JOB:PAR PASSES,2.5;:JOB:STAR"
    )
    code, text = await c.error()
    assert code == -222 and "PASSES" in text and "whole" in text
    code, text = await c.error()
    assert code == -221 and "refused parameters" in text
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    c.close()


async def test_status_queries(line: Line) -> None:
    t = line.tool("COAT-1")
    c = await RawScpi.open(t.host, t.port)
    assert await c.ask("TOOL:SET?") == (
        '1,MATERIALS,"POLYIMIDE LOW_T_PI PSPI EPOXY DIELECTRIC PROTECTIVE PHOTO_INK SEAL_RESIN'
        ' UNDERFILL TC_EPOXY CONDUCTIVE_PASTE PR_THIN PR_THICK ADHESIVE NCP ACP"'
    )
    cons = (await c.ask("TOOL:CONS?")).split(",")
    assert cons[0] == "8"
    assert cons[1::3] == [
        "SUPPLY_POLYIMIDE", "SUPPLY_BCB", "SUPPLY_EPOXY", "SUPPLY_UNDERFILL", "SUPPLY_ADHESIVE",
        "SUPPLY_PASTE", "SUPPLY_RESIST", "STENCIL_CYCLES",
    ]  # fmt: skip
    assert cons[3::3] == ["4000", "2000", "4000", "1000", "1000", "1000", "4000", "20000"]
    c.close()


async def test_job_result_carries_its_process_warnings(line: Line) -> None:
    """A 29 µm thick-resist film with the default 120 s soft bake keeps > 10 % solvent: the
    job completes, and JOB:RES? lists warning 695 (RESIDUAL_SOLVENT) after the alarm code."""
    t = line.tool("COAT-1")
    c = await RawScpi.open(t.host, t.port)
    await c.send('JOB:NEW "CWIRE-W1",SPIN_COAT;:JOB:PAR MATERIAL,PR_THICK;:JOB:PAR SPIN_SPEED,1500')
    await c.send("JOB:STAR")
    assert await c.ask("SYST:ERR?") == '0,"No error"'
    r, warnings = await c.finish_warned("CWIRE-W1")
    assert r["RESIDUAL_SOLVENT"] > 10
    assert warnings == [695]
    fields = (await c.ask('JOB:RES? "CWIRE-W1"')).split(",")
    assert fields[:5] == ["COMPLETE", "SPIN_COAT", "0", "1", "695"]
    # the same film baked 900 s is dry: no warning
    await c.send(
        'JOB:NEW "CWIRE-W2",SPIN_COAT;:JOB:PAR MATERIAL,PR_THICK;:JOB:PAR SPIN_SPEED,1500;'
        ":JOB:PAR SOFTBAKE_TIME,900;:JOB:STAR"
    )
    assert (await c.finish_warned("CWIRE-W2"))[1] == []
    c.close()
