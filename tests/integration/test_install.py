"""fabline as a user installs it: the built wheel in a fresh virtual environment, run from an
empty directory, finds its recipes and migrations and runs the main job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_installed_in_a_fresh_venv_runs_every_flow(tmp_path: Path) -> None:
    # built from a copy of the source: setuptools keeps a build/ folder in the tree it builds,
    # whose files of removed modules (a renamed migration) would go into the next wheel
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, src, ignore=skip)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next(dist.glob("fabline-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # the dependencies come from this environment (a path, not a site dir: its editable
    # install of fabline is not seen); fabline itself only from the wheel
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "FABLINE_HOME": str(tmp_path / "home")}
    env.pop("FABLINE_RECIPES", None)
    where = subprocess.run(
        [str(python), "-c", "import controller; print(controller.__file__)"],
        cwd=empty, check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    assert where.startswith(site), where
    # the operator page ships its templates and the vendored htmx with the wheel
    shipped = subprocess.run(
        [str(python), "-c", "from pathlib import Path; import controller.station.web as w;"
         " d = Path(w.__file__).parent; print(sorted(p.name for p in d.glob('*/*.*')))"],
        cwd=empty, check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    for name in ("htmx.min.js", "sse.min.js", "station.js", "station.css", "base.html"):
        assert f"'{name}'" in shipped, shipped
    run = subprocess.run(
        [str(venv / "bin" / "fabline"), "demo", "--time-scale", "inf", "--json", "--no-traces"],
        cwd=empty, capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lots = json.loads(run.stdout)["lots"]
    assert len(lots) == len(list((ROOT / "recipes").glob("*.yaml")))
    assert {lot["state"] for lot in lots} == {"completed"}
