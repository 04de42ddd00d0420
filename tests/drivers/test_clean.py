"""Clean station driver against its simulator: plasma, flux clean, bake; the physics behind
each result, the warnings each job reports, refusals and wear."""

from __future__ import annotations

import math

import pytest

from drivers.base import Job, ToolDriver
from drivers.errors import ParameterError
from drivers.interface import JobState
from drivers.line import Line
from simulators.clean import (
    contact_angle_deg,
    cu_oxide_nm,
    diffusivity_m2_s,
    flux_tau_min,
    plasma_residue_nm,
    remaining_fraction,
)
from tests.helpers import connected, new_job_id

TOOL = "CLEAN-1"


async def run(d: ToolDriver, op: str, params: dict[str, str]) -> tuple[dict[str, float], list[str]]:
    res = await d.run(Job(new_job_id("cl"), op, params))
    assert res.state is JobState.COMPLETE
    return dict(res.results), [w.name for w in res.warnings]


async def test_identify_and_setup(line: Line) -> None:
    async with connected(line, TOOL) as d:
        ident = await d.identify()
        assert (ident.vendor, ident.model) == ("FABLINE-SIM", "PURE-3")
        st = await d.status()
        assert st.setup == {"gases": ("AR", "O2", "AR_H2"), "chemistries": ("SAPONIFIER",)}
        assert {c.name for c in st.consumables} == {"electrode_hours", "wash_chemistry"}


def test_plasma_model_reference_points() -> None:
    # O₂ at 400 W ashes 20 nm/min: 5 nm is gone in 15 s, down to the 0.1 nm floor
    assert plasma_residue_nm("O2", 400, 200, 60, 5.0) == pytest.approx(0.1)
    assert plasma_residue_nm("AR", 400, 200, 60, 5.0) == pytest.approx(2.5)
    assert contact_angle_deg("CU", 0.0) == 10 and contact_angle_deg("CU", 50.0) == pytest.approx(75)
    # O₂ grows Cu oxide parabolically; Ar/H₂ reduces it with τ = 60 s
    assert cu_oxide_nm("O2", 400, 120, 3.0) == pytest.approx(math.sqrt(9 + 30))
    assert cu_oxide_nm("AR_H2", 400, 60, 3.0) == pytest.approx(3.0 / math.e)


async def test_plasma_cleans_and_reduces_cu_oxide(line: Line) -> None:
    async with connected(line, TOOL) as d:
        r, warnings = await run(
            d,
            "plasma",
            {"gas": "AR_H2", "surface": "CU", "time": "180 s", "contamination": "0.5 nm"},
        )
        assert r["residue"] < 0.3 and r["oxide"] < 0.3  # 3 nm native oxide reduced
        assert r["contact_angle"] < 20
        assert r["duration"] == pytest.approx((60 + 180 + 30) / 60)
        assert warnings == []


async def test_o2_plasma_on_cu_warns_of_oxide_and_argon_leaves_residue(line: Line) -> None:
    async with connected(line, TOOL) as d:
        r, warnings = await run(d, "plasma", {"gas": "O2", "surface": "CU", "time": "120 s"})
        assert r["oxide"] > 5 and warnings == ["CU_OXIDE_HIGH"]
        r, warnings = await run(
            d,
            "plasma",
            {"gas": "AR", "surface": "ORGANIC", "time": "30 s", "contamination": "10 nm"},
        )
        assert r["residue"] > 6 and warnings == ["RESIDUE_HIGH"]  # 8.75 nm, lognormal 10 %
        assert r["contact_angle"] > 70


async def test_o2_plasma_etches_polymer(line: Line) -> None:
    async with connected(line, TOOL) as d:
        r, warnings = await run(d, "plasma", {"gas": "O2", "surface": "POLYMER", "time": "900 s"})
        assert r["polymer_loss"] == pytest.approx(750, rel=0.12)  # 50 nm/min × 15 min
        assert warnings == ["POLYMER_LOSS_HIGH"]


async def test_flux_under_a_low_standoff_takes_longest(line: Line) -> None:
    async with connected(line, TOOL) as d:
        base = {"chemistry": "SAPONIFIER", "flux": "ROSIN", "time": "5 min"}
        open_, w_open = await run(d, "flux_clean", {**base, "standoff": "200 µm"})
        low, w_low = await run(d, "flux_clean", {**base, "standoff": "15 µm"})
        assert open_["residue_under"] == pytest.approx(
            100 * math.exp(-5 / flux_tau_min("ROSIN", "SAPONIFIER", 60, 300, 200)), rel=1e-6
        )
        assert low["residue_under"] > 20 > open_["residue_under"]
        assert w_open == [] and "FLUX_UNDER" in w_low
        assert open_["ionic"] < 1.56


async def test_bake_dries_by_fickian_desorption(line: Line) -> None:
    async with connected(line, TOOL) as d:
        strip = {"material": "ORGANIC", "thickness": "300 µm", "moisture_in": "0.3 %"}
        dry, w_dry = await run(d, "bake", {**strip, "time": "4 h"})
        wet, w_wet = await run(d, "bake", {**strip, "time": "0.25 h", "temp": "90 °C"})
        assert dry["moisture"] < 0.01 and w_dry == []
        assert wet["moisture"] > 0.05 and w_wet == ["MOISTURE_HIGH"]
        # the model's reference point: a 1.4 mm part at 125 °C dries to ~10 % in ~4 h
        d125 = diffusivity_m2_s("EMC", 125.0)
        assert 0.05 < remaining_fraction(d125, 4 * 3600, 1400) < 0.15


@pytest.mark.parametrize(
    ("op", "params", "words"),
    [
        ("plasma", {"gas": "O2", "surface": "SOLDER", "time": "60 s"}, ["O2", "SOLDER", "AR_H2"]),
        ("plasma", {"gas": "CF4_O2", "surface": "SI", "time": "60 s"}, ["CF4_O2", "not set up"]),
        ("bake", {"material": "ORGANIC", "thickness": "300 µm", "time": "2 h", "temp": "150 °C",
                  "temp_limit": "150 °C"}, ["temp 150", "temp_limit 150", "margin"]),
        ("flux_clean", {"chemistry": "SOLVENT", "flux": "ROSIN", "time": "5 min"},
         ["SOLVENT", "not set up"]),
    ],
)  # fmt: skip
async def test_refusals_name_the_parameter(
    line: Line, op: str, params: dict[str, str], words: list[str]
) -> None:
    async with connected(line, TOOL) as d:
        with pytest.raises(ParameterError) as e:
            await d.start(Job(new_job_id("cl"), op, params))
        for w in words:
            assert w in str(e.value), str(e.value)


async def test_plasma_wears_the_electrode(line: Line) -> None:
    async with connected(line, TOOL) as d:
        before = {c.name: c.level for c in (await d.status()).consumables}
        await run(d, "plasma", {"gas": "AR", "surface": "AL", "time": "360 s"})
        after = {c.name: c.level for c in (await d.status()).consumables}
        assert after["electrode_hours"] == pytest.approx(before["electrode_hours"] + 0.1, rel=1e-5)
