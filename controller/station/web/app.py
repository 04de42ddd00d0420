"""The station's HTTP application: the JSON API (/api, OpenAPI at /openapi.json), the
operator pages, their event streams, /healthz. One clear message per error, with the HTTP
status of its category (drivers/errors.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.access import Scope
from controller.station.web import api, pages
from controller.station.web.auth import MAX_ID, Principal, needs
from controller.station.web.context import WebContext
from controller.station.web.feed import Batch
from drivers.errors import HTTP_STATUS, FablineError, RecipeError

STATIC = Path(__file__).with_name("static")
HEALTH_TIMEOUT = 2.0  # seconds the database may take to answer /healthz
KEEPALIVE = 15.0  # seconds between comments on an idle stream (proxies close silent ones)


def create_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(
        title="fabline station",
        version="1",
        description="Tools, lots, alarms, genealogy and recipes of one fabline station. Log"
        " in with POST /api/login; send the returned csrf token as X-CSRF-Token on every"
        " POST/PATCH. Errors: {error, category} with 400/401/403/404/409/502/503.",
        docs_url=None,
        redoc_url=None,
        responses={
            400: {"description": "bad request"},
            401: {"description": "not logged in"},
            403: {"description": "not allowed for this role, or CSRF token wrong"},
        },
    )
    app.state.web = ctx
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(FablineError)
    async def fabline_error(request: Request, e: FablineError) -> Response:
        text = e.problems[0] if isinstance(e, RecipeError) else str(e)
        return error_response(request, HTTP_STATUS[e.category], text, e.category.value)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> Response:
        errors = e.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(x) for x in first.get("loc", ()))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        msg = str(first.get("msg", "invalid"))
        text = f"{where}: {msg}{more}" if where else msg
        return error_response(request, 400, text[:300], "usage")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        category = {404: "not_found", 405: "usage"}.get(e.status_code, "usage")
        return error_response(request, e.status_code, str(e.detail), category)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Database, broker and line; no login needed. 503 when the database is down."""
        return await health(ctx)

    @app.get("/api/events", tags=["api"])
    async def api_events(
        request: Request,
        _: Annotated[Principal, Depends(needs(Scope.READ, "read"))],
        since: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    ) -> StreamingResponse:
        """Every MES event as it is written (server-sent events; `id` is the outbox id,
        `event` the type, data the event's JSON). Resumes after `Last-Event-ID` or `since`."""
        start = _last_event_id(request, since)
        return sse(request, json_events(ctx, start))

    return app


def error_response(request: Request, status: int, text: str, category: str) -> Response:
    if request.headers.get("hx-request"):  # a page action: the message goes in its flash
        from html import escape

        return HTMLResponse(f'<p class="flash error" role="alert">{escape(text)}</p>', status)
    if status == 401 and not request.url.path.startswith("/api") and request.method == "GET":
        return Response(status_code=303, headers={"location": "/login"})
    return JSONResponse({"error": text, "category": category}, status)


async def health(ctx: WebContext) -> JSONResponse:
    from sqlalchemy import text

    st = ctx.station
    report: dict[str, Any] = {"station": st.name}
    try:
        await asyncio.wait_for(st.db.run(lambda s: s.execute(text("SELECT 1"))), HEALTH_TIMEOUT)
        report["database"] = {"ok": True, "url": st.db.describe()}
    except (FablineError, TimeoutError) as e:
        report["database"] = {"ok": False, "url": st.db.describe(), "error": str(e) or "timeout"}
    hook = st.hook
    if hook is None or hook.relay is None:
        report["broker"] = {"ok": True, "configured": False, "spool": str(st.config.mes.spool)}
    else:
        relay = hook.relay
        broker = st.config.mes.broker
        report["broker"] = {
            "ok": relay.connected,
            "configured": True,
            "url": broker.describe() if broker else None,
            "error": relay.last_error,
        }
    tiles = list(st.monitor.tiles.values())
    reachable = sum(1 for t in tiles if t.data.state != "offline")
    report["line"] = {
        "ok": reachable == len(st.line.tools),
        "name": st.line.line,
        "tools": len(st.line.tools),
        "reachable": reachable,
    }
    ok = report["database"]["ok"]
    report["status"] = (
        "ok" if ok and report["broker"]["ok"] and report["line"]["ok"] else "degraded"
    ) if ok else "down"  # fmt: skip
    return JSONResponse(report, 200 if ok else 503)


def _last_event_id(request: Request, since: int | None) -> int | None:
    raw = (request.headers.get("last-event-id") or "").strip()
    if raw.isdigit() and len(raw) < 30:
        return min(int(raw), MAX_ID)
    if since is not None and since < 0:
        from drivers.errors import ParameterError

        raise ParameterError("since: an outbox id >= 0")
    return since


def sse(request: Request, events: AsyncIterator[str]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"  # reconnect after a second
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(anext(events), KEEPALIVE)
                except TimeoutError:
                    chunk = ": keepalive\n\n"
                except StopAsyncIteration:
                    return
                yield chunk
                if await request.is_disconnected():
                    return
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def message(event: str, data: str, ident: int | None = None) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\n{lines}\n"


async def json_events(ctx: WebContext, since: int | None) -> AsyncIterator[str]:
    async for batch in ctx.feed.follow(since):
        for chunk in json_batch(batch):
            yield chunk


def json_batch(batch: Batch) -> list[str]:
    if batch.reload:
        return [message("reload", "{}")]
    out = []
    for c in batch.changes:
        if c.id is not None and c.payload is not None:
            out.append(message(c.type, json.dumps(c.payload), c.id))
    return out
