"""`fabline sim` (a simulated line on loopback) and `fabline fault` (faults injected into it)."""

from __future__ import annotations

import asyncio
import json
import math
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.command import fail, run
from controller.cli.display import EXIT_USAGE, out
from controller.cli.options import JsonOption, LineOption
from controller.lines import publish_running_line, resolve_line, withdraw_running_line
from drivers.errors import LineError, ParameterError
from drivers.line import load_line

app = typer.Typer()


@app.command()
def sim(
    line: Annotated[
        Path | None, typer.Option("--line", help="Tools to simulate (default: one of each kind).")
    ] = None,
    time_scale: Annotated[
        float,
        typer.Option("--time-scale", help="Simulated seconds per real second ('inf': instant)."),
    ] = 1000.0,
    seed: Annotated[int, typer.Option("--seed", help="Noise seed: same seed, same results.")] = 0,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on (0.0.0.0: reachable from other hosts or containers).",
        ),
    ] = "127.0.0.1",
    as_json: JsonOption = False,
) -> None:
    """Start a simulated line (on loopback unless --host) and serve until SIGINT or SIGTERM."""
    from simulators.line import SimLine  # only this command and tests import simulators

    if not time_scale > 0:
        fail("--time-scale must be > 0 (use inf for instant jobs)", EXIT_USAGE)

    async def serve() -> None:
        spec = load_line(line) if line else None
        sl = SimLine(spec, seed=seed, time_scale=time_scale, host=host)
        try:
            running = await sl.start()
        except ValueError as e:  # e.g. a setup field in the line file
            raise LineError(f"{line}: {e}") from None
        except OSError as e:
            raise LineError(f"cannot listen: {e.strerror} (port taken?)") from None
        state = publish_running_line(running)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if as_json:
            print(json.dumps(running.model_dump(mode="json", exclude_none=True)), flush=True)
        else:
            _print_line(running, time_scale, state)
        try:
            await stop.wait()
        finally:
            await sl.stop()
            withdraw_running_line(running)

    run(lambda: serve())


def _print_line(running: Any, time_scale: float, state: Path) -> None:
    from rich.table import Table

    table = Table(title=f"simulated line '{running.line}'", title_justify="left")
    for col in ("tool", "kind", "protocol", "address"):
        table.add_column(col)
    for t in running.tools:
        table.add_row(t.id, t.kind, t.protocol, f"{t.host}:{t.port}")
    out.print(table)
    scale = "instant jobs" if math.isinf(time_scale) else f"time scale {time_scale:g}×"
    out.print(f"{scale}; line published in {state}")
    f = running.faults
    out.print(f"fault injection: `fabline fault TOOL FAULT` or JSON lines to {f.host}:{f.port}")
    out.print("Ctrl-C to stop.")
    out.file.flush()


@app.command()
def fault(
    tool: Annotated[str, typer.Argument(help="Tool id, e.g. SPUT-1.")],
    kind: Annotated[
        str,
        typer.Argument(
            metavar="FAULT",
            help="alarm, drop, garble, stall, slow, offline, exhaust, local, remote, slot_map"
            " or clear.",
        ),
    ],
    code: Annotated[int | None, typer.Option(help="alarm: the tool's alarm code.")] = None,
    at: Annotated[float | None, typer.Option(help="alarm: fraction of the job (0-1).")] = None,
    count: Annotated[int | None, typer.Option(help="garble/stall/slow: how many replies.")] = None,
    delay: Annotated[float | None, typer.Option(help="slow: seconds added per reply.")] = None,
    seconds: Annotated[float | None, typer.Option(help="offline: how long.")] = None,
    consumable: Annotated[str | None, typer.Option(help="exhaust: which consumable.")] = None,
    on: Annotated[
        str | None,
        typer.Option(help="garble/stall: 'start' = from the reply to the next job start."),
    ] = None,
    slot: Annotated[int | None, typer.Option(help="slot_map: the slot read wrong (1-25).")] = None,
    state: Annotated[
        str | None, typer.Option(help="slot_map: empty, occupied, double or cross.")
    ] = None,
    carrier: Annotated[str | None, typer.Option(help="slot_map: the tag read instead.")] = None,
    line: LineOption = None,
) -> None:
    """Inject a fault into a tool of a running simulated line."""
    from simulators.control import FaultRequestError, send_fault

    options = {
        "code": code,
        "at": at,
        "count": count,
        "delay": delay,
        "seconds": seconds,
        "consumable": consumable,
        "on": on,
        "slot": slot,
        "state": state,
        "carrier": carrier,
    }
    request = {"tool": tool, "fault": kind, **{k: v for k, v in options.items() if v is not None}}

    async def inject() -> None:
        running = resolve_line(line)
        if running.faults is None:
            raise LineError(f"line {running.line!r} is not a simulated line (no fault endpoint)")
        try:
            detail = await send_fault(running.faults.host, running.faults.port, request)
        except FaultRequestError as e:
            raise ParameterError(str(e)) from None
        except OSError as e:
            raise LineError(
                f"simulated line not reachable ({e}); is `fabline sim` running?"
            ) from None
        out.print(detail)

    run(lambda: inject())


# -- fabline tool ... -------------------------------------------------------------------------
