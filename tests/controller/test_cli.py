"""The `fabline` command as users run it: a `fabline sim` process, stock clients on its
sockets, and `fabline tool` / `fabline fault` commands against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvisa
from pymodbus.client import ModbusTcpClient

from drivers.interfaces import KINDS, interface_for

FABLINE = str(Path(sys.executable).with_name("fabline"))


def fabline(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FABLINE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [FABLINE, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


class SimProcess:
    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "FABLINE_HOME": str(home)}
        self.proc = subprocess.Popen(
            [FABLINE, "sim", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()  # printed once every tool listens
        assert first, self.proc.stderr.read() if self.proc.stderr else "no output"
        self.line: dict[str, Any] = json.loads(first)

    def tool(self, tool_id: str) -> dict[str, Any]:
        return next(t for t in self.line["tools"] if t["id"] == tool_id)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fabline-home")


@pytest.fixture(scope="module")
def sim(home: Path) -> Iterator[SimProcess]:
    p = SimProcess(home, "--time-scale", "1e5", "--seed", "3")
    yield p
    p.stop()


def test_sim_json_lists_every_kind_and_the_fault_endpoint(sim: SimProcess) -> None:
    kinds = {t["kind"] for t in sim.line["tools"]}
    assert kinds == set(KINDS)
    for t in sim.line["tools"]:
        assert set(t) >= {"id", "kind", "protocol", "host", "port"}
        assert t["protocol"] in ("scpi", "modbus") and t["host"] == "127.0.0.1"
    assert sim.line["faults"]["port"] > 0


def test_stock_clients_identify_every_tool(sim: SimProcess) -> None:
    rm = pyvisa.ResourceManager("@py")
    for t in sim.line["tools"]:
        if t["protocol"] == "scpi":
            inst = rm.open_resource(f"TCPIP0::{t['host']}::{t['port']}::SOCKET")
            inst.read_termination = inst.write_termination = "\n"
            inst.timeout = 2000
            vendor, model, _serial, _ = inst.query("*IDN?").strip().split(",")
            inst.close()
        else:
            c = ModbusTcpClient(t["host"], port=t["port"], timeout=2)
            assert c.connect()
            info = c.read_device_information(read_code=1, device_id=1).information
            c.close()
            vendor, model = info[0].decode(), info[1].decode()
        assert vendor == "FABLINE-SIM" and model, t["id"]


@pytest.mark.parametrize("kind", KINDS)
def test_tool_run_performs_an_operation_on_each_kind(
    sim: SimProcess, home: Path, kind: str
) -> None:
    tool = next(t["id"] for t in sim.line["tools"] if t["kind"] == kind)
    q = interface_for(kind).qualification
    op, params = q.operation, q.params
    r = fabline("tool", "run", tool, op, *(f"{k}={v}" for k, v in params.items()), "--json",
                home=home)  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["state"] == "COMPLETE" and result["results"]


def test_tool_run_shows_progress_when_piped(sim: SimProcess, home: Path) -> None:
    r = fabline("tool", "run", "SPUT-1", "deposit", "target=CU", "thickness=2um", "power=5kW",
                home=home)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "100.0% complete" in r.stdout
    assert "thickness" in r.stdout and "nm" in r.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["power=50kW"], ["'power'", "50kW", "1–20 kW"]),
        (["power=5"], ["'power'", "missing unit"]),
        (["power"], ["not KEY=VALUE"]),
        (["target=AU"], ["'target'", "not set up"]),
    ],
)
def test_bad_parameter_is_one_line_and_exit_2(
    sim: SimProcess, home: Path, args: list[str], words: list[str]
) -> None:
    base = {"target": "CU", "thickness": "1um", "power": "5kW"}
    for a in args:
        key = a.partition("=")[0]
        base.pop(key, None)
    r = fabline("tool", "run", "SPUT-1", "deposit", *(f"{k}={v}" for k, v in base.items()), *args,
                home=home)  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    for w in words:
        assert w in lines[0]
    assert "Traceback" not in r.stderr


def test_tool_status_json(sim: SimProcess, home: Path) -> None:
    r = fabline("tool", "status", "--json", home=home)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {row["tool"] for row in rows} == {t["id"] for t in sim.line["tools"]}
    assert all(row["state"] != "OFFLINE" for row in rows)


def test_injected_alarm_fails_the_run_with_exit_1(sim: SimProcess, home: Path) -> None:
    r = fabline("fault", "SPUT-1", "alarm", "--code", "103", "--at", "0.4", home=home)
    assert r.returncode == 0 and "alarm 103" in r.stdout
    r = fabline("tool", "run", "SPUT-1", "deposit", "target=CU", "thickness=1um", "power=5kW",
                home=home)  # fmt: skip
    assert r.returncode == 1
    assert "alarm 103" in r.stderr and "SPUT-1" in r.stderr
    r = fabline("tool", "status", "SPUT-1", "--json", home=home)
    assert json.loads(r.stdout)["alarms"][0]["code"] == 103
    assert fabline("tool", "clear", "SPUT-1", home=home).returncode == 0
    r = fabline("tool", "status", "SPUT-1", "--json", home=home)
    assert json.loads(r.stdout)["state"] == "IDLE"


def test_unknown_fault_and_tool_are_usage_errors(sim: SimProcess, home: Path) -> None:
    r = fabline("fault", "SPUT-1", "boom", home=home)
    assert r.returncode == 2 and "unknown fault 'boom'" in r.stderr
    r = fabline("tool", "status", "NOPE-9", home=home)
    assert r.returncode == 2 and "no tool 'NOPE-9'" in r.stderr


def test_without_a_line_commands_say_how_to_get_one(tmp_path: Path) -> None:
    r = fabline("tool", "status", home=tmp_path)
    assert r.returncode == 2 and "fabline sim" in r.stderr


def test_sigterm_stops_the_sim_with_exit_0_and_withdraws_the_line(tmp_path: Path) -> None:
    p = SimProcess(tmp_path)
    assert (tmp_path / "sim-line.json").exists()
    assert p.stop() == 0
    assert not (tmp_path / "sim-line.json").exists()


def test_sim_with_a_line_file(tmp_path: Path) -> None:
    spec = tmp_path / "line.yaml"
    spec.write_text(
        "line: two\ntools:\n  - {id: S1, kind: sputter, setup: {targets: [AU]}}\n"
        "  - {id: D1, kind: dicing}\n"
    )
    p = SimProcess(tmp_path, "--line", str(spec))
    try:
        assert [t["id"] for t in p.line["tools"]] == ["S1", "D1"]
        r = fabline("tool", "run", "S1", "deposit", "target=AU", "thickness=100nm", "power=2kW",
                    "--json", home=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
    finally:
        assert p.stop() == 0


def test_sim_serves_gem_tools_from_a_line_file(tmp_path: Path) -> None:
    """`protocol: gem` in a line file: the sim serves GEM equipment, the tool commands drive
    it, and `fabline fault D1 local` shows in status and refuses a run."""
    spec = tmp_path / "line.yaml"
    spec.write_text("line: gem\ntools:\n  - {id: D1, kind: dicing, protocol: gem}\n")
    p = SimProcess(tmp_path, "--line", str(spec), "--time-scale", "1e5")
    job = ["tool", "run", "D1", "dice", "blade=HUB_30", "material=SI", "stack_thickness=100um",
           "cut_depth=130um", "feed=50mm/s", "die_x=5mm", "die_y=5mm",
           "work_width=100mm"]  # fmt: skip
    try:
        assert p.tool("D1")["protocol"] == "gem" and p.tool("D1")["gem"]["device_id"] == 0
        r = fabline(*job, "--json", home=tmp_path)
        assert r.returncode == 0, r.stderr
        assert fabline("fault", "D1", "local", home=tmp_path).returncode == 0
        r = fabline("tool", "status", "D1", "--json", home=tmp_path)
        assert json.loads(r.stdout)["control"] == "LOCAL"
        r = fabline(*job, home=tmp_path)
        assert r.returncode == 1 and "on-line local" in r.stderr and "D1" in r.stderr
    finally:
        assert p.stop() == 0


def test_bad_line_file_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "line.yaml"
    spec.write_text("tools:\n  - {id: S1, kind: toaster}\n")
    r = fabline("sim", "--line", str(spec), home=tmp_path)
    assert r.returncode == 2
    assert "unknown tool kind 'toaster'" in r.stderr and "line.yaml" in r.stderr


def test_qualify_runs_one_operation_on_every_tool(sim: SimProcess, home: Path) -> None:
    r = fabline("tool", "qualify", "--json", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    done = json.loads(r.stdout)
    assert {d["tool"] for d in done} == {t["id"] for t in sim.line["tools"]}
    assert all("results" in d for d in done)
