"""Every setting fabline takes from its environment, read in one place: defaults, each
variable, empty values meaning unset, command-line options over the environment — and no
other module of the project reads a FABLINE_ variable itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from controller.settings import Settings, settings
from tests.unit.controller import sources

SETTINGS_FILE = Path("controller/settings.py")
# what the environment may be read for outside settings.py: (file, variable)
ALLOWED = {
    (Path("controller/cli/display.py"), "COLUMNS"),  # the terminal's width
    # systemd's notify protocol: set by systemd for the process it started, not settings
    (Path("controller/station/sdnotify.py"), "NOTIFY_SOCKET"),
    (Path("controller/station/sdnotify.py"), "WATCHDOG_USEC"),
    (Path("controller/station/sdnotify.py"), "WATCHDOG_PID"),
}


def test_defaults() -> None:
    assert Settings.from_env({}) == Settings(
        home=Path.home() / ".fabline",
        database_url=None,
        line=None,
        recipes=None,
        mqtt_url=None,
        site="site-1",
        station="station-1",
        mes_clients="",
        log=None,
        log_json=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("FABLINE_HOME", "/srv/fab", "home", Path("/srv/fab")),
        ("FABLINE_DATABASE_URL", "postgresql://f@db/fab", "database_url", "postgresql://f@db/fab"),
        ("FABLINE_LINE", "/srv/line.yaml", "line", Path("/srv/line.yaml")),
        ("FABLINE_RECIPES", "/srv/recipes", "recipes", Path("/srv/recipes")),
        ("FABLINE_MQTT_URL", "mqtts://mes:8883", "mqtt_url", "mqtts://mes:8883"),
        ("FABLINE_SITE", "fab-7", "site", "fab-7"),
        ("FABLINE_STATION", "bump-2", "station", "bump-2"),
        ("FABLINE_MES_CLIENTS", "mes=s3cret", "mes_clients", "mes=s3cret"),
        ("FABLINE_LOG", "debug", "log", "debug"),
        ("FABLINE_LOG_JSON", "1", "log_json", True),
        ("FABLINE_LOG_JSON", "true", "log_json", False),  # only 1 turns it on
    ],
)
def test_each_variable(variable: str, value: str, field: str, expected: object) -> None:
    got = Settings.from_env({variable: value})
    assert getattr(got, field) == expected
    others = {k: v for k, v in vars(got).items() if k != field}
    assert others == {k: v for k, v in vars(Settings.from_env({})).items() if k != field}


@pytest.mark.parametrize(
    "variable",
    [
        "FABLINE_HOME", "FABLINE_DATABASE_URL", "FABLINE_LINE", "FABLINE_RECIPES",
        "FABLINE_MQTT_URL", "FABLINE_SITE", "FABLINE_STATION", "FABLINE_MES_CLIENTS",
        "FABLINE_LOG", "FABLINE_LOG_JSON",
    ],
)  # fmt: skip
def test_an_empty_variable_is_unset(variable: str) -> None:
    """`FABLINE_SITE= fabline ...` (or a blank line in a unit file) means the default, never
    an empty name, and never the current directory as a path."""
    assert Settings.from_env({variable: ""}) == Settings.from_env({})


def test_the_process_environment_is_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABLINE_STATION", "bump-2")
    assert settings().station == "bump-2" == Settings.from_env().station
    monkeypatch.setenv("FABLINE_STATION", "bump-3")  # read again, not cached
    assert settings().station == "bump-3"


def test_options_override_only_what_is_given() -> None:
    env = Settings.from_env({"FABLINE_SITE": "fab-7", "FABLINE_STATION": "bump-2"})
    got = env.but(station="bump-9", site=None, database_url=None, log="info")
    assert (got.site, got.station, got.database_url, got.log) == ("fab-7", "bump-9", None, "info")
    assert env.station == "bump-2"  # the environment's settings are left as they were
    assert env.but() == env
    with pytest.raises(TypeError):
        env.but(colour="red")


# -- nobody else reads the environment -------------------------------------------------------------


def environment_reads(source: str | ast.Module) -> list[tuple[int, str | None]]:
    """(line, variable) of every read of os.environ / os.getenv in `source`; variable None
    when it is not a literal (a computed name, or the whole environment passed on)."""
    tree = ast.parse(source) if isinstance(source, str) else source
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    reads: list[tuple[int, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Name):
            name = node.id
        else:
            continue
        if name not in ("environ", "getenv"):
            continue
        use, up = node, parents.get(node)
        if isinstance(up, ast.Attribute) and up.attr in ("get", "setdefault", "pop"):
            use, up = up, parents.get(up)  # os.environ.get(...)
        key: ast.expr | None = None
        if isinstance(up, ast.Call) and up.func is use and up.args:
            key = up.args[0]
        elif isinstance(up, ast.Subscript) and up.value is use:
            key = up.slice
        literal = key.value if isinstance(key, ast.Constant) else None
        reads.append((node.lineno, literal if isinstance(literal, str) else None))
    return reads


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ('import os\nx = os.environ.get("FABLINE_HOME")', [(2, "FABLINE_HOME")]),
        ('import os\nx = os.environ["FABLINE_SITE"]', [(2, "FABLINE_SITE")]),
        ('import os\nx = os.getenv("FABLINE_LOG", "error")', [(2, "FABLINE_LOG")]),
        ('from os import environ\nx = environ.get("COLUMNS")', [(2, "COLUMNS")]),
        ("import os\nenv = dict(os.environ)", [(2, None)]),
        ('import os\nname = "FABLINE_" + "HOME"\nx = os.environ[name]', [(3, None)]),
        ("x = 1", []),
    ],
)
def test_the_scan_finds_environment_reads(source: str, found: list[tuple[int, str | None]]) -> None:
    assert environment_reads(source) == found


def test_only_settings_reads_fabline_variables() -> None:
    offenders = []
    for path in sources.files():
        if path == SETTINGS_FILE or not re.search(r"environ|getenv", sources.text(path)):
            continue
        for line, variable in environment_reads(sources.tree(path)):
            if (path, variable) not in ALLOWED:
                offenders.append(f"{path}:{line}: reads {variable or 'the environment'}")
    assert offenders == [], "read settings through controller.settings.settings()"


def test_no_other_module_names_a_fabline_variable_as_a_key() -> None:
    """A `FABLINE_...` string standing alone (an envvar= of an option, a key built elsewhere)
    is a second place that reads the environment; messages and docs mention them in text."""
    found = []
    for path in sources.files():
        if path == SETTINGS_FILE or "FABLINE_" not in sources.text(path):
            continue
        for node in ast.walk(sources.tree(path)):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("FABLINE_")
                and node.value.isupper()
            ):
                found.append(f"{path}:{node.lineno}: {node.value}")
    assert found == []
