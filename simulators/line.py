"""Start a whole simulated line: one simulator and server per tool, plus fault control."""

from __future__ import annotations

import math
from types import TracebackType

import structlog

from drivers.interface import ToolState
from drivers.interfaces import KINDS, interface_for
from drivers.line import FaultEndpoint, Line, ToolEntry
from simulators.control import FaultControlServer, apply_fault
from simulators.faults import FAULTS
from simulators.gem_server import GemServer
from simulators.kinds import server_for, sim_class
from simulators.server import ToolServer
from simulators.tool import SimTool

log = structlog.get_logger("fabline.sim")


# Tools beyond one per kind, set up for what the recipes need: an implanter holds one ball
# alloy and size at a time, so the claimed flows need several.
EXTRA_TOOLS = (
    ToolEntry(id="BALL-2", kind="ball", setup={"alloy": ["SNPB63"], "ball_size": ["D300"]}),
    ToolEntry(id="BALL-3", kind="ball", setup={"alloy": ["SN100"], "ball_size": ["D150"]}),
    # a press loaded with fine-filler molded-underfill compound (gaps down to 60 µm)
    ToolEntry(id="MOLD-2", kind="mold", setup={"compounds": ["EMC_MUF", "EMC_TABLET"]}),
)


def default_line() -> Line:
    """One tool of every kind, plus the extra set-ups the recipes need, on free ports."""
    tools = [ToolEntry(id=f"{interface_for(k).id_prefix}-1", kind=k) for k in KINDS]
    return Line(line="sim", tools=[*tools, *EXTRA_TOOLS])


class SimLine:
    """A running simulated line. Use `async with SimLine(...) as line:`; `line.describe()`
    is the running line (with real ports) in the line-file format."""

    def __init__(
        self,
        line: Line | None = None,
        *,
        seed: int = 0,
        time_scale: float = 1000.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.spec = line or default_line()
        self.seed = seed
        self.time_scale = time_scale
        self.host = host
        self.servers: dict[str, ToolServer] = {}
        self.control: FaultControlServer | None = None

    async def start(self) -> Line:
        try:
            for entry in self.spec.tools:
                tool = sim_class(entry.kind)(
                    entry.id, seed=self.seed, time_scale=self.time_scale, setup=entry.setup
                )
                server = server_for(tool, entry.protocol, entry.gem)
                await server.start(self.host, entry.port)
                self.servers[entry.id] = server
            self.control = FaultControlServer(self.servers)
            await self.control.start(self.host)
        except BaseException:
            await self.stop()
            raise
        log.info("sim.line_started", tools=len(self.servers), time_scale=self.time_scale)
        return self.describe()

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()
        self.servers.clear()
        if self.control is not None:
            await self.control.stop()
            self.control = None

    def describe(self) -> Line:
        assert self.control is not None, "line not started"
        return Line(
            line=self.spec.line,
            tools=[
                ToolEntry(
                    id=tid,
                    kind=s.tool.interface.kind,
                    protocol=s.protocol,
                    host=s.host,
                    port=s.port,
                    gem=s.settings if isinstance(s, GemServer) else None,
                )
                for tid, s in self.servers.items()
            ],
            faults=FaultEndpoint(
                host=self.control.host,
                port=self.control.port,
                protocol="json-lines",
                faults=list(FAULTS),
                example={"tool": next(iter(self.servers)), "fault": "alarm", "at": 0.5},
            ),
        )

    def fault(self, tool_id: str, fault: str, **options: object) -> str:
        """In-process fault injection (tests); other processes use the control endpoint."""
        return apply_fault(self.servers, {"tool": tool_id, "fault": fault, **options})

    def maintain(self) -> None:
        """What an engineer does between long runs: fresh consumables, alarms cleared."""
        for server in self.servers.values():
            tool = server.tool
            if tool.state is not ToolState.RUNNING:
                for c in tool.interface.consumables:
                    tool.replace_consumable(c.name)
                tool.clear_alarms()

    def sim(self, tool_id: str) -> SimTool:
        return self.servers[tool_id].tool

    async def __aenter__(self) -> SimLine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


INSTANT = math.inf
"""time_scale for jobs that take no time at all (benchmarks, fast tests)."""
