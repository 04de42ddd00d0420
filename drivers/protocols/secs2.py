"""SECS-II (SEMI E5) data items: one typed `Item` for every format, and its byte codec.

An item on the wire is a format byte (format code << 2 | number of length bytes), one to
three length bytes (big-endian: the number of data bytes, or of elements for a list), then
the data. Numbers are big-endian; A is ASCII; J is JIS-8 (JIS X 0201); C2 is UCS-2.

Build items with the constructors named after their formats (`L(A("x"), U4(5))`); read them
with the accessors (`item.items(2)`, `item.text()`, `item.integer()`, ...), which check the
format and raise `SecsFormatError` naming what was expected and what came, so a driver turns
a reply of the wrong shape into one clear error instead of an IndexError deep in its logic.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

MAX_LENGTH = 0xFFFFFF  # three length bytes


class SecsFormatError(ValueError):
    """Bytes that are no SECS-II item, or an item of another shape than expected."""


class Fmt(IntEnum):
    """Format codes (octal, as E5 writes them)."""

    L = 0o00
    B = 0o10
    BOOLEAN = 0o11
    A = 0o20
    J = 0o21
    C2 = 0o22
    I8 = 0o30
    I1 = 0o31
    I2 = 0o32
    I4 = 0o34
    F8 = 0o40
    F4 = 0o44
    U8 = 0o50
    U1 = 0o51
    U2 = 0o52
    U4 = 0o54


# numeric formats: struct code and, for integers, the allowed range
_NUMERIC: dict[Fmt, str] = {
    Fmt.I1: "b", Fmt.I2: "h", Fmt.I4: "i", Fmt.I8: "q",
    Fmt.U1: "B", Fmt.U2: "H", Fmt.U4: "I", Fmt.U8: "Q",
    Fmt.F4: "f", Fmt.F8: "d",
}  # fmt: skip
_INTEGER = frozenset((Fmt.I1, Fmt.I2, Fmt.I4, Fmt.I8, Fmt.U1, Fmt.U2, Fmt.U4, Fmt.U8))
_FLOAT = frozenset((Fmt.F4, Fmt.F8))
_TEXT = frozenset((Fmt.A, Fmt.J, Fmt.C2))
_BY_CODE = {f.value: f for f in Fmt}

ItemValue = tuple["Item", ...] | bytes | str | tuple[int, ...] | tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """One SECS-II item. `value` is a tuple of items (L), bytes (B), str (A, J, C2), a tuple
    of bools (BOOLEAN, held as 0/1 ints), ints (I*, U*) or floats (F*)."""

    fmt: Fmt
    value: ItemValue

    # -- reading, with shape checks ---------------------------------------------------------

    def items(self, n: int | None = None) -> tuple[Item, ...]:
        """The elements of a list, checking the count when `n` is given."""
        if self.fmt is not Fmt.L:
            raise SecsFormatError(f"expected a list, got {self}")
        value = self.value
        assert isinstance(value, tuple)
        if n is not None and len(value) != n:
            raise SecsFormatError(f"expected a list of {n}, got {self}")
        return value  # type: ignore[return-value]

    def text(self) -> str:
        if self.fmt not in _TEXT:
            raise SecsFormatError(f"expected text (A), got {self}")
        assert isinstance(self.value, str)
        return self.value

    def binary(self) -> bytes:
        if self.fmt is not Fmt.B:
            raise SecsFormatError(f"expected binary (B), got {self}")
        assert isinstance(self.value, bytes)
        return self.value

    def integers(self) -> tuple[int, ...]:
        """Values of an integer, binary or boolean item."""
        if self.fmt in _INTEGER or self.fmt is Fmt.BOOLEAN:
            return self.value  # type: ignore[return-value]
        if self.fmt is Fmt.B:
            assert isinstance(self.value, bytes)
            return tuple(self.value)
        raise SecsFormatError(f"expected an integer, got {self}")

    def integer(self) -> int:
        """The one value of an integer, binary or boolean item."""
        values = self.integers()
        if len(values) != 1:
            raise SecsFormatError(f"expected one integer, got {self}")
        return values[0]

    def numbers(self) -> tuple[float, ...]:
        """Values of a float or integer item, as floats."""
        if self.fmt in _FLOAT or self.fmt in _INTEGER:
            return tuple(float(v) for v in self.value)  # type: ignore[arg-type]
        raise SecsFormatError(f"expected a number, got {self}")

    def number(self) -> float:
        values = self.numbers()
        if len(values) != 1:
            raise SecsFormatError(f"expected one number, got {self}")
        return values[0]

    def boolean(self) -> bool:
        if self.fmt is not Fmt.BOOLEAN or len(self.value) != 1:
            raise SecsFormatError(f"expected one boolean, got {self}")
        return bool(self.value[0])

    def __len__(self) -> int:
        return len(self.value)

    def __str__(self) -> str:
        """SML, the notation of SECS tool logs: <L [2] <A "x"> <U4 5>>."""
        if self.fmt is Fmt.L:
            inner = " ".join(str(i) for i in self.items())
            return f"<L [{len(self.value)}]{' ' + inner if inner else ''}>"
        if self.fmt in _TEXT:
            return f'<{self.fmt.name} "{self.text()}">'
        if self.fmt is Fmt.B:
            assert isinstance(self.value, bytes)
            return f"<B {' '.join(f'0x{b:02X}' for b in self.value)}>".replace(" >", ">")
        body = " ".join(
            ("T" if v else "F") if self.fmt is Fmt.BOOLEAN else f"{v:g}" if isinstance(v, float)
            else str(v)
            for v in self.value
        )  # fmt: skip
        return f"<{self.fmt.name}{' ' + body if body else ''}>"


# -- constructors --------------------------------------------------------------------------


def L(*items: Item) -> Item:
    return Item(Fmt.L, tuple(items))


def B(*values: int | bytes) -> Item:
    data = b"".join(v if isinstance(v, bytes) else bytes([v]) for v in values)
    return Item(Fmt.B, data)


def BOOLEAN(*values: bool) -> Item:
    return Item(Fmt.BOOLEAN, tuple(int(bool(v)) for v in values))


def A(text: str) -> Item:
    try:
        text.encode("ascii")
    except UnicodeEncodeError:
        raise SecsFormatError(f"A items are ASCII: {text!r}") from None
    return Item(Fmt.A, text)


def J(text: str) -> Item:
    _jis8_encode(text)  # refuse what JIS-8 cannot hold
    return Item(Fmt.J, text)


def C2(text: str) -> Item:
    if any(ord(c) > 0xFFFF for c in text):
        raise SecsFormatError(f"C2 holds UCS-2 only: {text!r}")
    return Item(Fmt.C2, text)


def _numeric(fmt: Fmt, values: Sequence[float]) -> Item:
    if fmt in _INTEGER:
        code = _NUMERIC[fmt]
        bits = struct.calcsize(code) * 8
        signed = code.islower()
        lo = -(1 << (bits - 1)) if signed else 0
        hi = (1 << (bits - 1 if signed else bits)) - 1
        out = []
        for v in values:
            if isinstance(v, float) and not v.is_integer():
                raise SecsFormatError(f"{fmt.name} holds integers, not {v!r}")
            i = int(v)
            if not lo <= i <= hi:
                raise SecsFormatError(f"{i} does not fit {fmt.name} ({lo}..{hi})")
            out.append(i)
        return Item(fmt, tuple(out))
    return Item(fmt, tuple(float(v) for v in values))


def I1(*v: int) -> Item:
    return _numeric(Fmt.I1, v)


def I2(*v: int) -> Item:
    return _numeric(Fmt.I2, v)


def I4(*v: int) -> Item:
    return _numeric(Fmt.I4, v)


def I8(*v: int) -> Item:
    return _numeric(Fmt.I8, v)


def U1(*v: int) -> Item:
    return _numeric(Fmt.U1, v)


def U2(*v: int) -> Item:
    return _numeric(Fmt.U2, v)


def U4(*v: int) -> Item:
    return _numeric(Fmt.U4, v)


def U8(*v: int) -> Item:
    return _numeric(Fmt.U8, v)


def F4(*v: float) -> Item:
    return _numeric(Fmt.F4, v)


def F8(*v: float) -> Item:
    return _numeric(Fmt.F8, v)


# -- JIS-8 (JIS X 0201): ASCII with ¥ and ‾ in place of \ and ~, plus half-width katakana --

_JIS8_SPECIAL = {0x5C: "¥", 0x7E: "‾"}
_JIS8_BACK = {v: k for k, v in _JIS8_SPECIAL.items()}


def _jis8_decode(data: bytes) -> str:
    out = []
    for b in data:
        if b in _JIS8_SPECIAL:
            out.append(_JIS8_SPECIAL[b])
        elif b < 0x80:
            out.append(chr(b))
        elif 0xA1 <= b <= 0xDF:
            out.append(chr(0xFF61 + b - 0xA1))
        else:
            raise SecsFormatError(f"byte 0x{b:02X} is not JIS-8")
    return "".join(out)


def _jis8_encode(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        o = ord(ch)
        if ch in _JIS8_BACK:
            out.append(_JIS8_BACK[ch])
        elif o < 0x80 and o not in _JIS8_SPECIAL:
            out.append(o)
        elif 0xFF61 <= o <= 0xFF9F:
            out.append(o - 0xFF61 + 0xA1)
        else:
            raise SecsFormatError(f"{ch!r} has no JIS-8 code")
    return bytes(out)


# -- encoding ------------------------------------------------------------------------------


def _header(fmt: Fmt, length: int) -> bytes:
    if length > MAX_LENGTH:
        raise SecsFormatError(f"{fmt.name} item of {length} is longer than {MAX_LENGTH}")
    n = 1 if length < 0x100 else 2 if length < 0x10000 else 3
    return bytes([fmt << 2 | n]) + length.to_bytes(n, "big")


def encode(item: Item) -> bytes:
    out = bytearray()
    _encode_into(item, out)
    return bytes(out)


def _encode_into(item: Item, out: bytearray) -> None:
    fmt, value = item.fmt, item.value
    if fmt is Fmt.L:
        assert isinstance(value, tuple)
        out += _header(fmt, len(value))
        for child in value:
            _encode_into(child, out)  # type: ignore[arg-type]
        return
    if fmt is Fmt.B:
        assert isinstance(value, bytes)
        data = value
    elif fmt is Fmt.A:
        assert isinstance(value, str)
        data = value.encode("ascii")
    elif fmt is Fmt.J:
        assert isinstance(value, str)
        data = _jis8_encode(value)
    elif fmt is Fmt.C2:
        assert isinstance(value, str)
        data = value.encode("utf-16-be")
    elif fmt is Fmt.BOOLEAN:
        data = bytes(1 if v else 0 for v in value)
    else:
        data = struct.pack(f">{len(value)}{_NUMERIC[fmt]}", *value)
    out += _header(fmt, len(data))
    out += data


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes) -> Item:
    """Exactly one item; trailing bytes are an error."""
    item, end = _decode_at(bytes(data), 0, 0)
    if end != len(data):
        raise SecsFormatError(f"{len(data) - end} bytes after the item ending at byte {end}")
    return item


_MAX_DEPTH = 64
_SIZE = {fmt: struct.calcsize(code) for fmt, code in _NUMERIC.items()}


def _decode_at(data: bytes, pos: int, depth: int) -> tuple[Item, int]:
    # A status reply is a dozen items: this runs per item, so it slices and unpacks in place.
    if depth > _MAX_DEPTH:
        raise SecsFormatError(f"lists nested deeper than {_MAX_DEPTH} at byte {pos}")
    total = len(data)
    if pos >= total:
        raise SecsFormatError(f"item expected at byte {pos}, data ends")
    head = data[pos]
    n = head & 0b11
    fmt = _BY_CODE.get(head >> 2)
    if fmt is None:
        raise SecsFormatError(f"unknown format code 0o{head >> 2:02o} at byte {pos}")
    if n == 0:
        raise SecsFormatError(f"format byte 0x{head:02X} at byte {pos} has no length bytes")
    start = pos + 1 + n
    if start > total:
        raise SecsFormatError(f"length of the item at byte {pos} is cut off")
    length = data[pos + 1] if n == 1 else int.from_bytes(data[pos + 1 : start], "big")
    if fmt is Fmt.L:
        children = []
        pos = start
        for _ in range(length):
            child, pos = _decode_at(data, pos, depth + 1)
            children.append(child)
        return Item(fmt, tuple(children)), pos
    end = start + length
    if end > total:
        raise SecsFormatError(
            f"{fmt.name} item at byte {pos} claims {length} bytes, {total - start} left"
        )
    size = _SIZE.get(fmt)
    if size is not None:
        if length % size:
            raise SecsFormatError(
                f"{fmt.name} item at byte {start} has {length} bytes, not a multiple of {size}"
            )
        return Item(fmt, struct.unpack_from(f">{length // size}{_NUMERIC[fmt]}", data, start)), end
    raw = data[start:end]
    if fmt is Fmt.A:
        try:
            return Item(fmt, raw.decode("ascii")), end
        except UnicodeDecodeError:
            raise SecsFormatError(f"A item at byte {start} is not ASCII") from None
    if fmt is Fmt.B:
        return Item(fmt, raw), end
    if fmt is Fmt.J:
        return Item(fmt, _jis8_decode(raw)), end
    if fmt is Fmt.C2:
        if length % 2:
            raise SecsFormatError(f"C2 item at byte {start} has an odd length {length}")
        return Item(fmt, raw.decode("utf-16-be", errors="replace")), end
    return Item(fmt, tuple(1 if b else 0 for b in raw)), end  # BOOLEAN
