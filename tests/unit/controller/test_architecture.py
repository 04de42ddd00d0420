"""Rules of the house the type checker cannot see: a module uses another package only through
its public names (no `_private` import across packages), and a package's `__all__` lists only
names it has."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROJECT = ("controller", "drivers", "simulators")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(path: Path) -> tuple[str, str]:
    """(module, package) of a source file: controller/lots/service.py is
    controller.lots.service in package controller.lots; an __init__ is its package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def private_uses(source: str, module: str, package: str) -> list[tuple[int, str]]:
    """(line, what) of every private name this module takes from another project package:
    `from pkg.mod import _name`, `import pkg._mod`, or `mod._name` on a module imported from
    another package."""
    found: list[tuple[int, str]] = []
    foreign: set[str] = set()  # local names bound to modules of other packages
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] not in PROJECT:
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}"
                other = base != package and not target.startswith(f"{package}.")
                if not other:
                    continue
                if _private(alias.name) or any(_private(p) for p in base.split(".")):
                    found.append((node.lineno, target))
                else:
                    foreign.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] not in PROJECT or alias.name.startswith(f"{package}."):
                    continue
                if any(_private(p) for p in parts):
                    found.append((node.lineno, alias.name))
                foreign.add(alias.asname or parts[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in foreign
            and _private(node.attr)
        ):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return sorted(found)


@pytest.mark.parametrize(
    ("source", "module", "found"),
    [
        ("from controller.lots.lifecycle import _STRENGTH", "controller.engine.journal",
         [(1, "controller.lots.lifecycle._STRENGTH")]),
        ("from controller.lots.lifecycle import _STRENGTH", "controller.lots.service", []),
        ("from controller.lots import lifecycle\nlifecycle._STRENGTH", "controller.mes.x",
         [(2, "lifecycle._STRENGTH")]),
        ("from controller.lots import lifecycle\nlifecycle.check", "controller.mes.x", []),
        ("from .lifecycle import _STRENGTH", "controller.lots.service", []),
        ("from ..lots.lifecycle import _STRENGTH", "controller.engine.journal",
         [(1, "controller.lots.lifecycle._STRENGTH")]),
        ("import drivers._wire", "controller.engine.runner", [(1, "drivers._wire")]),
        ("from drivers._wire import frame", "controller.engine.runner",
         [(1, "drivers._wire.frame")]),
        ("from asyncio import _get_running_loop", "controller.engine.runner", []),
        ("from __future__ import annotations", "controller.engine.runner", []),
        ("from controller.lots import __all__", "controller.engine.runner", []),
    ],
    ids=["across", "same-package", "attribute", "public-attribute", "relative-same",
         "relative-across", "private-module", "from-private-module", "not-ours", "future",
         "dunder"],
)  # fmt: skip
def test_the_scan_finds_private_uses(
    source: str, module: str, found: list[tuple[int, str]]
) -> None:
    assert private_uses(source, module, module.rsplit(".", 1)[0]) == found


def _sources() -> list[Path]:
    return sorted(p for package in PROJECT for p in (ROOT / package).rglob("*.py"))


def test_no_module_uses_another_package_s_private_names() -> None:
    offenders = []
    for path in _sources():
        module, package = _module_of(path)
        for line, what in private_uses(path.read_text(encoding="utf-8"), module, package):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert offenders == [], "make it public (and say so) or move the code into the package"


def _packages_with_all() -> list[str]:
    names = []
    for init in sorted(p for package in PROJECT for p in (ROOT / package).rglob("__init__.py")):
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                names.append(_module_of(init)[0])
    return names


def test_packages_declaring_all_are_found() -> None:
    assert {"controller.lots", "controller.engine", "controller.recipes"} <= set(
        _packages_with_all()
    )


@pytest.mark.parametrize("package", _packages_with_all())
def test_all_lists_only_names_the_package_has(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert [n for n in exported if not hasattr(module, n)] == []
    assert len(set(exported)) == len(exported), "a name listed twice"
