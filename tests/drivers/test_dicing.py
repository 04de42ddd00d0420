"""Dicing driver against its simulator: cuts, physics, cut depth vs stack, refusals, wear."""

from __future__ import annotations

import pytest

from drivers.base import Job
from drivers.errors import ParameterError
from drivers.line import Line
from simulators.dicing import street_layout
from tests.helpers import connected, new_job_id

WAFER = {
    "blade": "HUB_30",
    "material": "SI",
    "stack_thickness": "100 µm",
    "cut_depth": "130 µm",
    "feed": "50 mm/s",
    "die_x": "5 mm",
    "die_y": "5 mm",
    "work_width": "300 mm",
}


async def test_single_cut_of_a_wafer(line: Line) -> None:
    async with connected(line, "DICE-1") as d:
        res = await d.run(Job(new_job_id("dice"), "dice", WAFER))
        r = res.results
        dies, cut = street_layout("ROUND", 300, 0, 5, 5)
        assert r["die_count"] == dies
        assert 2550 < dies < 2650  # 300 mm wafer, 5 mm dies, 3 mm edge exclusion
        assert r["cut_length"] == pytest.approx(cut, rel=1e-5)
        assert 30 + 4 <= r["kerf_width"] <= 30 + 10 + 8  # blade + 2·runout (+ wear)
        assert r["chipping_back"] > 0 and r["chipping_front"] > 0
        assert r["duration"] == pytest.approx((cut / 50 + cut / 300 * 0.4) / 60, rel=1e-3)


async def test_faster_feed_chips_more(line: Line) -> None:
    async with connected(line, "DICE-1") as d:
        slow = await d.run(Job(new_job_id("dice"), "dice", {**WAFER, "feed": "10 mm/s"}))
        fast = await d.run(Job(new_job_id("dice"), "dice", {**WAFER, "feed": "100 mm/s"}))
        # h_m ∝ √v_f: 10× the feed gives ~3.2× the chipping (noise σ 15 %)
        ratio = fast.results["chipping_front"] / slow.results["chipping_front"]
        assert 2.0 < ratio < 5.0


async def test_step_cut_through_a_stack_panel(line: Line) -> None:
    async with connected(line, "DICE-1") as d:
        res = await d.run(
            Job(
                new_job_id("step"),
                "dice",
                {
                    **WAFER,
                    "mode": "STEP",
                    "blade": "RESIN_150",
                    "material": "SUBSTRATE",
                    "stack_thickness": "1.2 mm",
                    "cut_depth": "1230 µm",
                    "z1_depth": "400 µm",
                    "feed": "10 mm/s",
                    "work_shape": "RECT",
                    "work_width": "70 mm",
                    "work_length": "250 mm",
                    "die_x": "10 mm",
                    "die_y": "10 mm",
                },
            )
        )
        assert res.results["die_count"] == 7 * 25
        assert res.results["cut_length"] == pytest.approx(2 * (8 * 250 + 26 * 70))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"cut_depth": "100 µm"}, ["cut_depth 100 µm", "100 µm stack", "120–150 µm"]),
        ({"cut_depth": "200 µm"}, ["cut_depth 200 µm", "120–150 µm"]),
        ({"mode": "STEP"}, ["step cut needs", "z1_depth"]),
        ({"feed": "500 mm/s"}, ["'feed'", "1–150 mm/s"]),
        ({"blade": "HUB_20"}, ["'blade'", "not set up", "HUB_30"]),
        ({"work_shape": "RECT"}, ["RECT needs work_length"]),
    ],
)
async def test_bad_cuts_are_refused(line: Line, params: dict[str, str], words: list[str]) -> None:
    async with connected(line, "DICE-1") as d:
        with pytest.raises(ParameterError) as e:
            await d.start(Job(new_job_id("bad"), "dice", {**WAFER, **params}))
        for w in words:
            assert w in str(e.value)


async def test_blade_wear_accumulates(line: Line) -> None:
    async with connected(line, "DICE-1") as d:
        before = (await d.status()).consumables[0].level
        res = await d.run(Job(new_job_id("wear"), "dice", WAFER))
        after = (await d.status()).consumables[0].level
        assert after - before == pytest.approx(res.results["blade_wear"], rel=1e-4)
