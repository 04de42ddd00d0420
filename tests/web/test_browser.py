"""The operator page in a real browser: Debian's Chromium driven by Playwright, against a
`fabline station` process. Every wait is on what the page shows (Playwright's expect).

With FABLINE_SCREENSHOTS=DIR the test also saves the pages it visits as PNG (docs/ has them).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.recipes import find
from tests.web.station import TOOLS, USERS, Running

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
WAIT = 30_000  # ms: a hold takes effect at the next step boundary

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and os.environ.get("FABLINE_REQUIRE_SERVICES") != "1",
    reason=f"{CHROMIUM} not installed (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def log_in(browser: object, station: Running, role: str) -> object:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(WAIT)
    expect.set_options(timeout=WAIT)
    page.goto(station.url + "/")  # not logged in: sent to the login form
    expect(page).to_have_url(re.compile(r"/login$"))
    name, password = USERS[role]
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("user")).to_have_text(f"{name} ({role})")
    return page


def shoot(page: object, name: str) -> None:
    where = os.environ.get("FABLINE_SCREENSHOTS")
    if where:
        page.screenshot(path=str(Path(where) / name))  # type: ignore[attr-defined]


def test_operator_and_engineer_run_hold_release_and_trace_a_lot(
    browser: object, web_station: Running
) -> None:
    from playwright.sync_api import Page, expect

    page = log_in(browser, web_station, "operator")
    assert isinstance(page, Page)
    # every tool of the line, its state as text
    tiles = page.locator("[data-testid^='tile-']")
    expect(tiles).to_have_count(TOOLS)
    for tool in ("SPUT-1", "PLAT-1", "COAT-1", "DICE-1", "BALL-1", "BOND-1", "WB-1"):
        expect(page.get_by_test_id(f"tile-{tool}")).to_contain_text(re.compile("idle|busy|blocked"))
    expect(page.get_by_test_id("broker")).to_contain_text("no broker")

    # dispatch a lot and watch it progress without reloading
    lot = f"WEB{int(time.time()) % 100000}"
    form = page.get_by_test_id("dispatch-form")
    form.locator("input[name=lot]").fill(lot)
    form.locator("select[name=recipe]").select_option("wlcsp-002-42")
    form.locator("input[name=priority]").fill("500")  # ahead of other tests' lots
    form.locator("button").click()
    expect(page.locator("#flash")).to_contain_text(f"lot {lot} dispatched")
    row = page.get_by_test_id(f"lot-{lot}")
    expect(row).to_have_attribute("data-state", "running")
    steps = len(find("wlcsp-002-42").expand({}).steps)
    expect(row.get_by_test_id("step")).to_have_text(re.compile(rf"^[1-9]\d*/{steps} "))
    shoot(page, "station-home.png")

    # hold it with a reason code, as an operator: it stops at the next step boundary
    row.locator("summary").click()
    hold = row.get_by_test_id("hold-form")
    hold.locator("select[name=code]").select_option("QA-SUSPECT")
    hold.locator("input[name=comment]").fill("scratch seen at inspection")
    hold.locator("button").click()
    expect(page.locator("#flash")).to_contain_text("hold requested")
    expect(row).to_have_attribute("data-state", "held")
    expect(row).to_contain_text("QA-SUSPECT: scratch seen at inspection")

    # an operator may not release a quality hold
    row.locator("summary").click()
    row.get_by_test_id("release-form").locator("button").click()
    expect(page.locator("#flash")).to_contain_text("released by an engineer")
    expect(row).to_have_attribute("data-state", "held")

    # an engineer may, from the lot's page
    eng = log_in(browser, web_station, "engineer")
    assert isinstance(eng, Page)
    eng.goto(f"{web_station.url}/lots/{lot}")
    expect(eng.get_by_test_id("lot-state")).to_have_text("held")
    shoot(eng, "station-lot.png")
    eng.locator("#lot summary").first.click()
    release = eng.get_by_test_id("release-form")
    release.locator("input[name=comment]").fill("inspected: cosmetic only")
    release.locator("button").click()
    expect(eng.locator("#flash")).to_contain_text(f"lot {lot}: released")
    expect(eng.get_by_test_id("lot-state")).not_to_have_text("held")  # live, no reload
    # ... and the operator's page follows
    expect(row).not_to_have_attribute("data-state", "held")

    # the audit trail has all of it: who, role, what, code, comment, result
    eng.goto(f"{web_station.url}/audit")
    trail = eng.get_by_test_id("audit")
    op_name, eng_name = USERS["operator"][0], USERS["engineer"][0]
    for who, action, result in [(op_name, "hold", "ok"), (op_name, "release", "denied"),
                                (eng_name, "release", "ok")]:  # fmt: skip
        line = trail.locator("tr", has_text=lot).filter(has_text=who).filter(has_text=action)
        expect(line.filter(has=eng.locator(f"td >> text='{result}'")).first).to_be_visible()
    expect(trail.locator("tr", has_text="QA-SUSPECT").filter(has_text=lot).first).to_contain_text(
        "scratch seen at inspection"
    )
    # the audit page is live too: the operator pauses the lot, the row appears on top
    row.locator("summary").click()
    pause = row.locator("form[hx-post$='/pause']")
    pause.locator("input[name=comment]").fill("shift change")
    pause.locator("button").click()
    expect(trail.locator("tbody tr").first).to_contain_text("shift change")
    expect(trail.locator("tbody tr").first).to_contain_text(op_name)
    shoot(eng, "station-audit.png")

    # a package looked up: its tree back to the wafer, and the wafer's die map
    eng.goto(f"{web_station.url}/genealogy")
    eng.get_by_test_id("genealogy-form").locator("input[name=q]").fill(web_station.package)
    eng.get_by_test_id("genealogy-form").locator("button").click()
    tree = eng.get_by_test_id("tree")
    expect(tree.locator(f"li[data-unit='{web_station.wafer}']")).to_be_visible()
    figure = eng.locator(f"figure[data-substrate='{web_station.wafer}']")
    expect(figure).to_contain_text("good:")
    dies = figure.locator("rect")
    assert dies.count() > 10
    expect(figure.locator(f"rect[data-package='{web_station.package}']")).to_have_attribute(
        "stroke", "#000"
    )
    shoot(eng, "station-genealogy.png")
    eng.goto(f"{web_station.url}/alarms")
    expect(eng.get_by_test_id("active-alarms")).to_be_visible()
