"""Rules of the house the type checker cannot see: a module uses another package only through
its public names (no `_private` import across packages), and a package's `__all__` lists only
names it has."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.unit.controller import sources

PROJECT = sources.PACKAGES


# Only files whose text could hold a private use are parsed (parsing the whole tree costs
# ~0.3-0.9 s on this machine): an import statement naming `_x` (or a module path with one),
# or `name._x` for a name other than self/cls. The AST below is the judge; this only never
# lets a candidate through unparsed (an import continued with a backslash aside, which
# ruff format never writes).
_IMPORTS = re.compile(
    r"^[ \t]*(?:from[ \t]+(\S+)[ \t]+import[ \t]*(\([^)]*\)|[^\n]*)|import[ \t]+([^\n]*))", re.M
)
_PRIVATE_WORD = re.compile(r"(?<![\w.])_(?!_)\w|\._(?!_)\w")
_PRIVATE_ATTRIBUTE = re.compile(r"\b(?!self\b|cls\b)[A-Za-z]\w*\._(?!_)[A-Za-z]")


def may_use_private(text: str) -> bool:
    for m in _IMPORTS.finditer(text):
        if _PRIVATE_WORD.search(" ".join(g for g in m.groups() if g)):
            return True
    return bool(_PRIVATE_ATTRIBUTE.search(text))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(path: Path) -> tuple[str, str]:
    """(module, package) of a source file: controller/lots/service.py is
    controller.lots.service in package controller.lots; an __init__ is its package."""
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def private_uses(source: str | ast.Module, module: str, package: str) -> list[tuple[int, str]]:
    """(line, what) of every private name this module takes from another project package:
    `from pkg.mod import _name`, `import pkg._mod`, or `mod._name` on a module imported from
    another package."""
    found: list[tuple[int, str]] = []
    foreign: set[str] = set()  # local names bound to modules of other packages
    tree = ast.parse(source) if isinstance(source, str) else source
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


def test_no_module_uses_another_package_s_private_names() -> None:
    offenders = []
    for path in sources.files():
        if not may_use_private(sources.text(path)):
            continue
        module, package = _module_of(path)
        for line, what in private_uses(sources.tree(path), module, package):
            offenders.append(f"{path}:{line}: {what}")
    assert offenders == [], "make it public (and say so) or move the code into the package"


def _all_of(init: Path) -> list[str] | None:
    for node in sources.tree(init).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert isinstance(node, ast.Assign)
            value = ast.literal_eval(node.value)  # a literal list, or this fails
            assert isinstance(value, list | tuple), f"{init}: __all__ is not a list"
            return [str(v) for v in value]
    return None


def _bound(init: Path) -> set[str]:
    """Names `from package import name` finds: what the __init__ binds, and submodules."""
    names: set[str] = set()
    for node in sources.tree(init).body:
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    folder = sources.ROOT / init.parent
    names |= {p.stem for p in folder.glob("*.py")} | {
        p.parent.name for p in folder.glob("*/__init__.py")
    }
    return names


INITS = [p for p in sources.files() if p.name == "__init__.py" and _all_of(p) is not None]


def test_packages_declaring_all_are_found() -> None:
    assert {Path("controller/lots/__init__.py"), Path("controller/engine/__init__.py")} <= set(
        INITS
    )


@pytest.mark.parametrize("init", INITS, ids=lambda p: str(p.parent))
def test_all_lists_only_names_the_package_has(init: Path) -> None:
    exported = _all_of(init) or []
    assert [n for n in exported if n not in _bound(init)] == []
    assert len(set(exported)) == len(exported), "a name listed twice"


def test_the_all_check_sees_a_missing_name() -> None:
    init = Path("controller/lots/__init__.py")
    assert "LotService" in _bound(init) and "LotServices" not in _bound(init)
