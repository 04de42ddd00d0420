"""`fabline run --seed` on the embedded line is reproducible: the same lot run twice with the
same seed measures the same, and another seed measures differently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

FABLINE = str(Path(sys.executable).with_name("fabline"))


def results(tmp_path: Path, name: str, seed: int) -> list[dict[str, Any]]:
    env = {**os.environ, "FABLINE_HOME": str(tmp_path / name), "FABLINE_LOG": "warning"}
    db = ["--db", str(tmp_path / f"{name}.db")]
    common = {"env": env, "capture_output": True, "text": True, "timeout": 120, "check": False}
    run = subprocess.run(
        [FABLINE, "run", "wlcsp-002-42", "--lot", "R1", "--seed", str(seed), "--json",
         "--time-scale", "inf", *db],
        **common,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    show = subprocess.run([FABLINE, "lot", "show", "R1", "--json", *db], **common)
    assert show.returncode == 0, show.stderr
    return [h["results"] for h in json.loads(show.stdout)["history"] if h["kind"] == "tool"]


def test_same_seed_same_measurements_other_seed_other_measurements(tmp_path: Path) -> None:
    first = results(tmp_path, "a", seed=11)
    assert first and all(first)
    assert results(tmp_path, "b", seed=11) == first
    assert results(tmp_path, "c", seed=12) != first
