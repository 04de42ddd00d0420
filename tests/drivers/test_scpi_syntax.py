"""SCPI message splitting against a plain reference implementation, on arbitrary input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.protocols.scpi_syntax import parse_error, quote, split_top, unquote


def reference_split(text: str, sep: str) -> list[str]:
    parts, buf, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    if quoted:
        raise ValueError("unterminated")
    parts.append("".join(buf).strip())
    return parts


@given(st.text(alphabet='ab ;,"\\x', max_size=40), st.sampled_from(";,"))
def test_split_matches_the_reference(text: str, sep: str) -> None:
    try:
        expected = reference_split(text, sep)
    except ValueError:
        with pytest.raises(ValueError):
            split_top(text, sep)
        return
    assert split_top(text, sep) == expected


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\\n"), max_size=30))
def test_quote_round_trips(text: str) -> None:
    assert unquote(quote(text)) == text
    assert split_top(f"1,{quote(text)},2", ",")[1] == quote(text)


def test_error_reply() -> None:
    assert parse_error('-222,"Data out of range; POWER 25"') == (
        -222,
        "Data out of range; POWER 25",
    )
    with pytest.raises(ValueError):
        parse_error("garbage")
