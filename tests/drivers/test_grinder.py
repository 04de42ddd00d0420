"""Grinder / CMP driver against its simulator: back-grinding of wafers and bonded stacks,
planarizing to exposed traces and flat bump ends, Preston CMP, refusals before sending,
physics alarms and warnings, wheel, pad and slurry consumables."""

from __future__ import annotations

import math
from contextlib import AbstractAsyncContextManager

import pytest

from drivers.base import ConsumableLevel, Job, ToolDriver
from drivers.errors import ParameterError, ToolAlarm, UnitError, ValueRefused
from drivers.interface import JobState, ToolState
from drivers.interfaces.grinder import GRINDER
from drivers.line import Line, ToolEntry
from drivers.protocols import modbus_map as mm
from simulators.grinder import (
    CHUCK_SEAL_KPA,
    CONDITION_S,
    cmp_rate_nm_min,
    damage_depth_um,
    dishing_nm,
    erosion_nm,
    exposed_diameter_um,
    exposed_fraction_pct,
    flattening_pressure_kpa,
    grind_seconds,
    preston_rate_nm_min,
    roughness_nm,
    sparkout_excess_um,
    spindle_current_a,
    ttv_um,
    wheel_wear_um,
)
from simulators.line import SimLine
from tests.helpers import TEST_TIME_SCALE, connected, new_job_id

TOOL = "GRIND-1"  # comes up with a #320 coarse wheel, a #2000 fine wheel and Cu slurry

BACK_GRIND = {"target_thickness": "100 µm"}  # a 775 µm, 300 mm Si wafer on tape
STACK = {  # 000: thin the blank wafer just bonded on top of a polymer-bonded stack
    "work": "BONDED_STACK",
    "target_thickness": "50 µm",
    "stack_below": "800 µm",
    "backing_ttv": "1.5 µm",
    "warpage": "100 µm",
}
TRACES = {  # 002 cl. 32/34: grind the dielectric down to 12 µm Cu traces
    "material": "EPOXY",
    "feature": "CU",
    "incoming_thickness": "25 µm",
    "feature_height": "12 µm",
}
BUMPS = {  # 003 cl. 4: polish the first encapsulant with the bumps to flat, coplanar ends
    "material": "EMC",
    "feature": "SOLDER_BUMP",
    "incoming_thickness": "300 µm",
    "feature_height": "250 µm",
    "bump_diameter": "300 µm",
    "overgrind": "30 µm",
    "fine_removal": "40 µm",
    "feature_range": "10 µm",
    "feature_density": "28 %",
    "base": "ORGANIC",
    "base_thickness": "300 µm",
    "work_size": "240 mm",
}
CMP_CU = {  # 002 cl. 38: clear the plating overburden
    "material": "CU",
    "endpoint": "CLEAR",
    "overburden": "3000 nm",
    "feature_width": "10 µm",
}
BASE = {"back_grind": BACK_GRIND, "planarize": TRACES, "cmp": CMP_CU}


def levels(consumables: tuple[ConsumableLevel, ...]) -> dict[str, float]:
    return {c.name: c.level for c in consumables}


def used(consumables: tuple[ConsumableLevel, ...]) -> dict[str, float]:
    return {c.name: c.used_fraction for c in consumables}


def log_ratio(a: float, b: float) -> float:
    return abs(math.log(a / b))


def grinder(line: Line) -> AbstractAsyncContextManager[ToolDriver]:
    return connected(line, TOOL)


async def test_identify_and_status(line: Line) -> None:
    async with grinder(line) as d:
        ident = await d.identify()
        assert (ident.vendor, ident.model, ident.serial) == (
            "FABLINE-SIM",
            "PLANAR-5",
            "SN-GRIND-1",
        )
        st = await d.status()
        assert st.setup == {"coarse_wheel": ("G320",), "fine_wheel": ("G2000",), "slurry": ("CU",)}
        cons = {c.name: c for c in st.consumables}
        assert list(cons) == ["coarse_wheel_wear", "fine_wheel_wear", "cmp_pad", "slurry"]
        assert cons["slurry"].supply and cons["slurry"].limit == 200
        assert not cons["coarse_wheel_wear"].supply and cons["coarse_wheel_wear"].limit == 3000


async def test_back_grind_thins_a_wafer_to_target(line: Line) -> None:
    async with grinder(line) as d:
        st = await d.status()
        before, wear = levels(st.consumables), used(st.consumables)
        r = (await d.run(Job(new_job_id("bg"), "back_grind", BACK_GRIND))).results
        after = levels((await d.status()).consumables)
        # the gauge stops at the target; a nearly new fine wheel springs back almost nothing
        excess = sparkout_excess_um(0.3, wear["fine_wheel_wear"])
        assert excess < 0.01
        assert r["thickness"] == pytest.approx(100 - excess, abs=1.5)  # gauge σ 0.3 µm
        assert r["stack_thickness"] == pytest.approx(r["thickness"], abs=1e-4)
        assert r["removed"] == pytest.approx(775 - r["thickness"], abs=1e-3)
        # TTV = TTV_in(1 − r) + D·θ_tilt + backing: 2·0.15 + 300 mm·2 µrad + 1 µm tape (θ ±5σ)
        lo, hi = (
            ttv_um(2, 0.85, 300, wear["fine_wheel_wear"], 1.0, math.exp(k)) for k in (-0.75, 0.75)
        )
        assert lo <= r["ttv"] <= hi
        assert 1.2 < r["ttv"] < 3.0
        # Ra ∝ grit size × (v_f/v_s)^½ of the fine wheel; damage ≈ 100 × Ra
        assert r["finish_grit"] == 2000
        assert log_ratio(r["ra"], roughness_nm(2000, 0.3, 4800)) < 0.35
        assert 5 < r["ra"] < 12
        assert r["damage_depth"] == pytest.approx(0.1 * r["ra"], rel=1e-5)
        # the coarse wheel takes all but the last 30 µm; wear ∝ depth
        assert r["coarse_wheel_wear"] == pytest.approx(
            wheel_wear_um("coarse", 645, 300, {"SI": 1.0}), rel=1e-5
        )
        assert r["fine_wheel_wear"] == pytest.approx(wheel_wear_um("fine", 30, 300, {"SI": 1.0}))
        for name in ("coarse_wheel_wear", "fine_wheel_wear"):
            assert after[name] - before[name] == pytest.approx(r[name], rel=1e-4)
        assert after["cmp_pad"] == before["cmp_pad"] and after["slurry"] == before["slurry"]
        # spindle power = specific energy × v_f·A on the coarse pass
        current = spindle_current_a(6, 300, {"SI": 1.0}, 320, wear["coarse_wheel_wear"])
        assert r["spindle_current"] == pytest.approx(current, rel=0.1)
        assert r["duration"] == pytest.approx(grind_seconds([(645, 6), (30, 0.3)], 200) / 60, 1e-5)
        assert not (await d.status()).warnings


async def test_bonded_stack_is_thinned_and_its_bond_line_shows_in_the_ttv(line: Line) -> None:
    """000: a 775 µm blank wafer on 800 µm of stack, thinned to 50 µm."""
    async with grinder(line) as d:
        wear = used((await d.status()).consumables)
        # a 1.575 mm stack bowed 100 µm needs well under the chuck's 5 kPa to be pulled flat
        assert flattening_pressure_kpa(1575, 100, 300, 130) < 0.2 * CHUCK_SEAL_KPA
        r = (await d.run(Job(new_job_id("stack"), "back_grind", STACK))).results
        assert r["thickness"] == pytest.approx(50, abs=1.5)
        assert r["stack_thickness"] == pytest.approx(r["thickness"] + 800, abs=1e-3)
        lo, hi = (
            ttv_um(2, 0.9, 300, wear["fine_wheel_wear"], 1.5, math.exp(k)) for k in (-0.75, 0.75)
        )
        assert lo <= r["ttv"] <= hi
        assert r["coarse_wheel_wear"] == pytest.approx(
            wheel_wear_um("coarse", 695, 300, {"SI": 1.0})
        )


async def test_coarse_only_thinning_survives_on_a_stack_but_not_on_tape(line: Line) -> None:
    """#320 at 6 µm/s leaves ≈ 22 µm of damage: 30 µm of Si on a stack holds (≥ 1×), a
    wafer on tape alone needs twice that and cracks."""
    async with grinder(line) as d:
        ssd = damage_depth_um(320, 6, 4800)
        assert 20 < ssd < 25
        coarse = {**STACK, "target_thickness": "30 µm", "wheel": "COARSE", "warpage": "0 µm"}
        r = (await d.run(Job(new_job_id("coarse"), "back_grind", coarse))).results
        assert r["finish_grit"] == 320 and r["fine_wheel_wear"] == 0
        assert log_ratio(r["ra"], roughness_nm(320, 6, 4800)) < 0.35
        assert r["damage_depth"] == pytest.approx(ssd, rel=0.4)
        job = Job(
            new_job_id("crack"), "back_grind", {"target_thickness": "30 µm", "wheel": "COARSE"}
        )
        with pytest.raises(ToolAlarm) as e:
            await d.run(job)
        assert e.value.code == 806
        # the crack is found as the coarse pass ends, near the end of this job
        assert (await d.job_progress(job.job_id)).progress >= 85
        await d.clear_alarms()


async def test_too_little_fine_stock_leaves_damage_as_a_warning(line: Line) -> None:
    async with grinder(line) as d:
        params = {**BACK_GRIND, "fine_removal": "15 µm"}  # < 22 µm of #320 damage
        res = await d.run(Job(new_job_id("ssd"), "back_grind", params))
        assert res.state is JobState.COMPLETE
        st = await d.status()
        assert st.state is ToolState.COMPLETE
        assert [w.name for w in st.warnings] == ["SUBSURFACE_DAMAGE"]
        # the next clean job clears the process warning
        await d.run(Job(new_job_id("ok"), "back_grind", BACK_GRIND))
        assert not (await d.status()).warnings


async def test_planarize_grinds_the_dielectric_down_to_the_traces(line: Line) -> None:
    async with grinder(line) as d:
        wear = used((await d.status()).consumables)
        r = (await d.run(Job(new_job_id("trace"), "planarize", TRACES))).results
        # 15 µm to remove, less than the 20 µm fine stock: the fine wheel does it all
        excess = sparkout_excess_um(0.3, wear["fine_wheel_wear"])
        assert r["thickness"] == pytest.approx(10 - excess, abs=1.5)
        assert r["removed"] == pytest.approx(25 - r["thickness"], abs=1e-4)
        assert r["feature_removed"] == pytest.approx(12 - r["thickness"], abs=1e-4)
        ttv = ttv_um(10, 0.9, 300, wear["fine_wheel_wear"])
        assert r["exposed_fraction"] == pytest.approx(exposed_fraction_pct(2 + excess, 2, ttv))
        assert r["exposed_fraction"] > 99.99
        assert r["exposed_diameter"] == 0 and r["exposed_diameter_min"] == 0
        assert r["coarse_wheel_wear"] == 0
        # 2 of the 15 µm cut through 10 % Cu
        mix = {"EPOXY": 1 - 0.1 * 2 / 15, "CU": 0.1 * 2 / 15}
        assert r["fine_wheel_wear"] == pytest.approx(wheel_wear_um("fine", 15, 300, mix), rel=1e-5)
        assert r["duration"] == pytest.approx(grind_seconds([(15, 0.3)], 200) / 60, rel=1e-5)
        assert not (await d.status()).warnings


async def test_planarize_cuts_flat_coplanar_ends_on_the_bumps(line: Line) -> None:
    """003 cl. 4: 300 µm balls, 250 µm high in EMC, cut 30 µm below their tops."""
    async with grinder(line) as d:
        wear = used((await d.status()).consumables)
        # d = 2√(r² − s²) with s = r − cut: 150² − 120² = 90²
        assert exposed_diameter_um(300, 30) == pytest.approx(180)
        assert exposed_diameter_um(300, 150) == pytest.approx(300)  # at the equator
        r = (await d.run(Job(new_job_id("bumps"), "planarize", BUMPS))).results
        cut = 30 + sparkout_excess_um(0.3, wear["fine_wheel_wear"])
        assert r["exposed_diameter"] == pytest.approx(exposed_diameter_um(300, cut), rel=0.025)
        ttv = ttv_um(10, 0.9, 240, wear["fine_wheel_wear"])
        # the lowest bump (range 10 µm) in the lowest part of the plane is cut least
        low = exposed_diameter_um(300, cut - 5 - ttv / 2)
        assert r["exposed_diameter_min"] == pytest.approx(low, rel=1e-4)
        assert 150 < r["exposed_diameter_min"] < r["exposed_diameter"] < 185
        assert r["exposed_fraction"] > 99.99
        assert r["thickness"] == pytest.approx(220, abs=1.5)
        # coarse wheel: 40 µm of EMC (×3 wheel wear) on a 240 mm strip
        assert r["coarse_wheel_wear"] == pytest.approx(
            wheel_wear_um("coarse", 40, 240, {"EMC": 1.0}), rel=1e-5
        )
        assert 1.0 < r["ttv"] < 2.5
        # EMC filler pull-out roughens the surface 1.5× over Si
        assert log_ratio(r["ra"], roughness_nm(2000, 0.3, 4800, "EMC")) < 0.35
        assert not (await d.status()).warnings  # 40 µm fine stock > 30 + 10/2: no smear


async def test_grinding_only_to_the_trace_tops_leaves_half_covered(line: Line) -> None:
    async with grinder(line) as d:
        params = {**TRACES, "overgrind": "0 µm"}
        r = (await d.run(Job(new_job_id("half"), "planarize", params))).results
        assert r["exposed_fraction"] == pytest.approx(50, abs=1)
        assert [w.name for w in (await d.status()).warnings] == ["EXPOSURE_INCOMPLETE"]


async def test_coarse_wheel_reaching_the_traces_warns_of_smearing(line: Line) -> None:
    async with grinder(line) as d:
        params = {**TRACES, "incoming_thickness": "60 µm", "fine_removal": "1 µm"}
        r = (await d.run(Job(new_job_id("smear"), "planarize", params))).results
        assert r["coarse_wheel_wear"] > 0 and r["exposed_fraction"] > 99.99
        # the coarse pass ends in 10 % Cu: 40 J/mm³ against 2 for the epoxy
        wear = used((await d.status()).consumables)
        current = spindle_current_a(
            6, 300, {"EPOXY": 0.9, "CU": 0.1}, 320, wear["coarse_wheel_wear"]
        )
        assert r["spindle_current"] == pytest.approx(current, rel=0.1)
        assert [w.name for w in (await d.status()).warnings] == ["METAL_SMEAR"]


async def test_cmp_clears_the_cu_overburden_at_the_preston_rate(line: Line) -> None:
    """002 cl. 38: 3 µm of plated Cu over the dielectric, 10 µm traces inlaid."""
    async with grinder(line) as d:
        st = await d.status()
        before, wear = levels(st.consumables), used(st.consumables)
        assert preston_rate_nm_min("CU", 20, 1.0) == pytest.approx(480)  # K_p·P·v
        r = (await d.run(Job(new_job_id("cmp"), "cmp", CMP_CU))).results
        after = levels((await d.status()).consumables)
        assert r["rate"] == pytest.approx(
            cmp_rate_nm_min("CU", 20, 1, 200, wear["cmp_pad"]), rel=0.1
        )
        clear = 3000 / r["rate"] * 60
        assert r["polish_time"] == pytest.approx(1.2 * clear, rel=1e-4)  # + 20 % over-polish
        after_clear = r["polish_time"] - clear
        assert r["residue"] == 0
        assert r["dishing"] == pytest.approx(dishing_nm("CU", r["rate"], after_clear, 10), rel=1e-3)
        assert 30 < r["dishing"] < 100
        assert r["erosion"] == pytest.approx(erosion_nm("CU", r["rate"], after_clear), rel=1e-3)
        assert r["removed"] == pytest.approx(3000 + r["erosion"], rel=1e-5)
        assert 0.5 < r["ra"] < 2
        assert r["slurry_used"] == pytest.approx(200 * r["polish_time"] / 60 / 1000, rel=1e-5)
        assert before["slurry"] - after["slurry"] == pytest.approx(r["slurry_used"], rel=1e-3)
        pad_h = (r["polish_time"] + CONDITION_S) / 3600
        assert after["cmp_pad"] - before["cmp_pad"] == pytest.approx(pad_h, rel=1e-3)
        assert after["coarse_wheel_wear"] == before["coarse_wheel_wear"]
        # wider lines dish more (pad bridging), a wide pad area most
        assert dishing_nm("CU", 480, 60, 100) > 2 * dishing_nm("CU", 480, 60, 10)


async def test_polymer_polish_on_a_polisher_set_up_for_it() -> None:
    """003 cl. 4 by CMP: a second tool with polymer slurry loaded (and no coarse wheel).
    Solder polishes slower than the encapsulant, so the bump ends stand proud; a timed polish
    can stop short."""
    setup = {"slurry": ["POLYMER"], "coarse_wheel": []}  # a polisher with no coarse wheel
    spec = Line(line="cmp", tools=[ToolEntry(id="GRIND-P", kind="grinder", setup=setup)])
    async with (
        SimLine(spec, time_scale=TEST_TIME_SCALE, seed=3) as sl,
        connected(sl.describe(), "GRIND-P") as d,
    ):
        assert (await d.status()).setup["slurry"] == ("POLYMER",)
        job = {"material": "POLYMER", "time": "120 s", "feature_width": "200 µm"}
        r = (await d.run(Job(new_job_id("poly"), "cmp", job))).results
        assert r["rate"] == pytest.approx(preston_rate_nm_min("POLYMER", 20, 1), rel=0.1)
        assert r["removed"] == pytest.approx(r["rate"] * 2, rel=1e-5)
        assert r["dishing"] == pytest.approx(dishing_nm("POLYMER", r["rate"], 120, 200), 1e-4)
        assert r["dishing"] < -50  # negative: the bumps protrude
        covered = {**job, "overburden": "2000 nm", "feature_width": "0 µm"}
        r = (await d.run(Job(new_job_id("short"), "cmp", covered))).results
        assert r["residue"] == pytest.approx(2000 - 2 * r["rate"], rel=1e-4)
        assert [w.name for w in (await d.status()).warnings] == ["CMP_RESIDUE"]
        with pytest.raises(ParameterError, match="material CU not set up"):
            await d.start(Job(new_job_id("cu"), "cmp", CMP_CU))
        # grinding needs the wheels it names: the tool refuses a job for the missing one
        with pytest.raises(ValueRefused) as e:
            await d.start(Job(new_job_id("nowheel"), "back_grind", BACK_GRIND))
        assert e.value.code == mm.Refusal.RULE and "no coarse wheel mounted" in str(e.value)
        fine = {**TRACES, "wheel": "FINE"}
        assert (await d.run(Job(new_job_id("fine"), "planarize", fine))).state is JobState.COMPLETE


@pytest.mark.parametrize(
    ("operation", "params", "error", "words"),
    [
        ("back_grind", {"target_thickness": "10 µm"}, ParameterError,
         ["'target_thickness'", "20–800 µm"]),
        ("back_grind", {"target_thickness": "100"}, UnitError,
         ["'target_thickness'", "missing unit"]),
        ("back_grind", {"coarse_infeed": "6 rpm"}, UnitError,
         ["'coarse_infeed'", "rotation", "speed"]),
        ("back_grind", {"spindle": "6 krpm"}, ParameterError, ["'spindle'", "3500–5500 rpm"]),
        ("back_grind", {"wheel": "MEDIUM"}, ParameterError,
         ["'wheel'", "one of COARSE, FINE, BOTH"]),
        ("back_grind", {"grit": "2000"}, ParameterError, ["no parameter 'grit'"]),
        ("back_grind", {"target_thickness": "0.78 mm"}, ParameterError,
         ["target_thickness 780 µm ≥ incoming_thickness 775 µm"]),
        ("back_grind", {"coarse_infeed": "12 µm/s"}, ParameterError,
         ["coarse_infeed 12 µm/s outside the coarse wheel window 5–10 µm/s"]),
        ("back_grind", {"fine_infeed": "1 µm/s"}, ParameterError,
         ["fine_infeed 1 µm/s outside the fine wheel window 0.1–0.5 µm/s"]),
        ("back_grind", {"wheel": "COARSE", "coarse_infeed": "0.3 µm/s"}, ParameterError,
         ["coarse_infeed 0.3 µm/s outside"]),
        ("back_grind", {"work": "BONDED_STACK"}, ParameterError,
         ["work BONDED_STACK needs stack_below ≥ 20 µm"]),
        ("back_grind", {"stack_below": "500 µm"}, ParameterError,
         ["work SI leaves stack_below at 0"]),
        ("planarize", {"feature_height": "30 µm"}, ParameterError,
         ["grind plane 28 µm (feature_height − overgrind) not below incoming_thickness 25 µm"]),
        ("planarize", {"overgrind": "12 µm"}, ParameterError,
         ["overgrind 12 µm ≥ feature_height 12"]),
        ("planarize", {"feature": "SOLDER_BUMP"}, ParameterError,
         ["feature SOLDER_BUMP needs bump_diameter > 0"]),
        ("planarize", {**BUMPS, "overgrind": "160 µm", "feature_height": "299 µm",
                       "incoming_thickness": "320 µm"}, ParameterError,
         ["overgrind 160 µm > bump radius 150 µm"]),
        ("planarize", {**BUMPS, "feature_height": "310 µm", "incoming_thickness": "320 µm"},
         ParameterError, ["feature_height 310 µm > bump_diameter 300 µm"]),
        ("planarize", {"bump_diameter": "300 µm"}, ParameterError,
         ["only used with feature SOLDER_BUMP"]),
        ("planarize", {"material": "SILICONE"}, ParameterError, ["'material'", "one of EMC"]),
        ("planarize", {"material": None}, ParameterError, ["missing parameter 'material'"]),
        ("cmp", {"material": "OXIDE"}, ParameterError,
         ["'material'", "not set up", "installed: CU"]),
        ("cmp", {"pressure": "0.04 MPa"}, ParameterError, ["'pressure'", "14–35 kPa"]),
        ("cmp", {"velocity": "1 mm/s"}, ParameterError, ["'velocity'", "0.5–1.5 m/s"]),
        ("cmp", {"overburden": "0 nm"}, ParameterError, ["endpoint CLEAR needs overburden > 0"]),
    ],
)  # fmt: skip
async def test_bad_jobs_are_refused_before_sending(
    line: Line,
    sim_line: SimLine,
    operation: str,
    params: dict[str, str | None],
    error: type[Exception],
    words: list[str],
) -> None:
    async with grinder(line) as d:
        sim = sim_line.sim(TOOL)
        jobs_before = len(sim.jobs)
        merged = {k: v for k, v in {**BASE[operation], **params}.items() if v is not None}
        with pytest.raises(error) as e:
            await d.start(Job(new_job_id("bad"), operation, merged))
        for w in words:
            assert w in str(e.value)
        assert str(e.value).startswith(TOOL)
        assert len(sim.jobs) == jobs_before  # nothing reached the tool


async def test_only_the_wheels_a_job_runs_are_held_to_their_in_feed_window(line: Line) -> None:
    async with grinder(line) as d:
        _, values = d.validate(
            Job("v", "back_grind", {**BACK_GRIND, "wheel": "FINE", "coarse_infeed": "12 µm/s"})
        )
        assert values["coarse_infeed"] == 12.0 and values["fine_removal"] == 30.0


@pytest.mark.parametrize(
    ("operation", "params", "code", "at"),
    [
        # a 2.4 mm, 200 mm stack bowed 300 µm needs > 5 kPa to flatten: lost while chucking
        ("back_grind", {**STACK, "stack_below": "1600 µm", "warpage": "300 µm",
                        "work_size": "200 mm", "target_thickness": "30 µm"}, 805, 0.0),
        # 30 µm left on tape under a #320 pass at 10 µm/s, 3500 rpm (≈ 34 µm of damage)
        ("back_grind", {"target_thickness": "30 µm", "coarse_infeed": "10 µm/s",
                        "spindle": "3500 rpm"}, 806, 0.44),
        # the coarse wheel ends in 50 % Cu at 8 µm/s: Cu loads the wheel (40 J/mm³)
        ("planarize", {**TRACES, "incoming_thickness": "60 µm", "fine_removal": "2 µm",
                       "feature_density": "50 %", "coarse_infeed": "8 µm/s"}, 801, 0.37),
        # 20 µm of Cu at the slowest corner of the window: 168 nm/min, 2 h > the 60 min limit
        ("cmp", {"overburden": "20000 nm", "pressure": "14 kPa", "velocity": "0.5 m/s"}, 810,
         0.99),
    ],
)  # fmt: skip
async def test_physics_alarms_stop_the_job(
    line: Line, operation: str, params: dict[str, str], code: int, at: float
) -> None:
    async with grinder(line) as d:
        before = levels((await d.status()).consumables)
        job = Job(new_job_id("alarm"), operation, {**BASE[operation], **params})
        with pytest.raises(ToolAlarm) as e:
            await d.run(job)
        assert e.value.code == code
        assert e.value.text == GRINDER.alarm(code).text
        res = await d.result(job.job_id)
        assert res.state is JobState.ALARM
        # the alarm fires when its event comes in the job (polled a little later at 1e5×)
        assert (await d.job_progress(job.job_id)).progress >= 100 * at - 0.5
        st = await d.status()
        assert st.state is ToolState.ALARM and [a.code for a in st.alarms] == [code]
        if at == 0.0:  # stopped before grinding: nothing wore
            assert levels(st.consumables) == before
        await d.clear_alarms()
        assert (await d.status()).state is ToolState.IDLE


async def test_worn_wheel_overshoots_then_runs_out(line: Line, sim_line: SimLine) -> None:
    async with grinder(line) as d:
        sim = sim_line.sim(TOOL)
        # wear the coarse wheel to 80 % (thousands of wafers of grinding, set directly)
        sim.levels["coarse_wheel_wear"] = 2400.0
        # a dull wheel at 10 µm/s springs back 10 · 0.15 s · 2 · 0.8 = 2.4 µm past the stop
        assert sparkout_excess_um(10, 0.8) == pytest.approx(2.4)
        coarse = {
            **STACK,
            "target_thickness": "100 µm",
            "wheel": "COARSE",
            "coarse_infeed": "10 µm/s",
        }
        with pytest.raises(ToolAlarm) as e:
            await d.run(Job(new_job_id("over"), "back_grind", coarse))
        assert e.value.code == 807
        await d.clear_alarms()
        loose = {**coarse, "tolerance": "3 µm"}
        r = (await d.run(Job(new_job_id("loose"), "back_grind", loose))).results
        assert r["thickness"] == pytest.approx(100 - 2.4, abs=1.5)
        # near the end of the rim: warned, then a job that needs more rim than is left alarms
        # before it starts, and the wheel keeps what it had
        sim.levels["coarse_wheel_wear"] = 2999.0
        st = await d.status()
        assert [w.name for w in st.warnings] == ["COARSE_WHEEL_WEAR"]
        with pytest.raises(ToolAlarm) as e:
            await d.run(Job(new_job_id("rim"), "back_grind", BACK_GRIND))
        assert e.value.code == 802
        st = await d.status()
        assert levels(st.consumables)["coarse_wheel_wear"] == 2999.0
        # a fine-only job does not need the coarse wheel
        await d.clear_alarms()
        fine = {**TRACES, "wheel": "FINE"}
        assert (await d.run(Job(new_job_id("fine"), "planarize", fine))).state is JobState.COMPLETE
        # a new wheel clears the warning
        await d.replace_consumable("coarse_wheel_wear")
        st = await d.status()
        assert st.state is not ToolState.ALARM and not st.alarms and not st.warnings
        assert levels(st.consumables)["coarse_wheel_wear"] == 0


async def test_empty_slurry_refuses_cmp_and_alarms(line: Line, sim_line: SimLine) -> None:
    async with grinder(line) as d:
        sim_line.fault(TOOL, "exhaust", consumable="slurry")
        with pytest.raises(ValueRefused) as e:
            await d.start(Job(new_job_id("dry"), "cmp", CMP_CU))
        assert e.value.code == mm.Refusal.CONSUMABLE_EXHAUSTED
        assert "slurry exhausted" in str(e.value)
        assert [a.code for a in (await d.status()).alarms] == [809]
        await d.replace_consumable("slurry")
        st = await d.status()
        assert st.state is not ToolState.ALARM and not st.alarms and not st.warnings
        assert levels(st.consumables)["slurry"] == 200


async def test_injected_gauge_fault_stops_the_grind(line: Line, sim_line: SimLine) -> None:
    async with grinder(line) as d:
        before = levels((await d.status()).consumables)
        sim_line.fault(TOOL, "alarm", code=804, at=0.5)
        job = Job(new_job_id("gauge"), "back_grind", BACK_GRIND)
        with pytest.raises(ToolAlarm) as e:
            await d.run(job)
        assert (e.value.code, e.value.text) == (804, "in-process thickness gauge fault")
        after = levels((await d.status()).consumables)
        # half the job (or a little more, as the alarm is polled) ran and wore its share
        full = wheel_wear_um("coarse", 645, 300, {"SI": 1.0})
        assert 0.49 * full < after["coarse_wheel_wear"] - before["coarse_wheel_wear"] <= full
        await d.clear_alarms()


async def test_result_by_id_after_later_jobs(line: Line) -> None:
    async with grinder(line) as d:
        first = await d.run(Job(new_job_id("first"), "cmp", CMP_CU))
        await d.run(Job(new_job_id("second"), "back_grind", BACK_GRIND))
        again = await d.result(first.job_id)
        assert again.operation == "cmp" and again.results == first.results
