"""Deployment: the systemd units as shipped pass `systemd-analyze verify`; the example station file
and the example line of three stations (deploy/line/) are valid; a bad station file is refused
with one line naming file and path; `fabline station` with a station file drives a `fabline sim`
line, a PostgreSQL database and the Mosquitto broker, tells systemd when it is ready and stops
cleanly on SIGTERM."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from controller.station.config import load_station_file
from drivers.errors import ParameterError
from drivers.interfaces import KINDS
from drivers.line import load_line
from tests.services import fresh_postgres, require_broker
from tests.web.station import FABLINE, TOOLS, Client, env, start_station

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "fabline-station.service"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    text = UNIT.read_text()
    assert (
        "ExecStart=/opt/fabline/.venv/bin/fabline station --config /etc/fabline/station.yaml"
        in text
    )
    assert "Type=notify" in text and "WatchdogSec=" in text
    # the unit as shipped, with the one path this machine has elsewhere
    unit = tmp_path / "fabline-station.service"
    unit.write_text(text.replace("/opt/fabline/.venv/bin/fabline", FABLINE))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "fabline-station.service" not in done.stderr, done.stderr


def test_the_example_station_file_is_valid(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "station.example.yaml").read_text()
    for name in ("line.yaml", "ca.pem", "mes-clients.yaml"):
        (tmp_path / name).write_text("x")
    (tmp_path / "station.yaml").write_text(text.replace("/etc/fabline/", f"{tmp_path}/"))
    model, _ = load_station_file(tmp_path / "station.yaml")
    assert model.station == "st-07" and model.holds().get("QA-SUSPECT") is not None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("htp: {}\n", "station.yaml: htp: Extra inputs are not permitted"),
        ("http: {bind: 'localhost'}\n", "station.yaml: http.bind: 'localhost' is not HOST:PORT"),
        ("http: {bind: ':8080', cert: c.pem}\n", "station.yaml: http: give both cert and key"),
        ("retry_budget: -1\n", "station.yaml: retry_budget: Input should be greater than or equal"),
        ("line: nowhere.yaml\n", "station.yaml: line: no file"),
        ("hold_kinds: {alarm: NOPE}\n", "station.yaml: (top): kind alarm: no hold code 'NOPE'"),
        ("hold_codes: [{code: lower, category: q, text: t}]\n", "station.yaml: hold_codes.0.code"),
        ("[1, 2]\n", "station.yaml: (top): expected a mapping"),
        ("a: [\n", "station.yaml:2: not valid YAML"),
    ],
)
def test_a_bad_station_file_gets_one_line(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "station.yaml"
    path.write_text(text)
    with pytest.raises(ParameterError) as e:
        load_station_file(path)
    assert error in str(e.value) and "\n" not in str(e.value)


def test_fabline_station_refuses_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "station.yaml"
    path.write_text("http: {bind: 'nowhere'}\n")
    done = subprocess.run([FABLINE, "station", "--config", str(path)], capture_output=True,
                          text=True, env=env(tmp_path), timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: http.bind: 'nowhere' is not HOST:PORT (port 0-65535)"
    ]


def test_a_station_drives_a_sim_line_postgresql_and_mosquitto(tmp_path: Path) -> None:
    require_broker()
    if shutil.which("mosquitto_sub") is None:
        pytest.skip("mosquitto_sub not installed (apt-get install mosquitto-clients)")
    home = tmp_path / "home"
    home.mkdir()
    sim = subprocess.Popen(
        [FABLINE, "sim", "--time-scale", "1e4", "--json"],
        env=env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # the running line, once every tool listens
        line = home / "sim-line.json"
        assert line.exists()
        with fresh_postgres() as db:
            name = f"st{int(time.time() * 1000) % 10**8}"
            config = tmp_path / "station.yaml"
            config.write_text(
                f"station: {name}\nline: {line}\ndatabase: {db}\nmqtt: mqtt://127.0.0.1:1883\n"
                "http: {bind: '127.0.0.1:0'}\nmonitor_interval: 0.3\n"
            )
            subprocess.run([FABLINE, "users", "add", "op", "--role", "operator", "--config",
                            str(config)], input="op-password\n", text=True, env=env(home),
                           check=True, capture_output=True)  # fmt: skip
            notify = tmp_path / "notify.sock"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(notify))
            sock.settimeout(60)
            proc, url, output = start_station(
                config, home, env_extra={"NOTIFY_SOCKET": str(notify)}
            )
            try:
                assert sock.recv(100) == b"READY=1"
                c = Client(url)
                health = _until(lambda: (h := c.get("/healthz").json())["status"] == "ok" and h)
                assert health["database"]["url"].startswith("postgresql")
                assert health["broker"]["url"] == "mqtt://127.0.0.1:1883"
                assert health["line"]["reachable"] == health["line"]["tools"] == TOOLS
                c.login("op", "op-password")
                sub = subprocess.Popen(
                    ["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-C", "3",
                     "-W", "60", "-t", f"fabline/v1/site-1/{name}/lots/PG1/events"],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                _until(lambda: c.get("/healthz").json()["broker"]["ok"])
                r = c.post("/api/lots", json={"lot_id": "PG1", "recipe": "wlcsp-002-42",
                                              "inputs": {"wafers": 1}})  # fmt: skip
                assert r.status_code == 201, r.text
                out, _ = sub.communicate(timeout=90)
                assert out.count('"lot_id": "PG1"') + out.count('"lot_id":"PG1"') == 3, out
            finally:
                code = proc.wait(timeout=1) if proc.poll() is not None else None
                if code is None:
                    proc.terminate()
                    code = proc.wait(timeout=60)
                assert code == 0, "".join(output)[-2000:]
                assert sock.recv(100) == b"STOPPING=1"
                sock.close()
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def _until(what, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return got


# -- a line of several stations (deploy/line/) ------------------------------------------------

LINE = ROOT / "deploy" / "line"
LINE_STATIONS = ("station-bump", "station-asm", "station-asm-standby")


def test_the_template_unit_verifies_for_each_station_of_the_line(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    text = (ROOT / "deploy" / "fabline-station@.service").read_text()
    assert "ExecStart=/opt/fabline/.venv/bin/fabline station --config /etc/fabline/%i.yaml" in text
    for name in LINE_STATIONS:
        assert (LINE / f"{name}.yaml").is_file()
        unit = tmp_path / f"fabline-station@{name}.service"
        unit.write_text(text.replace("/opt/fabline/.venv/bin/fabline", FABLINE))
        done = subprocess.run(
            [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert unit.name not in done.stderr, done.stderr


def test_the_line_example_is_consistent() -> None:
    """Each station file loads; all share the areas and lease; each drives exactly its area's
    tool kinds; the development simulator runs every tool the stations reach, on their ports;
    the compose file starts each station on its file and HTTP port."""
    stations = {name: load_station_file(LINE / f"{name}.yaml")[0] for name in LINE_STATIONS}
    areas = {repr(sorted(st.line_areas().by_kind.items())) for st in stations.values()}
    assert len(areas) == 1 and {st.lease_ttl for st in stations.values()} == {15}
    by_kind = next(iter(stations.values())).line_areas().by_kind
    assert set(by_kind) == set(KINDS)  # every kind of tool runs somewhere on the line
    assert [st.standby for st in stations.values()] == [False, False, True]
    sim = {t.id: t for t in load_line(LINE / "sim-line.yaml").tools}
    reached: set[str] = set()
    for st in stations.values():
        assert st.line is not None and st.area is not None
        tools = load_line(LINE / st.line).tools
        assert {t.kind for t in tools} == {k for k, a in by_kind.items() if a == st.area}
        for t in tools:
            assert (t.kind, t.port, t.host) == (sim[t.id].kind, sim[t.id].port, "sim"), t.id
        reached |= {t.id for t in tools}
    assert reached == set(sim)
    compose = yaml.safe_load((LINE / "compose.yaml").read_text())["services"]
    for name, st in stations.items():
        service = compose[f"st-{name.removeprefix('station-')}"]
        assert service["command"] == f"fabline station --config /etc/fabline/{name}.yaml"
        port = st.http.bind.rsplit(":", 1)[1]
        assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert "--line /etc/fabline/sim-line.yaml --host 0.0.0.0" in compose["sim"]["command"]


def test_a_station_file_reads_the_line_s_areas_from_their_file(tmp_path: Path) -> None:
    (tmp_path / "areas.yaml").write_text("wafer: [sputter]\nback: [dicing]\n")
    (tmp_path / "st.yaml").write_text("area: back\nareas: areas.yaml\n")
    model, _ = load_station_file(tmp_path / "st.yaml")
    assert model.line_areas().by_kind == {"sputter": "wafer", "dicing": "back"}
    (tmp_path / "st.yaml").write_text("area: back\nareas: nowhere.yaml\n")
    with pytest.raises(ParameterError, match=r"st.yaml: areas: .*nowhere.yaml: No such file"):
        load_station_file(tmp_path / "st.yaml")
    (tmp_path / "areas.yaml").write_text("- sputter\n")
    (tmp_path / "st.yaml").write_text("areas: areas.yaml\n")
    with pytest.raises(ParameterError, match="expected a mapping of area: \\[tool kinds\\]"):
        load_station_file(tmp_path / "st.yaml")
