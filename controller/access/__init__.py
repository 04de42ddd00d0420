"""Access: roles and scopes, the actor every front door names, hold reason codes with their
release roles, scrap reason codes, password hashes. Pure: no database, no engine."""

from controller.access.holds import DEFAULT_CODES, HoldCode, HoldCodes
from controller.access.roles import SCOPES, Actor, Role, Scope, article, least_role
from controller.access.scrap import DEFAULT_SCRAP_CODES, ScrapCode, ScrapCodes

__all__ = [
    "DEFAULT_CODES",
    "DEFAULT_SCRAP_CODES",
    "SCOPES",
    "Actor",
    "HoldCode",
    "HoldCodes",
    "Role",
    "Scope",
    "ScrapCode",
    "ScrapCodes",
    "article",
    "least_role",
]
