"""Who is asking: the session cookie, the CSRF token every unsafe request carries, and the
scope a route needs.

A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure behind TLS); the
database keeps only its hash. Every unsafe request (POST, PUT, PATCH, DELETE) must carry the
session's CSRF token in `X-CSRF-Token` (the page sets it on every htmx request) or a `csrf`
form field, and a browser's `Sec-Fetch-Site: cross-site` is refused outright. Without a
session a request gets 401; with one but without the scope, 403 — and that denial is
audited like any other. The lot service checks the scope again.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Request

from controller.access import Actor, Scope
from controller.station.users import UserView, session_user
from controller.station.web.context import WebContext
from drivers.errors import Forbidden, Unauthorized

COOKIE = "fabline_session"
MAX_ID = 2**63 - 1  # the database's ids are 64-bit: a larger number names nothing
EventId = Annotated[int, Path(ge=1, le=MAX_ID, description="an outbox id")]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    user: UserView
    csrf: str

    def actor(self, reason_code: str | None = None, comment: str | None = None) -> Actor:
        return Actor(self.user.name, self.user.role, reason_code, comment)


def web(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


async def current(request: Request) -> Principal | None:
    """The logged-in user of this request, if any (cached on the request)."""
    if hasattr(request.state, "principal"):
        found: Principal | None = request.state.principal
        return found
    token = request.cookies.get(COOKIE)
    principal = None
    if token and len(token) < 200:
        row = await web(request).station.db.run(lambda s: session_user(s, token))
        if row is not None:
            principal = Principal(*row)
    request.state.principal = principal
    return principal


async def check_csrf(request: Request, principal: Principal) -> None:
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("cross-site request refused")
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given, principal.csrf):
        raise Forbidden("CSRF token missing or wrong: reload the page")


def needs(scope: Scope, what: str) -> Callable[[Request], Awaitable[Principal]]:
    """A route dependency: logged in (401), the CSRF token on unsafe requests (403), and
    `scope` (403, audited)."""

    async def dependency(request: Request) -> Principal:
        principal = await current(request)
        if principal is None:
            raise Unauthorized("log in first")
        if request.method in UNSAFE:
            await check_csrf(request, principal)
        actor = principal.actor()
        if not actor.can(scope):
            try:
                actor.require(scope, what)
            except Forbidden as e:
                if request.method in UNSAFE:
                    await _audit_denial(request, actor, scope, e)
                raise
        return principal

    dependency.__name__ = f"needs_{scope.value.replace(':', '_')}"
    return dependency


async def _audit_denial(request: Request, actor: Actor, scope: Scope, e: Forbidden) -> None:
    from controller.lots import audit

    station = web(request).station
    target = "/".join(str(v) for v in request.path_params.values()) or request.url.path
    await station.db.run(
        functools.partial(
            audit.record, station=station.name, actor=actor, action=scope.value,
            target=target[:128], result="denied", message=str(e),
        )
    )  # fmt: skip
    web(request).feed.wake()
