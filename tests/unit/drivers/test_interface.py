"""The interface model (drivers/interface.py): parameters, operations with their rules,
window(), the setup check, and the lookups of a ToolInterface, on a small kind declared here."""

from __future__ import annotations

import pytest

from drivers.errors import ParameterError, UnitError
from drivers.interface import (
    Alarm,
    JobState,
    Operation,
    Param,
    Qualification,
    Result,
    Rule,
    SetupField,
    ToolInterface,
    check_setup,
    window,
)
from drivers.units import Quantity

CURE = {"EPOXY": (150.0, 180.0), "PI": (300.0, 380.0)}

MATERIAL = Param("material", choices=("EPOXY", "PI"), setup="resins")
TEMP = Param("temp", "°C", 20, 400)
TIME = Param("time", "min", 1, 240, default=60.0)
PASSES = Param("passes", "count", 1, 5, default=1.0, integer=True)
ANY = Param("offset", "µm")  # unbounded

CURE_OP = Operation(
    "cure",
    2,
    "Cure a resin at its cure temperature.",
    params=(MATERIAL, TEMP, TIME, PASSES),
    results=(Result("tg", "°C"),),
    rules=(
        Rule("temp within the resin's cure window", window("material", "temp", CURE, "°C")),
        Rule(
            "long cures are single-pass",
            lambda v: "one pass only" if v["time"] > 120 and v["passes"] > 1 else None,
        ),
    ),
)
OVEN = ToolInterface(
    kind="oven",
    protocol="scpi",
    title="Cure oven",
    vendor="FABLINE-TEST",
    model="OVEN-1",
    operations=(CURE_OP, Operation("purge", 5, "N₂ purge.", params=(), results=())),
    alarms=(
        Alarm(301, "OVERTEMP", "over temperature"),
        Alarm(390, "FILTER", "filter due", warning=True),
    ),
    consumables=(),
    id_prefix="OVEN",
    qualification=Qualification("purge", {}),
    setup=(SetupField("resins", ("EPOXY", "PI")),),
)


# -- Param ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "raw", "value"),
    [
        (TEMP, "170 °C", 170.0),
        (TEMP, "443.15 K", 170.0),
        (TEMP, Quantity(170, "°C"), 170.0),
        (TIME, "1.5 h", 90.0),
        (TIME, "1 min", 1.0),  # the bounds are inside the range
        (TIME, "240 min", 240.0),
        (PASSES, 3, 3.0),  # a count may be a bare number
        (PASSES, "2 count", 2.0),
        (MATERIAL, " epoxy ", "EPOXY"),  # choices are matched upper-case, trimmed
        (ANY, "-1e6 µm", -1e6),
    ],
)
def test_a_value_is_coerced_to_the_parameters_unit(
    param: Param, raw: object, value: object
) -> None:
    assert param.coerce(raw) == value


@pytest.mark.parametrize(
    ("param", "raw", "error", "text"),
    [
        (
            TEMP,
            "500 °C",
            ParameterError,
            "parameter 'temp' = 500 °C is outside the allowed range 20–400 °C",
        ),
        (TEMP, "19.99 °C", ParameterError, "outside the allowed range"),
        (TEMP, Quantity(500, "°C"), ParameterError, "parameter 'temp' = 500 °C is outside"),
        (TEMP, "170", UnitError, "parameter 'temp': missing unit: '170'"),
        (
            TEMP,
            "170 mm",
            UnitError,
            "parameter 'temp': unit 'mm' is a length, expected a temperature",
        ),
        (TEMP, True, ParameterError, "parameter 'temp': expected a number, got True"),
        (TEMP, None, ParameterError, "parameter 'temp': expected a number, got None"),
        (PASSES, 2.5, ParameterError, "parameter 'passes' = 2.5 must be a whole number"),
        (
            MATERIAL,
            "BCB",
            ParameterError,
            "parameter 'material' = 'BCB' is not allowed (one of EPOXY, PI)",
        ),
    ],
)
def test_a_bad_value_names_the_parameter_and_the_range(
    param: Param, raw: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as e:
        param.coerce(raw)
    assert type(e.value) is error
    assert text in str(e.value)


def test_describe_range() -> None:
    assert TEMP.describe_range() == "20–400 °C"
    assert ANY.describe_range() == "-inf–inf µm"
    assert Param("gap", "µm", min=5).describe_range() == "5–inf µm"
    assert MATERIAL.describe_range() == "one of EPOXY, PI"


def test_choices_travel_as_their_index() -> None:
    assert MATERIAL.encode("PI") == 1.0 and MATERIAL.decode(1.0) == "PI"
    assert MATERIAL.decode(0.4) == "EPOXY"  # an f32 that lost a little on the way
    assert TEMP.encode(170.0) == 170.0 and TEMP.decode(170.0) == 170.0
    with pytest.raises(ValueError, match="material: choice code 2 out of range"):
        MATERIAL.decode(2.0)
    with pytest.raises(ValueError, match="choice code -1"):
        MATERIAL.decode(-1.0)


def test_required_means_no_default() -> None:
    assert TEMP.required and not TIME.required and MATERIAL.required


# -- Operation -------------------------------------------------------------------------------


def test_validate_fills_defaults_and_converts() -> None:
    assert CURE_OP.validate({"material": "pi", "temp": "623.15 K"}) == {
        "material": "PI",
        "temp": 350.0,
        "time": 60.0,
        "passes": 1.0,
    }


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ({"material": "PI"}, "operation 'cure': missing parameter 'temp' (20–400 °C)"),
        (
            {"material": "PI", "temp": "350 °C", "ramp": "5 K/min"},
            "operation 'cure' has no parameter 'ramp' (parameters: material, temp, time, passes)",
        ),
        (
            {"material": "EPOXY", "temp": "200 °C"},
            "operation 'cure': temp 200 °C outside the EPOXY window 150–180 °C",
        ),
        (
            {"material": "EPOXY", "temp": "160 °C", "time": "3 h", "passes": 2},
            "operation 'cure': one pass only",
        ),
    ],
)
def test_validate_refuses_with_one_message_naming_what(raw: dict[str, object], text: str) -> None:
    with pytest.raises(ParameterError) as e:
        CURE_OP.validate(raw)
    assert str(e.value) == text


def test_an_unknown_name_is_refused_before_the_values_are_checked() -> None:
    with pytest.raises(ParameterError, match="no parameter 'tmep'"):
        CURE_OP.validate({"tmep": "nonsense"})


def test_the_mnemonic_is_the_upper_case_name() -> None:
    assert CURE_OP.mnemonic == "CURE"


# -- window ---------------------------------------------------------------------------------


def test_window_is_inclusive_and_ignores_the_unset_value() -> None:
    check = window("material", "temp", CURE, "°C", word="cure window", unset=0.0)
    assert check({"material": "EPOXY", "temp": 150.0}) is None
    assert check({"material": "EPOXY", "temp": 180.0}) is None
    assert check({"material": "EPOXY", "temp": 0.0}) is None  # "let the tool choose"
    assert (
        check({"material": "PI", "temp": 299.5})
        == "temp 299.5 °C outside the PI cure window 300–380 °C"
    )


# -- setup ----------------------------------------------------------------------------------


def test_check_setup_names_what_is_missing_and_what_is_installed() -> None:
    values = CURE_OP.validate({"material": "PI", "temp": "350 °C"})
    assert check_setup(CURE_OP, values, {"resins": ("EPOXY", "PI")}) is None
    param, reason = check_setup(CURE_OP, values, {"resins": ("EPOXY",)}) or ("", "")
    assert param == "material"
    assert reason.startswith("material PI not set up (installed: EPOXY)")  # first 64 chars matter
    assert "one of the resins installed" in reason
    _, reason = check_setup(CURE_OP, values, {}) or ("", "")
    assert "(installed: nothing)" in reason


# -- ToolInterface lookups --------------------------------------------------------------------


def test_lookups() -> None:
    assert OVEN.operation("purge").code == 5
    assert OVEN.operation_by_code(2) is CURE_OP
    assert OVEN.alarm(390).warning
    assert OVEN.alarm(999) == Alarm(999, "UNKNOWN", "unknown alarm 999")  # never a KeyError
    assert OVEN.setup_field("resins").choices == ("EPOXY", "PI")
    with pytest.raises(
        ParameterError, match=r"oven has no operation 'bake' \(operations: cure, purge\)"
    ):
        OVEN.operation("bake")
    with pytest.raises(KeyError):
        OVEN.operation_by_code(9)
    with pytest.raises(KeyError):
        OVEN.setup_field("gases")


@pytest.mark.parametrize(
    ("state", "finished"),
    [
        (JobState.UNKNOWN, False),
        (JobState.SETUP, False),
        (JobState.RUNNING, False),
        (JobState.COMPLETE, True),
        (JobState.ALARM, True),
        (JobState.ABORTED, True),
    ],
)
def test_which_job_states_are_final(state: JobState, finished: bool) -> None:
    assert state.finished is finished
