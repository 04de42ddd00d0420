"""Wire bonder driver against its simulator: ball-stitch (001 cl.15) and very low, short
loops (002 cl.46), the bond model, refusals before sending, physics alarms and warnings,
capillary and spool wear."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping

import pytest
import pytest_asyncio

from drivers.base import ConsumableLevel, Job, ToolDriver
from drivers.errors import ParameterError, ToolAlarm, UnitError, ValueRefused
from drivers.interface import JobState, ToolState, Value
from drivers.interfaces.wirebonder import WIREBONDER, standard_settings
from drivers.line import Line
from drivers.protocols import modbus_map as mm
from simulators.line import SimLine
from simulators.wirebonder import (
    ASSIST_S,
    TOUCHDOWN_WEAR,
    Model,
    ball_height_um,
    breaking_load_gf,
    hook_factor,
    job_seconds,
    min_loop_um,
    model,
    nonstick_rate,
    wedge_thickness_um,
)
from tests.helpers import connected, new_job_id

TOOL = "WB-1"
OP = WIREBONDER.operation("wire_bond")
CAPILLARY_LIMIT = 2_000_000.0

# 001 cl.15: chip pads to substrate fingers, 1 mil Au, standard settings (WB-1 comes up with
# an AU D25 spool, the interface's default setup)
CHIP = {
    "wire": "AU",
    "wire_size": "D25",
    "units": "20 count",
    "wires_per_unit": "64",
    "span": "1.5 mm",
    "loop_height": "180 µm",
}
# 002 cl.46: pad to the end of the adjacent lead inside a pad-through-hole
# (Ni/Au plated pads, bare Cu leads: forming gas keeps the leads bondable)
SHORT = {**CHIP, "span": "0.15 mm", "loop_height": "60 µm", "pad_metal": "NIAU",
         "lead_finish": "CU", "forming_gas": "0.5 L/min", "units": "50",
         "wires_per_unit": "16"}  # fmt: skip


def levels(consumables: tuple[ConsumableLevel, ...]) -> dict[str, float]:
    return {c.name: c.level for c in consumables}


def values(params: Mapping[str, object]) -> dict[str, Value]:
    return OP.validate(params)


async def expected(d: ToolDriver, params: Mapping[str, object]) -> tuple[Model, dict[str, float]]:
    """The noise-free model for the job, at the capillary wear the tool has now."""
    before = levels((await d.status()).consumables)
    return model(values(params), before["capillary"] / CAPILLARY_LIMIT), before


@pytest_asyncio.fixture
async def wb(line: Line) -> AsyncIterator[ToolDriver]:
    async with connected(line, TOOL) as d:
        yield d


@pytest_asyncio.fixture
async def other_spool(sim_line: SimLine, wb: ToolDriver) -> AsyncIterator[SimLine]:
    """Lets a test load another spool on WB-1 (in-process); the AU D25 spool comes back."""
    sim = sim_line.sim(TOOL)
    saved = dict(sim.setup)
    yield sim_line
    sim.setup.clear()
    sim.setup.update(saved)
    await wb.status()


async def load_spool(sim_line: SimLine, d: ToolDriver, wire: str, size: str) -> None:
    sim_line.sim(TOOL).setup.update(wire=(wire,), wire_size=(size,))
    assert (await d.status()).setup == {"wire": (wire,), "wire_size": (size,)}


async def test_identify_and_status(wb: ToolDriver) -> None:
    ident = await wb.identify()
    assert (ident.vendor, ident.model, ident.serial) == ("FABLINE-SIM", "LOOPER-1", "SN-WB-1")
    st = await wb.status()
    assert st.setup == {"wire": ("AU",), "wire_size": ("D25",)}
    cons = {c.name: c for c in st.consumables}
    assert set(cons) == {"capillary", "wire_spool"}
    assert not cons["capillary"].supply and cons["capillary"].limit == CAPILLARY_LIMIT
    assert cons["wire_spool"].supply and cons["wire_spool"].limit == 500


def test_standard_settings_scale_with_the_bond_area() -> None:
    assert standard_settings("AU", "BALL_STITCH", 25) == {
        "bond_force": 25, "bond_power": 70, "bond_time": 12,
        "stitch_force": 70, "stitch_power": 90, "stitch_time": 10,
    }  # fmt: skip
    s20 = standard_settings("CU", "BALL_STITCH", 20)
    assert s20["bond_force"] == pytest.approx(40 * 0.64) and s20["bond_time"] == 15
    # explicit settings equal to the standard give the same model as 0 (= standard)
    explicit = {**CHIP, "bond_force": "25 gf", "bond_power": "0.07 W", "stitch_force": "70 gf"}
    assert model(values(explicit)) == model(values(CHIP))


async def test_ball_stitch_chip_to_substrate(wb: ToolDriver) -> None:
    m, before = await expected(wb, CHIP)
    res = await wb.run(Job(new_job_id("chip"), "wire_bond", CHIP))
    r = res.results
    assert res.state is JobState.COMPLETE
    wires = 20 * 64
    assert r["wires"] == wires and r["bonds"] == 2 * wires
    assert r["nsop"] == r["nsol"] == r["craters"] == 0  # 5e-8 per bond at the standard
    # mashed ball 1.33 × the 45 µm free-air ball; its height keeps the ball's volume
    assert m.fab == 45 and m.ball_diameter == pytest.approx(59.85, abs=0.01)
    assert r["ball_diameter"] == pytest.approx(m.ball_diameter, rel=0.06)  # σ 1.5 %
    assert r["ball_height"] == pytest.approx(ball_height_um(45, r["ball_diameter"]), rel=1e-5)
    assert 14 < r["ball_height"] < 20
    assert r["stitch_width"] == pytest.approx(m.stitch_width, rel=0.12)
    assert r["ball_shear"] == pytest.approx(m.ball_shear, rel=0.2)
    assert 25 < r["ball_shear"] < 38  # ≈ 7 gf/mil² on a 60 µm ball
    # pull: 1 mil Au breaks at ≈ 10 gf; the neck holds 85 %; a mid-span hook on a flat loop
    assert breaking_load_gf("AU", 25) == pytest.approx(10.0, rel=0.01)
    assert m.wire_pull == pytest.approx(
        breaking_load_gf("AU", 25) * 0.85 * hook_factor(1500, 180, 0.04), rel=1e-9
    )
    assert r["wire_pull"] == pytest.approx(m.wire_pull, rel=0.2)
    assert r["wire_pull"] > 3.0  # MIL-STD-883 TM 2011 minimum for 1 mil Au
    assert r["loop_height"] == pytest.approx(180, abs=6)
    assert r["temp_measured"] == pytest.approx(175, abs=3.2)
    assert r["wire_used"] == pytest.approx(wires * m.wire_mm / 1000, rel=1e-5)
    assert r["duration"] == pytest.approx(job_seconds(20, wires, m.wire_s) / 60, rel=1e-5)
    st = await wb.status()
    after = levels(st.consumables)
    assert after["capillary"] - before["capillary"] == 2 * wires
    assert before["wire_spool"] - after["wire_spool"] == pytest.approx(r["wire_used"], rel=1e-4)
    assert not st.warnings and st.state is ToolState.COMPLETE


async def test_short_low_loops_need_a_wedge(wb: ToolDriver) -> None:
    """002 cl.46: a 60 µm loop over 150 µm. A ball-stitch loop cannot get below the ball plus
    two wire diameters and bends inside the 125 µm heat-affected zone (neck damage); a wedge
    bond makes the low loop without a warning."""
    ball_model, _ = await expected(wb, SHORT)
    ball = await wb.run(Job(new_job_id("short-ball"), "wire_bond", SHORT))
    floor = min_loop_um("BALL_STITCH", 25, ball_model.ball_height)
    assert ball_model.loop_height == floor > 60
    assert ball.results["loop_height"] == pytest.approx(floor, abs=6)
    assert ball_model.haz == 125 and floor < ball_model.haz
    assert [w.name for w in (await wb.status()).warnings] == ["NECK_DAMAGE"]

    wedge = {**SHORT, "bond_type": "WEDGE", "bond_temp": "150 °C"}
    wedge_model, _ = await expected(wb, wedge)
    res = await wb.run(Job(new_job_id("short-wedge"), "wire_bond", wedge))
    r = res.results
    assert r["loop_height"] == pytest.approx(60, abs=6)
    assert r["nsop"] == r["nsol"] == 0
    # a wedge is 1.4 × the wire wide; the bond keeps the wire's cross-section
    assert r["ball_diameter"] == pytest.approx(35, rel=0.06)
    assert r["ball_height"] == pytest.approx(wedge_thickness_um(25, r["ball_diameter"]), rel=1e-5)
    assert r["wire_pull"] == pytest.approx(wedge_model.wire_pull, rel=0.2)
    assert not (await wb.status()).warnings
    # wedge bonding turns the head for every wire: slower
    assert wedge_model.wire_s > ball_model.wire_s
    # without forming gas the bare Cu leads oxidise and stitches start to lift
    no_gas = model(values({**wedge, "forming_gas": "0 L/min"}))
    assert no_gas.nsol_rate > max(1e-4, 1000 * wedge_model.nsol_rate)


async def test_higher_loops_pull_harder(wb: ToolDriver) -> None:
    """Schafft geometry: F = 2·T·sin θ; a higher loop gives a steeper pull angle."""
    low_m, _ = await expected(wb, {**CHIP, "loop_height": "100 µm"})
    high_m, _ = await expected(wb, {**CHIP, "loop_height": "400 µm"})
    assert high_m.wire_pull / low_m.wire_pull > 1.5
    low = await wb.run(Job(new_job_id("low"), "wire_bond", {**CHIP, "loop_height": "100 µm"}))
    high = await wb.run(Job(new_job_id("high"), "wire_bond", {**CHIP, "loop_height": "400 µm"}))
    assert low.results["wire_pull"] == pytest.approx(low_m.wire_pull, rel=0.2)
    assert high.results["wire_pull"] == pytest.approx(high_m.wire_pull, rel=0.2)
    assert high.results["wire_pull"] > low.results["wire_pull"]
    assert high.results["wire_used"] > low.results["wire_used"]


async def test_cold_heater_gives_non_sticks_that_are_rebonded(wb: ToolDriver) -> None:
    """Au thermosonic at 100 °C, below its 150–220 °C window: ≈ 4 % NSOP, ≈ 1 % NSOL."""
    params = {**CHIP, "units": "10", "wires_per_unit": "100", "bond_temp": "100 °C",
              "nonstick_limit": "1000"}  # fmt: skip
    m, before = await expected(wb, params)
    assert 0.03 < m.nsop_rate < 0.06 and 0.005 < m.nsol_rate < 0.02
    assert m.nsop_rate == nonstick_rate(m.energy_first)
    r = (await wb.run(Job(new_job_id("cold"), "wire_bond", params))).results
    for name, rate in (("nsop", m.nsop_rate), ("nsol", m.nsol_rate)):
        lam = 1000 * rate
        assert abs(r[name] - lam) < 5 * math.sqrt(lam), name
    assert r["nsop"] > 0 and r["nsol"] > 0
    rebonds = r["nsop"] + r["nsol"]
    assert r["bonds"] == 2000 + rebonds
    assert r["ball_shear"] == pytest.approx(m.ball_shear, rel=0.2)
    assert m.ball_shear < 0.7 * model(values(CHIP)).ball_shear  # less of the ball bonds
    # every non-stick costs an operator assist
    total = job_seconds(10, 1000, m.wire_s, int(rebonds))
    assert r["duration"] == pytest.approx(total / 60, rel=1e-5)
    assert total - job_seconds(10, 1000, m.wire_s) == rebonds * ASSIST_S
    st = await wb.status()
    assert levels(st.consumables)["capillary"] - before["capillary"] == r["bonds"]
    assert [w.name for w in st.warnings] == ["NONSTICKS_REBONDED"]


async def test_too_much_power_craters_and_a_big_ball_leaves_the_pad(wb: ToolDriver) -> None:
    hot = {**CHIP, "units": "10", "wires_per_unit": "100", "bond_power": "175 mW"}
    m, _ = await expected(wb, hot)
    r = (await wb.run(Job(new_job_id("crater"), "wire_bond", hot))).results
    lam = 1000 * m.crater_rate
    assert 30 < lam < 100 and abs(r["craters"] - lam) < 5 * math.sqrt(lam)
    assert r["ball_diameter"] > 65  # 2.5 × the standard power squashes the ball further
    assert [w.name for w in (await wb.status()).warnings] == ["CRATERING"]
    # the standard 60 µm ball in a 50 µm opening
    off = await wb.run(Job(new_job_id("off"), "wire_bond", {**CHIP, "pad_opening": "50 µm"}))
    assert off.results["craters"] == 0
    assert [w.name for w in (await wb.status()).warnings] == ["BALL_OFF_PAD"]


async def test_copper_wire_in_forming_gas_wears_the_capillary_faster(
    wb: ToolDriver, other_spool: SimLine
) -> None:
    await load_spool(other_spool, wb, "CU", "D20")
    cu = {**CHIP, "wire": "CU", "wire_size": "D20", "forming_gas": "0.5 L/min",
          "span": "1 mm", "loop_height": "150 µm"}  # fmt: skip
    m, before = await expected(wb, cu)
    r = (await wb.run(Job(new_job_id("cu"), "wire_bond", cu))).results
    assert m.fab == 36 and r["ball_diameter"] == pytest.approx(m.ball_diameter, rel=0.06)
    assert r["ball_shear"] == pytest.approx(m.ball_shear, rel=0.2)
    assert r["wire_pull"] == pytest.approx(m.wire_pull, rel=0.2)
    assert r["nsop"] == r["nsol"] == 0
    after = levels((await wb.status()).consumables)
    assert TOUCHDOWN_WEAR["CU"] == 3
    assert after["capillary"] - before["capillary"] == 3 * r["bonds"]
    # the Au job is refused now: the spool on the tool is Cu
    with pytest.raises(ParameterError, match="wire AU not set up"):
        await wb.start(Job(new_job_id("au"), "wire_bond", CHIP))


async def test_free_air_ball_beyond_the_efo_alarms(wb: ToolDriver, other_spool: SimLine) -> None:
    await load_spool(other_spool, wb, "AU", "D50")
    big = {**CHIP, "wire_size": "D50", "pad_opening": "150 µm", "span": "3 mm"}
    ok = (await wb.run(Job(new_job_id("d50"), "wire_bond", big))).results
    assert ok["ball_diameter"] == pytest.approx(1.33 * 90, rel=0.06)  # standard FAB 90 µm
    job = Job(new_job_id("efo"), "wire_bond", {**big, "fab_diameter": "110 µm"})
    with pytest.raises(ToolAlarm) as e:
        await wb.run(job)
    assert e.value.code == 1004
    assert (await wb.job_progress(job.job_id)).progress < 50  # at the first spark
    await wb.clear_alarms()


BAD = [
    ({"loop_height": "600 µm"}, ParameterError, ["'loop_height'", "50–500 µm"]),
    ({"span": "1"}, UnitError, ["'span'", "missing unit"]),
    ({"bond_force": "25 mW"}, UnitError, ["'bond_force'", "power", "force"]),
    ({"wires_per_unit": "10.5"}, ParameterError, ["whole number"]),
    ({"wire": "AG"}, ParameterError, ["'wire'", "one of AU, CU, AL"]),
    ({"wire_size": "D33"}, ParameterError, ["wire_size D33 not set up (installed: D25)"]),
    ({"wire": "CU", "forming_gas": "0.5 L/min"}, ParameterError,
     ["wire CU not set up (installed: AU)"]),
    ({"wire": "AL"}, ParameterError, ["wire AL needs bond_type WEDGE"]),
    ({"wire": "CU"}, ParameterError, ["wire CU needs forming_gas ≥ 0.3 L/min, got 0 L/min"]),
    ({"fab_diameter": "30 µm"}, ParameterError,
     ["fab_diameter 30 µm not in 37.5–62.5 µm (1.5–2.5 × wire 25 µm)"]),
    ({"fab_diameter": "50 µm", "bond_type": "WEDGE"}, ParameterError,
     ["fab_diameter 50 µm is for BALL_STITCH only"]),
    ({"pad_opening": "40 µm"}, ParameterError, ["pad_opening 40 µm < free-air ball 45 µm"]),
    ({"pad_opening": "30 µm", "bond_type": "WEDGE"}, ParameterError,
     ["pad_opening 30 µm < wedge 32.5 µm"]),
    ({"span": "0.15 mm", "loop_height": "200 µm"}, ParameterError,
     ["loop_height 200 µm > span 150 µm"]),
    ({"span": "6 mm"}, ParameterError, ["span 6 mm > 5 mm (200 × wire 25 µm"]),
    ({"units": "1000", "wires_per_unit": "2000"}, ParameterError,
     ["2000000 wires > 1000000 per job"]),
    ({"temp_limit": "150 °C"}, ParameterError, ["bond_temp 175 °C > temp_limit 150 °C"]),
    ({"wires_per_unit": None}, ParameterError, ["missing parameter 'wires_per_unit'"]),
    ({"ultrasonic": "80 mW"}, ParameterError, ["no parameter 'ultrasonic'"]),
]  # fmt: skip


@pytest.mark.parametrize(("params", "error", "words"), BAD)
async def test_bad_jobs_are_refused_before_sending(
    wb: ToolDriver,
    sim_line: SimLine,
    params: dict[str, str | None],
    error: type[Exception],
    words: list[str],
) -> None:
    sim = sim_line.sim(TOOL)
    jobs_before = len(sim.jobs)
    merged = {k: v for k, v in {**CHIP, **params}.items() if v is not None}
    with pytest.raises(error) as e:
        await wb.start(Job(new_job_id("bad"), "wire_bond", merged))
    for w in words:
        assert w in str(e.value)
    assert str(e.value).startswith(TOOL)
    assert len(sim.jobs) == jobs_before  # nothing reached the tool


@pytest.mark.parametrize(
    ("params", "code"),
    [
        # Au ball bonds barely stick at 50 °C: nearly every ball is a non-stick
        ({"bond_temp": "50 °C"}, 1001),
        # a fifth of the standard stitch power: half the stitches lift
        ({"stitch_power": "20 mW"}, 1002),
        # 3 × the standard stitch power tears the tail
        ({"stitch_power": "270 mW"}, 1003),
        # the heater overshoots 3 % of (175 − 25) °C = 4.5 °C while it settles
        ({"temp_limit": "178 °C"}, 1005),
    ],
)
async def test_physics_alarms_stop_the_job(
    wb: ToolDriver, params: dict[str, str], code: int
) -> None:
    job = Job(new_job_id("alarm"), "wire_bond", {**CHIP, **params})
    with pytest.raises(ToolAlarm) as e:
        await wb.run(job)
    assert e.value.code == code
    assert e.value.text == WIREBONDER.alarm(code).text
    assert (await wb.result(job.job_id)).state is JobState.ALARM
    st = await wb.status()
    assert st.state is ToolState.ALARM and [a.code for a in st.alarms] == [code]
    await wb.clear_alarms()
    assert (await wb.status()).state is ToolState.IDLE


def test_window_edges_keep_rates_small() -> None:
    """One setting at the edge of its window (0.7–1.5 × standard, the temperature window)
    keeps non-sticks, craters and short tails below 1e-4 per bond."""
    edges = [{"bond_force": "17.5 gf"}, {"bond_power": "49 mW"}, {"bond_time": "8.4 ms"},
             {"stitch_force": "49 gf"}, {"stitch_power": "63 mW"}, {"bond_temp": "150 °C"},
             {"bond_force": "37.5 gf"}, {"bond_power": "105 mW"}, {"stitch_force": "105 gf"},
             {"stitch_power": "135 mW"}, {"bond_temp": "220 °C"}]  # fmt: skip
    for edge in edges:
        m = model(values({**CHIP, **edge}))
        assert max(m.nsop_rate, m.nsol_rate, m.crater_rate, m.tail_rate) < 1e-4, edge


async def test_a_large_standard_job_runs_clean(wb: ToolDriver) -> None:
    await wb.replace_consumable("wire_spool")
    params = {**CHIP, "units": "500", "wires_per_unit": "400"}  # ≈ 360 m of wire
    r = (await wb.run(Job(new_job_id("big"), "wire_bond", params))).results
    assert r["nsop"] == r["nsol"] == r["craters"] == 0 and r["wires"] == 200_000
    assert r["bonds"] == 400_000
    await wb.replace_consumable("wire_spool")


async def test_injected_pattern_recognition_fault(wb: ToolDriver, sim_line: SimLine) -> None:
    sim_line.fault(TOOL, "alarm", code=1008, at=0.3)
    with pytest.raises(ToolAlarm) as e:
        await wb.run(Job(new_job_id("pr"), "wire_bond", CHIP))
    assert e.value.code == 1008 and e.value.text == "pattern recognition: pad or lead not found"
    await wb.clear_alarms()


async def test_capillary_wear_warns_raises_non_sticks_and_stops_at_its_limit(
    wb: ToolDriver, sim_line: SimLine
) -> None:
    # a worn capillary transfers less ultrasound, mostly at the stitch
    fresh, worn = model(values(CHIP), 0.0), model(values(CHIP), 0.95)
    assert worn.nsol_rate > 1000 * fresh.nsol_rate and worn.nsop_rate > 10 * fresh.nsop_rate
    sim_line.sim(TOOL).levels["capillary"] = 0.9 * CAPILLARY_LIMIT - 1000  # test shortcut
    params = {**CHIP, "units": "1", "wires_per_unit": "500", "nonstick_limit": "100"}
    await wb.run(Job(new_job_id("wear"), "wire_bond", params))
    st = await wb.status()
    assert "CAPILLARY_WARNING" in [w.name for w in st.warnings]
    assert levels(st.consumables)["capillary"] >= 0.9 * CAPILLARY_LIMIT
    # at its limit the tool refuses the next job and raises the capillary alarm
    sim_line.fault(TOOL, "exhaust", consumable="capillary")
    with pytest.raises(ValueRefused) as e:
        await wb.start(Job(new_job_id("worn"), "wire_bond", CHIP))
    assert e.value.code == mm.Refusal.CONSUMABLE_EXHAUSTED
    assert "capillary exhausted" in str(e.value)
    assert [a.code for a in (await wb.status()).alarms] == [1006]
    await wb.replace_consumable("capillary")
    st = await wb.status()
    assert st.state is not ToolState.ALARM and not st.alarms
    assert levels(st.consumables)["capillary"] == 0


async def test_wire_spool_runs_down_warns_and_refuses_a_job_it_cannot_finish(
    wb: ToolDriver,
) -> None:
    await wb.replace_consumable("wire_spool")
    per_wire = model(values(CHIP)).wire_mm / 1000.0
    units = int((500 - 30) / per_wire / 1000)  # leave ≈ 30 m, under the 50 m warning
    params = {**CHIP, "units": str(units), "wires_per_unit": "1000"}
    r = (await wb.run(Job(new_job_id("spool"), "wire_bond", params))).results
    st = await wb.status()
    left = levels(st.consumables)["wire_spool"]
    assert left == pytest.approx(500 - r["wire_used"], abs=1e-3) and 0 < left < 50
    assert [w.name for w in st.warnings] == ["WIRE_SPOOL_LOW"]
    big = {**CHIP, "units": "100", "wires_per_unit": "1000"}  # ≈ 179 m of wire
    with pytest.raises(ValueRefused) as e:
        await wb.start(Job(new_job_id("short"), "wire_bond", big))
    assert e.value.code == mm.Refusal.CONSUMABLE_EXHAUSTED
    assert "wire_spool exhausted" in str(e.value)
    assert [a.code for a in (await wb.status()).alarms] == [1007]
    await wb.replace_consumable("wire_spool")
    await wb.replace_consumable("capillary")
    st = await wb.status()
    assert not st.alarms and not st.warnings
    assert levels(st.consumables)["wire_spool"] == 500


async def test_result_by_id_after_later_jobs(wb: ToolDriver) -> None:
    first = await wb.run(Job(new_job_id("first"), "wire_bond", CHIP))
    await wb.run(Job(new_job_id("second"), "wire_bond", {**CHIP, "loop_height": "250 µm"}))
    again = await wb.result(first.job_id)
    assert again.operation == "wire_bond" and again.results == first.results
