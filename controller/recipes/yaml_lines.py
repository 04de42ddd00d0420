"""YAML with a line number for every key and item, so errors can say FILE:LINE.

PyYAML's composer already records where each node starts; this walks the node tree once,
records `path -> line`, refuses duplicate keys (PyYAML would silently keep the last one)
and then constructs plain Python data with the safe constructor.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

Path = tuple[str | int, ...]
# libyaml's parser is ~10x faster and records the same marks; PyYAML's is the fallback
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlProblem(Exception):
    def __init__(self, line: int, path: Path, reason: str) -> None:
        reason = " ".join(reason.split())  # libyaml's messages span lines; a problem is one
        super().__init__(reason)
        self.line = line
        self.path = path
        self.reason = reason


def load_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document; return (data, {path: 1-based line})."""
    try:
        loader = _Loader(text)  # the pure-Python reader refuses control characters right here
    except yaml.YAMLError as e:
        raise YamlProblem(1, (), f"YAML: {e}") from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else 1
            raise YamlProblem(line, (), f"YAML syntax: {e.problem or e}") from None
        except yaml.YAMLError as e:
            raise YamlProblem(1, (), f"YAML syntax: {e}") from None
        if node is None:
            return None, {}
        lines: dict[Path, int] = {}
        _walk(loader, node, (), lines)
        try:
            data = loader.construct_document(node)
        except yaml.YAMLError as e:
            raise YamlProblem(node.start_mark.line + 1, (), f"YAML: {e}") from None
        return data, lines
    finally:
        loader.dispose()


def _walk(loader: Any, node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem(key_node.start_mark.line + 1, path, "keys must be plain scalars")
            key = loader.construct_object(key_node)
            if key in seen:
                raise YamlProblem(
                    key_node.start_mark.line + 1, (*path, str(key)), f"duplicate key {key!r}"
                )
            seen.add(key)
            child = (*path, str(key))
            lines[child] = key_node.start_mark.line + 1
            _walk(loader, value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(loader, item, (*path, i), lines)


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of `path`, or of its nearest ancestor that has one."""
    p = tuple(path)
    while p and p not in lines:
        p = p[:-1]
    return lines.get(p, 1)


def dotted(path: Path) -> str:
    """steps.3.params.temp; a key that is not a plain name is quoted: steps.1.spec[":"]"""
    out = ""
    for p in path:
        if isinstance(p, int) or (
            isinstance(p, str) and p.replace("_", "a").replace("-", "a").isalnum()
        ):
            out += f".{p}" if out else str(p)
        else:
            out += f"[{json.dumps(str(p), ensure_ascii=False)}]"
    return out or "(top)"
