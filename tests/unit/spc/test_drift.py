"""A wearing dicing blade on a real simulated saw: SPC inhibits the saw long before a piece
leaves the recipe's kerf-offset spec.

The saw is a simulator on a real Modbus socket, driven through its driver job by job. Its
blade wears with every metre cut, and a worn blade wanders: the kerf offset from the street
centre drifts up with wear (`simulators/dicing.py`), to the saw's own KERF_OFF_STREET alarm at
5 µm — the same 5 µm the recipe `stacked-wlp-000-11` sets as its `dice` step's spec on
`kerf_offset`. The chart takes its phase I limits from the first 10 pieces of a new blade and
checks every later piece with the Nelson rules, as the engine will.

The cut is a thin (100 µm) Si wafer on a HUB_30 blade (the cut of tests/drivers/test_dicing.py),
because it lets the blade wear to its limit: with the recipe's own 860 µm cut through an
830 µm stack the blade's exposure ends its life at ~440 µm of wear, when the offset has
drifted only ~2 µm, so no piece ever leaves spec and "before" would prove nothing.
"""

from __future__ import annotations

from controller.recipes import find
from controller.spc import (
    ChartDefinition,
    ChartKey,
    OcapAction,
    OcapDecision,
    SpecLimits,
    evaluate_point,
    ocap,
    phase_one,
)
from drivers.base import Job
from drivers.errors import ToolAlarm
from drivers.line import Line, ToolEntry
from drivers.registry import make_driver
from simulators.line import SimLine
from tests.helpers import TEST_TIME_SCALE

RECIPE, STEP, RESULT, TOOL = "stacked-wlp-000-11", "dice", "kerf_offset", "DICE-1"
THIN_WAFER = {
    "mode": "SINGLE",
    "blade": "HUB_30",
    "material": "SI",
    "stack_thickness": "100 µm",
    "cut_depth": "130 µm",
    "z1_depth": "0 µm",
    "feed": "50 mm/s",
    "work_width": "300 mm",
}
KERF_OFF_STREET = 404
BASELINE = 10
BLADE_LIFE = 80  # more jobs than the blade can cut


async def test_a_wearing_blade_is_inhibited_before_the_kerf_leaves_spec() -> None:
    step = find(RECIPE).expand({}).step(STEP)
    assert step is not None
    lsl, usl = step.spec[RESULT]
    spec = SpecLimits(lsl, usl)
    assert spec.usl == 5.0
    chart = ChartDefinition(
        ChartKey(RECIPE, STEP, RESULT, TOOL),
        baseline_points=BASELINE,
        action=OcapAction.INHIBIT,
        unit="µm",
    )
    line = Line(line="drift", tools=[ToolEntry(id=TOOL, kind="dicing")])
    values: list[float] = []
    decision: OcapDecision | None = None
    out_of_spec: int | None = None  # the first piece whose kerf left the spec
    async with SimLine(line, time_scale=TEST_TIME_SCALE, seed=7) as sim:
        saw = make_driver(sim.describe().tool(TOOL))
        await saw.connect()
        limits = None
        try:
            # the engine would stop at the inhibit; the test cuts on to see when spec is lost
            for i in range(BLADE_LIFE):
                try:
                    res = await saw.run(Job(f"drift-{i}", "dice", {**step.params, **THIN_WAFER}))
                except ToolAlarm as e:
                    assert e.code == KERF_OFF_STREET, e  # the saw measured > 5 µm off street
                    out_of_spec = i
                    break
                value = res.results[RESULT]
                if not spec.contains(value):
                    out_of_spec = i
                    break
                values.append(value)
                if len(values) == BASELINE:
                    limits = phase_one(chart, [[v] for v in values])
                elif limits is not None and decision is None:
                    recent = values[-chart.window : -1]
                    decision = ocap(chart, evaluate_point(chart, limits, recent, [value], i))
            wear = sim.sim(TOOL).levels["blade_wear"]
        finally:
            await saw.close()

    assert limits is not None and decision is not None, values
    assert out_of_spec is not None, f"the blade never drove a piece out of spec ({wear:.0f} µm)"
    # caught while every piece so far was in spec, and long before the first one was not
    assert decision.index < out_of_spec
    assert out_of_spec - decision.index >= 10, (decision, out_of_spec)
    assert all(spec.contains(v) for v in values[: decision.index + 1])
    assert values[decision.index] < 0.7 * usl  # still well inside the spec
    assert decision.action.inhibits_tool and decision.action.holds_lot
    assert decision.reason.startswith(f"SPC {RECIPE}/{STEP}/{RESULT}@{TOOL}: N")
    # the signal is the blade's drift, not noise: later pieces sit above the baseline's centre
    later = values[decision.index :]
    assert sum(later) / len(later) > limits.center + 3 * limits.sigma
