"""Bad input on the command line gets one line and the exit code of its category, never a
traceback, a hang or a side effect (reliability issue, items 7 and 8).

Exit codes (docs/operations.md): 2 bad usage or input, 5 not found, 6 conflict, 7 a
service (database, broker) unavailable, 1 a tool failed."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli import app
from tests.station import FABLINE

RECIPE = "wlcsp-002-24"
BIG = "x" * 1_000_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "binary.yaml").write_bytes(b"\x00\x01garbage\xff\xfe" * 50)
    (d / "corrupt.db").write_bytes(os.urandom(4096))
    (d / "empty-secret.yaml").write_text("mes: ''\n")
    ok = d / "ok.db"
    CliRunner().invoke(app, ["lots", "--db", str(ok)])  # a migrated database
    future = d / "future.db"
    CliRunner().invoke(app, ["lots", "--db", str(future)])
    with sqlite3.connect(future) as c:  # as if a newer fabline had migrated it
        c.execute("UPDATE alembic_version SET version_num = '9999'")
    return {p.stem: p for p in d.iterdir()} | {"dir": d}


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert len(lines[0]) < 400, lines[0]
    return lines[0]


CASES: list[tuple[str, list[str], int, str]] = [
    # (id, arguments with {name} for the files above, exit code, text in the one line)
    ("db-url-scheme", ["lots", "--db", "foo://bar"], 2, "SQLite"),
    ("db-url-garbage", ["lots", "--db", "postgresql://user@:not-a-port/x"], 2, "database URL"),
    ("db-corrupt", ["lots", "--db", "{corrupt}"], 7, "not a database"),
    ("db-newer", ["lots", "--db", "{future}"], 7, "newer"),
    ("db-no-folder", ["lots", "--db", "/nonexistent/dir/x.db"], 2, "does not exist"),
    ("db-pg-refused", ["lots", "--db", "postgresql://127.0.0.1:1/x"], 7, "database"),
    ("state-bogus", ["lots", "--state", "bogus", "--db", "{ok}"], 2, "unknown lot state"),
    ("lot-unknown", ["lot", "show", "NOPE", "--db", "{ok}"], 5, "no lot 'NOPE'"),
    ("hold-unknown", ["hold", "NOPE", "--db", "{ok}"], 5, "no lot"),
    ("resume-unknown", ["resume", "NOPE", "--db", "{ok}"], 5, "no lot"),
    ("trace-unknown", ["trace", "NOPE", "--db", "{ok}"], 5, "no unit"),
    ("line-binary", ["tool", "status", "--line", "{binary}"], 2, "not UTF-8"),
    ("line-missing", ["tool", "status", "--line", "/nonexistent.yaml"], 2, "cannot read"),
    ("sim-line-binary", ["sim", "--line", "{binary}"], 2, "not UTF-8"),
    ("schema-not-dir", ["mes", "schema", "/dev/null/x"], 2, "cannot write schemas"),
    ("mqtt-port", ["mes", "status", "--mqtt", "mqtt://host:99999", "--db", "{ok}"], 2, "port"),
    ("mqtt-url", ["mes", "status", "--mqtt", "foo", "--db", "{ok}"], 2, "MQTT URL"),
    ("send-unknown", ["mes", "send", "bogus", "--lot", "X", "--mqtt", "mqtt://h"], 2, "bogus"),
    ("send-lot-id", ["mes", "send", "hold", "--lot", "-3", "--mqtt", "mqtt://h"], 2, "lot_id"),
    (
        "send-kv",
        ["mes", "send", "hold", "--lot", "X", "-o", "novalue", "--mqtt", "mqtt://h"],
        2,
        "KEY=VALUE",
    ),
    ("send-timeout", ["mes", "send", "hold", "--lot", "X", "--timeout", "-1"], 2, "--timeout"),
    ("clients-binary", ["mes", "serve", "--clients", "{binary}", "--db", "{ok}"], 2, "not YAML"),
    (
        "clients-empty",
        ["mes", "serve", "--clients", "{empty-secret}", "--db", "{ok}"],
        2,
        "secrets not empty",
    ),
    (
        "relay-timeout",
        ["mes", "relay", "--mqtt", "mqtt://h", "--timeout", "0", "--db", "{ok}"],
        2,
        "--timeout",
    ),
    (
        "scale-zero",
        ["run", RECIPE, "--lot", "Z1", "--time-scale", "0", "--db", "{ok}"],
        2,
        "--time-scale",
    ),
    (
        "scale-nan",
        ["run", RECIPE, "--lot", "Z1", "--time-scale", "nan", "--db", "{ok}"],
        2,
        "--time-scale",
    ),
    ("scale-neg", ["resume", "Z1", "--time-scale", "-5", "--db", "{ok}"], 2, "--time-scale"),
    ("demo-scale", ["demo", "--time-scale", "0", "--db", "{ok}"], 2, "--time-scale"),
    ("serve-scale", ["mes", "serve", "--time-scale", "-1", "--db", "{ok}"], 2, "--time-scale"),
    (
        "retry-neg",
        ["run", RECIPE, "--lot", "Z1", "--retry-budget", "-1", "--db", "{ok}"],
        2,
        "--retry-budget",
    ),
    (
        "unit-dash",
        ["run", RECIPE, "--lot", "Z2", "-i", "wafers=-3", "--db", "{ok}"],
        2,
        "neither a count nor a unit id",
    ),
    (
        "wafers-neg",
        ["run", RECIPE, "--lot", "Z3", "--wafers", "-3", "--db", "{ok}"],
        2,
        "1..25",
    ),
    (
        "wafers-huge",
        ["run", RECIPE, "--lot", "Z4", "--wafers", "10000000", "--db", "{ok}"],
        2,
        "1..25",
    ),
    (
        "option-huge",
        ["run", RECIPE, "--lot", "Z5", "-o", f"encapsulant={BIG}", "--db", "{ok}"],
        2,
        "1000000 characters",
    ),
    (
        "option-twice",
        ["run", RECIPE, "--lot", "Z5", "-o", "a=1", "-o", "a=2", "--db", "{ok}"],
        2,
        "given twice",
    ),
    (
        "unit-repeat",
        ["run", RECIPE, "--lot", "Z6", "-i", "wafers=W1,W1", "--db", "{ok}"],
        2,
        "repeat",
    ),
    ("lot-id", ["run", RECIPE, "--lot", "../x", "--db", "{ok}"], 2, "lot id"),
    ("die-map-format", ["die-map", "X", "--format", "pdf", "--db", "{ok}"], 2, "--format"),
]


@pytest.mark.parametrize(
    ("args", "code", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_with_its_exit_code(
    files: dict[str, Path], args: list[str], code: int, text: str, tmp_path: Path
) -> None:
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    env = {"FABLINE_HOME": str(tmp_path), "FABLINE_MES_CLIENTS": "mes=s3cret"}
    got, _, err = cli(*argv, env=env)
    line = one_line(err)
    assert got == code, line
    assert text in line
    assert not Path("/nonexistent/dir").exists()


def test_a_unit_id_already_used_by_another_lot_is_refused(
    files: dict[str, Path], tmp_path: Path
) -> None:
    db = str(tmp_path / "u.db")
    env = {"FABLINE_HOME": str(tmp_path)}
    common = ["-i", "wafers=W1", "--time-scale", "inf", "--db", db, "--json"]
    assert cli("run", RECIPE, "--lot", "U1", *common, env=env)[0] == 0
    code, _, err = cli("run", RECIPE, "--lot", "U2", *common, env=env)
    assert code == 2 and "already used by other lots: W1" in one_line(err)


def test_schema_export_replaces_a_planted_symlink_instead_of_following_it(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "schemas"
    out.mkdir()
    (out / "hold.schema.json").symlink_to(victim)
    code, _, err = cli("mes", "schema", str(out))
    assert code == 0, err
    assert victim.read_text() == "precious"
    hold = out / "hold.schema.json"
    assert not hold.is_symlink() and '"hold"' in hold.read_text()


# -- hangs: every wait is bounded ----------------------------------------------------------


class SilentServer:
    """Accepts TCP connections and never answers (a PostgreSQL or broker address gone bad),
    or trickles a reply one byte every half second (a sick SCPI tool)."""

    def __init__(self, trickle: bytes | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.trickle = trickle
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.conns.append(conn)
            if self.trickle is not None:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        assert self.trickle is not None
        try:
            while not self.stop.is_set():
                if not conn.recv(4096):
                    return
                for b in self.trickle:
                    if self.stop.wait(0.5):
                        return
                    conn.sendall(bytes([b]))
        except OSError:
            return

    def close(self) -> None:
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


async def run_bounded(*args: str, env: dict[str, str], bound: float) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        FABLINE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), bound)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"fabline {' '.join(args)} still running after {bound} s") from None
    assert proc.returncode is not None
    return proc.returncode, err.decode(), time.monotonic() - t0


async def test_a_database_that_never_answers_fails_within_the_connect_timeout(
    silent: SilentServer, tmp_path: Path
) -> None:
    env = {**os.environ, "FABLINE_HOME": str(tmp_path)}
    url = f"postgresql://fabline@127.0.0.1:{silent.port}/fabline"
    code, err, _ = await run_bounded("lots", "--db", url, env=env, bound=30)
    assert code == 7 and "timeout" in one_line(err).lower()


async def test_relay_to_a_dead_broker_gives_up_in_bounded_time(tmp_path: Path) -> None:
    env = {**os.environ, "FABLINE_HOME": str(tmp_path)}
    db = str(tmp_path / "r.db")
    made = ["run", RECIPE, "--lot", "R1", "--time-scale", "inf", "--db", db]
    assert (await run_bounded(*made, env=env, bound=60))[0] == 0  # its events wait unsent
    code, err, _ = await run_bounded(
        "mes",
        "relay",
        "--mqtt",
        "mqtt://127.0.0.1:1",
        "--timeout",
        "2",
        "--db",
        db,
        env=env,
        bound=30,
    )
    line = one_line(err)
    assert code == 7 and "not reachable for 2 s" in line and "events stay pending" in line


async def test_a_tool_trickling_its_replies_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    reply = b'"ACME","SPUTTER","SN1","1.0";0,"No error"\n'
    server = SilentServer(trickle=reply)
    try:
        line = tmp_path / "line.yaml"
        line.write_text(f"tools:\n  - {{id: SPUT-9, kind: sputter, port: {server.port}}}\n")
        env = {**os.environ, "FABLINE_HOME": str(tmp_path)}
        code, _, took = await run_bounded(
            "tool", "status", "--line", str(line), "--timeout", "2", "--json", env=env, bound=30
        )
        assert code == 1  # the tool is reported offline, within a few seconds not 20+
        assert took < 10
    finally:
        server.close()
