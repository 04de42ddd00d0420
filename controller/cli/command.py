"""How every command runs: its work inside one guard that turns any fabline error into one
line and its category's exit code (drivers/errors.py), and a bug into one line with the
traceback kept in `$FABLINE_HOME/crash.log`."""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

import typer

from controller.cli.display import error
from controller.settings import fabline_home
from drivers.errors import FablineError, RecipeError, exit_code, shown

Work = Callable[[], int | Coroutine[Any, Any, int | None] | None]


def fail(message: str, code: int) -> NoReturn:
    error(message)
    raise typer.Exit(code)


def run(work: Work) -> None:
    """Run a command's work: a function returning an exit code, or a coroutine to run for
    one. Everything a command does, from reading its arguments on, happens inside."""
    try:
        code = work()
        if asyncio.iscoroutine(code):
            code = asyncio.run(code)
    except RecipeError as e:
        for problem in e.problems:
            error(problem)
        raise typer.Exit(exit_code(e)) from None
    except FablineError as e:
        fail(str(e), exit_code(e))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as e:  # a bug: one line for the user, the traceback kept for a developer
        fail(f"internal error ({type(e).__name__}: {shown(e)}){_keep_traceback()}", 70)
    if code:
        raise typer.Exit(code)


def _keep_traceback() -> str:
    try:
        path = fabline_home() / "crash.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {sys.argv}\n")
            f.write(traceback.format_exc())
        return f"; traceback in {path}"
    except OSError:
        return ""
