"""Coater driver against its simulator over loopback: every operation, the physics behind the
results (spin curve, spray conformality, Washburn underfill, stencil transfer, cure kinetics),
refusals before anything is sent, physics alarms and warnings, and supply and stencil wear."""

from __future__ import annotations

import math

import pytest

from drivers.base import Job, ToolDriver
from drivers.errors import ParameterError, ToolAlarm, UnitError, ValueRefused
from drivers.interface import JobState, ToolState
from drivers.interfaces.coater import COATER, POT_LIFE_H, area_ratio, gap_volume_ul
from drivers.line import Line
from simulators.coater import (
    EBR_LIP,
    PRINT_WASTE,
    PURGE_ML,
    PURGE_TIMEOUT_MIN,
    RHEOLOGY,
    auto_flow_ml_min,
    cure_minutes,
    degree_of_cure,
    dispense_seconds,
    dot_diameter_um,
    edge_bead_um,
    fill_fraction,
    fill_voids_pct,
    fillet_um,
    gel_seconds,
    glass_transition_c,
    line_width_um,
    needle_pressure_kpa,
    print_seconds,
    purge_minutes,
    residual_solvent_pct,
    spin_seconds,
    spin_thickness_um,
    spin_uniformity_pct,
    spray_material_ml,
    spray_profile_um,
    spray_seconds,
    transfer_efficiency,
    viscosity_pa_s,
    wafer_area_cm2,
    washburn_seconds,
)
from simulators.line import SimLine
from tests.helpers import connected, new_job_id

TOOL = "COAT-1"
SPIN = {"material": "POLYIMIDE", "spin_speed": "3000 rpm"}
SPRAY = {"material": "POLYIMIDE", "thickness": "2 µm", "aspect_ratio": "2"}
UNDERFILL = {"material": "UNDERFILL", "pattern": "CAPILLARY", "volume": "7 µL", "sites": "400",
             "gap": "50 µm", "flow_length": "10 mm"}  # fmt: skip
PASTE = {"material": "CONDUCTIVE_PASTE", "stencil_thickness": "50 µm", "aperture": "150 µm",
         "open_area": "5 %"}  # fmt: skip
CURE = {"material": "POLYIMIDE", "temp": "350 °C"}
BASE = {"spin_coat": SPIN, "spray_coat": SPRAY, "dispense": UNDERFILL, "print": PASTE,
        "cure": CURE}  # fmt: skip
LOGNORMAL_5SIGMA = math.exp(5 * 0.1)  # results with lognormal(0, 0.1) noise


async def levels(d: ToolDriver) -> dict[str, float]:
    return {c.name: c.level for c in (await d.status()).consumables}


async def warnings(d: ToolDriver) -> list[str]:
    return [w.name for w in (await d.status()).warnings]


async def test_identify_and_status(line: Line) -> None:
    async with connected(line, TOOL) as d:
        ident = await d.identify()
        assert (ident.vendor, ident.model, ident.serial) == (
            "FABLINE-SIM",
            "SPINJET-4",
            "SN-COAT-1",
        )
        st = await d.status()
        assert "BCB" not in st.setup["materials"]  # loaded on request only
        assert {"POLYIMIDE", "UNDERFILL", "CONDUCTIVE_PASTE", "PR_THICK"} <= set(
            st.setup["materials"]
        )
        cons = {c.name: c for c in st.consumables}
        assert set(cons) == {
            "supply_polyimide", "supply_bcb", "supply_epoxy", "supply_underfill", "supply_adhesive",
            "supply_paste", "supply_resist", "stencil_cycles",
        }  # fmt: skip
        assert cons["supply_underfill"].supply and cons["supply_underfill"].unit == "mL"
        assert not cons["stencil_cycles"].supply and cons["stencil_cycles"].limit == 20000


@pytest.mark.parametrize(
    ("material", "rpm", "seconds"),
    [("POLYIMIDE", 3000.0, 30.0), ("POLYIMIDE", 1500.0, 30.0), ("POLYIMIDE", 5000.0, 60.0),
     ("PR_THIN", 4000.0, 30.0), ("PR_THICK", 1500.0, 45.0), ("EPOXY", 2000.0, 20.0)],
)  # fmt: skip
async def test_spin_coat_follows_the_spin_curve(
    line: Line, material: str, rpm: float, seconds: float
) -> None:
    async with connected(line, TOOL) as d:
        before = await levels(d)
        params = {"material": material, "spin_speed": f"{rpm} rpm", "spin_time": f"{seconds} s"}
        res = await d.run(Job(new_job_id("spin"), "spin_coat", params))
        r = res.results
        assert res.state is JobState.COMPLETE
        h = spin_thickness_um(material, rpm, seconds)
        assert r["thickness"] == pytest.approx(h, rel=0.05)  # ±1 % thickness noise
        u = spin_uniformity_pct(material, rpm, seconds)
        assert u / LOGNORMAL_5SIGMA < r["uniformity"] < u * LOGNORMAL_5SIGMA
        bead = edge_bead_um(material, r["thickness"], rpm, 2.0)
        assert bead / LOGNORMAL_5SIGMA < r["edge_bead"] < bead * LOGNORMAL_5SIGMA
        assert r["residual_solvent"] == pytest.approx(
            residual_solvent_pct(r["thickness"], 110, 120), rel=1e-6, abs=1e-12
        )
        assert r["speed_measured"] == pytest.approx(rpm, rel=0.003)
        assert r["duration"] == pytest.approx(spin_seconds(seconds, 120, True) / 60, rel=1e-7)
        assert r["material_used"] == 3.0
        supply = "supply_polyimide" if material == "POLYIMIDE" else "supply_resist"
        if material == "EPOXY":
            supply = "supply_epoxy"
        assert before[supply] - (await levels(d))[supply] == pytest.approx(3.0, abs=0.01)


async def test_pi_spin_curve_reference_points() -> None:
    # α = 0.81 for PI [PIspin]: halving the speed thickens the film by 2^0.81
    assert spin_thickness_um("POLYIMIDE", 1500) / spin_thickness_um(
        "POLYIMIDE", 3000
    ) == pytest.approx(2**0.81)
    # PI-2611 class: 8 µm as coated at 3000 rpm; cured (40 % shrink) 3–9 µm over 1500–5000 rpm
    assert spin_thickness_um("POLYIMIDE", 3000) == pytest.approx(8.0)
    assert (
        3
        < spin_thickness_um("POLYIMIDE", 5000) * 0.6
        < spin_thickness_um("POLYIMIDE", 1500) * 0.6
        < 9
    )
    # thick resist covers the 10–50 µm plating-mask range
    assert spin_thickness_um("PR_THICK", 5000) < 20 < spin_thickness_um("PR_THICK", 600) < 50


async def test_spin_coat_then_cure_pi(line: Line) -> None:
    """000 step 2 + 4: PI coated, then cured in N₂ at 350 °C; the film shrinks by s·α."""
    async with connected(line, TOOL) as d:
        h = (await d.run(Job(new_job_id("pi"), "spin_coat", SPIN))).results["thickness"]
        res = await d.run(Job(new_job_id("cure"), "cure", {**CURE, "thickness": f"{h} µm"}))
        r = res.results
        alpha = degree_of_cure("POLYIMIDE", r["temp_measured"], 60)
        assert r["degree_of_cure"] == pytest.approx(100 * alpha, rel=1e-6)
        assert r["degree_of_cure"] > 99.9
        assert r["temp_measured"] == pytest.approx(350, abs=2.5)
        assert r["shrinkage"] == pytest.approx(40 * alpha, rel=1e-6)
        assert r["cured_thickness"] == pytest.approx(h * (1 - 0.4 * alpha), rel=1e-6)
        assert 4.5 < r["cured_thickness"] < 5.1  # PI-2611: 3–9 µm cured
        assert r["tg"] == pytest.approx(glass_transition_c("POLYIMIDE", alpha), rel=1e-6)
        assert r["o2_measured"] < 50  # under the job's limit
        # purge to 50 ppm (τ = 4 min from 20.9 %), ramp 5 °C/min, 60 min hold, cool to 60 °C
        assert r["duration"] == pytest.approx(cure_minutes(350, 60, purge_minutes(50)), rel=1e-7)
        assert r["duration"] == pytest.approx(34.4 + 65 + 60 + 58, abs=0.2)
        assert not await warnings(d)


def test_cure_kinetics_reference_points() -> None:
    """The bottom corner of each full-cure window (ramp and cool included)."""
    assert degree_of_cure("POLYIMIDE", 300, 60) == pytest.approx(0.955, abs=0.001)
    assert degree_of_cure("LOW_T_PI", 200, 60) == pytest.approx(0.955, abs=0.001)
    assert degree_of_cure("EPOXY", 150, 30) == pytest.approx(0.92, abs=0.001)
    assert degree_of_cure("BCB", 210, 40) == pytest.approx(0.75, abs=0.001)  # BCB soft cure
    assert degree_of_cure("BCB", 250, 60) > 0.99  # hard cure
    # PI at a low-temperature-PI cure barely imidises
    assert degree_of_cure("POLYIMIDE", 250, 60) < 0.5 < 0.95 < degree_of_cure("LOW_T_PI", 250, 60)
    # snap-cure underfill: gel in 15 min at 110 °C, under 2 min at 150 °C
    assert gel_seconds("UNDERFILL", 110) == pytest.approx(900, rel=1e-3)
    assert gel_seconds("UNDERFILL", 150) < 120


async def test_thick_resist_needs_a_longer_soft_bake(line: Line) -> None:
    async with connected(line, TOOL) as d:
        thick = {"material": "PR_THICK", "spin_speed": "1000 rpm"}
        wet = await d.run(Job(new_job_id("pr"), "spin_coat", thick))
        r = wet.results
        assert r["thickness"] == pytest.approx(spin_thickness_um("PR_THICK", 1000), rel=0.05)
        assert r["residual_solvent"] > 10  # τ ∝ h²: 37 µm needs more than 2 min at 110 °C
        assert await warnings(d) == ["RESIDUAL_SOLVENT"]
        assert [w.name for w in wet.warnings] == ["RESIDUAL_SOLVENT"]  # in the job result (SCPI)
        baked = {**thick, "softbake_temp": "120 °C", "softbake_time": "20 min"}
        r = (await d.run(Job(new_job_id("pr"), "spin_coat", baked))).results
        assert r["residual_solvent"] == pytest.approx(
            residual_solvent_pct(r["thickness"], 120, 1200), rel=1e-6
        )
        assert r["residual_solvent"] < 1
        assert not await warnings(d)


async def test_edge_bead_removal_leaves_a_small_lip(line: Line) -> None:
    async with connected(line, TOOL) as d:
        raw = await d.run(Job(new_job_id("ebr"), "spin_coat", {**SPIN, "ebr_width": "0 mm"}))
        rinsed = (await d.run(Job(new_job_id("ebr"), "spin_coat", SPIN))).results
        r = raw.results
        assert r["edge_bead"] == pytest.approx(
            edge_bead_um("POLYIMIDE", r["thickness"], 3000, 0), rel=0.7
        )
        assert 2 < r["edge_bead"] < 10  # ≈ 0.6 × the film at 3000 rpm
        assert rinsed["edge_bead"] < r["edge_bead"] * EBR_LIP * LOGNORMAL_5SIGMA**2
        # no rinse step: 20 s shorter
        assert r["duration"] == pytest.approx(rinsed["duration"] - 20 / 60, rel=1e-7)


async def test_spray_coat_liner_is_conformal_in_thin_passes(line: Line) -> None:
    """000 step 7: a PI liner in AR 2 features; thin passes and a hot chuck cover the walls."""
    async with connected(line, TOOL) as d:
        before = await levels(d)
        r = (await d.run(Job(new_job_id("spray"), "spray_coat", SPRAY))).results
        top = r["top_thickness"]
        assert top == pytest.approx(2, rel=0.05)
        side, bottom = spray_profile_um(top, 6, 2, 60)
        assert r["sidewall_thickness"] == pytest.approx(side, rel=1e-6)
        assert r["bottom_thickness"] == pytest.approx(bottom, rel=1e-6)
        assert r["step_coverage"] == pytest.approx(100 * side / top, rel=1e-6)
        assert 40 < r["step_coverage"] < 60
        assert r["material_used"] == pytest.approx(spray_material_ml(2, 300), rel=1e-6)
        assert r["duration"] == pytest.approx(spray_seconds(6, 300, 120) / 60, rel=1e-7)
        spent = before["supply_polyimide"] - (await levels(d))["supply_polyimide"]
        assert spent == pytest.approx(r["material_used"], abs=0.01)
        one = await d.run(Job(new_job_id("spray"), "spray_coat", {**SPRAY, "passes": "1"}))
        many = {**SPRAY, "passes": "12", "chuck_temp": "80 °C"}
        best = (await d.run(Job(new_job_id("spray"), "spray_coat", many))).results
        assert one.results["step_coverage"] < r["step_coverage"] < best["step_coverage"]
        flat = {**SPRAY, "aspect_ratio": "0"}
        f = (await d.run(Job(new_job_id("spray"), "spray_coat", flat))).results
        assert f["bottom_thickness"] == pytest.approx(f["top_thickness"], rel=1e-7)


async def test_capillary_underfill_follows_washburn(line: Line) -> None:
    """001 step 6: 400 dies of 10 mm, 50 µm gap, at 90 °C."""
    async with connected(line, TOOL) as d:
        before = await levels(d)
        res = await d.run(Job(new_job_id("uf"), "dispense", UNDERFILL))
        r = res.results
        fill = washburn_seconds("UNDERFILL", 90, 10, 50)
        assert r["fill_time"] == pytest.approx(fill, rel=1e-6)
        assert 30 < r["fill_time"] < 120  # t = 3μL²/(hγcosθ), μ ≈ 0.27 Pa·s at 90 °C
        assert r["fill_fraction"] == 100
        assert r["viscosity"] == pytest.approx(1000 * viscosity_pa_s("UNDERFILL", 90), rel=1e-6)
        assert r["dispensed"] == pytest.approx(7, rel=0.03)
        assert r["fillet"] == pytest.approx(fillet_um(r["dispensed"] - gap_volume_ul(10, 50), 10))
        assert 250 < r["fillet"] < 450
        assert 0 < r["voids"] < 2 and r["footprint"] == 0
        flow = auto_flow_ml_min("G22", viscosity_pa_s("UNDERFILL", 40))
        assert r["flow_rate"] == pytest.approx(flow, rel=1e-6)
        assert r["pressure"] == pytest.approx(300, rel=1e-6)  # half the 600 kPa limit
        assert r["duration"] == pytest.approx(dispense_seconds(7, 400, flow, fill) / 60, rel=1e-6)
        used = 7 * 400 / 1000 + PURGE_ML
        assert r["material_used"] == pytest.approx(used, rel=1e-7)
        spent = before["supply_underfill"] - (await levels(d))["supply_underfill"]
        assert spent == pytest.approx(used, abs=0.01)
        # a hotter stage thins the underfill: faster flow
        hot_params = {**UNDERFILL, "sites": "1", "substrate_temp": "110 °C"}
        hot = await d.run(Job(new_job_id("uf"), "dispense", hot_params))
        assert hot.results["fill_time"] == pytest.approx(
            washburn_seconds("UNDERFILL", 110, 10, 50), rel=1e-6
        )
        assert hot.results["fill_time"] < r["fill_time"] / 2


def test_underfill_gels_before_filling_a_long_narrow_gap() -> None:
    """The model: 30 mm die, 10 µm gap: at 110 °C the snap cure gels (15 min) before the front
    arrives; at 90 °C the flow is slower but the gel time longer. (The tool refuses a 10 µm
    gap for a 10 µm filler top cut anyway: see the next test.)"""
    fill, gel = washburn_seconds("UNDERFILL", 110, 30, 10), gel_seconds("UNDERFILL", 110)
    assert fill > gel and 0.85 < fill_fraction(fill, gel) < 0.95
    assert washburn_seconds("UNDERFILL", 90, 30, 10) < gel_seconds("UNDERFILL", 90)


async def test_capillary_gap_must_pass_three_filler_cuts(line: Line) -> None:
    """A 10 µm top cut jams a gap under 30 µm: refused; a 30 µm gap over 30 mm fills."""
    async with connected(line, TOOL) as d:
        narrow = {**UNDERFILL, "volume": "30 µL", "sites": "1", "gap": "10 µm",
                  "flow_length": "30 mm", "substrate_temp": "110 °C"}  # fmt: skip
        with pytest.raises(ParameterError, match="gap 10 µm < 30 µm"):
            await d.start(Job(new_job_id("gel"), "dispense", narrow))
        r = (await d.run(Job(new_job_id("gel"), "dispense", {**narrow, "gap": "30 µm"}))).results
        assert r["fill_fraction"] == 100
        assert r["fill_time"] == pytest.approx(washburn_seconds("UNDERFILL", 110, 30, 30), rel=1e-6)
        assert not await warnings(d)


async def test_adhesive_dots_and_lines(line: Line) -> None:
    """001/003: adhesive for a heat spreader (dots) and a stiffener ring (lines)."""
    async with connected(line, TOOL) as d:
        before = await levels(d)
        dots = {"material": "ADHESIVE", "pattern": "DOT", "volume": "2 µL", "sites": "100"}
        r = (await d.run(Job(new_job_id("dot"), "dispense", dots))).results
        assert r["footprint"] == pytest.approx(
            dot_diameter_um("ADHESIVE", r["dispensed"]), rel=1e-6
        )
        # the spherical cap of that base at the adhesive's 65° contact angle holds the volume
        a, th = r["footprint"] / 2 * 1e-3, math.radians(RHEOLOGY["ADHESIVE"][2])
        cap = math.pi * a**3 / 3 * (2 + math.cos(th)) * (1 - math.cos(th)) ** 2 / math.sin(th) ** 3
        assert cap == pytest.approx(r["dispensed"], rel=1e-6)  # mm³ = µL
        assert r["fill_time"] == 0 and r["voids"] == 0 and r["fillet"] == 0
        lines = {"material": "ADHESIVE", "pattern": "LINE", "volume": "20 µL", "sites": "4",
                 "line_length": "40 mm"}  # fmt: skip
        r2 = (await d.run(Job(new_job_id("line"), "dispense", lines))).results
        assert r2["footprint"] == pytest.approx(
            line_width_um("ADHESIVE", r2["dispensed"], 40), rel=1e-6
        )
        w = r2["footprint"] / 2 * 1e-3  # half width, mm
        segment = w**2 * (th - math.sin(th) * math.cos(th)) / math.sin(th) ** 2
        assert segment * 40 == pytest.approx(r2["dispensed"], rel=1e-6)
        spent = before["supply_adhesive"] - (await levels(d))["supply_adhesive"]
        assert spent == pytest.approx(0.2 + 0.08 + 2 * PURGE_ML, abs=0.01)


async def test_encapsulant_fill(line: Line) -> None:
    """002 EF: epoxy filled between the partition walls."""
    async with connected(line, TOOL) as d:
        fill = {"material": "EPOXY", "pattern": "FILL", "volume": "0.5 µL", "sites": "2000"}
        r = (await d.run(Job(new_job_id("fill"), "dispense", fill))).results
        v = fill_voids_pct("EPOXY", 90)
        assert v / math.exp(1) < r["voids"] < v * math.exp(1)  # lognormal σ 0.2
        assert r["fill_fraction"] == 100 and r["fill_time"] == 0 and r["footprint"] == 0
        assert r["material_used"] == pytest.approx(1.0 + PURGE_ML, rel=1e-7)


async def test_stencil_print_transfers_paste(line: Line) -> None:
    """002 CB: conductive paste bodies; the printed height is stencil × transfer efficiency."""
    async with connected(line, TOOL) as d:
        before = await levels(d)
        used = next(c for c in COATER.consumables if c.name == "stencil_cycles")
        share = before["stencil_cycles"] / used.limit
        r = (await d.run(Job(new_job_id("print"), "print", PASTE))).results
        assert r["area_ratio"] == pytest.approx(0.75) == area_ratio(0.15, 50)
        te = transfer_efficiency(0.75, 40, share)
        assert r["transfer_efficiency"] == pytest.approx(100 * te, rel=0.05)
        assert 70 < r["transfer_efficiency"] < 90  # the reference's 0.7–0.9
        assert r["printed_thickness"] == pytest.approx(
            50 * r["transfer_efficiency"] / 100, rel=1e-6
        )
        paste = wafer_area_cm2(300) * 0.05 * r["printed_thickness"] * 1e-4 * (1 + PRINT_WASTE)
        assert r["material_used"] == pytest.approx(paste, rel=1e-6)
        assert r["duration"] == pytest.approx(print_seconds(300, 40) / 60, rel=1e-7)
        after = await levels(d)
        assert after["stencil_cycles"] == before["stencil_cycles"] + 1
        assert before["supply_paste"] - after["supply_paste"] == pytest.approx(paste, abs=0.01)
        # wafer-back TC epoxy (001 step 3) through a full-area opening: the top of the range
        back = {"material": "TC_EPOXY", "stencil_thickness": "75 µm", "aperture": "290 mm",
                "open_area": "93 %"}  # fmt: skip
        b = (await d.run(Job(new_job_id("print"), "print", back))).results
        assert b["transfer_efficiency"] == pytest.approx(88, rel=0.05)
        fast = await d.run(
            Job(new_job_id("print"), "print", {**PASTE, "squeegee_speed": "150 mm/s"})
        )
        assert fast.results["transfer_efficiency"] < 0.95 * r["transfer_efficiency"]


async def test_bcb_soft_cure_is_incomplete_and_warns(line: Line) -> None:
    """BCB is not loaded, but the oven cures whatever the wafer carries."""
    async with connected(line, TOOL) as d:
        soft = {"material": "BCB", "temp": "210 °C", "time": "40 min"}
        r = (await d.run(Job(new_job_id("bcb"), "cure", soft))).results
        assert r["degree_of_cure"] == pytest.approx(
            100 * degree_of_cure("BCB", r["temp_measured"], 40), rel=1e-6
        )
        assert 70 < r["degree_of_cure"] < 82
        assert await warnings(d) == ["INCOMPLETE_CURE"]
        hard = (await d.run(Job(new_job_id("bcb"), "cure", {**soft, "temp": "250 °C"}))).results
        assert hard["degree_of_cure"] > 99 and hard["tg"] > r["tg"]
        assert not await warnings(d)


async def test_epoxy_b_stage_then_full_cure_in_air(line: Line) -> None:
    """000 step 2: epoxy adhesive B-staged before bonding, cured after (no purge in air)."""
    async with connected(line, TOOL) as d:
        b = {"material": "EPOXY", "stage": "B_STAGE", "temp": "100 °C", "time": "10 min",
             "atmosphere": "AIR", "thickness": "20 µm"}  # fmt: skip
        r = (await d.run(Job(new_job_id("bst"), "cure", b))).results
        assert r["degree_of_cure"] == pytest.approx(
            100 * degree_of_cure("EPOXY", r["temp_measured"], 10), rel=1e-6
        )
        assert 5 < r["degree_of_cure"] < 30
        assert r["o2_measured"] == 209_000
        assert r["duration"] == pytest.approx(cure_minutes(100, 10), rel=1e-7)  # no purge
        assert r["cured_thickness"] == pytest.approx(20 * (1 - 0.03 * r["degree_of_cure"] / 100))
        full = {**b, "stage": "FULL", "temp": "165 °C", "time": "1 h"}
        f = (await d.run(Job(new_job_id("full"), "cure", full))).results
        assert f["degree_of_cure"] > 97 and 0.02 < 20 - f["cured_thickness"] < 0.7
        assert not await warnings(d)


async def test_dispense_warns_when_the_material_nears_its_pot_life(line: Line) -> None:
    async with connected(line, TOOL) as d:
        aged = {**UNDERFILL, "sites": "10", "pot_age": "20 h"}  # 83 % of 24 h
        r = (await d.run(Job(new_job_id("aged"), "dispense", aged))).results
        assert r["viscosity"] == pytest.approx(
            1000 * viscosity_pa_s("UNDERFILL", 90) * 2 ** (20 / 24), rel=1e-6
        )
        assert r["fill_time"] > washburn_seconds("UNDERFILL", 90, 10, 50) * 1.7
        assert await warnings(d) == ["POT_LIFE_WARNING"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        # TC epoxy filler (45 µm) bridges a G30 needle (150 µm < 4 × 45 µm)
        ({"material": "TC_EPOXY", "pattern": "DOT", "volume": "1 µL", "sites": "2",
          "needle": "G30"}, 603),
        # 5 mL/min of epoxy through a G22 needle needs ≈ 17 MPa
        ({"material": "EPOXY", "pattern": "FILL", "volume": "1 µL", "flow_rate": "5 mL/min"},
         602),
        # underfill thawed 30 h ago: past its 24 h pot life before the job starts
        ({**UNDERFILL, "pot_age": "30 h"}, 604),
    ],
)  # fmt: skip
async def test_physics_alarms_stop_the_job(line: Line, params: dict[str, str], code: int) -> None:
    async with connected(line, TOOL) as d:
        job = Job(new_job_id("alarm"), "dispense", params)
        try:
            with pytest.raises(ToolAlarm) as e:
                await d.run(job)
            assert e.value.code == code and e.value.text == COATER.alarm(code).text
            assert (await d.result(job.job_id)).state is JobState.ALARM
            st = await d.status()
            assert st.state is ToolState.ALARM and [a.code for a in st.alarms] == [code]
        finally:
            await d.clear_alarms()
        assert (await d.status()).state is ToolState.IDLE


async def test_pot_life_runs_out_during_a_long_job(line: Line, sim_line: SimLine) -> None:
    """Paste 47 h after thaw (48 h pot life), ~2 h of hole filling: the tool alarms where the
    material expires, and only the paste dispensed until then is used."""
    async with connected(line, TOOL) as d:
        before = await levels(d)
        holes = {"material": "CONDUCTIVE_PASTE", "pattern": "FILL", "volume": "20 nL",
                 "sites": "20000", "pot_age": "47 h"}  # fmt: skip
        job = Job(new_job_id("expire"), "dispense", holes)
        try:
            with pytest.raises(ToolAlarm) as e:
                await d.run(job)
            assert e.value.code == 604
            flow = auto_flow_ml_min("G22", viscosity_pa_s("CONDUCTIVE_PASTE", 40, 47))
            hours = dispense_seconds(0.02, 20000, flow, 0.0) / 3600
            expires = 100 * (POT_LIFE_H["CONDUCTIVE_PASTE"] - 47) / hours
            assert 50 < expires < 56
            planned = sim_line.sim(TOOL).jobs[job.job_id].plan
            assert planned is not None and planned.alarm is not None
            assert planned.alarm[1] == pytest.approx(expires / 100, rel=1e-9)
            # the alarm fires on the event loop at (or just after) that point
            progress = (await d.job_progress(job.job_id)).progress
            assert expires - 0.1 <= progress < 100
            spent = before["supply_paste"] - (await levels(d))["supply_paste"]
            assert spent == pytest.approx((0.4 + PURGE_ML) * progress / 100, abs=0.01)
        finally:
            await d.clear_alarms()


async def test_oven_cannot_purge_below_its_floor(line: Line, sim_line: SimLine) -> None:
    """O₂ limit 10 ppm, under the oven's ≈12 ppm N₂ floor: the purge times out after 60 min."""
    async with connected(line, TOOL) as d:
        job = Job(new_job_id("o2"), "cure", {**CURE, "o2": "10 ppm"})
        try:
            with pytest.raises(ToolAlarm) as e:
                await d.run(job)
            assert e.value.code == 606 and e.value.text == COATER.alarm(606).text
            timeout = PURGE_TIMEOUT_MIN / cure_minutes(350, 60, PURGE_TIMEOUT_MIN)
            planned = sim_line.sim(TOOL).jobs[job.job_id].plan
            assert planned is not None and planned.alarm is not None
            assert planned.alarm[0] == 606 and planned.alarm[1] == pytest.approx(timeout)
            progress = (await d.job_progress(job.job_id)).progress
            assert 100 * timeout - 0.1 <= progress < 100
        finally:
            await d.clear_alarms()
        assert purge_minutes(15) < PURGE_TIMEOUT_MIN < purge_minutes(12)


async def test_injected_facility_alarm(line: Line, sim_line: SimLine) -> None:
    async with connected(line, TOOL) as d:
        sim_line.fault(TOOL, "alarm", code=605, at=0.3)
        with pytest.raises(ToolAlarm) as e:
            await d.run(Job(new_job_id("exh"), "spin_coat", SPIN))
        assert e.value.code == 605 and "exhaust" in e.value.text
        await d.clear_alarms()
        assert (await d.status()).state is ToolState.IDLE


@pytest.mark.parametrize(
    ("op", "params", "error", "words"),
    [
        ("spin_coat", {"spin_speed": "6000 rpm"}, ParameterError,
         ["'spin_speed'", "500–5000 rpm"]),
        ("spin_coat", {"spin_speed": "3000"}, UnitError, ["'spin_speed'", "missing unit"]),
        ("spin_coat", {"spin_time": "30 mm"}, UnitError, ["'spin_time'", "length", "time"]),
        ("spin_coat", {"softbake_temp": "150 °C"}, ParameterError, ["'softbake_temp'", "90–130"]),
        ("spin_coat", {"material": "BCB"}, ParameterError,
         ["'material'", "BCB not set up", "installed: POLYIMIDE"]),
        ("spin_coat", {"material": "UNDERFILL"}, ParameterError,
         ["'material'", "one of POLYIMIDE"]),
        ("spray_coat", {"thickness": "20 µm", "passes": "4"}, ParameterError,
         ["5 µm per pass > 3 µm", "at least 7 passes"]),
        ("spray_coat", {"passes": "2.5"}, ParameterError, ["'passes'", "whole number"]),
        ("spray_coat", {"material": "BCB"}, ParameterError, ["not set up"]),
        ("dispense", {"material": "EPOXY"}, ParameterError,
         ["pattern CAPILLARY needs material UNDERFILL, got EPOXY"]),
        ("dispense", {"gap": "0 µm"}, ParameterError, ["needs gap > 0 and flow_length > 0"]),
        ("dispense", {"volume": "3 µL"}, ParameterError,
         ["volume 3 µL < 4.5 µL gap volume", "10 mm square die, 50 µm gap"]),
        ("dispense", {"pattern": "DOT"}, ParameterError,
         ["gap and flow_length are only used with pattern CAPILLARY"]),
        ("dispense", {"pattern": "LINE", "gap": "0 µm", "flow_length": "0 mm"}, ParameterError,
         ["pattern LINE needs line_length > 0"]),
        ("dispense", {"line_length": "20 mm"}, ParameterError,
         ["line_length is only used with pattern LINE"]),
        ("dispense", {"substrate_temp": "150 °C"}, ParameterError, ["'substrate_temp'", "70–110"]),
        ("dispense", {"flow_rate": "6 mL/min"}, ParameterError, ["'flow_rate'", "0–5 mL/min"]),
        ("dispense", {"sites": "10.5"}, ParameterError, ["'sites'", "whole number"]),
        ("dispense", {"needle": "G40"}, ParameterError, ["'needle'", "one of G18"]),
        ("print", {"aperture": "100 µm", "stencil_thickness": "75 µm"}, ParameterError,
         ["area ratio 0.33 < 0.5", "aperture 100 µm too small for a 75 µm stencil"]),
        ("print", {"aperture": "100 µm", "stencil_thickness": "25 µm"}, ParameterError,
         ["aperture 100 µm < 125 µm", "25 µm CONDUCTIVE_PASTE particles"]),
        ("print", {"stencil_thickness": "150 µm"}, ParameterError, ["'stencil_thickness'"]),
        ("print", {"open_area": None}, ParameterError, ["missing parameter 'open_area'"]),
        ("print", {"material": "UNDERFILL"}, ParameterError, ["'material'", "one of"]),
        ("cure", {"temp": "250 °C"}, ParameterError,
         ["temp 250 °C outside the POLYIMIDE full-cure window 300–375 °C"]),
        ("cure", {"time": "30 min"}, ParameterError,
         ["time 30 min outside the POLYIMIDE full-cure window 60–600 min"]),
        ("cure", {"material": "EPOXY", "temp": "165 °C", "time": "3 h"}, ParameterError,
         ["time 180 min outside the EPOXY full-cure window 30–120 min"]),
        ("cure", {"material": "EPOXY", "stage": "B_STAGE", "temp": "150 °C", "time": "5 min"},
         ParameterError, ["temp 150 °C outside the EPOXY B-stage window 80–130 °C"]),
        ("cure", {"atmosphere": "AIR"}, ParameterError,
         ["POLYIMIDE full cure needs atmosphere N2"]),
        ("cure", {"material": "BCB", "temp": "250 °C", "o2": "200 ppm"}, ParameterError,
         ["o2 200 ppm > 100 ppm: too high for a BCB cure"]),
        ("cure", {"material": "PR_THICK"}, ParameterError, ["'material'", "one of POLYIMIDE"]),
        ("cure", {"temp": "700 K"}, ParameterError, ["'temp'", "700 K", "80–400 °C"]),
        ("anneal", {}, ParameterError, ["no operation 'anneal'", "spin_coat, spray_coat"]),
    ],
)  # fmt: skip
async def test_bad_parameters_are_refused_before_sending(
    line: Line,
    sim_line: SimLine,
    op: str,
    params: dict[str, str | None],
    error: type[Exception],
    words: list[str],
) -> None:
    async with connected(line, TOOL) as d:
        sim = sim_line.sim(TOOL)
        jobs_before = len(sim.jobs)
        merged = {k: v for k, v in {**BASE.get(op, {}), **params}.items() if v is not None}
        with pytest.raises(error) as e:
            await d.start(Job(new_job_id("bad"), op, merged))
        for w in words:
            assert w in str(e.value)
        if op != "anneal":
            assert str(e.value).startswith(TOOL)
        assert len(sim.jobs) == jobs_before  # nothing reached the tool


async def test_units_convert_before_sending(line: Line) -> None:
    async with connected(line, TOOL) as d:
        params = {"material": "PR_THIN", "spin_speed": "4 krpm", "spin_time": "0.5 min",
                  "softbake_time": "1.5 min", "dispense_volume": "2000 uL"}  # fmt: skip
        r = (await d.run(Job(new_job_id("units"), "spin_coat", params))).results
        assert r["thickness"] == pytest.approx(spin_thickness_um("PR_THIN", 4000, 30), rel=0.05)
        assert r["material_used"] == 2.0
        assert r["duration"] == pytest.approx(spin_seconds(30, 90, True) / 60, rel=1e-7)


async def test_tool_enforces_its_setup_too(line: Line, sim_line: SimLine) -> None:
    """A material unloaded behind the driver's back is refused by the tool (SCPI -241)."""
    async with connected(line, TOOL) as d:
        sim = sim_line.sim(TOOL)
        saved = sim.setup["materials"]
        sim.setup["materials"] = tuple(m for m in saved if m != "PR_THIN")
        try:
            job = {"material": "PR_THIN", "spin_speed": "4000 rpm"}
            with pytest.raises(ValueRefused) as e:
                await d.start(Job(new_job_id("gone"), "spin_coat", job))
            assert e.value.code == -241 and "PR_THIN" in str(e.value)
            with pytest.raises(ParameterError, match="not set up"):
                await d.start(Job(new_job_id("gone"), "spin_coat", job))
        finally:
            sim.setup["materials"] = saved


async def test_exhausted_supply_refuses_and_alarms(line: Line, sim_line: SimLine) -> None:
    async with connected(line, TOOL) as d:
        sim_line.fault(TOOL, "exhaust", consumable="supply_underfill")
        with pytest.raises(ValueRefused, match="supply_underfill exhausted"):
            await d.start(Job(new_job_id("ex"), "dispense", UNDERFILL))
        st = await d.status()
        assert st.state is ToolState.ALARM and [a.name for a in st.alarms] == ["SUPPLY_EMPTY"]
        # other supplies are not affected by the alarm's cause, but the tool is in alarm
        await d.replace_consumable("supply_underfill")
        st = await d.status()
        assert st.state is ToolState.IDLE and not st.alarms
        assert next(c for c in st.consumables if c.name == "supply_underfill").level == 1000
        assert (
            await d.run(Job(new_job_id("ex"), "dispense", UNDERFILL))
        ).state is JobState.COMPLETE


async def test_low_supply_warns(line: Line, sim_line: SimLine) -> None:
    async with connected(line, TOOL) as d:
        sim = sim_line.sim(TOOL)
        saved = sim.levels["supply_resist"]
        sim.levels["supply_resist"] = 300.0  # 7.5 % of 4 L
        try:
            assert await warnings(d) == ["SUPPLY_LOW"]
            st = await d.status()
            assert st.state is not ToolState.ALARM
        finally:
            sim.levels["supply_resist"] = saved
        assert not await warnings(d)


async def test_worn_stencil_prints_thinner_then_must_be_replaced(
    line: Line, sim_line: SimLine
) -> None:
    async with connected(line, TOOL) as d:
        fresh = (await d.run(Job(new_job_id("st"), "print", PASTE))).results
        sim = sim_line.sim(TOOL)
        sim.levels["stencil_cycles"] = 19_000.0  # 95 % of its life
        worn = (await d.run(Job(new_job_id("st"), "print", PASTE))).results
        assert worn["transfer_efficiency"] == pytest.approx(
            100 * transfer_efficiency(0.75, 40, 0.95), rel=0.05
        )
        assert await warnings(d) == ["STENCIL_LIFE_WARNING"]
        assert worn["transfer_efficiency"] < fresh["transfer_efficiency"]
        sim_line.fault(TOOL, "exhaust", consumable="stencil_cycles")
        with pytest.raises(ValueRefused, match="stencil_cycles exhausted"):
            await d.start(Job(new_job_id("st"), "print", PASTE))
        assert [a.name for a in (await d.status()).alarms] == ["STENCIL_LIFE"]
        await d.replace_consumable("stencil_cycles")
        st = await d.status()
        assert st.state is ToolState.IDLE and not st.warnings
        assert next(c for c in st.consumables if c.name == "stencil_cycles").level == 0


async def test_result_by_id_after_later_jobs(line: Line) -> None:
    async with connected(line, TOOL) as d:
        first = await d.run(Job(new_job_id("first"), "spin_coat", SPIN))
        await d.run(Job(new_job_id("second"), "spin_coat", {**SPIN, "spin_speed": "2000 rpm"}))
        again = await d.result(first.job_id)
        assert again.operation == "spin_coat" and again.results == first.results


def test_needle_pressure_is_hagen_poiseuille() -> None:
    # doubling the needle bore cuts the pressure 16-fold at the same flow and viscosity
    assert needle_pressure_kpa("G30", 1.0, 1.0) / needle_pressure_kpa("G22", 1.0, 1.0) == (
        pytest.approx((410 / 150) ** 4)
    )
    # the tool's own rate sits at half the 600 kPa limit unless the pump tops out
    mu = viscosity_pa_s("UNDERFILL", 40)
    assert needle_pressure_kpa("G22", mu, auto_flow_ml_min("G22", mu)) == pytest.approx(300)
    assert auto_flow_ml_min("G18", viscosity_pa_s("POLYIMIDE", 40)) <= 5.0
