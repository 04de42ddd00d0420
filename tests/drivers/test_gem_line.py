"""GEM entries of a line file: `protocol: gem` on any kind, and its settings checked with one
clear message naming the file and the field."""

from __future__ import annotations

import pytest

from drivers.line import LineError, parse_line


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"id": "D", "kind": "dicing", "protocol": "scpi"},
            r"dicing tools speak modbus \(or gem\), not scpi",
        ),
        ({"id": "D", "kind": "dicing", "protocol": "modbus", "gem": {}}, "gem settings given"),
        ({"id": "D", "kind": "dicing", "gem": {"mode": "sideways"}}, "tools.0.gem.mode"),
        ({"id": "D", "kind": "dicing", "gem": {"t3": 0}}, "tools.0.gem.t3"),
        ({"id": "D", "kind": "dicing", "gem": {"device_id": 70000}}, "tools.0.gem.device_id"),
    ],
)
def test_line_file_gem_settings_are_checked(entry: dict[str, object], message: str) -> None:
    with pytest.raises(LineError, match=message) as e:
        parse_line({"tools": [entry]}, "line.yaml")
    assert str(e.value).startswith("line.yaml: ")


def test_a_gem_block_alone_makes_a_gem_tool() -> None:
    line = parse_line({"tools": [{"id": "D", "kind": "dicing", "gem": {"device_id": 3}}]}, "x")
    t = line.tool("D")
    assert t.protocol == "gem" and t.gem is not None and t.gem.device_id == 3
