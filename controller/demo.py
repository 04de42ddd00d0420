"""The main job until the recipe controller exists: start the embedded simulated line and
run one representative operation on every tool, printing what each measured."""

from __future__ import annotations

import asyncio
import json

from controller.console import EXIT_OK, job_progress, out, results_table
from drivers.base import Job, JobResult, ToolDriver
from drivers.registry import make_driver

# One representative qualification job per tool kind: (operation, parameters)
DEMO_JOBS: dict[str, tuple[str, dict[str, str]]] = {
    "sputter": ("seed_stack", {"barrier": "TI", "barrier_thickness": "100 nm",
                               "seed_thickness": "300 nm", "power": "6 kW"}),
    "plating": ("electroplate", {"chemistry": "CU_ACID", "thickness": "5 µm",
                                 "current_density": "20 mA/cm²", "feature": "RDL",
                                 "open_area": "30 %"}),
    "ball": ("wafer_bump", {"alloy": "SAC305", "ball_size": "D300", "ball_count": "5000",
                            "pitch": "500 µm", "pad_diameter": "250 µm",
                            "flux_thickness": "120 µm", "peak_temp": "245 °C"}),
    "bonder": ("w2w_adhesive", {"adhesive": "BCB", "adhesive_thickness": "4 µm",
                                "temp": "250 °C", "force": "10 kN", "time": "60 min"}),
    "coater": ("spin_coat", {"material": "POLYIMIDE", "spin_speed": "3000 rpm"}),
    "mold": ("mold", {"compound": "EMC_TABLET", "substrate": "ORGANIC",
                      "substrate_thickness": "300 µm", "thickness": "500 µm",
                      "work_width": "70 mm", "work_length": "240 mm"}),
    "grinder": ("back_grind", {"target_thickness": "100 µm"}),
    "litho": ("expose", {"resist": "THICK_PR", "resist_thickness": "20 µm", "mask_cd": "30 µm"}),
    "wirebonder": ("wire_bond", {"wire": "AU", "wire_size": "D25", "wires_per_unit": "64",
                                 "units": "100"}),
    "dicing": ("dice", {"blade": "HUB_30", "material": "SI", "stack_thickness": "100 µm",
                        "cut_depth": "130 µm", "feed": "50 mm/s", "die_x": "5 mm",
                        "die_y": "5 mm", "work_width": "300 mm"}),
}  # fmt: skip


async def run_demo(*, time_scale: float, seed: int, as_json: bool) -> int:
    from simulators.line import SimLine

    async with SimLine(time_scale=time_scale, seed=seed) as sl:
        line = sl.describe()
        drivers = [make_driver(t) for t in line.tools]
        await asyncio.gather(*(d.connect() for d in drivers))

        async def one(d: ToolDriver) -> tuple[ToolDriver, str, JobResult]:
            op, params = DEMO_JOBS[d.kind]
            job = Job(f"DEMO-{d.tool_id}", op, params)
            if as_json:
                return d, op, await d.run(job)
            with job_progress(f"{d.tool_id} {op}") as progress:
                return d, op, await d.run(job, on_progress=progress)

        done = await asyncio.gather(*(one(d) for d in drivers))
        await asyncio.gather(*(d.close() for d in drivers))
    if as_json:
        print(json.dumps([
            {"tool": d.tool_id, "kind": d.kind, "operation": op, "results": dict(r.results)}
            for d, op, r in done
        ]))  # fmt: skip
        return EXIT_OK
    for d, op, r in done:
        title = f"{d.tool_id} ({d.kind}) {op}: measured"
        out.print(results_table(title, d.interface.operation(op), r.results))
    return EXIT_OK
