"""drivers/testing is for tests only: no runtime module imports it (an import-linter style
contract, checked on the source text until the project adopts import-linter)."""

from __future__ import annotations

import ast
from pathlib import Path

import drivers.testing

ROOT = Path(__file__).resolve().parents[4]
RUNTIME = ("drivers", "simulators", "controller")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_runtime_module_imports_the_test_doubles() -> None:
    fakes = Path(drivers.testing.__file__).parent
    offenders = [
        str(p.relative_to(ROOT))
        for package in RUNTIME
        for p in sorted((ROOT / package).rglob("*.py"))
        if fakes not in p.parents
        and any(n == "drivers.testing" or n.startswith("drivers.testing.") for n in _imports(p))
    ]
    assert offenders == []
    assert (ROOT / "drivers" / "base.py").exists()  # the scan looked at the real tree
