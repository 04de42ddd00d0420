"""Sputter driver against its simulator over loopback: operations, physics, refusals, wear."""

from __future__ import annotations

import pytest

from drivers.base import Job
from drivers.errors import ParameterError, UnitError
from drivers.interface import JobState
from drivers.line import Line
from simulators.line import SimLine
from simulators.sputter import nominal_rate, sheet_resistance
from tests.helpers import connected, new_job_id


async def test_identify_and_status(line: Line) -> None:
    async with connected(line, "SPUT-1") as d:
        ident = await d.identify()
        assert (ident.vendor, ident.model, ident.serial) == (
            "FABLINE-SIM",
            "MAGNA-300",
            "SN-SPUT-1",
        )
        st = await d.status()
        assert st.setup["targets"] == ("CU", "AL", "ALCU", "TI", "TIW")
        assert {c.name for c in st.consumables} >= {"target_cu", "target_ti"}


@pytest.mark.parametrize(
    ("target", "thickness_nm", "power_kw"),
    [("CU", 300, 5), ("AL", 2000, 10), ("ALCU", 1000, 8), ("TI", 100, 3), ("TIW", 150, 4)],
)
async def test_deposit_follows_rate_and_size_effect(
    line: Line, target: str, thickness_nm: float, power_kw: float
) -> None:
    async with connected(line, "SPUT-1") as d:
        res = await d.run(
            Job(
                new_job_id("dep"),
                "deposit",
                {"target": target, "thickness": f"{thickness_nm} nm", "power": f"{power_kw} kW"},
            )
        )
        r = res.results
        assert res.state is JobState.COMPLETE
        # the rate sags at most 8 % with erosion, ±1 % noise
        assert 0.9 * thickness_nm < r["thickness"] < 1.03 * thickness_nm
        assert r["rate"] == pytest.approx(nominal_rate(target, power_kw, 4.0), rel=0.1)
        assert r["sheet_resistance"] == pytest.approx(
            sheet_resistance(target, r["thickness"]), rel=0.05
        )
        # energy = P · t
        assert r["energy"] == pytest.approx(power_kw * r["duration"] / 60.0, rel=1e-3)
        assert 0 < r["wiw"] < 10


async def test_seed_stack_reports_barrier_and_seed(line: Line) -> None:
    async with connected(line, "SPUT-1") as d:
        res = await d.run(
            Job(
                new_job_id("seed"),
                "seed_stack",
                {
                    "barrier": "TI",
                    "barrier_thickness": "0.1 µm",
                    "seed_thickness": "300nm",
                    "power": "6 kW",
                },
            )
        )
        assert res.results["barrier_measured"] == pytest.approx(100, rel=0.1)
        assert res.results["thickness"] == pytest.approx(300, rel=0.1)


async def test_target_wear_accumulates(line: Line) -> None:
    async with connected(line, "SPUT-1") as d:
        before = {c.name: c.level for c in (await d.status()).consumables}
        res = await d.run(
            Job(
                new_job_id("wear"),
                "deposit",
                {"target": "AL", "thickness": "1 µm", "power": "10 kW"},
            )
        )
        after = {c.name: c.level for c in (await d.status()).consumables}
        assert after["target_al"] - before["target_al"] == pytest.approx(
            res.results["energy"], rel=1e-4
        )
        assert after["target_cu"] == before["target_cu"]


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"power": "25 kW"}, ParameterError, ["'power'", "25 kW", "1–20 kW"]),
        ({"power": "5"}, UnitError, ["'power'", "missing unit"]),
        ({"power": "5 mm"}, UnitError, ["'power'", "length", "power"]),
        ({"thickness": "20 µm"}, ParameterError, ["'thickness'", "10–10000 nm"]),
        ({"target": "AU"}, ParameterError, ["'target'", "AU", "not set up", "CU AL"]),
        ({"target": "GOLD"}, ParameterError, ["'target'", "GOLD", "one of"]),
        ({"bias": "5 V"}, ParameterError, ["no parameter 'bias'"]),
    ],
)
async def test_bad_parameters_are_refused_before_sending(
    line: Line, sim_line: SimLine, params: dict[str, str], error: type[Exception], words: list[str]
) -> None:
    async with connected(line, "SPUT-1") as d:
        sim = sim_line.sim("SPUT-1")
        jobs_before = len(sim.jobs)
        base = {"target": "CU", "thickness": "300 nm", "power": "5 kW"}
        with pytest.raises(error) as e:
            await d.start(Job(new_job_id("bad"), "deposit", {**base, **params}))
        for w in words:
            assert w in str(e.value)
        assert str(e.value).startswith("SPUT-1")
        assert len(sim.jobs) == jobs_before  # nothing reached the tool


async def test_unknown_operation_lists_the_operations(line: Line) -> None:
    async with connected(line, "SPUT-1") as d:
        with pytest.raises(ParameterError, match=r"no operation 'etch'.*deposit, seed_stack"):
            await d.start(Job(new_job_id("op"), "etch", {}))
