"""SCPI message syntax (IEEE 488.2 subset) shared by the SCPI transport and the simulators.

A program or response message is a line of units separated by `;`; a unit's data elements
are separated by `,`; strings are double-quoted with `""` as an embedded quote.
"""

from __future__ import annotations

NO_ERROR = '0,"No error"'


def split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double-quoted strings."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    if quoted:
        raise ValueError(f"unterminated string in {text!r}")
    parts.append("".join(buf).strip())
    return parts


def quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def unquote(text: str) -> str:
    t = text.strip()
    if len(t) >= 2 and t[0] == '"' and t[-1] == '"':
        return t[1:-1].replace('""', '"')
    return t


def parse_error(unit: str) -> tuple[int, str]:
    """`-222,"Data out of range; ..."` -> (-222, 'Data out of range; ...')."""
    fields = split_top(unit, ",")
    if len(fields) != 2:
        raise ValueError(f"not an error reply: {unit!r}")
    return int(fields[0]), unquote(fields[1])
