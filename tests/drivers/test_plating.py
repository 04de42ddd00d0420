"""Plating driver against its simulator over loopback: every operation, the physics behind the
results, refusals before anything is sent, physics alarms, and bath wear."""

from __future__ import annotations

import pytest

from drivers.base import Job, ToolDriver
from drivers.errors import ParameterError, ToolAlarm, UnitError, ValueRefused
from drivers.interface import JobState, ToolState
from drivers.line import Line
from simulators.line import SimLine
from simulators.plating import (
    NI_PER_AU,
    electroless_age_factor,
    electroless_rate_um_per_h,
    en_ni_resistivity,
    immersion_au_um,
    pd_coverage_pct,
    plating_minutes,
    rectifier_current_a,
    sheet_resistance_mohm_sq,
    void_index,
    zincate_coverage_pct,
)
from tests.helpers import connected, new_job_id

TOOL = "PLAT-1"
CU = {"chemistry": "CU_ACID", "thickness": "5 µm", "current_density": "20 mA/cm²"}
EN_NI = {"chemistry": "EN_NI", "thickness": "5 µm"}


async def levels(d: ToolDriver) -> dict[str, float]:
    return {c.name: c.level for c in (await d.status()).consumables}


async def test_identify_and_status(line: Line) -> None:
    async with connected(line, TOOL) as d:
        ident = await d.identify()
        assert (ident.vendor, ident.model, ident.serial) == (
            "FABLINE-SIM",
            "ELECTRA-300",
            "SN-PLAT-1",
        )
        st = await d.status()
        assert st.setup["baths"] == (
            "CU_ACID", "NI_SULFAMATE", "AU_ELECTROLYTIC", "EN_NI", "IMM_AU", "ZINCATE",
            "PD_ACTIVATOR",
        )  # fmt: skip
        assert {c.name for c in st.consumables} >= {"bath_cu_acid", "bath_en_ni", "bath_imm_au"}
        assert next(c for c in st.consumables if c.name == "bath_cu_acid").unit == "Ah"


async def test_electroplate_cu_follows_faraday(line: Line) -> None:
    async with connected(line, TOOL) as d:
        res = await d.run(Job(new_job_id("cu"), "electroplate", CU))
        r = res.results
        assert res.state is JobState.COMPLETE
        # the process reference's example: 5 µm Cu at 20 mA/cm² takes 11.6 min
        assert r["duration"] == pytest.approx(11.6, abs=0.01)
        assert r["duration"] == pytest.approx(plating_minutes("CU_ACID", 5, 20), rel=1e-6)
        # the tool's efficiency drifts < 2 % with bath age, ±0.3 % noise
        assert 0.97 * 5 < r["thickness"] < 1.01 * 5
        assert r["rate"] == pytest.approx(r["thickness"] / r["duration"], rel=1e-6)
        # I = J·A_wafer·open_area; charge = I·t
        assert r["current"] == pytest.approx(rectifier_current_a(20, 300, 100), rel=1e-6)
        assert r["current"] == pytest.approx(20e-3 * 706.858, rel=1e-4)
        assert r["charge"] == pytest.approx(r["current"] * r["duration"] / 60, rel=1e-6)
        assert r["sheet_resistance"] == pytest.approx(
            sheet_resistance_mohm_sq(1.9, r["thickness"]), rel=0.05
        )
        assert 96 < r["efficiency"] < 98.5
        assert r["via_voids"] == 0 and r["void_index"] == 0
        assert r["bath_temp"] == pytest.approx(25, abs=1.5)  # tank standard
        assert 0 < r["wiw"] < 10


@pytest.mark.parametrize(
    ("params", "goal_um", "j", "temp"),
    [
        ({"chemistry": "NI_SULFAMATE", "thickness": "3 µm", "current_density": "2 A/dm²",
          "bath_temp": "55 °C"}, 3.0, 20.0, 55.0),
        ({"chemistry": "AU_ELECTROLYTIC", "thickness": "500 nm", "current_density": "5 mA/cm2",
          "bath_temp": "60 degC"}, 0.5, 5.0, 60.0),
        ({"chemistry": "NI_SULFAMATE", "thickness": "2 µm", "current_density": "30 mA/cm²"},
         2.0, 30.0, 55.0),
    ],
)  # fmt: skip
async def test_electroplate_ni_and_au(
    line: Line, params: dict[str, str], goal_um: float, j: float, temp: float
) -> None:
    async with connected(line, TOOL) as d:
        r = (await d.run(Job(new_job_id("niau"), "electroplate", params))).results
        chem = params["chemistry"]
        assert r["duration"] == pytest.approx(plating_minutes(chem, goal_um, j), rel=1e-6)
        assert r["current"] == pytest.approx(rectifier_current_a(j, 300, 100), rel=1e-6)
        assert 0.97 * goal_um < r["thickness"] < 1.01 * goal_um
        assert r["efficiency"] == pytest.approx(95, abs=1.5)  # Ni 0.93–0.97, Au 0.9–1
        assert r["bath_temp"] == pytest.approx(temp, abs=1.5)


async def test_open_area_sets_the_current_not_the_time(line: Line) -> None:
    async with connected(line, TOOL) as d:
        blanket = (await d.run(Job(new_job_id("oa"), "electroplate", CU))).results
        pattern = (
            await d.run(
                Job(new_job_id("oa"), "electroplate", {**CU, "feature": "RDL", "open_area": "25 %"})
            )
        ).results
        assert pattern["duration"] == pytest.approx(blanket["duration"], rel=1e-7)
        assert pattern["current"] == pytest.approx(blanket["current"] / 4, rel=1e-7)
        assert pattern["charge"] == pytest.approx(blanket["charge"] / 4, rel=1e-7)
        small = (
            await d.run(Job(new_job_id("oa"), "electroplate", {**CU, "wafer_diameter": "200 mm"}))
        ).results
        assert small["current"] == pytest.approx(blanket["current"] * (200 / 300) ** 2, rel=1e-7)


async def test_tsv_rdl_fill_voids_above_the_heuristic(line: Line) -> None:
    """Through-electrode and re-wiring plated together (000 cl.17): AR 10 vias fill void-free
    at 5 mA/cm² but void at 15 mA/cm² (J > c·i_L/AR ≈ 9.6 mA/cm²)."""
    async with connected(line, TOOL) as d:
        tsv = {**CU, "feature": "TSV_RDL", "aspect_ratio": "10", "open_area": "30 %"}
        good = (
            await d.run(
                Job(new_job_id("tsv"), "electroplate", {**tsv, "current_density": "5 mA/cm²"})
            )
        ).results
        assert good["void_index"] == pytest.approx(void_index("CU_ACID", 5, 10), rel=1e-7)
        # 0.068 voided vias expected of 1000 inspected (Poisson): one now and then, never many
        assert good["void_index"] < 1 and good["via_voids"] <= 2
        bad = (
            await d.run(
                Job(new_job_id("tsv"), "electroplate", {**tsv, "current_density": "15 mA/cm²"})
            )
        ).results
        assert bad["void_index"] > 1 and bad["via_voids"] > 900  # of 1000 inspected


async def test_starved_vias_drive_the_rectifier_into_compliance(line: Line) -> None:
    async with connected(line, TOOL) as d:
        job = Job(
            new_job_id("comp"),
            "electroplate",
            {**CU, "feature": "TSV", "aspect_ratio": "20", "current_density": "25 mA/cm²",
             "open_area": "2 %"},
        )  # fmt: skip
        with pytest.raises(ToolAlarm) as e:
            await d.run(job)
        assert e.value.code == 203 and "compliance" in str(e.value)
        assert (await d.status()).state is ToolState.ALARM
        await d.clear_alarms()
        assert (await d.status()).state is ToolState.IDLE


@pytest.mark.parametrize(("temp", "ph"), [(85.0, 4.8), (80.0, 4.8), (88.0, 4.6)])
async def test_electroless_ni_follows_arrhenius(line: Line, temp: float, ph: float) -> None:
    async with connected(line, TOOL) as d:
        mto = (await levels(d))["bath_en_ni"]
        params = {**EN_NI, "bath_temp": f"{temp} °C", "ph": str(ph), "open_area": "20 %"}
        r = (await d.run(Job(new_job_id("en"), "electroless", params))).results
        nominal = electroless_rate_um_per_h(temp, "EN_NI", ph) * electroless_age_factor(
            "EN_NI", mto
        )
        assert r["duration"] == pytest.approx(5 / nominal * 60, rel=1e-6)
        assert r["rate"] == pytest.approx(nominal, rel=0.06)  # ±0.3 °C bath noise is ±1.7 %
        assert r["thickness"] == pytest.approx(5, rel=0.06)
        assert 5 < r["phosphorus"] < 10  # mid-phos
        assert r["ph"] == pytest.approx(ph, abs=0.1)
        assert r["bath_temp"] == pytest.approx(temp, abs=1.5)
        # Ni(P) is ≈ 40× as resistive as Cu: ρ ≈ 30 + 6·P µΩ·cm
        rho = en_ni_resistivity(r["phosphorus"])
        assert r["sheet_resistance"] == pytest.approx(
            sheet_resistance_mohm_sq(rho, r["thickness"]), rel=0.05
        )


async def test_electroless_rate_reference_points() -> None:
    assert electroless_rate_um_per_h(85) == pytest.approx(15)
    # 80–90 °C spans the published 10–25 µm/h
    assert 10 < electroless_rate_um_per_h(80) < electroless_rate_um_per_h(90) < 25


async def test_electroless_default_tank_setpoint_and_mto_wear(line: Line) -> None:
    async with connected(line, TOOL) as d:
        before = await levels(d)
        r = (await d.run(Job(new_job_id("en"), "electroless", EN_NI))).results
        after = await levels(d)
        assert r["bath_temp"] == pytest.approx(85, abs=1.5)
        assert r["ph"] == pytest.approx(4.8, abs=0.1)
        assert r["duration"] == pytest.approx(20, rel=0.02)  # 5 µm at 15 µm/h
        # 5 µm Ni(P) over a 300 mm wafer ≈ 2.6 g of Ni of the 360 g a turnover holds
        assert r["turnover"] == pytest.approx(0.0071, rel=0.05)
        assert after["bath_en_ni"] - before["bath_en_ni"] == pytest.approx(r["turnover"], rel=1e-4)
        assert after["bath_cu_acid"] == before["bath_cu_acid"]


async def test_immersion_au_is_self_limiting(line: Line) -> None:
    async with connected(line, TOOL) as d:
        short = (await d.run(Job(new_job_id("au"), "immersion", {"time": "5 min"}))).results
        long = (await d.run(Job(new_job_id("au"), "immersion", {"time": "0.25 h"}))).results
        assert short["thickness"] == pytest.approx(immersion_au_um(5), rel=0.08)
        assert long["thickness"] == pytest.approx(immersion_au_um(15), rel=0.08)
        assert immersion_au_um(15) == pytest.approx(0.1 * (1 - 2.718281828 ** (-15 / 4)), rel=1e-6)
        # ENIG Au ≥ 0.05 µm, saturating at 0.1 µm (plus the tool's noise, as above)
        assert 0.05 < long["thickness"] < 0.1 * 1.08
        assert long["ni_dissolved"] == pytest.approx(NI_PER_AU * long["thickness"], rel=1e-7)
        assert long["duration"] == pytest.approx(15)
        hot = (
            await d.run(Job(new_job_id("au"), "immersion", {"time": "5 min", "bath_temp": "90 °C"}))
        ).results
        assert hot["thickness"] == pytest.approx(immersion_au_um(5, 90), rel=0.08)
        assert hot["thickness"] > short["thickness"]


async def test_zincate_then_activate(line: Line) -> None:
    """The pad pre-treatments: double zincate covers Al better than single; Pd activation."""
    async with connected(line, TOOL) as d:
        double = (await d.run(Job(new_job_id("zn"), "zincate", {}))).results
        single = await d.run(Job(new_job_id("zn"), "zincate", {"passes": "1", "time": "30 s"}))
        assert double["coverage"] == pytest.approx(zincate_coverage_pct(2, 30, 25), abs=1)
        assert single.results["coverage"] == pytest.approx(zincate_coverage_pct(1, 30, 25), abs=1)
        assert double["coverage"] > single.results["coverage"]
        assert double["al_loss"] > single.results["al_loss"] > 0  # the strip and 2nd pass etch Al
        assert double["duration"] == pytest.approx((2 * 60 + 50) / 60)
        pd = (await d.run(Job(new_job_id("pd"), "activate", {"time": "2 min"}))).results
        assert pd["coverage"] == pytest.approx(pd_coverage_pct(120, 30), abs=1)


async def test_wafer_counted_baths_wear_per_wafer(line: Line) -> None:
    async with connected(line, TOOL) as d:
        before = await levels(d)
        await d.run(Job(new_job_id("w"), "immersion", {"time": "10 min"}))
        await d.run(Job(new_job_id("w"), "zincate", {}))
        after = await levels(d)
        assert after["bath_imm_au"] == before["bath_imm_au"] + 1
        assert after["bath_zincate"] == before["bath_zincate"] + 1
        assert after["bath_pd_activator"] == before["bath_pd_activator"]


async def test_bath_ampere_hours_accumulate(line: Line) -> None:
    async with connected(line, TOOL) as d:
        before = await levels(d)
        charges = []
        for _ in range(3):
            res = await d.run(
                Job(new_job_id("ah"), "electroplate", {**CU, "feature": "RDL", "open_area": "40 %"})
            )
            charges.append(res.results["charge"])
        after = await levels(d)
        assert after["bath_cu_acid"] - before["bath_cu_acid"] == pytest.approx(
            sum(charges), rel=1e-4
        )
        assert charges[0] == pytest.approx(rectifier_current_a(20, 300, 40) * 11.6 / 60, rel=1e-3)
        assert after["bath_ni_sulfamate"] == before["bath_ni_sulfamate"]


async def test_exhausted_bath_refuses_and_alarms(line: Line, sim_line: SimLine) -> None:
    async with connected(line, TOOL) as d:
        sim_line.fault(TOOL, "exhaust", consumable="bath_au_electrolytic")
        au = {"chemistry": "AU_ELECTROLYTIC", "thickness": "0.3 µm", "current_density": "4 mA/cm²"}
        with pytest.raises(ValueRefused, match="bath_au_electrolytic exhausted"):
            await d.start(Job(new_job_id("ex"), "electroplate", au))
        st = await d.status()
        assert st.state is ToolState.ALARM and st.alarms[0].name == "BATH_LIFE"
        await d.replace_consumable("bath_au_electrolytic")
        st = await d.status()
        assert st.state is ToolState.IDLE
        assert next(c for c in st.consumables if c.name == "bath_au_electrolytic").level == 0
        assert (await d.run(Job(new_job_id("ex"), "electroplate", au))).state is JobState.COMPLETE


async def test_aged_en_bath_warns_then_plates_out_when_hot(line: Line, sim_line: SimLine) -> None:
    async with connected(line, TOOL) as d:
        sim = sim_line.sim(TOOL)
        saved = sim.levels["bath_en_ni"]
        sim.levels["bath_en_ni"] = 4.2  # past 80 % of the 5 MTO life
        try:
            st = await d.status()
            assert [w.name for w in st.warnings] == ["MTO_WARNING"] and not st.alarms
            # a mid-window job still runs in the aged bath, and takes longer (rate sags 4 %/MTO)
            r = (await d.run(Job(new_job_id("old"), "electroless", EN_NI))).results
            assert r["duration"] == pytest.approx(
                20 / electroless_age_factor("EN_NI", 4.2), rel=1e-3
            )
            assert r["phosphorus"] > 8.5  # orthophosphite build-up raises P
            hot = {**EN_NI, "bath_temp": "90 °C", "ph": "5.0"}
            with pytest.raises(ToolAlarm) as e:
                await d.run(Job(new_job_id("hot"), "electroless", hot))
            assert e.value.code == 208  # PLATE_OUT
        finally:
            sim.levels["bath_en_ni"] = saved
            await d.clear_alarms()
        st = await d.status()
        assert st.state is ToolState.IDLE and not st.warnings


@pytest.mark.parametrize(
    ("op", "params", "error", "words"),
    [
        ("electroplate", {"current_density": "40 mA/cm²"}, ParameterError,
         ["current_density 40 mA/cm²", "CU_ACID window 1–30 mA/cm²"]),
        ("electroplate", {"current_density": "60 mA/cm²"}, ParameterError,
         ["'current_density'", "1–50 mA/cm²"]),
        ("electroplate", {"current_density": "20"}, UnitError,
         ["'current_density'", "missing unit"]),
        ("electroplate", {"current_density": "20 mA"}, UnitError,
         ["'current_density'", "current", "mA/cm²"]),
        ("electroplate", {"thickness": "5 mm"}, ParameterError, ["'thickness'", "0.05–100 µm"]),
        ("electroplate", {"chemistry": "NI_SULFAMATE", "current_density": "5 mA/cm²"},
         ParameterError, ["NI_SULFAMATE window 10–50 mA/cm²"]),
        ("electroplate", {"bath_temp": "40 °C"}, ParameterError, ["CU_ACID window 20–30 °C"]),
        ("electroplate", {"feature": "TSV"}, ParameterError, ["TSV needs the via aspect_ratio"]),
        ("electroplate", {"feature": "RDL", "aspect_ratio": "5"}, ParameterError,
         ["aspect_ratio is only used with TSV"]),
        ("electroplate", {"chemistry": "NI_SULFAMATE", "feature": "TSV_RDL",
                          "aspect_ratio": "8"}, ParameterError, ["needs chemistry CU_ACID"]),
        ("electroplate", {"chemistry": "EN_NI"}, ParameterError, ["'chemistry'", "one of"]),
        ("electroplate", {"voltage": "5"}, ParameterError, ["no parameter 'voltage'"]),
        ("electroless", {"chemistry": "EL_CU"}, ParameterError,
         ["'chemistry'", "EL_CU", "not set up", "EN_NI"]),
        ("electroless", {"ph": "6"}, ParameterError, ["ph 6 is outside the EN_NI window 4.5–5"]),
        ("electroless", {"bath_temp": "75 °C"}, ParameterError, ["EN_NI window 80–90 °C"]),
        ("immersion", {"time": "20 min"}, ParameterError, ["'time'", "5–15 min"]),
        ("zincate", {"passes": "3"}, ParameterError, ["'passes'", "1–2"]),
        ("zincate", {"passes": "1.5"}, ParameterError, ["whole number"]),
        ("anodize", {}, ParameterError, ["no operation 'anodize'", "electroplate, electroless"]),
    ],
)  # fmt: skip
async def test_bad_parameters_are_refused_before_sending(
    line: Line,
    sim_line: SimLine,
    op: str,
    params: dict[str, str],
    error: type[Exception],
    words: list[str],
) -> None:
    async with connected(line, TOOL) as d:
        sim = sim_line.sim(TOOL)
        jobs_before = len(sim.jobs)
        base = {"electroplate": CU, "electroless": EN_NI, "immersion": {"time": "10 min"}}
        with pytest.raises(error) as e:
            await d.start(Job(new_job_id("bad"), op, {**base.get(op, {}), **params}))
        for w in words:
            assert w in str(e.value)
        if op != "anodize":
            assert str(e.value).startswith(TOOL)
        assert len(sim.jobs) == jobs_before  # nothing reached the tool


async def test_tool_enforces_its_rules_too(line: Line, sim_line: SimLine) -> None:
    """A bath removed behind the driver's back is refused by the tool (SCPI -241)."""
    async with connected(line, TOOL) as d:
        sim = sim_line.sim(TOOL)
        saved = sim.setup["baths"]
        sim.setup["baths"] = tuple(b for b in saved if b != "IMM_AU")
        try:
            with pytest.raises(ValueRefused) as e:
                await d.start(Job(new_job_id("gone"), "immersion", {"time": "10 min"}))
            assert e.value.code == -241 and "IMM_AU" in str(e.value)
            # the driver refreshed its view of the setup and now refuses before sending
            with pytest.raises(ParameterError, match="not set up"):
                await d.start(Job(new_job_id("gone"), "immersion", {"time": "10 min"}))
        finally:
            sim.setup["baths"] = saved
