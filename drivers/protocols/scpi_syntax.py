"""SCPI message syntax (IEEE 488.2 subset) shared by the SCPI transport and the simulators.

A program or response message is a line of units separated by `;`; a unit's data elements
are separated by `,`; strings are double-quoted with `""` as an embedded quote.
"""

from __future__ import annotations

import re

NO_ERROR = '0,"No error"'


# One element: quoted strings (with "" inside) and anything but the separator or a quote.
_ELEMENT = {sep: re.compile(rf'(?:"(?:[^"]|"")*"|[^"{sep}])*') for sep in ";,"}


def split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` (";" or ",") outside double-quoted strings."""
    if '"' not in text:  # the common case, at C speed
        return [part.strip() for part in text.split(sep)]
    pieces = text.split('"')  # odd pieces are inside strings ("" escapes leave an empty one)
    if len(pieces) % 2 and not any(sep in p for p in pieces[1::2]):
        return [part.strip() for part in text.split(sep)]  # no separator inside a string
    element = _ELEMENT[sep]
    parts: list[str] = []
    pos = 0
    while True:
        m = element.match(text, pos)
        assert m is not None  # the pattern matches the empty string
        parts.append(m.group(0).strip())
        pos = m.end()
        if pos == len(text):
            return parts
        if text[pos] != sep:  # stopped at a quote that opens no complete string
            raise ValueError(f"unterminated string in {text!r}")
        pos += 1


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
