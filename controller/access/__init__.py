"""Access: roles and scopes, the actor every front door names, hold reason codes with their
release roles, password hashes. Pure: no database, no engine."""

from controller.access.holds import DEFAULT_CODES, HoldCode, HoldCodes
from controller.access.roles import SCOPES, Actor, Role, Scope, article, least_role

__all__ = [
    "DEFAULT_CODES",
    "SCOPES",
    "Actor",
    "HoldCode",
    "HoldCodes",
    "Role",
    "Scope",
    "article",
    "least_role",
]
