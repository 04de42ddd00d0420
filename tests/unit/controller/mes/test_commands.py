"""MES command verdicts with no broker and no database: `parse` (size, depth, shape,
encoding), `authenticate` (schema version, signature, addressee), `validate` (one line naming
the first bad field), `check_fresh` (stale, future, naive), the canonical signed form, and a
dispatch turned into a lot request."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.lots.request import LotRequest
from controller.mes.commands import (
    COMMAND_SCHEMA,
    MAX_BYTES,
    SKEW,
    TTL,
    Abort,
    Dispatch,
    Hold,
    Rejected,
    Release,
    authenticate,
    canonical,
    check_fresh,
    parse,
    sign,
    unsigned_command,
    validate,
)

SECRET = "s3cret"
CLIENTS = {"mes": SECRET, "other": "0ther"}
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
BAD_UTF8 = "malformed JSON ('utf-8' codec can't decode byte {} in position {}: invalid start byte)"
UNIT_TEXT = (
    "a count 0..1000, a list of 1..1000 unit ids, or one unit id"
    " (unit ids: letters, digits, '.', '_', '-')"
)


def _body(command: str = "hold", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema": COMMAND_SCHEMA,
        "command_id": "C-1",
        "client": "mes",
        "site": "site-1",
        "station": "st-1",
        "issued_at": "2026-12-06T10:00:00Z",
        "command": command,
        "lot_id": "L1",
    }
    if command == "dispatch":
        body["recipe"] = {"id": "unit-flow"}
    return {**body, **fields}


def _signed(command: str = "hold", secret: str = SECRET, **fields: Any) -> dict[str, Any]:
    return sign(_body(command, **fields), secret)


def _refused(fn: Any, *args: Any) -> str:
    with pytest.raises(Rejected) as refused:
        fn(*args)
    assert refused.value.reason == str(refused.value)
    return refused.value.reason


# -- parse -----------------------------------------------------------------------------------------


def test_parse_gives_the_object() -> None:
    assert parse(b'{"command": "hold", "reason": "D\xc3\xbcse"}') == {
        "command": "hold",
        "reason": "Düse",
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * (MAX_BYTES + 1), f"command of {MAX_BYTES + 1} bytes is larger than 64 KiB"),
        (b"[" * 60_000, "malformed JSON: nested too deeply"),
        (b"[1, 2]", "malformed JSON: not an object"),
        (b'"hold"', "malformed JSON: not an object"),
        (b"null", "malformed JSON: not an object"),
        (b"", "malformed JSON (Expecting value: line 1 column 1 (char 0))"),
        (b'{"lot_id": "\xff"}', BAD_UTF8.format("0xff", 12)),
        (b"\x80abc", BAD_UTF8.format("0x80", 0)),
    ],
    ids=["too-big", "too-deep", "list", "string", "null", "empty", "bad-utf8", "bad-utf8-start"],
)
def test_parse_refuses_with_one_line(raw: bytes, reason: str) -> None:
    assert _refused(parse, raw) == reason


def test_the_size_cap_is_inclusive() -> None:
    padded = b'{"pad": "' + b"x" * (MAX_BYTES - 11) + b'"}'
    assert len(padded) == MAX_BYTES and set(parse(padded)) == {"pad"}


# -- authenticate ----------------------------------------------------------------------------------


def test_a_signed_command_for_this_station_is_authentic() -> None:
    authenticate(_signed(), CLIENTS, "site-1", "st-1")
    authenticate(_signed(client="other", secret="0ther"), CLIENTS, "site-1", "st-1")


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (
            {**_signed(), "schema": "fabline.command/1"},
            "wrong schema version 'fabline.command/1' (expected 'fabline.command/2')"
            " (sign site, station and issued_at: docs/mes.md)",
        ),
        (
            {k: v for k, v in _signed().items() if k != "schema"},
            "wrong schema version None (expected 'fabline.command/2')",
        ),
        (
            {**_signed(), "schema": "x" * 200},
            "wrong schema version '" + "x" * 78 + "… (expected 'fabline.command/2')",
        ),
        (_signed(command_id=None), "command_id missing or longer than 64"),
        (_signed(command_id=""), "command_id missing or longer than 64"),
        (_signed(command_id="C" * 65), "command_id missing or longer than 64"),
        (_signed(command_id=7), "command_id missing or longer than 64"),
        (_signed(client="stranger"), "not authorised"),
        (_signed(secret="guess"), "not authorised"),
        ({**_signed(), "hmac": None}, "not authorised"),
        ({k: v for k, v in _signed().items() if k != "hmac"}, "not authorised"),
        ({**_signed(), "lot_id": "L2"}, "not authorised"),  # tampered after signing
        ({**_signed(), "reason": "added"}, "not authorised"),
        (_signed(site="site-2"), "command is for site 'site-2', this is 'site-1'"),
        (_signed(station="st-2"), "command is for station 'st-2', this is 'st-1'"),
        (_signed(station=None), "command is for station None, this is 'st-1'"),
    ],
    ids=[
        "schema-v1-hint",
        "no-schema",
        "long-schema-cut",
        "no-id",
        "empty-id",
        "long-id",
        "number-id",
        "unknown-client",
        "wrong-secret",
        "null-mac",
        "no-mac",
        "tampered-lot",
        "tampered-added-field",
        "other-site",
        "other-station",
        "no-station",
    ],
)
def test_authenticate_refuses(cmd: dict[str, Any], reason: str) -> None:
    assert _refused(authenticate, cmd, CLIENTS, "site-1", "st-1") == reason


# -- validate --------------------------------------------------------------------------------------


def test_validate_gives_the_typed_command() -> None:
    for kind, cls in (("hold", Hold), ("release", Release), ("abort", Abort)):
        command = validate(_signed(kind, reason="why"))
        assert type(command) is cls and command.reason == "why" and command.lot_id == "L1"
        assert command.issued_at == NOW and command.schema_ == COMMAND_SCHEMA
    dispatch = validate(_signed("dispatch"))
    assert isinstance(dispatch, Dispatch) and dispatch.recipe.id == "unit-flow"


@pytest.mark.parametrize(
    ("command", "field", "value", "reason"),
    [
        ("hold", "command_id", "", "command_id: String should have at least 1 character"),
        ("hold", "command_id", "C" * 65, "command_id: String should have at most 64 characters"),
        ("hold", "client", "bad client", "client: String should match pattern"),
        ("hold", "site", "", "site: String should match pattern"),
        ("hold", "station", "a/b", "station: String should match pattern"),
        ("hold", "issued_at", "yesterday", "issued_at: Input should be a valid datetime"),
        ("hold", "lot_id", "../x", "lot_id: String should match pattern"),
        ("hold", "reason", "x" * 501, "reason: String should have at most 500 characters"),
        ("hold", "hmac", "zz", "hmac: String should match pattern '^[0-9a-f]{64}$'"),
        ("hold", "schema", "fabline.command/1", "schema: Input should be 'fabline.command/2'"),
        ("dispatch", "recipe", "unit-flow", "recipe: Input should be a valid dictionary"),
        ("dispatch", "recipe", {"id": ""}, "recipe.id: String should have at least 1 character"),
        ("dispatch", "recipe", {"id": "r", "version": 0}, "recipe.version: Input should be"),
        ("dispatch", "recipe", {"id": "r", "hash": "XYZ"}, "recipe.hash: String should match"),
        ("dispatch", "options", {"a": 5}, "options.a: Input should be a valid string"),
        ("dispatch", "options", {"a": "x" * 201}, "options.a: String should have at most 200"),
        ("dispatch", "priority", 1001, "priority: Input should be less than or equal to 1000"),
        ("dispatch", "priority", "high", "priority: Input should be a valid integer"),
        ("dispatch", "inputs", "wafers=3", "inputs: Input should be a valid dictionary"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_each_bad_field_is_named(command: str, field: str, value: Any, reason: str) -> None:
    text = _refused(validate, {**_signed(command), field: value})  # validate: after the mac
    assert text.startswith(reason)
    assert "(and " not in text  # one problem, one line


@pytest.mark.parametrize(
    "value", [-1, 1001, True, 3.5, None, [], ["../x"], ["W1", 7], "../x", {"n": 3}]
)
def test_an_input_value_gets_one_clear_message(value: Any) -> None:
    """A union of count / id list / one id would otherwise report one error per member."""
    text = _refused(validate, _signed("dispatch", inputs={"wafers": value}))
    assert text == f"inputs.wafers: {UNIT_TEXT}"


@pytest.mark.parametrize("value", [0, 1000, ["W1", "W2"], "DIELOT7"])
def test_an_input_value_is_a_count_ids_or_one_id(value: Any) -> None:
    command = validate(_signed("dispatch", inputs={"wafers": value}))
    assert isinstance(command, Dispatch) and command.inputs == {"wafers": value}


def test_unknown_and_missing_fields_are_named() -> None:
    assert _refused(validate, _signed(colour="red")) == "colour: unknown field"
    assert _refused(validate, _signed(recipe={"id": "r"})) == "recipe: unknown field"
    recipe = {"id": "r", "colour": 1}
    assert _refused(validate, _signed("dispatch", recipe=recipe)) == "recipe.colour: unknown field"
    no_recipe = {k: v for k, v in _signed("dispatch").items() if k != "recipe"}
    assert _refused(validate, no_recipe) == "recipe: Field required"


def test_more_problems_are_counted_not_listed() -> None:
    text = _refused(validate, _signed("dispatch", lot_id="../x", priority=5000))
    assert text.startswith("lot_id: String should match pattern") and text.endswith("(and 1 more)")


@pytest.mark.parametrize("kind", ["x", None, 5, "Dispatch"])
def test_an_unknown_command_lists_the_commands(kind: Any) -> None:
    assert _refused(validate, _signed(command=kind)) == (
        f"unknown command {kind!r} (commands: dispatch, hold, release, abort, split, merge,"
        " scrap, rework)"
    )


def test_the_lot_operations_are_typed_commands() -> None:
    split = validate(_signed("split", units=["L1-W02"], into="L1.9"))
    assert (split.command, split.units, split.into) == ("split", ["L1-W02"], "L1.9")  # type: ignore[union-attr]
    merge = validate(_signed("merge", lots=["L2", "L3"]))
    assert merge.lots == ["L2", "L3"]  # type: ignore[union-attr]
    scrap = validate(_signed("scrap", code="BROKEN", reason="edge crack"))
    assert (scrap.units, scrap.code, scrap.reason) == ([], "BROKEN", "edge crack")  # type: ignore[union-attr]
    rework = validate(_signed("rework", route="reball", units=["B1"]))
    assert (rework.route, rework.units, rework.into) == ("reball", ["B1"], None)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("command", "fields", "reason"),
    [
        ("split", {}, "units: Field required"),
        ("split", {"units": []}, "units: List should have at least 1 item after validation, not 0"),
        ("split", {"units": ["bad unit"]}, "units.0: String should match pattern"),
        ("merge", {}, "lots: Field required"),
        ("rework", {}, "route: Field required"),
        ("scrap", {"units": "L1-W01"}, "units: Input should be a valid list"),
    ],
)
def test_a_bad_lot_operation_is_refused_naming_the_field(
    command: str, fields: dict[str, Any], reason: str
) -> None:
    assert _refused(validate, _signed(command, **fields)).startswith(reason)


def test_a_refused_value_is_never_echoed_whole() -> None:
    secretish = "k" * 400
    for field in ("client", "lot_id", "hmac"):
        text = _refused(validate, {**_signed(), field: secretish})
        assert secretish[:40] not in text and len(text) <= 300


# -- check_fresh -----------------------------------------------------------------------------------


def _issued(when: datetime | str) -> Hold:
    issued = when if isinstance(when, str) else when.isoformat()
    command = validate(_signed(issued_at=issued))
    assert isinstance(command, Hold)
    return command


@pytest.mark.parametrize("when", [NOW, NOW - TTL, NOW + SKEW, NOW - timedelta(seconds=1)], ids=str)
def test_a_fresh_command_is_taken(when: datetime) -> None:
    check_fresh(_issued(when), NOW)


def test_a_stale_command_is_refused_with_its_age() -> None:
    text = _refused(check_fresh, _issued(NOW - TTL - timedelta(seconds=1)), NOW)
    assert text == "stale command: issued 301 s ago, commands are taken for 300 s"
    short = timedelta(seconds=30)
    assert _refused(check_fresh, _issued(NOW - timedelta(seconds=31)), NOW, short) == (
        "stale command: issued 31 s ago, commands are taken for 30 s"
    )


def test_a_command_from_the_future_is_refused() -> None:
    text = _refused(check_fresh, _issued(NOW + SKEW + timedelta(seconds=1)), NOW)
    assert text == (
        "issued_at 2026-12-06T10:01:01+00:00 is in the future"
        " (more than 60 s ahead of the station's clock)"
    )


def test_a_time_without_a_zone_is_refused() -> None:
    assert _refused(check_fresh, _issued("2026-12-06T10:00:00"), NOW) == (
        "issued_at must carry a time zone (e.g. 2026-12-06T10:00:00Z)"
    )


def test_another_zone_is_the_same_instant() -> None:
    check_fresh(_issued("2026-12-06T11:00:00+01:00"), NOW)


# -- the signed form -------------------------------------------------------------------------------


def test_the_canonical_form_sorts_keys_drops_the_mac_and_keeps_text_as_utf8() -> None:
    cmd = {"reason": "Düse verstopft", "lot_id": "L1", "hmac": "f" * 64, "command": "hold"}
    assert canonical(cmd) == ('{"command":"hold","lot_id":"L1","reason":"Düse verstopft"}'.encode())
    assert canonical(dict(reversed(list(cmd.items())))) == canonical(cmd)


def test_the_signature_is_pinned() -> None:
    """What an MES client computes (docs/mes.md): a change here breaks every client."""
    body = _body(reason="Düse verstopft")
    signed = sign(body, SECRET)
    assert signed["hmac"] == "f2aca0946b204c990a2c97436ae7415385ef0ab2e8e7001a761c9f349bc9634b"
    expected = hmac.new(SECRET.encode(), canonical(body), hashlib.sha256).hexdigest()
    assert signed["hmac"] == expected
    assert "hmac" not in body  # the body is left as it was
    assert sign(signed, SECRET) == signed  # signing again: the same mac
    assert sign(dict(reversed(list(body.items()))), SECRET)["hmac"] == signed["hmac"]


def test_an_unsigned_command_is_new_and_current() -> None:
    a = unsigned_command(client="mes", site="s", station="t", command="hold", lot_id="L1")
    b = unsigned_command(client="mes", site="s", station="t", command="hold", lot_id="L1")
    assert a["command_id"] != b["command_id"] and a["schema"] == COMMAND_SCHEMA
    issued = datetime.fromisoformat(a["issued_at"])
    assert a["issued_at"].endswith("Z") and abs(datetime.now(UTC) - issued) < timedelta(minutes=1)
    command = validate(sign(a, SECRET))
    check_fresh(command, datetime.now(UTC))


# -- a dispatch as a lot request -------------------------------------------------------------------


def test_a_dispatch_is_the_lot_request_it_names() -> None:
    dispatch = validate(
        _signed(
            "dispatch",
            recipe={"id": "unit-flow", "version": 3, "hash": "a03c41dc"},
            options={"layout": "plain"},
            inputs={"wafers": ["W1", "W2"], "panels": 2, "dies": "DIELOT7"},
            priority=-5,
        )
    )
    assert isinstance(dispatch, Dispatch)
    assert dispatch.request() == LotRequest(
        lot_id="L1",
        recipe="unit-flow",
        version=3,
        hash="a03c41dc",
        options={"layout": "plain"},
        inputs={"wafers": ["W1", "W2"], "panels": 2, "dies": ["DIELOT7"]},  # one id: a list
        priority=-5,
    )


def test_a_dispatch_carries_its_incoming_sort_maps_into_the_lot_request() -> None:
    doc = '{"dimension": {"x": 1, "y": 1}, "dies": [{"x": 0, "y": 0, "bin": "good"}]}'
    dispatch = validate(
        _signed("dispatch", recipe={"id": "unit-flow"}, sort_maps={"W01": doc, "W01:2": doc},
                sort_yield=0.93, sort_seed=7)
    )  # fmt: skip
    assert isinstance(dispatch, Dispatch)
    request = dispatch.request()
    assert (request.sort_maps, request.sort_yield, request.sort_seed) == (
        {"W01": doc, "W01:2": doc}, 0.93, 7,
    )  # fmt: skip
    for bad in (
        {"sort_yield": 1.5},
        {"sort_yield": 0},
        {"sort_seed": -1},
        {"sort_maps": {"": doc}},
    ):
        with pytest.raises(Rejected, match="sort_"):
            validate(_signed("dispatch", recipe={"id": "unit-flow"}, **bad))
