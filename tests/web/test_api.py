"""The station's HTTP API from the outside (httpx over a real socket to `fabline station`):
who may do what, the error categories, the audit trail, tool states, the event stream."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.web.station import TOOLS, USERS, Client, Running

_ids = itertools.count(1)
_made: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _abort_lots_made(web_station: Running) -> Iterator[None]:
    """The lots these tests dispatch are aborted afterwards: they would hold the line's
    tools for the browser test."""
    yield
    eng = web_station.client("engineer")
    for lot in _made:
        eng.post(f"/api/lots/{lot}/abort", json={"comment": "test over"})


def until(what: Callable[[], Any], timeout: float = 30.0, every: float = 0.05) -> Any:
    """Wait for a state the station reports (polled; never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out waiting for the station"
        time.sleep(every)


def dispatch(c: Client, recipe: str = "wlcsp-002-42") -> str:
    lot = f"A{next(_ids)}-{int(time.time() * 1000) % 100000}"
    r = c.post("/api/lots", json={"lot_id": lot, "recipe": recipe, "inputs": {"wafers": 1}})
    assert r.status_code == 201, r.text
    _made.append(lot)
    return lot


def row(c: Client, lot: str) -> dict[str, Any]:
    detail = c.get(f"/api/lots/{lot}")
    assert detail.status_code == 200, detail.text
    data: dict[str, Any] = detail.json()
    return data


def audit(c: Client, lot: str) -> list[tuple[str, str, str]]:
    rows = c.get("/api/audit", params={"target": lot}).json()
    return [(a["actor"], a["action"], a["result"]) for a in reversed(rows)]


def test_healthz_reports_database_broker_and_line_without_login(web_station: Running) -> None:
    c = web_station.client()
    report = until(lambda: (r := c.get("/healthz").json())["line"]["reachable"] == TOOLS and r)
    assert report["status"] == "ok"
    assert report["database"]["ok"] and report["line"] == {
        "ok": True, "name": "sim", "tools": TOOLS, "reachable": TOOLS,
    }  # fmt: skip
    assert report["broker"] == {"ok": True, "configured": False, "spool": report["broker"]["spool"]}
    assert c.get("/openapi.json").json()["info"]["title"] == "fabline station"


def test_unauthenticated_requests_get_401_and_change_nothing(web_station: Running) -> None:
    admin = web_station.client("admin")
    lot = dispatch(admin)
    before = audit(admin, lot)
    anon = web_station.client()
    for path, body in [
        (f"/api/lots/{lot}/hold", {"code": "QA-SUSPECT"}),
        (f"/api/lots/{lot}/abort", {"comment": "x"}),
        ("/api/lots", {"lot_id": "NEVER", "recipe": "wlcsp-002-42"}),
        ("/api/users", {"name": "mallory", "role": "admin", "password": "12345678"}),
    ]:
        r = anon.post(path, json=body)
        assert r.status_code == 401, (path, r.text)
        assert r.json() == {"error": "log in first", "category": "unauthorized"}
    assert anon.get("/api/lots").status_code == 401
    assert anon.get("/", follow_redirects=False).headers["location"] == "/login"
    assert row(admin, lot)["hold_reason"] is None
    assert admin.get("/api/lots/NEVER").status_code == 404
    assert audit(admin, lot) == before


def test_a_viewer_cannot_hold_and_nothing_changes_but_the_denial_is_audited(
    web_station: Running,
) -> None:
    admin = web_station.client("admin")
    lot = dispatch(admin)
    viewer = web_station.client("viewer")
    r = viewer.post(f"/api/lots/{lot}/hold", json={"code": "QA-SUSPECT", "comment": "no"})
    assert r.status_code == 403
    assert r.json()["category"] == "forbidden"
    assert "viewer" in r.json()["error"] and "operator" in r.json()["error"]
    after = row(admin, lot)
    assert after["state"] in ("queued", "running", "completed") and after["hold_reason"] is None
    queue = {q["lot"]: q for q in admin.get("/api/lots", params={"limit": 1000}).json()}
    assert lot not in queue or queue[lot]["request"] is None
    name = USERS["viewer"][0]
    assert (name, "lots:hold", "denied") in audit(admin, lot)
    assert viewer.get(f"/api/lots/{lot}").status_code == 200  # but reads


def test_unsafe_requests_need_the_csrf_token(web_station: Running) -> None:
    op = web_station.client("operator")
    lot = dispatch(op)
    bare = httpx.Client(base_url=web_station.url, cookies=op.cookies)
    r = bare.post(f"/api/lots/{lot}/hold", json={"code": "OP-CHECK"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = bare.post(
        f"/api/lots/{lot}/hold", json={"code": "OP-CHECK"}, headers={"X-CSRF-Token": "forged"}
    )
    assert r.status_code == 403
    r = op.post(f"/api/lots/{lot}/hold", json={"code": "OP-CHECK"},
                headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert r.status_code == 403
    assert row(op, lot)["hold_reason"] is None


def test_hold_by_an_operator_is_released_only_by_an_engineer_and_every_step_is_audited(
    web_station: Running,
) -> None:
    op, eng = web_station.client("operator"), web_station.client("engineer")
    lot = dispatch(op)
    r = op.post(f"/api/lots/{lot}/hold", json={"code": "QA-SUSPECT", "comment": "scratches"})
    assert r.status_code == 200, r.text
    held = until(lambda: (d := row(op, lot))["state"] == "held" and d)
    assert held["hold_reason"] == "QA-SUSPECT: scratches" and held["hold_kind"] == "operator"
    again = op.post(f"/api/lots/{lot}/hold", json={"code": "OP-CHECK"})
    assert again.status_code == 409 and "already held" in again.json()["error"]
    r = op.post(f"/api/lots/{lot}/release", json={"comment": "looks fine"})
    assert r.status_code == 403
    assert "QA-SUSPECT" in r.json()["error"] and "engineer" in r.json()["error"]
    assert row(op, lot)["state"] == "held"
    r = eng.post(f"/api/lots/{lot}/release", json={"comment": "checked under the microscope"})
    assert r.status_code == 200, r.text
    until(lambda: row(eng, lot)["state"] != "held")
    o, e = USERS["operator"][0], USERS["engineer"][0]
    trail = audit(eng, lot)
    assert trail[:1] == [(o, "dispatch", "ok")]
    assert [t for t in trail if t[1] in ("hold", "release")] == [
        (o, "hold", "ok"), (o, "hold", "refused"), (o, "release", "denied"), (e, "release", "ok"),
    ]  # fmt: skip
    # each ok action is also one of the lot's MES events, with its sequence number
    events = [ev for ev in row(eng, lot)["events"] if ev["type"] == "operator_action"]
    assert [(ev["data"]["action"], ev["data"]["actor"]) for ev in events] == [
        ("dispatch", o), ("hold", o), ("release", e),
    ]  # fmt: skip
    assert all(isinstance(ev["seq"], int) for ev in events)
    assert events[1]["data"]["reason_code"] == "QA-SUSPECT"


JSON = {"content-type": "application/json"}
LOT = {"lot_id": "B1", "recipe": "wlcsp-002-42"}


def test_errors_come_with_their_category_status_and_one_message(web_station: Running) -> None:
    op = web_station.client("operator")
    cases = [
        (op.get("/api/lots/NO-SUCH"), 404, "no lot 'NO-SUCH'"),
        (op.post("/api/lots/NO-SUCH/hold", json={"code": "OP-CHECK"}), 404, "no lot"),
        (op.post("/api/lots/X/hold", json={"code": "NOPE"}), 400, "unknown hold code"),
        (op.post("/api/lots/X/hold", json={}), 400, "body.code"),
        (op.post("/api/lots/X/hold", content=b"{not json", headers=JSON), 400, ""),
        (op.post("/api/lots", json={"lot_id": "B1", "recipe": "no-such"}), 404, "no-such"),
        (op.post("/api/lots", json={**LOT, "inputs": {"wafers": 99}}), 400, "wafers"),
        (op.post("/api/lots", json={**LOT, "sort_maps": {"W01": "{"}}), 400,
         "sort map W01: not JSON"),
        (op.post("/api/lots", json={**LOT, "sort_maps": {"W09": "{}"}}), 400, "no wafer 'W09'"),
        (op.post("/api/lots", json={**LOT, "sort_yield": 2}), 400, "sort_yield"),
        (op.get("/api/tools/NOPE-1"), 404, "no tool"),
        (op.get("/api/die-map/NOPE"), 404, "no unit"),
        (op.post("/api/tools/SPUT-1/inhibit", json={"reason": "x"}), 403, "technician"),
    ]  # fmt: skip
    for r, status, text in cases:
        assert r.status_code == status, r.text
        body = r.json()
        assert set(body) == {"error", "category"} and text in body["error"], body
        assert "\n" not in body["error"] and "Traceback" not in body["error"]


def test_a_technician_enters_tool_states_and_inhibits_and_the_tile_shows_why(
    web_station: Running,
) -> None:
    tech, viewer = web_station.client("technician"), web_station.client("viewer")
    tool = "WB-1"  # no recipe of the other tests uses the wire bonder
    pm = {"state": "SCHEDULED_DOWN", "substate": "preventive-maintenance", "comment": "capillary"}
    r = tech.post(f"/api/tools/{tool}/e10", json=pm)
    assert r.status_code == 200, r.text
    tile = until(
        lambda: (t := viewer.get(f"/api/tools/{tool}").json())["e10"] == "SCHEDULED_DOWN" and t
    )
    assert tile["e116"] == "blocked" and "preventive-maintenance" in tile["blocked"]
    assert tile["e10_substate"] == "preventive-maintenance" and tile["e10_context"] == "capillary"
    bad = tech.post(f"/api/tools/{tool}/e10", json={"state": "STANDBY", "substate": "repair"})
    assert bad.status_code == 400 and "not a sub-state of STANDBY" in bad.json()["error"]
    tech.post(f"/api/tools/{tool}/e10", json={"state": "AUTO"})
    until(lambda: viewer.get(f"/api/tools/{tool}").json()["e10"] == "STANDBY")
    r = tech.post(f"/api/tools/{tool}/inhibit", json={"reason": "capillary worn"})
    assert r.status_code == 200
    tile = until(lambda: (t := viewer.get(f"/api/tools/{tool}").json())["inhibits"] and t)
    assert tile["e116"] == "blocked" and tile["blocked"] == "inhibited: capillary worn"
    ident = tile["inhibits"][0]["id"]
    r = tech.post(f"/api/tools/{tool}/inhibits/{ident}/release", json={"note": "replaced"})
    assert r.status_code == 200, r.text
    until(lambda: viewer.get(f"/api/tools/{tool}").json()["e116"] == "idle")
    r = tech.post(f"/api/tools/{tool}/inhibits/{ident}/release", json={"note": "again"})
    assert r.status_code == 409
    actions = [
        (a["action"], a["result"])
        for a in reversed(tech.get("/api/audit", params={"target": tool}).json())
    ]
    assert actions[-6:] == [("e10", "ok"), ("e10", "refused"), ("e10", "ok"), ("inhibit", "ok"),
                            ("release_inhibit", "ok"), ("release_inhibit", "refused")]  # fmt: skip


def test_every_tool_reports_state_e10_consumables_and_time_in_state(web_station: Running) -> None:
    viewer = web_station.client("viewer")
    tools = until(lambda: len(t := viewer.get("/api/tools").json()) == TOOLS and t)
    assert {t["tool"] for t in tools} >= {"SPUT-1", "PLAT-1", "DICE-1", "BALL-1", "BOND-1"}
    for t in tools:
        assert t["state"] in ("idle", "busy", "alarm", "offline")
        assert t["e116"] in ("idle", "busy", "blocked") and t["since"].endswith("+00:00")
        assert t["status"]["consumables"], t["tool"]


def test_genealogy_trace_and_die_map_of_a_package(web_station: Running) -> None:
    viewer = web_station.client("viewer")
    back = viewer.get(f"/api/trace/{web_station.package}").json()
    names = [n["name"] for n in back["nodes"]]
    assert names[0] == web_station.package and web_station.wafer in names
    m = viewer.get(f"/api/die-map/{web_station.wafer}").json()
    assert m["substrate"] == web_station.wafer and m["total"] == len(m["dies"]) > 0
    assert web_station.package in {d["package"] for d in m["dies"]}
    fwd = viewer.get(f"/api/trace/{web_station.wafer}", params={"direction": "forward"}).json()
    assert web_station.package in {n["name"] for n in fwd["nodes"]}


def test_users_are_managed_by_an_admin_only(web_station: Running) -> None:
    admin, op = web_station.client("admin"), web_station.client("operator")
    assert op.get("/api/users").status_code == 403
    r = admin.post(
        "/api/users", json={"name": "newbie", "role": "viewer", "password": "longenough"}
    )
    assert r.status_code == 201 and r.json()["role"] == "viewer"
    assert admin.post("/api/users", json={"name": "newbie", "role": "viewer",
                                          "password": "longenough"}).status_code == 409  # fmt: skip
    fresh = web_station.client()
    fresh.login("newbie", "longenough")
    assert fresh.get("/api/me").json()["scopes"] == ["read"]
    assert admin.patch("/api/users/newbie", json={"disabled": True}).status_code == 200
    assert fresh.get("/api/me").status_code == 401  # its session ended
    assert (
        web_station.client()
        .post("/api/login", json={"name": "newbie", "password": "longenough"})
        .status_code
        == 401
    )


def test_the_event_stream_resumes_after_last_event_id(web_station: Running) -> None:
    op = web_station.client("operator")
    lot = dispatch(op)
    seen: list[int] = []
    with op.stream("GET", "/api/events") as stream:
        op.post(f"/api/lots/{lot}/pause", json={"comment": "first"})
        for event in _events(stream):
            seen.append(event["id"])
            if event["type"] == "operator_action" and event["data"]["data"]["action"] == "pause":
                break
    # while nobody listens: the hold, the release, ...
    until(lambda: row(op, lot)["state"] in ("paused", "completed"))
    web_station.client("engineer").post(f"/api/lots/{lot}/release", json={"comment": "go"})
    with op.stream("GET", "/api/events", headers={"Last-Event-ID": str(seen[-1])}) as stream:
        events = _events(stream)
        first = next(events)
        assert first["id"] == seen[-1] + 1  # nothing lost, nothing repeated
        for event in itertools.chain([first], events):
            if event["type"] == "operator_action" and event["data"]["data"]["action"] == "release":
                assert event["data"]["lot_id"] == lot
                break


def _events(stream: httpx.Response) -> Any:
    """Parse server-sent events: {'id', 'type', 'data'} for each with an id."""
    ident, kind, data = None, None, []
    for line in stream.iter_lines():
        if line.startswith("id: "):
            ident = int(line[4:])
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "":
            if ident is not None and kind is not None:
                yield {"id": ident, "type": kind, "data": json.loads("\n".join(data))}
            ident, kind, data = None, None, []


def test_lot_operations_by_role_with_one_error_each(web_station: Running) -> None:
    op, eng = web_station.client("operator"), web_station.client("engineer")
    lot = f"S{next(_ids)}-{int(time.time() * 1000) % 100000}"
    r = op.post("/api/lots", json={"lot_id": lot, "recipe": "wlcsp-002-42",
                                   "inputs": {"wafers": 2}})  # fmt: skip
    assert r.status_code == 201, r.text
    _made.append(lot)
    assert op.post(f"/api/lots/{lot}/hold", json={"code": "OP-CHECK"}).status_code == 200
    until(lambda: row(op, lot)["state"] == "held")
    codes = [c["code"] for c in op.get("/api/scrap-codes").json()]
    assert codes[:3] == ["BROKEN", "DROPPED", "CONTAMINATED"]
    cases = [  # (who, route, body, status, text): each refused, nothing changed
        (op, "split", {"units": [f"{lot}-W09"]}, 400, f"lot {lot} has no active unit {lot}-W09"),
        (op, "split", {"units": []}, 400, "body.units"),
        (op, "scrap", {"code": "BROKEN"}, 403, "needs an engineer"),
        (eng, "scrap", {"units": [f"{lot}-W01"]}, 400, "needs a reason code"),
        (op, "rework", {"route": "plate-recoat"}, 403, "needs an engineer"),
        (eng, "rework", {"route": "plate-recoat"}, 409, "rework route plate-recoat applies after"),
        (op, "merge", {"lots": ["NO-SUCH"]}, 404, "no lot 'NO-SUCH'"),
    ]  # fmt: skip
    before = row(op, lot)
    for who, route, body, status, text in cases:
        r = who.post(f"/api/lots/{lot}/{route}", json=body)
        assert r.status_code == status, (route, r.text)
        assert text in r.json()["error"], (route, r.json())
    after = row(op, lot)
    assert (after["state"], after["units"], after["events"]) == (
        before["state"], before["units"], before["events"]
    )  # fmt: skip
    r = op.post(f"/api/lots/{lot}/split", json={"units": [f"{lot}-W02"], "into": f"{lot}.C"})
    assert r.status_code == 200, r.text
    assert r.json()["message"].startswith(f"lot {lot}: 1 unit(s) split into lot {lot}.C (held,")
    assert row(op, lot)["units"]["wafer"] == 1 and row(op, f"{lot}.C")["units"]["wafer"] == 1
    [link] = row(op, f"{lot}.C")["operations"]
    assert (link["kind"], link["from_lot"], link["to_lot"]) == ("split", lot, f"{lot}.C")
    r = eng.post(f"/api/lots/{lot}.C/scrap", json={"code": "DROPPED", "comment": "W02 fell"})
    assert r.status_code == 200, r.text
    assert row(eng, f"{lot}.C")["state"] == "scrapped"
    o, e = USERS["operator"][0], USERS["engineer"][0]
    kinds = ("split", "merge", "scrap", "rework", "lots:scrap", "lots:rework")
    assert [t for t in audit(eng, lot) if t[1] in kinds] == [  # a bad body never reaches it
        (o, "split", "refused"), (o, "lots:scrap", "denied"), (e, "scrap", "refused"),
        (o, "lots:rework", "denied"), (e, "rework", "refused"), (o, "merge", "refused"),
        (o, "split", "ok"),
    ]  # fmt: skip


def test_lot_operations_from_the_page(web_station: Running) -> None:
    op, eng = web_station.client("operator"), web_station.client("engineer")
    lot = f"P{next(_ids)}-{int(time.time() * 1000) % 100000}"
    r = op.post("/api/lots", json={"lot_id": lot, "recipe": "wlcsp-002-42",
                                   "inputs": {"wafers": 3}})  # fmt: skip
    assert r.status_code == 201, r.text
    _made.append(lot)
    assert op.post(f"/api/lots/{lot}/hold", json={"code": "OP-CHECK"}).status_code == 200
    until(lambda: row(op, lot)["state"] == "held")
    # the forms a role may use, for a held lot
    forms = {role: web_station.client(role).get(f"/ui/lots/{lot}/actions").text
             for role in ("viewer", "operator", "engineer")}  # fmt: skip
    assert "split-form" not in forms["viewer"]
    assert "split-form" in forms["operator"] and "scrap-form" not in forms["operator"]
    assert "scrap-form" in forms["engineer"] and "rework-form" in forms["engineer"]
    assert '<option value="BROKEN">' in forms["engineer"]
    r = op.post(f"/ui/lots/{lot}/split", data={"units": f"{lot}-W02, {lot}-W03"})
    assert r.status_code == 200 and "split into lot" in r.text, r.text
    r = op.post(f"/ui/lots/{lot}/merge", data={"lots": f"{lot}.1"})
    assert r.status_code == 200 and f"merged {lot}.1 (2 unit(s))" in r.text, r.text
    r = eng.post(f"/ui/lots/{lot}/scrap", data={"units": f"{lot}-W01", "code": "BROKEN"})
    assert r.status_code == 200 and "(BROKEN: broken or cracked)" in r.text, r.text
    r = eng.post(f"/ui/lots/{lot}/rework", data={"route": "reball"})
    assert r.status_code == 400 and "no rework route 'reball'" in r.text, r.text
    assert row(eng, lot)["units"]["wafer"] == 2
