"""The `fabline` command: a package of command groups, each a thin front door over the
station runtime, the lot service and the drivers.

Every command prints one clear line for an error and exits with the code of the error's
category (drivers/errors.py): 0 ok, 1 a tool or job failed or a lot aborted, 2 bad usage or
input, 3 a lot ended held, 4 a lot waits at an external step, 5 not found, 6 conflict (not in
a state for that), 7 database or broker unavailable, 8 not logged in, 9 not allowed for the
role, 70 a bug.
"""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli import demo, lots, mes, recipes, sim, spc, station, tools, users
from controller.logs import configure_logging

app = typer.Typer(
    name="fabline",
    help="Equipment control and MES integration for an advanced-packaging line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at info level.")] = False,
) -> None:
    configure_logging("info" if verbose else None)


app.add_typer(sim.app)
app.add_typer(tools.app, name="tool")
app.add_typer(tools.app, name="tools", hidden=True)  # `fabline tools report` reads naturally
app.add_typer(recipes.app, name="recipes")
app.add_typer(lots.app)
app.add_typer(demo.app)
app.add_typer(mes.app, name="mes")
app.add_typer(station.app)
app.add_typer(users.app, name="users")
app.add_typer(spc.app, name="spc")


def main() -> None:
    app()


__all__ = ["app", "main"]
