"""A die map as SVG: one square per position, its bin as a colour and, for the colour
blind and for tests, as text (each square's title, a legend with counts and a pattern)."""

from __future__ import annotations

from html import escape
from typing import Any

SIZE = 420  # pixels of the longer side
COLOURS = ["#c0392b", "#d35400", "#8e44ad", "#2c3e50", "#7f8c8d", "#b7950b"]
GOOD = "#2e8b57"


def die_map_svg(m: dict[str, Any], highlight: str | None = None) -> str:
    cols, rows = max(1, m["dimension"]["x"]), max(1, m["dimension"]["y"])
    cell = max(2.0, SIZE / max(cols, rows))
    width, height = cols * cell, rows * cell
    reasons: dict[str, str] = {}
    for d in m["dies"]:
        if d["bin"] != "good":
            key = d["reason"] or d["bin"]
            reasons.setdefault(key, COLOURS[len(reasons) % len(COLOURS)])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="die-map" role="img"'
        f' viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}"'
        f' aria-label="die map of {escape(m["substrate"])}: {m["total"]} dies">'
    ]
    gap = 0.12 * cell if cell > 4 else 0
    for d in m["dies"]:
        good = d["bin"] == "good"
        fill = GOOD if good else reasons[d["reason"] or d["bin"]]
        label = "good" if good else f"reject: {d['reason'] or d['bin']}"
        mark = d["package"] == highlight
        stroke = ' stroke="#000" stroke-width="2"' if mark else ""
        parts.append(
            f'<rect x="{d["x"] * cell:.1f}" y="{d["y"] * cell:.1f}" width="{cell - gap:.1f}"'
            f' height="{cell - gap:.1f}" fill="{fill}"{stroke} data-bin="{escape(d["bin"])}"'
            f' data-package="{escape(d["package"])}"><title>{escape(d["package"])}'
            f" ({d['x']}, {d['y']}): {escape(label)}</title></rect>"
        )
    parts.append("</svg>")
    good = m["bins"].get("good", {}).get("count", 0)
    legend = [f'<li><span class="swatch" style="background:{GOOD}"></span>good: {good}</li>']
    for reason, colour in reasons.items():
        n = sum(1 for d in m["dies"] if d["bin"] != "good" and (d["reason"] or d["bin"]) == reason)
        legend.append(
            f'<li><span class="swatch" style="background:{colour}"></span>'
            f"reject ({escape(reason)}): {n}</li>"
        )
    return (
        f'<figure class="die-map-figure" data-substrate="{escape(m["substrate"])}">'
        + "".join(parts)
        + f"<figcaption>{escape(m['substrate'])} ({escape(m['substrate_type'])}, lot"
        f' {escape(str(m["lot"]))}): {m["total"]} dies<ul class="legend">{"".join(legend)}</ul>'
        "</figcaption></figure>"
    )
