"""Draw a chart: SVG (hand-written, no plotting library) and a compact terminal view (rich).

Both show the plotted points against the frozen limits: centre line, the 3σ control limits,
the 1σ and 2σ zone lines, the recipe's spec limits when given, the phase I points, and every
point that violated a rule marked and labelled with its rule ids. The SVG adds the spread
chart (moving range or range) under the main one. Elements carry classes (`point
violation`, `limit ucl`, `spec usl`, ...) so the page can style them and tests can read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from rich.text import Text

from controller.spc.capability import SpecLimits
from controller.spc.charts import ChartDefinition, ControlLimits, LimitsSource
from controller.spc.monitor import ChartPoint

WIDTH, PANEL_H, SPREAD_H = 900, 340, 150
LEFT, RIGHT, TOP = 70, 110, 40
VIOLATION = "#c62828"
LIMIT = "#d32f2f"
CENTER = "#2e7d32"
ZONE = "#9e9e9e"
SPEC = "#ef6c00"
POINT = "#1565c0"


@dataclass(frozen=True, slots=True)
class _Line:
    cls: str
    label: str
    y: float
    color: str
    dash: str = ""


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = hi - lo
    raw = span / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _range(values: Sequence[float], lines: Sequence[_Line]) -> tuple[float, float]:
    ys = [*values, *(line.y for line in lines)]
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def _main_lines(limits: ControlLimits, spec: SpecLimits | None) -> list[_Line]:
    lines = [
        _Line("limit ucl", f"UCL {limits.ucl:.4g}", limits.ucl, LIMIT),
        _Line("limit center", f"CL {limits.center:.4g}", limits.center, CENTER),
        _Line("limit lcl", f"LCL {limits.lcl:.4g}", limits.lcl, LIMIT),
    ]
    for k in (1, 2):
        lo, hi = limits.zone(k)
        lines += [
            _Line(f"zone zone{k}", f"+{k}σ", hi, ZONE, "4 3"),
            _Line(f"zone zone{k}", f"−{k}σ", lo, ZONE, "4 3"),
        ]
    if spec is not None:
        if spec.usl is not None:
            lines.append(_Line("spec usl", f"USL {spec.usl:.4g}", spec.usl, SPEC, "10 4 2 4"))
        if spec.lsl is not None:
            lines.append(_Line("spec lsl", f"LSL {spec.lsl:.4g}", spec.lsl, SPEC, "10 4 2 4"))
    return lines


class _Panel:
    """Maps point index and value to SVG coordinates inside one panel."""

    def __init__(self, top: float, height: float, n: int, lo: float, hi: float) -> None:
        self.top, self.height, self.n, self.lo, self.hi = top, height, n, lo, hi
        self.left, self.right = LEFT, WIDTH - RIGHT

    def x(self, i: int) -> float:
        if self.n <= 1:
            return (self.left + self.right) / 2
        return self.left + (self.right - self.left) * i / (self.n - 1)

    def y(self, v: float) -> float:
        return self.top + self.height * (self.hi - v) / (self.hi - self.lo)


def _panel_svg(
    panel: _Panel,
    lines: Sequence[_Line],
    values: Sequence[float | None],
    flagged: dict[int, str],
    name: str,
    unit: str,
    baseline: int,
    tag: str,
) -> list[str]:
    out = [
        f'<rect class="frame" x="{panel.left}" y="{panel.top}" width="{panel.right - panel.left}"'
        f' height="{panel.height}" fill="white" stroke="#bdbdbd"/>'
    ]
    if baseline > 0:
        x1 = panel.x(min(baseline, panel.n) - 1) + 3
        out.append(
            f'<rect class="baseline" x="{panel.left}" y="{panel.top}"'
            f' width="{max(x1 - panel.left, 0):.1f}" height="{panel.height}" fill="#e3f2fd"/>'
            f'<text x="{panel.left + 4}" y="{panel.top + 12}" font-size="10"'
            f' fill="#1565c0">phase I</text>'
        )
    for t in _nice_ticks(panel.lo, panel.hi):
        y = panel.y(t)
        out.append(
            f'<text class="tick" x="{panel.left - 6}" y="{y + 3:.1f}" font-size="10"'
            f' text-anchor="end">{t:.4g}</text>'
        )
    for line in lines:
        y = panel.y(line.y)
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        out.append(
            f'<line class="{line.cls}" data-panel="{tag}" data-value="{line.y:.6g}"'
            f' x1="{panel.left}" y1="{y:.1f}"'
            f' x2="{panel.right}" y2="{y:.1f}" stroke="{line.color}"{dash}/>'
            f'<text class="{line.cls} label" x="{panel.right + 4}" y="{y + 3:.1f}"'
            f' font-size="10" fill="{line.color}">{escape(line.label)}</text>'
        )
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(pts) > 1:
        path = " ".join(f"{panel.x(i):.1f},{panel.y(v):.1f}" for i, v in pts)
        out.append(f'<polyline class="series" points="{path}" fill="none" stroke="{POINT}"/>')
    for i, v in pts:
        x, y = panel.x(i), panel.y(v)
        if i in flagged:
            out.append(
                f'<circle class="point violation" data-panel="{tag}" data-index="{i}"'
                f' cx="{x:.1f}" cy="{y:.1f}"'
                f' r="4.5" fill="{VIOLATION}"><title>point {i + 1}: {v:.6g}'
                f" {escape(unit)} — {escape(flagged[i])}</title></circle>"
                f'<text class="violation-label" data-panel="{tag}" data-index="{i}"'
                f' x="{x:.1f}" y="{y - 8:.1f}"'
                f' font-size="9" text-anchor="middle" fill="{VIOLATION}">'
                f"{escape(flagged[i])}</text>"
            )
        else:
            out.append(
                f'<circle class="point" data-panel="{tag}" data-index="{i}"'
                f' cx="{x:.1f}" cy="{y:.1f}" r="2.5"'
                f' fill="{POINT}"><title>point {i + 1}: {v:.6g} {escape(unit)}</title></circle>'
            )
    mid = panel.top + panel.height / 2
    out.append(
        f'<text x="16" y="{mid:.1f}" font-size="11" transform="rotate(-90 16 {mid:.1f})"'
        f' text-anchor="middle">{escape(name)}{f" ({escape(unit)})" if unit else ""}</text>'
    )
    return out


def render_svg(
    definition: ChartDefinition,
    limits: ControlLimits,
    points: Sequence[ChartPoint],
    spec: SpecLimits | None = None,
) -> str:
    """The chart as a standalone SVG document."""
    limits.check(definition)
    n = len(points)
    baseline = limits.basis if limits.source is LimitsSource.PHASE_I else 0
    main_lines = _main_lines(limits, spec)
    values = [p.value for p in points]
    lo, hi = _range(values, main_lines)
    main = _Panel(TOP, PANEL_H, n, lo, hi)
    flagged = {p.index: ",".join(v.rule for v in p.violations) for p in points if p.violations}
    spread_values = [p.spread for p in points]
    sname = limits.spread_name
    spread_lines = [
        _Line("limit spread-ucl", f"UCL {limits.spread_ucl:.4g}", limits.spread_ucl, LIMIT),
        _Line(
            "limit spread-center",
            f"CL {limits.spread_center:.4g}",
            limits.spread_center,
            CENTER,
        ),
    ]
    if limits.spread_lcl > 0:
        spread_lines.append(
            _Line("limit spread-lcl", f"LCL {limits.spread_lcl:.4g}", limits.spread_lcl, LIMIT)
        )
    s_lo, s_hi = _range([v for v in spread_values if v is not None], spread_lines)
    spread_panel = _Panel(TOP + PANEL_H + 40, SPREAD_H, n, min(s_lo, 0.0), s_hi)
    spread_flagged = {p.index: p.spread_violation.rule for p in points if p.spread_violation}
    height = TOP + PANEL_H + 40 + SPREAD_H + 40
    kind = "Individuals / moving range" if limits.spread_name == "MR" else (
        f"X̄-R, n = {limits.subgroup_size}")  # fmt: skip
    title = f"{definition.key} — {kind}, {definition.rule_set} rules, limits {limits.source}"
    n_bad = sum(1 for p in points if not p.in_control)
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
        f'<text class="title" x="{LEFT}" y="20" font-size="13">{escape(title)}</text>',
        f'<text class="summary" x="{LEFT}" y="34" font-size="10" fill="#616161">'
        f"{n} points, {n_bad} out of control; action {definition.action}</text>",
        *_panel_svg(
            main,
            main_lines,
            values,
            flagged,
            definition.key.result,
            definition.unit,
            baseline,
            "main",
        ),
        *_panel_svg(
            spread_panel,
            spread_lines,
            spread_values,
            spread_flagged,
            sname,
            definition.unit,
            baseline,
            "spread",
        ),
    ]
    for t in _nice_ticks(0, max(n - 1, 1), 10):
        if t == int(t) and t < n:
            x = main.x(int(t))
            body.append(
                f'<text class="xtick" x="{x:.1f}" y="{spread_panel.top + SPREAD_H + 14:.1f}"'
                f' font-size="10" text-anchor="middle">{int(t) + 1}</text>'
            )
    body.append("</svg>")
    return "\n".join(body)


# -- terminal ---------------------------------------------------------------------------------


def render_terminal(
    definition: ChartDefinition,
    limits: ControlLimits,
    points: Sequence[ChartPoint],
    spec: SpecLimits | None = None,
    *,
    width: int = 60,
    height: int = 15,
    max_messages: int = 6,
) -> Text:
    """The last `width` points as a text chart of `height` rows, for `rich` to print, and
    the last `max_messages` violation texts under it."""
    limits.check(definition)
    shown = list(points[-width:])
    lines = [line for line in _main_lines(limits, spec) if not line.cls.startswith("zone")]
    lo, hi = _range([p.value for p in shown], lines)

    def row(v: float) -> int:
        return min(height - 1, max(0, round((hi - v) / (hi - lo) * (height - 1))))

    grid = [[(" ", "")] * len(shown) for _ in range(height)]
    labels = [""] * height
    styles = [""] * height
    for k in (1, 2):
        for v in limits.zone(k):
            r = row(v)
            grid[r] = [("·", "dim")] * len(shown)
    for line in lines:
        r = row(line.y)
        style = "red" if line.cls.startswith("limit") and "center" not in line.cls else (
            "green" if "center" in line.cls else "dark_orange")  # fmt: skip
        grid[r] = [("─", style)] * len(shown)
        labels[r] = f"{line.label} " if not labels[r] else labels[r]
        styles[r] = style
    for col, p in enumerate(shown):
        r = row(p.value)
        grid[r][col] = ("✖", "bold red") if p.violations else ("●", "blue")
    pad = max(len(label) for label in labels) if any(labels) else 0
    text = Text()
    title = f"{definition.key}  {definition.chart_type}  {definition.unit}".rstrip()
    text.append(title + "\n", style="bold")
    for r in range(height):
        text.append(labels[r].rjust(pad) + "│", style=styles[r] or "dim")
        for ch, style in grid[r]:
            text.append(ch, style=style or None)
        text.append("\n")
    first = shown[0].index + 1 if shown else 1
    last = shown[-1].index + 1 if shown else 0
    text.append(" " * pad + f"└ points {first}–{last}\n", style="dim")
    messages = [msg for p in shown for msg in p.texts]
    if len(messages) > max_messages:
        text.append(f"  … {len(messages) - max_messages} earlier violations\n", style="red")
    for msg in messages[len(messages) - max_messages :] if max_messages else []:
        text.append(f"  {msg}\n", style="red")
    return text
