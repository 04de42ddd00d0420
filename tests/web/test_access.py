"""Roles as cumulative scope sets, and hold codes with the least role that releases them."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from controller.access import SCOPES, Actor, HoldCode, HoldCodes, Role, Scope, least_role
from drivers.errors import Forbidden


def test_each_role_has_every_scope_of_the_roles_below_it() -> None:
    roles = list(Role)
    for lower, higher in itertools.pairwise(roles):
        assert SCOPES[lower] < SCOPES[higher] and higher.at_least(lower)
    assert SCOPES[Role.VIEWER] == {Scope.READ}
    assert least_role(Scope.HOLD) is Role.OPERATOR
    assert least_role(Scope.INHIBIT) is Role.TECHNICIAN
    assert least_role(Scope.ABORT) is Role.ENGINEER
    assert least_role(Scope.USERS) is Role.ADMIN
    assert SCOPES[Role.ADMIN] == frozenset(Scope)


def test_an_actor_without_the_scope_is_refused_with_who_and_what_it_needs() -> None:
    with pytest.raises(
        Forbidden, match=r"^otto \(operator\) may not abort lot L1: that needs an engineer"
    ):
        Actor("otto", Role.OPERATOR).require(Scope.ABORT, "abort lot L1")
    Actor("erin", Role.ENGINEER).require(Scope.ABORT, "abort lot L1")
    assert Actor.mes("erp").name == "mes:erp" and Actor.mes("erp").role is Role.ENGINEER
    assert Actor.cli().name.startswith("cli:") and Actor.cli().role is Role.ADMIN


def test_the_release_role_is_the_codes_or_for_an_engine_hold_the_stricter() -> None:
    h = HoldCodes()
    assert h.release_role("operator", "MAT-WAIT")[0] is Role.OPERATOR
    assert h.release_role("operator", "QA-SUSPECT")[0] is Role.ENGINEER
    assert h.release_role("operator", None)[0] is Role.ENGINEER  # OPERATOR: from a terminal
    assert h.release_role("alarm", None) == (Role.TECHNICIAN, "hold TOOL-ALARM (equipment)")
    assert h.release_role("out_of_spec", None) == (Role.ENGINEER, "hold OOS (quality)")
    # an operator's code, then an engine hold before it took effect: the stricter
    assert h.release_role("out_of_spec", "MAT-WAIT")[0] is Role.ENGINEER
    assert h.release_role("alarm", "OP-CHECK")[0] is Role.TECHNICIAN
    assert h.release_role("mes", None)[0] is Role.OPERATOR


def test_hold_codes_are_checked() -> None:
    code = HoldCode(code="X-1", category="quality", text="x")
    with pytest.raises(ValidationError, match="defined twice"):
        HoldCodes(codes=[code, code], kinds={})
    with pytest.raises(ValidationError, match="no hold code 'OOS'"):
        HoldCodes(codes=[code], kinds={"out_of_spec": "OOS"})
    with pytest.raises(ValidationError):
        HoldCode(code="lower case", category="q", text="x")
