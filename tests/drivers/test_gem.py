"""The GEM driver against GEM simulators: the same physics as on Modbus, process programs
(download once, upload-and-compare, a full store), pause/resume, control state, the tool's
own refusals, terminal display, event-driven completion, and passive HSMS mode.

The fault contract shared with SCPI and Modbus (drop, stall, garble, offline, alarm, abort,
exhaust, re-attach) runs on a GEM tool in test_faults.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drivers.base import Job
from drivers.errors import JobNotFound, ToolBusy, ValueRefused
from drivers.gem_driver import GemDriver
from drivers.interface import ControlState, JobState
from drivers.interfaces import KINDS, interface_for
from drivers.line import GemSettings, Line, ToolEntry
from drivers.protocols import gem_map as gm
from drivers.registry import make_driver
from simulators.gem_server import GemServer
from simulators.kinds import sim_class
from simulators.line import SimLine
from tests.helpers import new_job_id

DICE = {"blade": "HUB_30", "material": "SI", "stack_thickness": "100 µm",
        "cut_depth": "130 µm", "feed": "50 mm/s", "die_x": "5 mm", "die_y": "5 mm",
        "work_width": "100 mm"}  # fmt: skip
FLIP = {"bump_type": "SOLDER", "bump_count": "400", "bump_height": "30 µm",
        "bump_pitch": "150 µm", "force_per_bump": "10 gf", "head_temp": "300 °C",
        "bond_time": "4 s", "die_size": "10 mm"}  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gem_line() -> AsyncIterator[SimLine]:
    spec = Line(tools=[ToolEntry(id="DICE-1", kind="dicing", protocol="gem"),
                       ToolEntry(id="BOND-1", kind="bonder", protocol="gem")])  # fmt: skip
    async with SimLine(spec, time_scale=1e5, seed=5) as line:
        yield line


async def gem_driver(line: SimLine, tool_id: str) -> GemDriver:
    d = make_driver(line.describe().tool(tool_id), timeout=1.0)
    assert isinstance(d, GemDriver)
    await d.connect()
    return d


def server(line: SimLine, tool_id: str) -> GemServer:
    s = line.servers[tool_id]
    assert isinstance(s, GemServer)
    return s


@pytest.fixture(autouse=True)
def _clean(gem_line: SimLine) -> None:
    for tid in ("DICE-1", "BOND-1"):
        gem_line.fault(tid, "clear")
        sim = gem_line.sim(tid)
        sim.reset()
        sim.time_scale = 1e5
        for c in sim.interface.consumables:
            sim.replace_consumable(c.name)


async def test_the_same_physics_as_on_modbus(gem_line: SimLine) -> None:
    """A job measures on GEM what it measures on Modbus (same seed, tool id and job id)."""
    d = await gem_driver(gem_line, "BOND-1")
    res = await d.run(Job("PARITY-1", "flip_chip", FLIP))
    await d.close()
    async with SimLine(Line(tools=[ToolEntry(id="BOND-1", kind="bonder")]), seed=5,
                       time_scale=1e5) as modbus:  # fmt: skip
        m = make_driver(modbus.describe().tool("BOND-1"), timeout=1.0)
        await m.connect()
        ref = await m.run(Job("PARITY-1", "flip_chip", FLIP))
        await m.close()
    assert res.results.keys() == ref.results.keys()
    for k, v in ref.results.items():  # Modbus carries f32, GEM F8
        assert res.results[k] == pytest.approx(v, rel=1e-6, abs=1e-6), k


async def test_identity_status_and_constants(gem_line: SimLine) -> None:
    d = await gem_driver(gem_line, "DICE-1")
    assert d.identity is not None and d.identity.model == "KERF-6000"
    assert d.identity.serial == "SN-DICE-1" and d.identity.vendor == "FABLINE-SIM"
    st = await d.status()
    assert st.control is ControlState.REMOTE
    assert st.consumables[0].limit == 800.0  # ECID BLADE_WEAR_LIMIT
    assert "HUB_30" in st.setup["blades"]
    await d.close()


async def test_process_program_downloaded_once_and_named_by_recipe_and_hash(
    gem_line: SimLine,
) -> None:
    srv = server(gem_line, "DICE-1")
    srv.programs.clear()
    d = await gem_driver(gem_line, "DICE-1")
    for _ in range(3):
        job = Job(new_job_id("PP"), "dice", DICE, recipe="stacked-wlp-000-11")
        assert (await d.run(job)).state is JobState.COMPLETE
    (ppid,) = srv.programs
    body = srv.programs[ppid]
    assert ppid == f"stacked-wlp-000-11/dice/{gm.content_hash(body)}"
    assert "cut_depth: 130 µm" in body and body.startswith(gm.PP_HEADER)
    await d.close()


async def test_a_program_changed_at_the_tool_is_replaced(gem_line: SimLine) -> None:
    srv = server(gem_line, "DICE-1")
    d = await gem_driver(gem_line, "DICE-1")
    await d.run(Job(new_job_id("PP"), "dice", DICE, recipe="r"))
    await d.close()
    (ppid,) = [p for p in srv.programs if p.startswith("r/")]
    good = srv.programs[ppid]
    srv.programs[ppid] = good.replace("feed: 50 mm/s", "feed: 120 mm/s")  # edited at the tool
    d = await gem_driver(gem_line, "DICE-1")  # a new session: upload-and-compare
    await d.run(Job(new_job_id("PP"), "dice", DICE, recipe="r"))
    assert srv.programs[ppid] == good
    await d.close()


async def test_a_full_program_store_makes_room(gem_line: SimLine) -> None:
    srv = server(gem_line, "DICE-1")
    srv.programs.clear()
    srv.pp_capacity = 2
    try:
        d = await gem_driver(gem_line, "DICE-1")
        for feed in (40, 50, 60, 70):
            await d.run(Job(new_job_id("PP"), "dice", {**DICE, "feed": f"{feed} mm/s"}))
        assert len(srv.programs) <= 2
        assert any("feed: 70 mm/s" in b for b in srv.programs.values())
        await d.close()
    finally:
        srv.pp_capacity = 64


async def test_pause_holds_progress_and_resume_finishes(gem_line: SimLine) -> None:
    sim = gem_line.sim("DICE-1")
    sim.time_scale = 300  # a job of seconds
    d = await gem_driver(gem_line, "DICE-1")
    job = Job(new_job_id("PAUSE"), "dice", DICE)
    await d.start(job)
    await d.pause()
    held = (await d.job_progress(job.job_id)).progress
    assert held < 100
    st = await d.status()
    assert st.progress == pytest.approx(held, abs=0.01)
    assert (await d.job_progress(job.job_id)).progress == pytest.approx(held, abs=0.01)
    sim.time_scale = 1e5
    await d.resume()
    assert (await d.wait(job.job_id)).state is JobState.COMPLETE
    with pytest.raises(ValueRefused, match="no running job"):
        await d.pause()
    await d.close()


async def test_local_control_refuses_dispatch_with_a_clear_reason(gem_line: SimLine) -> None:
    d = await gem_driver(gem_line, "DICE-1")
    gem_line.fault("DICE-1", "local")
    with pytest.raises(ToolBusy, match="on-line local") as e:
        await d.start(Job(new_job_id("LOCAL"), "dice", DICE))
    assert e.value.tool_id == "DICE-1" and "S2F41" in str(e.value)
    assert (await d.status()).control is ControlState.LOCAL
    gem_line.fault("DICE-1", "remote")
    assert (await d.status()).control is ControlState.REMOTE
    assert (await d.run(Job(new_job_id("LOCAL"), "dice", DICE))).state is JobState.COMPLETE
    await d.close()


async def test_the_tools_own_refusal_is_explained(gem_line: SimLine) -> None:
    d = await gem_driver(gem_line, "DICE-1")
    sim = gem_line.sim("DICE-1")
    before = sim.setup["blades"]
    sim.setup["blades"] = ("HUB_50",)  # an engineer swapped the blade since we connected
    try:
        with pytest.raises(ValueRefused, match="blade HUB_30 not set up") as e:
            await d.start(Job(new_job_id("SETUP"), "dice", DICE))
        assert e.value.where == "S2F41 START" and e.value.code == 2
        assert d.setup_problem("dice", {"blade": "HUB_30"}) is not None  # setup re-read
    finally:
        sim.setup["blades"] = before
    await d.close()


async def test_unknown_job_and_terminal_display(gem_line: SimLine) -> None:
    d = await gem_driver(gem_line, "DICE-1")
    with pytest.raises(JobNotFound):
        await d.result("NO-SUCH-JOB")
    await d.display("lot L123 on hold: see MES")
    assert server(gem_line, "DICE-1").terminal[-1] == "lot L123 on hold: see MES"
    await d.close()


async def test_passive_host_the_tool_connects(gem_line: SimLine) -> None:
    """HSMS passive mode: the host listens, the (active) tool connects and selects."""
    iface = interface_for("dicing")
    tool = sim_class("dicing")("DICE-P", time_scale=1e5)
    equipment = GemServer(tool)
    d = GemDriver("DICE-P", iface, "127.0.0.1", 0, GemSettings(mode="passive"), timeout=2.0)
    port = await d.link.listen()
    await equipment.connect_to("127.0.0.1", port)
    ident = await d.connect()
    assert ident.model == "KERF-6000"
    res = await d.run(Job("P-1", "dice", DICE))
    assert res.results["die_count"] > 100
    await d.close()
    await equipment.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_can_be_a_gem_tool(kind: str) -> None:
    """The vocabulary comes from the interface: each kind connects, identifies and reports
    its status over GEM (the bonder and dicing saw also run whole flows)."""
    async with SimLine(Line(tools=[ToolEntry(id="G-1", kind=kind, protocol="gem")])) as line:
        d = make_driver(line.describe().tool("G-1"), timeout=1.0)
        ident = await d.connect()
        assert ident.model == interface_for(kind).model
        st = await d.status()
        assert st.control is ControlState.REMOTE
        assert [c.name for c in st.consumables] == [c.name for c in interface_for(kind).consumables]
        await d.close()


async def test_a_batchs_pieces_are_jobs_by_id_and_carriers_are_not_read() -> None:
    """A plasma batch of 3 on a GEM cleaner: each piece is the job `<id>/<n>` of the tool's
    record (E39 GetAttr by id), with its own measurement; a GEM tool has no carrier read."""
    spec = Line(tools=[ToolEntry(id="CLEAN-1", kind="clean", protocol="gem")])
    async with SimLine(spec, time_scale=1e5, seed=5) as line:
        d = make_driver(line.describe().tool("CLEAN-1"), timeout=1.0)
        await d.connect()
        params = {"gas": "AR_H2", "surface": "CU", "time": "30 s", "work_pieces": "3"}
        batch = await d.run(Job("GEMB-1", "plasma", params))
        pieces = [await d.result(f"GEMB-1/{n}") for n in (1, 2, 3)]
        assert all(p.state is JobState.COMPLETE and p.operation == "plasma" for p in pieces)
        assert len({p.results["residue"] for p in pieces}) == 3
        assert {p.results["duration"] for p in pieces} == {batch.results["duration"]}
        with pytest.raises(JobNotFound):
            await d.result("GEMB-1/4")
        assert await d.read_carrier("FOUP-1", (1, 1)) is None
        await d.close()
