"""Who may do what: roles as sets of scopes, and the actor every front door names.

Roles build on each other (a technician can do what an operator can, an engineer what a
technician can), so each is also a rank: a hold code may name the least role that releases
it. The HTTP API checks a route's scope before it calls the lot service; the service checks
again (`Actor.require`), so the MES and the command line obey the same table.

    role        adds the scopes
    viewer      read
    operator    lots:dispatch lots:hold lots:pause lots:release lots:confirm lots:split
                alarms:ack
    technician  tools:state tools:inhibit
    engineer    lots:abort lots:scrap lots:rework recipes:approve spc:limits
    admin       users:admin

`lots:release` lets a role release what the hold's code allows (controller/access/holds.py):
by default only an engineer releases a hold. `lots:split` covers split and merge (material
stays in production); scrap and rework are an engineer's disposition.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, replace
from enum import StrEnum

from drivers.errors import Forbidden


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    TECHNICIAN = "technician"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class Scope(StrEnum):
    READ = "read"
    DISPATCH = "lots:dispatch"
    HOLD = "lots:hold"
    PAUSE = "lots:pause"
    RELEASE = "lots:release"
    CONFIRM = "lots:confirm"
    SPLIT = "lots:split"  # split and merge
    ACK_ALARMS = "alarms:ack"
    TOOL_STATE = "tools:state"
    INHIBIT = "tools:inhibit"
    ABORT = "lots:abort"
    SCRAP = "lots:scrap"
    REWORK = "lots:rework"
    APPROVE_RECIPES = "recipes:approve"
    SPC_LIMITS = "spc:limits"  # freeze a chart's limits or restart its baseline
    USERS = "users:admin"


_ADDS: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.OPERATOR: frozenset(
        {
            Scope.DISPATCH,
            Scope.HOLD,
            Scope.PAUSE,
            Scope.RELEASE,
            Scope.CONFIRM,
            Scope.SPLIT,
            Scope.ACK_ALARMS,
        }
    ),
    Role.TECHNICIAN: frozenset({Scope.TOOL_STATE, Scope.INHIBIT}),
    Role.ENGINEER: frozenset(
        {Scope.ABORT, Scope.SCRAP, Scope.REWORK, Scope.APPROVE_RECIPES, Scope.SPC_LIMITS}
    ),
    Role.ADMIN: frozenset({Scope.USERS}),
}


def _cumulative() -> dict[Role, frozenset[Scope]]:
    out: dict[Role, frozenset[Scope]] = {}
    have: frozenset[Scope] = frozenset()
    for role in Role:
        have = have | _ADDS[role]
        out[role] = have
    return out


SCOPES: dict[Role, frozenset[Scope]] = _cumulative()


def least_role(scope: Scope) -> Role:
    """The first role that has `scope` (for messages: "needs an engineer")."""
    return next(r for r in Role if scope in SCOPES[r])


def article(role: Role) -> str:
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


@dataclass(frozen=True)
class Actor:
    """Who acts, with which role, and why: the reason code and comment go into the audit
    row and the MES event. `name` is a user, `mes:<client>` or `cli:<os user>`."""

    name: str
    role: Role
    reason_code: str | None = None
    comment: str | None = None

    def can(self, scope: Scope) -> bool:
        return scope in SCOPES[self.role]

    def require(self, scope: Scope, what: str) -> None:
        if not self.can(scope):
            raise Forbidden(
                f"{self.name} ({self.role}) may not {what}: that needs"
                f" {article(least_role(scope))} or above"
            )

    def because(self, reason_code: str | None, comment: str | None) -> Actor:
        return replace(self, reason_code=reason_code, comment=comment)

    @classmethod
    def mes(cls, client: str) -> Actor:
        """An MES client: authorised by the broker's ACL and its HMAC secret to dispatch,
        hold, release, abort, split, merge, scrap and rework (docs/mes.md), so an engineer's
        scopes."""
        return cls(f"mes:{client}", Role.ENGINEER)

    @classmethod
    def cli(cls) -> Actor:
        """The command line: whoever may open the database owns the line (the maintenance
        door of a station host), so an administrator."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(f"cli:{user}", Role.ADMIN)
