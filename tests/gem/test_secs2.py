"""SECS-II codec against literal byte strings (SEMI E5 §9: format byte = code << 2 | length
bytes; the codes in octal: L 00, B 10, BOOLEAN 11, A 20, J 21, C2 22, I8 30, I1 31, I2 32,
I4 34, F8 40, F4 44, U8 50, U1 51, U2 52, U4 54)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.protocols import secs2 as s
from drivers.protocols.secs2 import Item, SecsFormatError, decode, encode

CASES: list[tuple[Item, bytes]] = [
    (s.L(), b"\x01\x00"),
    (s.L(s.A("AB"), s.U4(5)), b"\x01\x02\x41\x02AB\xb1\x04\x00\x00\x00\x05"),
    (s.B(0x00, 0x80), b"\x21\x02\x00\x80"),
    (s.BOOLEAN(True, False), b"\x25\x02\x01\x00"),
    (s.A(""), b"\x41\x00"),
    (s.A("MDLN"), b"\x41\x04MDLN"),
    (s.J("A¥ｱ"), b"\x45\x03\x41\x5c\xb1"),
    (s.C2("µ"), b"\x49\x02\x00\xb5"),
    (s.I1(-1, 127), b"\x65\x02\xff\x7f"),
    (s.I2(-2), b"\x69\x02\xff\xfe"),
    (s.I4(-3), b"\x71\x04\xff\xff\xff\xfd"),
    (s.I8(-4), b"\x61\x08" + b"\xff" * 7 + b"\xfc"),
    (s.U1(200), b"\xa5\x01\xc8"),
    (s.U2(0x1234), b"\xa9\x02\x12\x34"),
    (s.U4(1, 2), b"\xb1\x08\x00\x00\x00\x01\x00\x00\x00\x02"),
    (s.U8(1 << 40), b"\xa1\x08\x00\x00\x01\x00\x00\x00\x00\x00"),
    (s.F4(1.5), b"\x91\x04\x3f\xc0\x00\x00"),
    (s.F8(-2.0), b"\x81\x08\xc0\x00\x00\x00\x00\x00\x00\x00"),
    (s.U4(), b"\xb1\x00"),  # zero-length item: "no value" (e.g. all alarms in S5F3)
]


@pytest.mark.parametrize(("item", "wire"), CASES, ids=[str(c[0]) for c in CASES])
def test_encode_and_decode_literal_bytes(item: Item, wire: bytes) -> None:
    assert encode(item) == wire
    assert decode(wire) == item


def test_two_and_three_length_bytes() -> None:
    text = "x" * 300
    assert encode(s.A(text))[:3] == b"\x42\x01\x2c"  # 2 length bytes: 0x012C = 300
    blob = bytes(70_000)
    assert encode(s.B(blob))[:4] == b"\x23\x01\x11\x70"  # 3 length bytes: 70000
    assert decode(encode(s.B(blob))).binary() == blob
    # a writer may use more length bytes than needed; readers must accept it
    assert decode(b"\x43\x00\x00\x02hi") == s.A("hi")


def test_s1f14_establish_communications_reply() -> None:
    # <L [2] <B 0x00> <L [2] <A "KERF-6000"> <A "1.0.0">>>
    wire = b"\x01\x02\x21\x01\x00\x01\x02\x41\x09KERF-6000\x41\x051.0.0"
    commack, ident = decode(wire).items(2)
    assert commack.integer() == 0
    assert [i.text() for i in ident.items(2)] == ["KERF-6000", "1.0.0"]


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"", "item expected at byte 0"),
        (b"\xfd\x01\x00", "unknown format code 0o77"),
        (b"\x40\x00", "no length bytes"),
        (b"\x41\x05AB", "claims 5 bytes, 2 left"),
        (b"\x01\x02\x41\x00", "item expected at byte 4"),
        (b"\xb1\x03\x00\x00\x01", "not a multiple of 4"),
        (b"\x41\x01\xb5", "not ASCII"),
        (b"\x41\x01A\x00", "1 bytes after the item"),
        (b"\x42\x01", "cut off"),
    ],
)
def test_malformed_bytes_name_the_problem(wire: bytes, message: str) -> None:
    with pytest.raises(SecsFormatError, match=message):
        decode(wire)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(SecsFormatError, match="nested deeper"):
        decode(b"\x01\x01" * 100 + b"\x01\x00")


def test_accessors_check_the_shape() -> None:
    item = s.L(s.A("x"))
    with pytest.raises(SecsFormatError, match=r"expected a list of 2, got <L \[1\] <A \"x\">>"):
        item.items(2)
    with pytest.raises(SecsFormatError, match="expected one integer"):
        s.U4(1, 2).integer()
    with pytest.raises(SecsFormatError, match="expected text"):
        s.U4(1).text()
    assert s.B(4).integer() == 4  # HCACK and friends are B
    assert s.U2(7).number() == 7.0


def test_constructors_refuse_what_the_format_cannot_hold() -> None:
    with pytest.raises(SecsFormatError, match="does not fit U1"):
        s.U1(256)
    with pytest.raises(SecsFormatError, match="ASCII"):
        s.A("µm")
    with pytest.raises(SecsFormatError, match="no JIS-8 code"):
        s.J("µ")
    with pytest.raises(SecsFormatError, match="integers"):
        s.I4(1.5)  # type: ignore[arg-type]


def test_sml_rendering() -> None:
    item = s.L(s.A("PP-SELECT"), s.B(0), s.U4(1, 2), s.BOOLEAN(True), s.L())
    assert str(item) == '<L [5] <A "PP-SELECT"> <B 0x00> <U4 1 2> <BOOLEAN T> <L [0]>>'


_leaf = st.one_of(
    st.binary(max_size=20).map(s.B),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=20).map(s.A),
    st.lists(st.booleans(), max_size=5).map(lambda v: s.BOOLEAN(*v)),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5).map(lambda v: s.I4(*v)),
    st.lists(st.integers(0, 2**64 - 1), max_size=5).map(lambda v: s.U8(*v)),
    st.lists(st.floats(allow_nan=False), max_size=5).map(lambda v: s.F8(*v)),
)
_items = st.recursive(_leaf, lambda kids: st.lists(kids, max_size=4).map(lambda v: s.L(*v)))


@given(_items)
def test_round_trip(item: Item) -> None:
    assert decode(encode(item)) == item
