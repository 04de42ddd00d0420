"""The station's users and their sessions, in the database: `fabline users` and the HTTP
API's admin routes call these, and every change is audited."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.access import Actor, Role, Scope
from controller.access.passwords import dummy_hash, hash_password, verify_password
from controller.genealogy.models import utcnow
from controller.genealogy.station_models import Account, WebSession
from controller.lots import audit
from drivers.errors import Conflict, FablineError, NotFound, ParameterError, Unauthorized, shown

NAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")


class UserView(BaseModel):
    name: str
    role: Role
    created: str
    disabled: bool

    @classmethod
    def of(cls, a: Account) -> UserView:
        return cls(
            name=a.name,
            role=Role(a.role),
            created=a.created_at.isoformat(),
            disabled=a.disabled_at is not None,
        )


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ParameterError(
            f"user name {shown(name)!r}: 2-32 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter"
        )
    return name


def role_of(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ParameterError(f"role {shown(text)!r} is not one of {roles}") from None


def _audit(s: Session, station: str, actor: Actor, action: str, target: str, msg: str) -> None:
    audit.record(
        s, station=station, actor=actor, action=action, target=f"user:{target}", result="ok",
        message=msg,
    )  # fmt: skip


def record_refusal(
    s: Session, station: str, actor: Actor, action: str, target: str, e: Exception
) -> None:
    """Audit a user change that was refused (in its own transaction)."""
    result = audit.result_of(e) if isinstance(e, FablineError) else "refused"
    audit.record(
        s, station=station, actor=actor, action=action, target=f"user:{shown(target, 64)}",
        result=result, message=str(e),
    )  # fmt: skip


def add_user(
    s: Session, station: str, actor: Actor, name: str, role: Role, password: str
) -> UserView:
    actor.require(Scope.USERS, "add users")
    check_name(name)
    if s.get(Account, name) is not None:
        raise Conflict(f"user {name} already exists")
    account = Account(name=name, role=role.value, password_hash=hash_password(password))
    s.add(account)
    s.flush()
    _audit(s, station, actor, "user_add", name, f"user {name} added as {role}")
    return UserView.of(account)


def change_user(
    s: Session,
    station: str,
    actor: Actor,
    name: str,
    *,
    role: Role | None = None,
    password: str | None = None,
    disabled: bool | None = None,
) -> UserView:
    actor.require(Scope.USERS, "change users")
    account = s.get(Account, name, with_for_update=True)
    if account is None:
        raise NotFound(f"no user {shown(name)!r}")
    said = []
    if role is not None and role.value != account.role:
        account.role = role.value
        said.append(f"role {role}")
    if password is not None:
        account.password_hash = hash_password(password)
        said.append("new password")
    if disabled is not None and disabled != (account.disabled_at is not None):
        account.disabled_at = utcnow() if disabled else None
        said.append("disabled" if disabled else "enabled")
    if role is not None or password is not None or disabled:  # their sessions end
        s.execute(delete(WebSession).where(col(WebSession.account) == name))
    s.flush()
    _audit(s, station, actor, "user_change", name, f"user {name}: {', '.join(said) or 'no change'}")
    return UserView.of(account)


def list_users(s: Session) -> list[UserView]:
    return [UserView.of(a) for a in s.scalars(select(Account).order_by(col(Account.name)))]


# -- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    token: str  # the cookie's value (only its hash is stored)
    csrf: str
    user: UserView
    expires: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login(s: Session, name: str, password: str, hours: float) -> Login:
    """A new session for a correct name and password; Unauthorized otherwise (the same
    message and, with a dummy hash, the same time for an unknown name)."""
    account = s.get(Account, name) if len(name) <= 64 else None
    stored = account.password_hash if account is not None else dummy_hash()
    good = verify_password(password, stored)
    if account is None or not good or account.disabled_at is not None:
        raise Unauthorized("wrong user name or password")
    now = utcnow()
    s.execute(delete(WebSession).where(col(WebSession.expires_at) < now))  # tidy up
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + timedelta(hours=hours)
    s.add(WebSession(token_hash=_hash(token), account=name, csrf=csrf, expires_at=expires))
    return Login(token, csrf, UserView.of(account), expires)


def session_user(s: Session, token: str) -> tuple[UserView, str] | None:
    """(the user, the session's CSRF token) of a live session, else None."""
    row = s.execute(
        select(WebSession, Account)
        .join(Account, col(Account.name) == col(WebSession.account))
        .where(col(WebSession.token_hash) == _hash(token))
    ).first()
    if row is None:
        return None
    sess, account = row
    expires = (
        sess.expires_at
        if sess.expires_at.tzinfo
        else sess.expires_at.replace(tzinfo=utcnow().tzinfo)
    )
    if expires < utcnow() or account.disabled_at is not None:
        return None
    return UserView.of(account), sess.csrf


def logout(s: Session, token: str) -> None:
    s.execute(delete(WebSession).where(col(WebSession.token_hash) == _hash(token)))
