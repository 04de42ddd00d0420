"""The JSON API: thin routes over the station's lot service, tool service and read models.
Every route needs a session and a scope (controller/station/web/auth.py); errors come back
as `{"error": "...", "category": "..."}` with the status of their category."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from controller.access import HoldCode, Role, Scope, ScrapCode
from controller.equipment import Period
from controller.genealogy import e142, trace
from controller.lots import HoldReason, LotDetail, LotRequest, operations
from controller.recipes import find
from controller.recipes.expand import PlannedStep
from controller.station import spc_ops, tool_report, users
from controller.station.spc_ops import ChartDetailView, ChartView
from controller.station.tool_report import E10ReportView, aware
from controller.station.web import reads
from controller.station.web.auth import COOKIE, EventId, Principal, RowId, current, needs, web
from controller.station.web.context import WebContext
from drivers.errors import FablineError, Unauthorized

router = APIRouter(prefix="/api", tags=["api"])

Comment = Annotated[str, Field(max_length=500)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Reading = Annotated[Principal, Depends(needs(Scope.READ, "read"))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Done(BaseModel):
    message: str


class LoginBody(_Body):
    name: Name
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class Me(BaseModel):
    name: str
    role: Role
    scopes: list[str]
    csrf: str


class HoldBody(_Body):
    code: Annotated[str, Field(min_length=1, max_length=32, description="a hold code")]
    comment: Comment | None = None


class ReleaseBody(_Body):
    comment: Comment | None = None


class AbortBody(_Body):
    code: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    comment: Annotated[str, Field(min_length=1, max_length=500)]


class ConfirmBody(_Body):
    fields: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=200)]]


UnitName = Annotated[str, Field(min_length=1, max_length=96)]
LotName = Annotated[str, Field(min_length=1, max_length=64)]
Units = Annotated[list[UnitName], Field(max_length=1000)]


class SplitBody(_Body):
    units: Annotated[list[UnitName], Field(min_length=1, max_length=1000)]
    into: LotName | None = None
    comment: Comment | None = None


class MergeBody(_Body):
    lots: Annotated[list[LotName], Field(min_length=1, max_length=50)]
    comment: Comment | None = None


class ScrapBody(_Body):
    units: Units = Field(default_factory=list, description="none: the whole lot")
    code: Annotated[str, Field(max_length=32, description="a scrap code")] | None = None
    comment: Comment | None = None


class ReworkBody(_Body):
    route: Annotated[str, Field(min_length=1, max_length=64)]
    units: Units = Field(default_factory=list, description="only these: a child lot")
    into: LotName | None = None
    comment: Comment | None = None


class E10Body(_Body):
    state: Literal[
        "PRODUCTIVE", "STANDBY", "ENGINEERING", "SCHEDULED_DOWN", "UNSCHEDULED_DOWN",
        "NON_SCHEDULED", "AUTO",
    ]  # fmt: skip
    substate: Annotated[str, Field(max_length=32)] | None = None
    reason: Annotated[str, Field(max_length=32)] | None = None
    comment: Comment | None = None


class InhibitBody(_Body):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class InhibitReleaseBody(_Body):
    note: Annotated[str, Field(min_length=1, max_length=500)]


class SpcBaselineBody(_Body):
    chart: Annotated[
        str, Field(min_length=1, max_length=300, description="RECIPE/STEP/RESULT@TOOL")
    ]
    center: float | None = Field(default=None, description="with sigma: limits set by hand")
    sigma: float | None = Field(default=None, description="short-term sigma of one value")


class SpcClearBody(_Body):
    chart: Annotated[str, Field(min_length=1, max_length=300)]
    note: Annotated[str, Field(min_length=1, max_length=500)]


class AckBody(_Body):
    comment: Comment | None = None


class NewUser(_Body):
    name: Name
    role: Role
    password: Annotated[str, Field(min_length=8, max_length=1024)]


class UserChange(_Body):
    role: Role | None = None
    password: Annotated[str, Field(min_length=8, max_length=1024)] | None = None
    disabled: bool | None = None


class RecipeSummary(BaseModel):
    id: str
    version: int
    status: str
    title: str
    hash: str


class RecipeExpanded(RecipeSummary):
    options: dict[str, Any]
    steps: list[dict[str, Any]]


def Web(request: Request) -> WebContext:
    return web(request)


Ctx = Annotated[WebContext, Depends(Web)]


# -- session ----------------------------------------------------------------------------------


@router.post("/login", response_model=Me)
async def login(body: LoginBody, request: Request, response: Response, w: Ctx) -> Me:
    """Log in; the session cookie is set, the CSRF token returned (send it as X-CSRF-Token
    on every unsafe request). JSON only: a cross-site form cannot send it."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Unauthorized("cross-site login refused")
    hours = w.settings.session_hours
    done = await w.station.db.run(lambda s: users.login(s, body.name, body.password, hours))
    set_session_cookie(response, request, w, done.token)
    return Me(name=done.user.name, role=done.user.role, scopes=_scopes(done.user.role),
              csrf=done.csrf)  # fmt: skip


def set_session_cookie(response: Response, request: Request, w: WebContext, token: str) -> None:
    secure = w.settings.tls or request.url.scheme == "https"
    response.set_cookie(
        COOKIE, token, max_age=int(w.settings.session_hours * 3600), httponly=True,
        samesite="strict", secure=secure, path="/",
    )  # fmt: skip


@router.post("/logout", response_model=Done)
async def logout(request: Request, response: Response, w: Ctx) -> Done:
    principal = await current(request)
    token = request.cookies.get(COOKIE)
    if principal is None or token is None:
        raise Unauthorized("not logged in")
    await needs(Scope.READ, "log out")(request)  # the CSRF check
    await w.station.db.run(lambda s: users.logout(s, token))
    response.delete_cookie(COOKIE, path="/")
    return Done(message=f"{principal.user.name} logged out")


@router.get("/me", response_model=Me)
async def me(p: Reading) -> Me:
    return Me(name=p.user.name, role=p.user.role, scopes=_scopes(p.user.role), csrf=p.csrf)


def _scopes(role: Role) -> list[str]:
    from controller.access import SCOPES

    return sorted(s.value for s in SCOPES[role])


# -- tools ------------------------------------------------------------------------------------


@router.get("/tools", response_model=list[reads.ToolView])
async def tools(_: Reading, w: Ctx) -> list[reads.ToolView]:
    """Every tool of the line: state, E10 and E116 (with why it is blocked), job, lot,
    progress, alarms, consumables, time in state."""
    tiles = list(w.station.monitor.tiles.values())
    return reads.tool_views(tiles)


@router.get("/tools/report", response_model=list[E10ReportView])
async def tools_report(
    _: Reading, w: Ctx,
    start: Annotated[datetime, Query(alias="from", description="ISO 8601; UTC if no zone")],
    end: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
    tool: Annotated[str | None, Query(max_length=64)] = None,
) -> list[E10ReportView]:  # fmt: skip
    """SEMI E10 time in state and metrics per tool over a period (controller/station/
    tool_report.py): availability, utilisation, MTBF(p), MTTR, MTBA(p)."""
    period = Period(aware(start), aware(end) if end is not None else datetime.now(UTC))
    tools = [tool] if tool is not None else list(w.station.engine.pool.drivers)
    rows = await w.station.db.run(lambda s: tool_report.report(s, period, tools))
    return [E10ReportView.of(r, period) for r in rows]


@router.get("/tools/{tool_id}", response_model=reads.ToolView)
async def tool(tool_id: str, _: Reading, w: Ctx) -> reads.ToolView:
    tile = w.station.monitor.tiles.get(tool_id)
    if tile is None:
        raise _no_tool(tool_id, w)
    return reads.ToolView.of(tile)


def _no_tool(tool_id: str, w: WebContext) -> FablineError:
    from drivers.errors import NotFound, shown

    if tool_id in w.station.engine.pool.drivers:
        return NotFound(f"tool {shown(tool_id)} has not reported yet")
    return NotFound(f"no tool {shown(tool_id)!r} on this station's line")


@router.post("/tools/{tool_id}/e10", response_model=Done)
async def tool_e10(
    tool_id: str, body: E10Body, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.TOOL_STATE, "set tool states"))],
) -> Done:  # fmt: skip
    """Enter an E10 state with its context (AUTO: the tool's own state again)."""
    actor = p.actor(body.reason, body.comment)
    message = await w.station.tools.set_e10(tool_id, body.state, body.substate, actor)
    w.wrote()
    return Done(message=message)


@router.post("/tools/{tool_id}/inhibit", response_model=Done)
async def tool_inhibit(
    tool_id: str, body: InhibitBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.INHIBIT, "inhibit tools"))],
) -> Done:  # fmt: skip
    ident = await w.station.tools.inhibit(tool_id, body.reason, p.actor(comment=body.reason))
    w.wrote()
    return Done(message=f"{tool_id}: inhibit {ident} in force")


@router.post("/tools/{tool_id}/inhibits/{inhibit_id}/release", response_model=Done)
async def tool_release_inhibit(
    tool_id: str, inhibit_id: RowId, body: InhibitReleaseBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.INHIBIT, "release inhibits"))],
) -> Done:  # fmt: skip
    actor = p.actor(comment=body.note)
    message = await w.station.tools.release_inhibit(tool_id, inhibit_id, body.note, actor)
    w.wrote()
    return Done(message=message)


@router.post("/tools/{tool_id}/clear-alarms", response_model=Done)
async def tool_clear_alarms(
    tool_id: str, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.TOOL_STATE, "clear tool alarms"))],
) -> Done:  # fmt: skip
    message = await w.station.tools.clear_alarms(tool_id, p.actor())
    w.wrote()
    return Done(message=message)


# -- SPC --------------------------------------------------------------------------------------

ChartName = Annotated[
    str, Query(min_length=1, max_length=300, description="RECIPE/STEP/RESULT@TOOL")
]


@router.get("/spc/charts", response_model=list[ChartView])
async def spc_charts(
    _: Reading, w: Ctx,
    tool: Annotated[str | None, Query(max_length=64)] = None,
    recipe: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ChartView]:  # fmt: skip
    """Every SPC chart: type, rules, OCAP action, frozen limits, open violations."""
    rows = await w.station.db.run(lambda s: spc_ops.list_charts(s, tool, recipe))
    return [ChartView.of(r) for r in rows]


@router.get("/spc/chart", response_model=ChartDetailView)
async def spc_chart(
    name: ChartName, _: Reading, w: Ctx,
    last: Annotated[int | None, Query(ge=2, le=10_000)] = None,
) -> ChartDetailView:  # fmt: skip
    """One chart's current series, violations and capability against the recipe's spec."""
    detail = await w.station.db.run(lambda s: spc_ops.chart_detail(s, name, last))
    return ChartDetailView.of_detail(detail)


@router.get("/spc/chart.svg", response_class=Response)
async def spc_chart_svg(
    name: ChartName, _: Reading, w: Ctx,
    last: Annotated[int | None, Query(ge=2, le=10_000)] = None,
) -> Response:  # fmt: skip
    """The chart drawn: limits, zones, spec, phase I shaded, violations marked."""
    detail = await w.station.db.run(lambda s: spc_ops.chart_detail(s, name, last))
    return Response(spc_ops.chart_svg(detail), media_type="image/svg+xml")


@router.post("/spc/baseline", response_model=Done)
async def spc_baseline(
    body: SpcBaselineBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.SPC_LIMITS, "set SPC limits"))],
) -> Done:  # fmt: skip
    """New limits from the next point: by hand (center and sigma), or phase I again."""
    message = await w.station.spc.baseline(body.chart, p.actor(), body.center, body.sigma)
    w.wrote()
    return Done(message=message)


@router.post("/spc/clear", response_model=Done)
async def spc_clear(
    body: SpcClearBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.INHIBIT, "clear SPC charts"))],
) -> Done:  # fmt: skip
    """Acknowledge the chart's open violations and release the tool inhibit it raised."""
    message = await w.station.spc.clear(body.chart, body.note, p.actor(comment=body.note))
    w.wrote()
    return Done(message=message)


# -- lots -------------------------------------------------------------------------------------


@router.get("/lots", response_model=list[reads.QueueRow])
async def lots(
    _: Reading, w: Ctx,
    state: Annotated[list[str] | None, Query(max_length=8)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = reads.QUEUE_LIMIT,
) -> list[reads.QueueRow]:  # fmt: skip
    """The lot queue: held and running first, then by priority and age (or only `state`)."""
    from controller.genealogy.models import LOT_STATES
    from drivers.errors import ParameterError, shown

    for st in state or []:
        if st not in LOT_STATES:
            raise ParameterError(f"state {shown(st)!r} is not one of {', '.join(LOT_STATES)}")
    return await w.station.db.run(lambda s: reads.queue(s, states=state, limit=limit))


@router.get("/lots/{lot_id}", response_model=LotDetail)
async def lot(lot_id: str, _: Reading, w: Ctx) -> LotDetail:
    """State, step history with setpoints and results, MES events."""
    return await w.station.db.run(lambda s: reads.lot_detail(s, lot_id))


@router.post("/lots", response_model=Done, status_code=201)
async def dispatch(
    body: LotRequest, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.DISPATCH, "dispatch lots"))],
) -> Done:  # fmt: skip
    """Create a lot and run it on this station."""
    lot = await w.station.lots.create(body, actor=p.actor())
    w.station.take_up(lot.id)
    w.wrote()
    return Done(message=f"lot {lot.id} dispatched: {lot.recipe_id} v{lot.recipe_version}")


def _reason(w: WebContext, code: str | None, comment: str | None, fallback: str) -> str:
    known: HoldCode | None = w.station.lots.holds.get(code) if code else None
    text = comment or (known.text if known else fallback)
    return f"{code}: {text}" if code else text


@router.post("/lots/{lot_id}/hold", response_model=Done)
async def hold(
    lot_id: str, body: HoldBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.HOLD, "hold lots"))],
) -> Done:  # fmt: skip
    """Hold a lot with a hold code (GET /api/hold-codes) and a comment."""
    why = HoldReason("operator", _reason(w, body.code, body.comment, "hold"))
    message = await w.station.lots.hold(lot_id, why, p.actor(body.code, body.comment))
    w.wrote()
    return Done(message=message)


@router.post("/lots/{lot_id}/pause", response_model=Done)
async def pause(
    lot_id: str, body: ReleaseBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.PAUSE, "pause lots"))],
) -> Done:  # fmt: skip
    why = HoldReason("operator", body.comment or "paused")
    message = await w.station.lots.pause(lot_id, why, p.actor(comment=body.comment))
    w.wrote()
    return Done(message=message)


@router.post("/lots/{lot_id}/release", response_model=Done)
async def release(
    lot_id: str, body: ReleaseBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.RELEASE, "release lots"))],
) -> Done:  # fmt: skip
    """Release a held or paused lot: the hold's code says the least role that may."""
    actor = p.actor(comment=body.comment)
    message = await w.station.lots.release(lot_id, body.comment, actor=actor)
    w.station.take_up(lot_id)
    w.wrote()
    return Done(message=message)


@router.post("/lots/{lot_id}/abort", response_model=Done)
async def abort(
    lot_id: str, body: AbortBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.ABORT, "abort lots"))],
) -> Done:  # fmt: skip
    why = HoldReason("operator", _reason(w, body.code, body.comment, "abort"))
    message = await w.station.lots.abort(lot_id, why, p.actor(body.code, body.comment))
    w.wrote()
    return Done(message=message)


@router.post("/lots/{lot_id}/confirm", response_model=Done)
async def confirm(
    lot_id: str, body: ConfirmBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.CONFIRM, "confirm external steps"))],
) -> Done:  # fmt: skip
    actor = p.actor()
    message = await w.station.lots.confirm(lot_id, body.fields, by=actor.name, actor=actor)
    w.station.take_up(lot_id)
    w.wrote()
    return Done(message=message)


def _ran_on(w: WebContext, done: operations.Done) -> Done:
    """The lots an operation left queued run on; the page hears of it."""
    for queued in done.lots:
        w.station.take_up(queued)
    w.wrote()
    return Done(message=done.message)


@router.post("/lots/{lot_id}/split", response_model=Done)
async def split(
    lot_id: str, body: SplitBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.SPLIT, "split lots"))],
) -> Done:  # fmt: skip
    """Move units of a held, paused or queued lot into a new child lot at the same step."""
    actor = p.actor(comment=body.comment)
    return _ran_on(w, await w.station.lots.split(lot_id, body.units, body.into, actor))


@router.post("/lots/{lot_id}/merge", response_model=Done)
async def merge(
    lot_id: str, body: MergeBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.SPLIT, "merge lots"))],
) -> Done:  # fmt: skip
    """Merge lots (same recipe version, options, next step and state) into this one."""
    actor = p.actor(comment=body.comment)
    return _ran_on(w, await w.station.lots.merge(lot_id, body.lots, actor))


@router.post("/lots/{lot_id}/scrap", response_model=Done)
async def scrap(
    lot_id: str, body: ScrapBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.SCRAP, "scrap lots"))],
) -> Done:  # fmt: skip
    """Scrap units of a lot (none named: the whole lot) with a scrap code (GET
    /api/scrap-codes)."""
    actor = p.actor(body.code, body.comment)
    done = await w.station.lots.scrap(lot_id, body.units, body.code, body.comment, actor)
    return _ran_on(w, done)


@router.post("/lots/{lot_id}/rework", response_model=Done)
async def rework(
    lot_id: str, body: ReworkBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.REWORK, "rework lots"))],
) -> Done:  # fmt: skip
    """Send a lot (or a child lot of `units`) back by its recipe's rework route."""
    done = await w.station.lots.rework(
        lot_id, body.route, units=body.units, child_id=body.into, comment=body.comment,
        actor=p.actor(comment=body.comment),
    )  # fmt: skip
    return _ran_on(w, done)


@router.get("/scrap-codes", response_model=list[ScrapCode])
async def scrap_codes(_: Reading, w: Ctx) -> list[ScrapCode]:
    return list(w.station.lots.scrap_codes.codes)


@router.get("/hold-codes", response_model=list[HoldCode])
async def hold_codes(_: Reading, w: Ctx) -> list[HoldCode]:
    return list(w.station.lots.holds.codes)


# -- alarms -----------------------------------------------------------------------------------


@router.get("/alarms", response_model=list[reads.AlarmRow])
async def alarms(_: Reading, w: Ctx) -> list[reads.AlarmRow]:
    """Alarms the tools report now."""
    tiles = list(w.station.monitor.tiles.values())
    return await w.station.db.run(lambda s: reads.active_alarms(s, tiles))


@router.get("/alarms/history", response_model=list[reads.AlarmRow])
async def alarm_history(
    _: Reading, w: Ctx,
    tool: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[reads.AlarmRow]:  # fmt: skip
    return await w.station.db.run(lambda s: reads.alarm_history(s, limit, tool))


@router.post("/alarms/{event}/ack", response_model=Done)
async def acknowledge(
    event: EventId, body: AckBody, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.ACK_ALARMS, "acknowledge alarms"))],
) -> Done:  # fmt: skip
    message = await w.station.tools.acknowledge(event, p.actor(comment=body.comment))
    w.wrote()
    return Done(message=message)


# -- genealogy --------------------------------------------------------------------------------


@router.get("/trace/{unit}")
async def trace_unit(
    unit: str, _: Reading, w: Ctx,
    direction: Literal["backward", "forward"] = "backward",
) -> dict[str, Any]:  # fmt: skip
    """Backward: what a unit is made of; forward: everything made from it."""
    walk = trace.forward if direction == "forward" else trace.backward
    nodes = await w.station.db.run(lambda s: walk(s, unit))
    return {"unit": unit, "direction": direction, "nodes": [n.to_dict() for n in nodes]}


@router.get("/die-map/{unit}")
async def die_map(unit: str, _: Reading, w: Ctx) -> dict[str, Any]:
    """The die map of a diced wafer, stack, panel or strip (positions, packages, bins)."""
    header, rows = await w.station.db.run(lambda s: e142.load_die_map(s, unit))
    return e142.die_map_json(header, rows)


# -- recipes ----------------------------------------------------------------------------------


@router.get("/recipes", response_model=list[RecipeSummary])
async def recipes(_: Reading) -> list[RecipeSummary]:
    return [
        RecipeSummary(
            id=r.recipe.id,
            version=r.recipe.version,
            status=r.recipe.status,
            title=r.recipe.title,
            hash=r.hash,
        )
        for r in reads.recipes()
    ]


@router.get("/recipes/{recipe_id}", response_model=RecipeExpanded)
async def recipe(
    recipe_id: str, request: Request, _: Reading,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> RecipeExpanded:  # fmt: skip
    """The recipe expanded with the options given as query parameters (`?grind=to_trace`)."""
    options = {k: v for k, v in request.query_params.items() if k != "version"}
    loaded = find(recipe_id, version)
    exp = loaded.expand(options)
    r = loaded.recipe
    return RecipeExpanded(
        id=r.id, version=r.version, status=r.status, title=r.title, hash=loaded.hash,
        options=dict(exp.options), steps=[step_view(s) for s in exp.steps],
    )  # fmt: skip


def step_view(s: PlannedStep) -> dict[str, Any]:
    d: dict[str, Any] = {"index": s.index + 1, "id": s.id, "name": s.name, "kind": s.kind}
    if s.kind == "tool":
        d |= {"tool": s.tool, "operation": s.operation,
              "params": {k: str(v) for k, v in s.params.items()}}  # fmt: skip
        if s.spec:
            d["spec"] = {k: {"min": lo, "max": hi} for k, (lo, hi) in s.spec.items()}
        if s.spc:
            d["spc"] = {c.result: {"rules": c.rules, "action": c.action, "baseline": c.baseline}
                        for c in s.spc}  # fmt: skip
    else:
        d |= {"external": s.external, "returns": list(s.returns)}
    return d


# -- users and the audit trail -----------------------------------------------------------------


@router.get("/users", response_model=list[users.UserView])
async def user_list(
    _: Annotated[Principal, Depends(needs(Scope.USERS, "list users"))], w: Ctx
) -> list[users.UserView]:
    return await w.station.db.run(users.list_users)


@router.post("/users", response_model=users.UserView, status_code=201)
async def user_add(
    body: NewUser, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.USERS, "add users"))],
) -> users.UserView:  # fmt: skip
    st, actor = w.station, p.actor()
    try:
        view = await st.db.run(
            lambda s: users.add_user(s, st.name, actor, body.name, body.role, body.password)
        )
    except FablineError as e:
        refusal = functools.partial(
            users.record_refusal,
            station=st.name,
            actor=actor,
            action="user_add",
            target=body.name,
            e=e,
        )
        await st.db.run(refusal)
        raise
    w.wrote()
    return view


@router.patch("/users/{name}", response_model=users.UserView)
async def user_change(
    name: str, body: UserChange, w: Ctx,
    p: Annotated[Principal, Depends(needs(Scope.USERS, "change users"))],
) -> users.UserView:  # fmt: skip
    st, actor = w.station, p.actor()

    def change(s: Any) -> users.UserView:
        return users.change_user(
            s, st.name, actor, name, role=body.role, password=body.password,
            disabled=body.disabled,
        )  # fmt: skip

    try:
        view = await st.db.run(change)
    except FablineError as e:
        refusal = functools.partial(
            users.record_refusal,
            station=st.name,
            actor=actor,
            action="user_change",
            target=name,
            e=e,
        )
        await st.db.run(refusal)
        raise
    w.wrote()
    return view


@router.get("/audit", response_model=list[reads.AuditRow])
async def audit_trail(
    _: Reading, w: Ctx,
    target: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[reads.AuditRow]:  # fmt: skip
    """Every operator action, newest first (or those on one target: a lot, a tool)."""
    return await w.station.db.run(lambda s: reads.audit_rows(s, limit=limit, target=target))
