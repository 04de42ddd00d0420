"""SPC and E10 over the station's HTTP API (httpx to a `fabline station` process): a chart
whose OCAP action inhibited a tool (written to the station's database as the engine would),
the tile showing the inhibit, the chart and its SVG, clearing it (technician) and a new
baseline (engineer) with the roles checked, and the E10 report of a tool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from controller.engine import spc_hook
from controller.genealogy.db import Database
from controller.recipes import ChartPlan, ToolStepPlan
from tests.web.station import Running
from tests.web.test_api import until

TOOL = "BALL-3"  # the third ball mounter: no other test needs it
CHART = f"spc-web/mount/coplanarity@{TOOL}"


def _seed(db_url: str, recipe: str = "spc-web", action: str = "inhibit") -> None:
    """A chart's phase I and one point beyond 3σ, as the engine would record them."""
    step = ToolStepPlan(
        index=0, id="mount", template="mount", path=("steps", 0), name="mount", role=None,
        tool="ball", operation="mount",
        spc=(ChartPlan("coplanarity", "µm", "nelson", action, 5, True),),
    )  # fmt: skip

    def tx(s: Session) -> None:
        for n, v in enumerate([30.0, 31.0, 30.0, 31.0, 30.0, 45.0]):
            job = f"{recipe}-J{n}"
            spc_hook.record(s, lot_id=f"W-{n}", recipe_id=recipe, step=step, tool_id=TOOL,
                            run_id=n, job_id=job, results={"coplanarity": v})  # fmt: skip

    db = Database(db_url)
    try:
        db.run_sync(tx)
    finally:
        db.close()


def test_an_spc_inhibit_shows_on_the_tile_and_is_cleared_by_a_technician(
    web_station: Running,
) -> None:
    viewer, op = web_station.client("viewer"), web_station.client("operator")
    tech, eng = web_station.client("technician"), web_station.client("engineer")
    _seed(web_station.db)
    [chart] = viewer.get("/api/spc/charts", params={"tool": TOOL}).json()
    assert (chart["chart"], chart["action"], chart["inhibiting"]) == (CHART, "inhibit", True)
    # the station follows an inhibit another process wrote: the tool is blocked
    tile = until(lambda: (t := viewer.get(f"/api/tools/{TOOL}").json())["inhibits"] and t)
    assert tile["e116"] == "blocked" and tile["blocked"].startswith(f"inhibited: SPC {CHART}: N1")
    assert tile["spc_open"] == 2  # N1 and R1 at the 6th point

    detail = viewer.get("/api/spc/chart", params={"name": CHART}).json()
    assert detail["values"] == [30.0, 31.0, 30.0, 31.0, 30.0, 45.0]
    assert detail["violations"][0]["point"] == 6 and "N1" in detail["violations"][0]["rules"]
    svg = viewer.get("/api/spc/chart.svg", params={"name": CHART})
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "violation" in svg.text
    for r, status, text in [
        (viewer.get("/api/spc/chart", params={"name": "nope"}), 400, "RECIPE/STEP/RESULT@TOOL"),
        (viewer.get("/api/spc/chart", params={"name": f"x/y/z@{TOOL}"}), 404, "no SPC chart"),
        (op.post("/api/spc/clear", json={"chart": CHART, "note": "x"}), 403, "technician"),
        (tech.post("/api/spc/baseline", json={"chart": CHART}), 403, "engineer"),
        (tech.post("/api/spc/clear", json={"chart": CHART}), 400, "note"),
    ]:  # fmt: skip
        assert r.status_code == status, r.text
        assert text in r.json()["error"], r.json()

    r = tech.post("/api/spc/clear", json={"chart": CHART, "note": "nozzle plate cleaned"})
    assert r.status_code == 200, r.text
    assert "violation(s) acknowledged" in r.json()["message"] and "released" in r.json()["message"]
    tile = until(lambda: (t := viewer.get(f"/api/tools/{TOOL}").json())["e116"] == "idle" and t)
    assert tile["spc_open"] == 0
    r = eng.post("/api/spc/baseline", json={"chart": CHART, "center": 30.5, "sigma": 0.6})
    assert r.status_code == 200 and "limits set by hand" in r.json()["message"], r.text
    [chart] = viewer.get("/api/spc/charts", params={"tool": TOOL}).json()
    assert (chart["inhibiting"], chart["open_violations"]) == (False, 0)
    assert chart["limits"]["source"] == "engineer" and chart["limits"]["center"] == 30.5
    audit = [(a["action"], a["result"]) for a in
             reversed(tech.get("/api/audit", params={"target": CHART}).json())]  # fmt: skip
    assert audit[-2:] == [("spc_clear", "ok"), ("spc_baseline", "ok")]


def test_the_e10_report_of_a_tool_adds_up_to_its_period(web_station: Running) -> None:
    viewer = web_station.client("viewer")
    end = datetime.now(UTC)
    start = end - timedelta(hours=1)
    period = {"from": start.isoformat(), "to": end.isoformat(), "tool": "DICE-1"}
    r = viewer.get("/api/tools/report", params=period)
    assert r.status_code == 200, r.text
    [row] = r.json()
    assert row["tool"] == "DICE-1" and row["recorded"]
    total = sum(row["seconds"].values()) + row["unrecorded_s"]
    assert abs(total - 3600.0) < 1e-6
    assert 0.0 <= row["availability"] <= 1.0
    backwards = {"from": end.isoformat(), "to": start.isoformat()}
    bad = viewer.get("/api/tools/report", params=backwards)
    assert bad.status_code == 400 and "not after its start" in bad.json()["error"]


def test_the_spc_page_draws_the_charts_and_offers_what_the_role_may_do(
    web_station: Running,
) -> None:
    name = f"spc-page/mount/coplanarity@{TOOL}"
    _seed(web_station.db, "spc-page", "warn")
    viewer, tech = web_station.client("viewer"), web_station.client("technician")
    page = viewer.get("/spc", params={"tool": TOOL})
    assert page.status_code == 200, page.text
    assert f'data-chart="{name}"' in page.text and "<svg" in page.text
    assert 'class="point violation' in page.text and "/ui/spc/clear" not in page.text
    page = tech.get("/spc", params={"tool": TOOL}).text
    assert "/ui/spc/clear" in page and "/ui/spc/baseline" not in page  # that is an engineer's
    r = tech.post("/ui/spc/clear", data={"chart": name, "note": "nozzles checked"})
    assert r.status_code == 200 and "violation(s) acknowledged" in r.text, r.text
    [chart] = [c for c in viewer.get("/api/spc/charts").json() if c["chart"] == name]
    assert chart["open_violations"] == 0
