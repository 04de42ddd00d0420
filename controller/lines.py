"""Which line a command talks to: --line FILE, else $FABLINE_LINE, else the line a running
`fabline sim` published in $FABLINE_HOME/sim-line.json."""

from __future__ import annotations

import json
from pathlib import Path

from controller.settings import fabline_home, settings
from drivers.errors import LineError
from drivers.line import Line, load_line


def sim_state_file() -> Path:
    return fabline_home() / "sim-line.json"


def resolve_line(path: Path | None) -> Line:
    if path is not None:
        return load_line(path)
    env = settings().line
    if env:
        return load_line(env)
    state = sim_state_file()
    if state.exists():
        return load_line(state)
    raise LineError(
        "no line to talk to: start one with `fabline sim`, or pass --line FILE"
        " (or set FABLINE_LINE)"
    )


def publish_running_line(line: Line) -> Path:
    """Write the running simulated line where other commands look for it."""
    state = sim_state_file()
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(line.model_dump(mode="json", exclude_none=True), indent=2))
    tmp.replace(state)
    return state


def withdraw_running_line(line: Line) -> None:
    """Remove the published line if it is still ours (another sim may have replaced it)."""
    state = sim_state_file()
    try:
        if load_line(state).faults == line.faults:
            state.unlink()
    except (LineError, OSError):
        pass
