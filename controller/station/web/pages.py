"""The operator pages: server-rendered (Jinja), live through one event stream per page
(htmx's SSE extension swaps the fragments the stream sends), actions as small forms that
post to /ui/... and get a one-line answer in the page's flash; everything else they change
comes back through the stream. The actions call the same services as the API."""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from controller.access import SCOPES, Role, Scope
from controller.equipment import SUBSTATES, E10State
from controller.genealogy import e142, trace
from controller.genealogy.models import Unit
from controller.lots import HoldReason, LotRequest, operations
from controller.station import spc_ops, users
from controller.station.tool_monitor import Tile
from controller.station.web import reads
from controller.station.web.auth import COOKIE, MAX_ID, EventId, Principal, RowId, needs, web
from controller.station.web.context import WebContext
from controller.station.web.diemap import die_map_svg
from controller.station.web.feed import Batch
from drivers.errors import FablineError, Unauthorized, UnitNotFound

router = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).with_name("templates")
LOGIN_COOKIE = "fabline_login"  # double-submit token of the login form
MAX_MAPS = 4  # die maps on a lot page
AUDIT_ROWS = 100  # on the audit page (older rows: GET /api/audit)
RENDERS_KEPT = 256  # batches whose fragments are kept for the pages still to send them


@lru_cache(maxsize=1)
def env() -> Environment:
    e = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    e.filters["ago"] = ago
    e.filters["q"] = quantity
    e.globals["E10_STATES"] = [s.name for s in E10State]
    e.globals["SUBSTATES"] = {s.name: sorted(v.value for v in SUBSTATES[s]) for s in E10State}
    return e


def quantity(v: Any) -> str:
    """A setpoint or result as an engineer reads it: `3000 rpm`, `7.027 µm`, `DIELECTRIC`."""
    if isinstance(v, dict) and "value" in v:
        value, unit = v["value"], v.get("unit") or ""
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"{text} {unit}".strip()
    return str(v)


def ago(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def render(name: str, **data: Any) -> str:
    return env().get_template(name).render(**data)


async def page(
    request: Request, w: WebContext, p: Principal, name: str, view: str, **data: Any
) -> HTMLResponse:
    html = render(
        name, station=w.station.name, line=w.station.line.line, user=p.user, csrf=p.csrf,
        can={s.value for s in SCOPES[p.user.role]}, view=view, header=await header_data(w),
        **data,
    )  # fmt: skip
    return HTMLResponse(html)


async def header_data(w: WebContext) -> dict[str, Any]:
    hook = w.station.hook
    broker = w.station.config.mes.broker
    if hook is None or hook.relay is None or broker is None:
        link = {"state": "spool", "text": "no broker: events spooled"}
    elif hook.relay.connected:
        link = {"state": "up", "text": f"broker {broker.describe()} connected"}
    else:
        link = {"state": "down", "text": f"broker {broker.describe()} NOT connected"}
    tiles = list(w.station.monitor.tiles.values())
    backlog = await w.station.db.run(reads.backlog)
    return {"link": link, "alarms": sum(len(t.status.alarms) for t in tiles), "backlog": backlog}


Viewer = Annotated[Principal, Depends(needs(Scope.READ, "read"))]


def Web(request: Request) -> WebContext:
    return web(request)


Ctx = Annotated[WebContext, Depends(Web)]


# -- login ------------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    html = render("login.html", station=web(request).station.name, token=token, error=error)
    response = HTMLResponse(html)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/login")
async def login_form(
    request: Request, w: Ctx,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    token: Annotated[str, Form(max_length=64)],
) -> Response:  # fmt: skip
    import hmac

    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, token):
        return RedirectResponse("/login?error=expired", 303)
    try:
        done = await w.station.db.run(
            lambda s: users.login(s, name, password, w.settings.session_hours)
        )
    except Unauthorized:
        return RedirectResponse("/login?error=wrong", 303)
    from controller.station.web.api import set_session_cookie

    response = RedirectResponse("/", 303)
    set_session_cookie(response, request, w, done.token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout_form(request: Request, w: Ctx, p: Viewer) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await w.station.db.run(lambda s: users.logout(s, token))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- pages ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, w: Ctx, p: Viewer) -> HTMLResponse:
    data = await fragments_data(w, "home", frozenset(s.value for s in SCOPES[p.user.role]))
    recipes = [(r.recipe.id, r.recipe.title) for r in reads.recipes()]
    return await page(request, w, p, "home.html", "home", recipes=recipes, **data)


@router.get("/lots/{lot_id}", response_class=HTMLResponse)
async def lot_page(lot_id: str, request: Request, w: Ctx, p: Viewer) -> HTMLResponse:
    data = await lot_data(w, lot_id)
    return await page(request, w, p, "lot.html", f"lot:{lot_id}", lot_id=lot_id, **data)


@router.get("/alarms", response_class=HTMLResponse)
async def alarms_page(request: Request, w: Ctx, p: Viewer) -> HTMLResponse:
    data = await alarms_data(w)
    return await page(request, w, p, "alarms.html", "alarms", **data)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, w: Ctx, p: Viewer) -> HTMLResponse:
    rows = await w.station.db.run(lambda s: reads.audit_rows(s, limit=AUDIT_ROWS))
    return await page(request, w, p, "audit.html", "audit", rows=rows)


@router.get("/users", response_class=HTMLResponse)
async def users_page(
    request: Request, w: Ctx, p: Annotated[Principal, Depends(needs(Scope.USERS, "manage users"))]
) -> HTMLResponse:
    rows = await w.station.db.run(users.list_users)
    return await page(
        request, w, p, "users.html", "users", rows=rows, roles=[r.value for r in Role]
    )


SPC_CHARTS = 24  # charts drawn on the SPC page (the rest are listed)
SPC_POINTS = 60  # points of each drawn chart


@router.get("/spc", response_class=HTMLResponse)
async def spc_page(request: Request, w: Ctx, p: Viewer, tool: str = "") -> HTMLResponse:
    """The station's SPC charts, drawn (controller/spc/render.py), those that inhibit a tool
    or have open violations first."""
    tool = tool.strip()[:64]
    data = await w.station.db.run(lambda s: spc_data(s, tool or None))
    return await page(request, w, p, "spc.html", "spc", tool=tool, **data)


def spc_data(s: Session, tool: str | None) -> dict[str, Any]:
    charts = spc_ops.list_charts(s, tool)
    charts.sort(key=lambda c: (not c.inhibiting, not c.open_violations, c.name))
    drawn = []
    for c in charts[:SPC_CHARTS]:
        svg = None  # render_svg escapes every text it draws
        if c.limits is not None:
            svg = spc_ops.chart_svg(spc_ops.chart_detail(s, c.name, SPC_POINTS))
        drawn.append({"c": c, "svg": svg})
    return {"charts": drawn, "more": charts[SPC_CHARTS:]}


@router.get("/genealogy", response_class=HTMLResponse)
async def genealogy_page(
    request: Request, w: Ctx, p: Viewer, q: str = "", direction: str = "backward"
) -> HTMLResponse:
    q = q.strip()[:96]
    forward = direction == "forward"
    data: dict[str, Any] = {"q": q, "direction": "forward" if forward else "backward"}
    if q:
        try:
            data |= await w.station.db.run(lambda s: genealogy_data(s, q, forward))
        except UnitNotFound as e:
            data["error"] = str(e)
    return await page(request, w, p, "genealogy.html", "genealogy", **data)


def genealogy_data(s: Session, name: str, forward: bool) -> dict[str, Any]:
    nodes = (trace.forward if forward else trace.backward)(s, name)
    root = nodes[0]
    # the diced substrate whose map shows this unit: itself, or the one it was split from
    diced = name
    if not forward:
        parent = next((n for n in nodes if n.depth == 1 and n.edge_kind == "split"), None)
        if parent is not None:
            diced = parent.name
    svg = None
    try:
        header, rows = e142.load_die_map(s, diced)
        svg = die_map_svg(e142.die_map_json(header, rows), highlight=name)
    except UnitNotFound:
        pass
    limited = nodes[:2000]
    return {
        "root": root.to_dict(),
        "tree": tree(limited, root.id),
        "count": len(nodes),
        "shown": len(limited),
        "map": svg,
        "map_of": diced if svg else None,
    }


def tree(nodes: list[trace.Node], root: int) -> dict[str, Any]:
    kids: dict[int | None, list[trace.Node]] = {}
    for n in nodes:
        if n.depth > 0:
            kids.setdefault(n.via, []).append(n)
    seen: set[int] = set()

    def build(n: trace.Node) -> dict[str, Any]:
        seen.add(n.id)
        below = [k for k in kids.get(n.id, []) if k.depth == n.depth + 1 and k.id not in seen]
        return {
            **n.to_dict(),
            "children": [build(k) for k in below[:50]],
            "more": max(0, len(below) - 50),
        }

    return build(next(n for n in nodes if n.id == root))


# -- data of the fragments ---------------------------------------------------------------------


def tile_html(w: WebContext, tile: Tile, can: frozenset[str]) -> str:
    """A tile's HTML, rendered once per Tile object and role (an idle tool's tile is the
    same object poll after poll; 200 tiles are most of the page's work)."""
    key = (tile.tool_id, can)
    hit = w.tiles_html.get(key)
    if hit is not None and hit[0] is tile:
        return hit[1]
    html = render("_tile.html", t=reads.ToolView.of(tile), can=can)
    w.tiles_html[key] = (tile, html)
    return html


async def fragments_data(w: WebContext, view: str, can: frozenset[str]) -> dict[str, Any]:
    if view == "home":
        tiles = list(w.station.monitor.tiles.values())
        rows = await w.station.db.run(lambda s: reads.queue(s))
        return {
            "tiles": [(t.tool_id, tile_html(w, t, can)) for t in tiles],
            "queue": rows,
            "hold_codes": w.station.lots.holds.codes,
        }
    return {}


async def lot_data(w: WebContext, lot_id: str) -> dict[str, Any]:
    def read(s: Session) -> dict[str, Any]:
        detail = reads.lot_detail(s, lot_id)
        diced = s.scalars(
            select(col(Unit.name))
            .where(col(Unit.lot_id) == lot_id, col(Unit.state) == "split")
            .order_by(col(Unit.id))
            .limit(MAX_MAPS)
        ).all()
        maps = []
        for name in diced:
            header, rows = e142.load_die_map(s, name)
            maps.append((name, die_map_svg(e142.die_map_json(header, rows))))
        return {
            "lot": detail,
            "maps": maps,
            "audit": reads.audit_rows(s, limit=50, target=lot_id),
            "hold_codes": w.station.lots.holds.codes,
        }

    return await w.station.db.run(read)


async def alarms_data(w: WebContext) -> dict[str, Any]:
    tiles = list(w.station.monitor.tiles.values())

    def read(s: Session) -> dict[str, Any]:
        return {"active": reads.active_alarms(s, tiles), "history": reads.alarm_history(s, 100)}

    return await w.station.db.run(read)


# -- actions ----------------------------------------------------------------------------------

Text = Annotated[str, Form(max_length=500)]


def flash(text: str) -> HTMLResponse:
    from html import escape

    return HTMLResponse(f'<p class="flash ok" role="status">{escape(text)}</p>')


def _need(scope: Scope, what: str) -> Any:
    return Depends(needs(scope, what))


@router.post("/ui/dispatch")
async def ui_dispatch(
    w: Ctx,
    p: Annotated[Principal, _need(Scope.DISPATCH, "dispatch lots")],
    lot: Annotated[str, Form(max_length=64)],
    recipe: Annotated[str, Form(max_length=64)],
    wafers: Annotated[int, Form(ge=1, le=25)] = 1,
    priority: Annotated[int, Form(ge=-1000, le=1000)] = 0,
) -> HTMLResponse:  # fmt: skip
    from controller.recipes import find

    loaded = find(recipe)
    counted = next(
        (n for n, s in loaded.recipe.inputs.items() if s.kind == "wafer" and s.count), None
    )
    inputs: dict[str, int | list[str]] = {counted: wafers} if counted else {}
    req = LotRequest(lot_id=lot.strip(), recipe=recipe, inputs=inputs, priority=priority)
    made = await w.station.lots.create(req, actor=p.actor())
    w.station.take_up(made.id)
    w.wrote()
    return flash(f"lot {made.id} dispatched: {made.recipe_id} v{made.recipe_version}")


@router.post("/ui/lots/{lot_id}/hold")
async def ui_hold(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.HOLD, "hold lots")],
    code: Annotated[str, Form(max_length=32)],
    comment: Text = "",
) -> HTMLResponse:  # fmt: skip
    known = w.station.lots.holds.get(code)
    why = HoldReason("operator", f"{code}: {comment or (known.text if known else 'hold')}")
    message = await w.station.lots.hold(lot_id, why, p.actor(code, comment or None))
    w.wrote()
    return flash(message)


@router.post("/ui/lots/{lot_id}/release")
async def ui_release(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.RELEASE, "release lots")],
    comment: Text = "",
) -> HTMLResponse:  # fmt: skip
    message = await w.station.lots.release(
        lot_id, comment or None, actor=p.actor(comment=comment or None)
    )
    w.station.take_up(lot_id)
    w.wrote()
    return flash(message)


@router.post("/ui/lots/{lot_id}/pause")
async def ui_pause(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.PAUSE, "pause lots")],
    comment: Text = "",
) -> HTMLResponse:  # fmt: skip
    why = HoldReason("operator", comment or "paused")
    message = await w.station.lots.pause(lot_id, why, p.actor(comment=comment or None))
    w.wrote()
    return flash(message)


@router.post("/ui/lots/{lot_id}/abort")
async def ui_abort(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.ABORT, "abort lots")],
    comment: Annotated[str, Form(min_length=1, max_length=500)],
) -> HTMLResponse:  # fmt: skip
    message = await w.station.lots.abort(
        lot_id, HoldReason("operator", comment), p.actor(comment=comment)
    )
    w.wrote()
    return flash(message)


Names = Annotated[str, Form(max_length=20_000)]  # unit or lot names, space- or comma-separated


def _names(text: str) -> list[str]:
    return [n for n in text.replace(",", " ").split() if n]


def _operated(w: WebContext, done: operations.Done) -> HTMLResponse:
    for queued in done.lots:  # a lot the operation left queued runs on
        w.station.take_up(queued)
    w.wrote()
    return flash(done.message)


@router.post("/ui/lots/{lot_id}/split")
async def ui_split(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.SPLIT, "split lots")],
    units: Names, into: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:  # fmt: skip
    done = await w.station.lots.split(lot_id, _names(units), into.strip() or None, p.actor())
    return _operated(w, done)


@router.post("/ui/lots/{lot_id}/merge")
async def ui_merge(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.SPLIT, "merge lots")],
    lots: Names,
) -> HTMLResponse:  # fmt: skip
    return _operated(w, await w.station.lots.merge(lot_id, _names(lots), p.actor()))


@router.post("/ui/lots/{lot_id}/scrap")
async def ui_scrap(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.SCRAP, "scrap lots")],
    code: Annotated[str, Form(max_length=32)], units: Names = "", comment: Text = "",
) -> HTMLResponse:  # fmt: skip
    actor = p.actor(code, comment or None)
    done = await w.station.lots.scrap(lot_id, _names(units), code, comment or None, actor)
    return _operated(w, done)


@router.post("/ui/lots/{lot_id}/rework")
async def ui_rework(
    lot_id: str, w: Ctx,
    p: Annotated[Principal, _need(Scope.REWORK, "rework lots")],
    route: Annotated[str, Form(max_length=64)], units: Names = "", comment: Text = "",
) -> HTMLResponse:  # fmt: skip
    done = await w.station.lots.rework(
        lot_id, route.strip(), units=_names(units), comment=comment or None,
        actor=p.actor(comment=comment or None),
    )  # fmt: skip
    return _operated(w, done)


@router.post("/ui/alarms/{event}/ack")
async def ui_ack(
    event: EventId, w: Ctx, p: Annotated[Principal, _need(Scope.ACK_ALARMS, "acknowledge alarms")],
    comment: Text = "",
) -> HTMLResponse:  # fmt: skip
    message = await w.station.tools.acknowledge(event, p.actor(comment=comment or None))
    w.wrote()
    return flash(message)


@router.post("/ui/tools/{tool_id}/e10")
async def ui_e10(
    tool_id: str, w: Ctx, p: Annotated[Principal, _need(Scope.TOOL_STATE, "set tool states")],
    state: Annotated[str, Form(max_length=24)],
    substate: Annotated[str, Form(max_length=32)] = "",
    comment: Text = "",
) -> HTMLResponse:  # fmt: skip
    actor = p.actor(comment=comment or None)
    message = await w.station.tools.set_e10(tool_id, state, substate or None, actor)
    w.wrote()
    return flash(message)


@router.post("/ui/tools/{tool_id}/inhibit")
async def ui_inhibit(
    tool_id: str, w: Ctx, p: Annotated[Principal, _need(Scope.INHIBIT, "inhibit tools")],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> HTMLResponse:  # fmt: skip
    ident = await w.station.tools.inhibit(tool_id, reason, p.actor(comment=reason))
    w.wrote()
    return flash(f"{tool_id}: inhibit {ident} in force")


@router.post("/ui/tools/{tool_id}/inhibits/{inhibit_id}/release")
async def ui_release_inhibit(
    tool_id: str, inhibit_id: RowId, w: Ctx,
    p: Annotated[Principal, _need(Scope.INHIBIT, "release inhibits")],
    note: Annotated[str, Form(min_length=1, max_length=500)],
) -> HTMLResponse:  # fmt: skip
    message = await w.station.tools.release_inhibit(
        tool_id, inhibit_id, note, p.actor(comment=note)
    )
    w.wrote()
    return flash(message)


@router.post("/ui/spc/clear")
async def ui_spc_clear(
    w: Ctx, p: Annotated[Principal, _need(Scope.INHIBIT, "clear SPC charts")],
    chart: Annotated[str, Form(min_length=1, max_length=300)],
    note: Annotated[str, Form(min_length=1, max_length=500)],
) -> HTMLResponse:  # fmt: skip
    message = await w.station.spc.clear(chart, note, p.actor(comment=note))
    w.wrote()
    return flash(message)


@router.post("/ui/spc/baseline")
async def ui_spc_baseline(
    w: Ctx, p: Annotated[Principal, _need(Scope.SPC_LIMITS, "set SPC limits")],
    chart: Annotated[str, Form(min_length=1, max_length=300)],
) -> HTMLResponse:  # fmt: skip
    message = await w.station.spc.baseline(chart, p.actor())
    w.wrote()
    return flash(message)


@router.post("/ui/users")
async def ui_add_user(
    w: Ctx, p: Annotated[Principal, _need(Scope.USERS, "add users")],
    name: Annotated[str, Form(max_length=64)],
    role: Annotated[Role, Form()],
    password: Annotated[str, Form(min_length=8, max_length=1024)],
) -> HTMLResponse:  # fmt: skip
    st, actor = w.station, p.actor()
    try:
        await st.db.run(lambda s: users.add_user(s, st.name, actor, name, role, password))
    except FablineError as e:
        refusal = functools.partial(
            users.record_refusal, station=st.name, actor=actor, action="user_add", target=name, e=e
        )
        await st.db.run(refusal)
        raise
    w.wrote()
    return flash(f"user {name} added as {role}")


@router.get("/ui/lots/{lot_id}/actions", response_class=HTMLResponse)
async def ui_lot_actions(lot_id: str, w: Ctx, p: Viewer) -> HTMLResponse:
    """A lot's action forms, for its state and the user's role (loaded when opened)."""
    from controller.genealogy import store

    lot = await w.station.db.run(lambda s: store.get_lot(s, lot_id))
    html = render(
        "_lot_actions_body.html", r={"lot": lot.id, "state": lot.state},
        can={s.value for s in SCOPES[p.user.role]}, hold_codes=w.station.lots.holds.codes,
        scrap_codes=w.station.lots.scrap_codes.codes,
    )  # fmt: skip
    return HTMLResponse(html)


@router.get("/ui/tools/{tool_id}/actions", response_class=HTMLResponse)
async def ui_tool_actions(
    tool_id: str, w: Ctx, p: Annotated[Principal, _need(Scope.TOOL_STATE, "set tool states")]
) -> HTMLResponse:
    from drivers.errors import NotFound, shown

    if tool_id not in w.station.engine.pool.drivers:
        raise NotFound(f"no tool {shown(tool_id)!r} on this station's line")
    return HTMLResponse(render("_tool_actions_body.html", t={"tool": tool_id}))


# -- the stream -------------------------------------------------------------------------------


@router.get("/ui/stream")
async def ui_stream(request: Request, w: Ctx, p: Viewer, view: str = "home") -> StreamingResponse:
    """The page's one stream: HTML fragments named after the elements they replace."""
    from controller.station.web.app import _last_event_id, sse

    since = _last_event_id(request, None)
    if since is None:
        lei = request.query_params.get("last_event_id", "")
        since = min(int(lei), MAX_ID) if lei.isdigit() and len(lei) < 30 else None
    return sse(request, page_events(w, view[:80], since, p))


async def page_events(
    w: WebContext, view: str, since: int | None, p: Principal
) -> AsyncIterator[str]:
    from controller.station.web.app import message

    can = {s.value for s in SCOPES[p.user.role]}
    if since is not None and view == "home":  # back after a break: tiles are not events
        for t in list(w.station.monitor.tiles.values()):
            yield message(f"tile-{t.tool_id}", tile_html(w, t, frozenset(can)))
    async for batch in w.feed.follow(since):
        for name, html in await shared_fragments(w, view, batch, can):
            yield message(name, html)
        if batch.last_id is not None:
            yield message("seen", str(batch.last_id), batch.last_id)


async def shared_fragments(
    w: WebContext, view: str, batch: Batch, can: set[str]
) -> list[tuple[str, str]]:
    """`fragments`, rendered once for all the pages of one view and role that get the same
    batch (every subscriber gets the same Batch object): 50 open pages cost one render."""
    key = (id(batch), view, frozenset(can))
    entry = w.renders.get(key)
    if entry is None or entry[0] is not batch:
        task: asyncio.Future[list[tuple[str, str]]] = asyncio.ensure_future(
            fragments(w, view, batch, can)
        )
        w.renders[key] = (batch, task)
        while len(w.renders) > RENDERS_KEPT:
            w.renders.popitem(last=False)
    else:
        task = entry[1]
    return await asyncio.shield(task)


async def fragments(w: WebContext, view: str, batch: Batch, can: set[str]) -> list[tuple[str, str]]:
    """The fragments of `view` that `batch` changes, rendered."""
    if batch.reload:
        return [("reload", "reload")]
    out: list[tuple[str, str]] = []
    events = [c for c in batch.changes if c.id is not None]
    tiles = [c.tile for c in batch.changes if c.tile is not None]
    if events or tiles:
        out.append(("header", render("_header_status.html", header=await header_data(w))))
    common: dict[str, Any] = {"can": can}
    if view == "home":
        if tiles:
            out += [(f"tile-{t.tool_id}", tile_html(w, t, frozenset(can))) for t in tiles]
        if any(c.lot_id or c.type == "operator_action" for c in events):
            rows = await w.station.db.run(lambda s: reads.queue(s))
            codes = w.station.lots.holds.codes
            out.append(("queue", render("_queue.html", queue=rows, hold_codes=codes, **common)))
    elif view.startswith("lot:"):
        lot_id = view[4:]
        if any(c.lot_id == lot_id or _targets(c.payload, lot_id) for c in events):
            data = await lot_data(w, lot_id)
            out.append(("lot", render("_lot.html", lot_id=lot_id, **data, **common)))
    elif view == "alarms":
        if any(c.type in ("alarm_set", "alarm_cleared", "operator_action") for c in events):
            out.append(("alarms", render("_alarms.html", **await alarms_data(w), **common)))
    elif view == "audit":  # only the new rows, on top of the table
        ids = [c.payload["event_id"] for c in events if c.type == "operator_action" and c.payload]
        if ids:
            new = await w.station.db.run(lambda s: reads.audit_rows(s, event_ids=ids))
            html = "".join(render("_audit_row.html", a=a) for a in new)
            out.append(("audit-rows", html))
    return out


def _targets(payload: dict[str, Any] | None, lot_id: str) -> bool:
    if not payload or payload.get("type") != "operator_action":
        return False
    return bool(payload["data"].get("target") == lot_id)
