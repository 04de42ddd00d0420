"""The project's source files, read and parsed once per test session for the tests that
check rules across the whole tree (parsing all of it costs ~0.3 s; each check would pay it)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("controller", "drivers", "simulators")


@cache
def files() -> tuple[Path, ...]:
    """Every Python source file of the project's packages, relative to the checkout."""
    return tuple(sorted(p.relative_to(ROOT) for d in PACKAGES for p in (ROOT / d).rglob("*.py")))


@cache
def text(path: Path) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(text(path), filename=str(path))
