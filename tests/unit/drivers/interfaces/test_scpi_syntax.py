"""SCPI message syntax (drivers/protocols/scpi_syntax.py) on literal lines; the property
tests against a reference splitter are in tests/drivers/test_scpi_syntax.py."""

from __future__ import annotations

import pytest

from drivers.protocols.scpi_syntax import NO_ERROR, parse_error, quote, split_top, unquote


@pytest.mark.parametrize(
    ("text", "sep", "parts"),
    [
        ('IDLE,"",0.0;0;1,TARGETS,"CU AL"', ";", ['IDLE,"",0.0', "0", '1,TARGETS,"CU AL"']),
        ('RUNNING,"L1;2,3",41.7', ",", ["RUNNING", '"L1;2,3"', "41.7"]),
        ('"a;b";"c"', ";", ['"a;b"', '"c"']),
        ('2,105,"say ""hi"", then stop"', ",", ["2", "105", '"say ""hi"", then stop"']),
        (" A , B ", ",", ["A", "B"]),
        ("", ";", [""]),
        ("A;", ";", ["A", ""]),
        ('"";""', ";", ['""', '""']),
    ],
)
def test_split_top_splits_outside_strings_only(text: str, sep: str, parts: list[str]) -> None:
    assert split_top(text, sep) == parts


@pytest.mark.parametrize("text", ['IDLE,"open', '"a;b', 'x"y"z"'])
def test_an_unterminated_string_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="unterminated string"):
        split_top(text, ";")


def test_quote_doubles_embedded_quotes() -> None:
    assert quote('L"1') == '"L""1"'
    assert quote("") == '""'
    assert unquote('"L""1"') == 'L"1'
    assert unquote(' "J1" ') == "J1"
    assert unquote("CU") == "CU"  # not quoted: as it is
    assert unquote('"') == '"'  # a lone quote is not a string


@pytest.mark.parametrize(
    ("unit", "error"),
    [
        (NO_ERROR, (0, "No error")),
        (
            '-222,"Data out of range; POWER 25 out of range 1-20 kW"',
            (-222, "Data out of range; POWER 25 out of range 1-20 kW"),
        ),
        ('-221,"job ""J1"" exists"', (-221, 'job "J1" exists')),
    ],
)
def test_parse_error(unit: str, error: tuple[int, str]) -> None:
    assert parse_error(unit) == error


@pytest.mark.parametrize("unit", ["garbage", '1,"a",2', 'x,"text"', ""])
def test_a_unit_that_is_not_an_error_reply_raises(unit: str) -> None:
    with pytest.raises(ValueError):
        parse_error(unit)
