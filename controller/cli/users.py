"""`fabline users`: the station's operators — add, list, change role or password, disable.
Passwords are read from standard input (asked twice on a terminal), never from the command
line. Changes are audited as the command line's (`cli:<os user>`)."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from controller.access import Actor
from controller.access.passwords import check_password
from controller.cli.command import run
from controller.cli.display import EXIT_OK, out
from controller.cli.options import DbOption, JsonOption
from controller.cli.station import ConfigOption
from controller.genealogy.db import Database
from controller.settings import settings
from controller.station.config import load_station_file
from controller.station.users import add_user, change_user, list_users, role_of
from drivers.errors import ParameterError

app = typer.Typer(help="The station's users: add, list, change.", no_args_is_help=True)


def _database(db: str | None, config: Path | None) -> Database:
    url = db
    if url is None and config is not None:
        url = load_station_file(config)[0].database
    d = Database(url or settings().database_url)
    d.migrate()
    return d


def read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ParameterError("the passwords differ")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    check_password(password)
    return password


@app.command("add")
def users_add(
    name: str,
    role: Annotated[
        str, typer.Option("--role", help="viewer, operator, technician, engineer, admin")
    ],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a user; the password comes from standard input."""

    def work() -> int:
        r = role_of(role)
        password = read_password()
        d = _database(db, config)
        try:
            user = d.run_sync(lambda s: add_user(s, "", Actor.cli(), name, r, password))
        finally:
            d.close()
        out.print(f"user {user.name} added as {user.role}")
        return EXIT_OK

    run(work)


@app.command("list")
def users_list(
    db: DbOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Every user with role and state."""

    def work() -> int:
        d = _database(db, config)
        try:
            found = d.run_sync(list_users)
        finally:
            d.close()
        if as_json:
            print(json.dumps([u.model_dump(mode="json") for u in found]))
        else:
            for u in found:
                out.print(f"{u.name:<24} {u.role:<11} {'disabled' if u.disabled else ''}")
        return EXIT_OK

    run(work)


@app.command("set")
def users_set(
    name: str,
    role: Annotated[str | None, typer.Option("--role", help="A new role.")] = None,
    password: Annotated[
        bool, typer.Option("--password", help="A new password, from standard input.")
    ] = False,
    disable: Annotated[bool | None, typer.Option("--disable/--enable")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Change a user's role, password or state (their sessions end)."""

    def work() -> int:
        r = role_of(role) if role else None
        new = read_password() if password else None
        d = _database(db, config)
        try:
            user = d.run_sync(
                lambda s: change_user(
                    s, "", Actor.cli(), name, role=r, password=new, disabled=disable
                )
            )
        finally:
            d.close()
        out.print(f"user {user.name}: {user.role}{', disabled' if user.disabled else ''}")
        return EXIT_OK

    run(work)
