"""Chart drawings: the SVG is well-formed and shows every point, limit, zone, spec and
violation; the terminal view marks the same violations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from controller.spc import (
    ChartDefinition,
    ChartKey,
    ChartType,
    SpecLimits,
    evaluate_series,
    phase_one,
    render_svg,
    render_terminal,
)

NS = {"s": "http://www.w3.org/2000/svg"}
KEY = ChartKey("stacked-wlp-000-11", "dice", "kerf_offset", "DICE-1")
BASE = [1.5, 1.6, 1.4, 1.55, 1.45, 1.5, 1.62, 1.38, 1.5, 1.48]
DRIFT = [1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.3, 2.6, 3.0]


def chart(kind: ChartType = ChartType.INDIVIDUALS) -> tuple:
    if kind is ChartType.INDIVIDUALS:
        d = ChartDefinition(KEY, baseline_points=10, unit="µm")
        samples = [[v] for v in BASE + DRIFT]
    else:
        d = ChartDefinition(KEY, ChartType.XBAR_R, 3, baseline_points=10, unit="µm")
        samples = [[v - 0.05, v, v + 0.05] for v in BASE + DRIFT]
    limits = phase_one(d, samples)
    return d, limits, evaluate_series(d, limits, samples)


def classes(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['s']}}}{tag}") if cls in e.get("class", "").split()]


@pytest.mark.parametrize("kind", list(ChartType))
def test_svg_shows_points_limits_zones_spec_and_violations(kind: ChartType) -> None:
    d, limits, points = chart(kind)
    root = ET.fromstring(render_svg(d, limits, points, SpecLimits(usl=5.0)))
    bad = [p.index for p in points if p.violations]
    assert bad and bad[-1] == len(points) - 1
    # one circle per point in each panel; violations drawn differently and labelled
    main = [c for c in classes(root, "circle", "point") if c.get("data-panel") == "main"]
    assert [int(c.get("data-index", "")) for c in main] == [p.index for p in points]
    marked = {int(c.get("data-index", "")) for c in main if "violation" in c.get("class", "")}
    assert marked == set(bad)
    spread = [c for c in classes(root, "circle", "violation") if c.get("data-panel") == "spread"]
    assert {int(c.get("data-index", "")) for c in spread} == {
        p.index for p in points if p.spread_violation
    }
    labels = {
        int(t.get("data-index", "")): t.text
        for t in classes(root, "text", "violation-label")
        if t.get("data-panel") == "main"
    }
    assert labels == {
        p.index: ",".join(v.rule for v in p.violations) for p in points if p.violations
    }
    assert len(classes(root, "circle", "point")) >= len(points)
    value = {
        c: float(classes(root, "line", c)[0].get("data-value", ""))
        for c in ("ucl", "lcl", "center", "usl")
    }
    assert value["ucl"] == pytest.approx(limits.ucl, rel=1e-5)
    assert value["lcl"] == pytest.approx(limits.lcl, rel=1e-5)
    assert value["center"] == pytest.approx(limits.center, rel=1e-5)
    assert value["usl"] == 5.0
    assert len(classes(root, "line", "zone")) == 4  # ±1σ, ±2σ
    assert classes(root, "line", "spread-ucl") and classes(root, "rect", "baseline")
    assert "stacked-wlp-000-11/dice/kerf_offset@DICE-1" in (
        classes(root, "text", "title")[0].text or ""
    )


def test_svg_without_spec_has_no_spec_lines() -> None:
    d, limits, points = chart()
    root = ET.fromstring(render_svg(d, limits, points))
    assert classes(root, "line", "spec") == []


def test_svg_of_a_single_point() -> None:
    d, limits, points = chart()
    ET.fromstring(render_svg(d, limits, points[:1]))


def test_terminal_view_marks_the_violations() -> None:
    d, limits, points = chart()
    text = render_terminal(
        d, limits, points, SpecLimits(usl=5.0), width=40, height=12, max_messages=100
    )
    plain = text.plain
    rows = plain.splitlines()
    assert rows[0].startswith("stacked-wlp-000-11/dice/kerf_offset@DICE-1")
    assert plain.count("✖") == sum(1 for p in points if p.violations)
    assert plain.count("●") == sum(1 for p in points if not p.violations)
    assert "UCL" in plain and "LCL" in plain and "USL 5" in plain
    assert f"points 1–{len(points)}" in plain
    for p in points:
        for msg in p.texts:
            assert msg in plain


def test_terminal_view_shows_the_last_points_only() -> None:
    d, limits, points = chart()
    plain = render_terminal(d, limits, points, width=5, max_messages=2).plain
    assert f"points {len(points) - 4}–{len(points)}" in plain
    assert plain.count("✖") + plain.count("●") == 5
    texts = [t for p in points[-5:] for t in p.texts]
    assert f"… {len(texts) - 2} earlier violations" in plain
    assert texts[-1] in plain and texts[-3] not in plain
