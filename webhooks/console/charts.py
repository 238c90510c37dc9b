"""Server-side figures for the templates: times, and the events-received chart as SVG geometry.

The chart is drawn in a fixed coordinate box scaled as a whole (never stretched), so its axis
labels stay legible from 390 px up: a y axis with a rounded scale (0, half, top) and grid lines,
an x axis with the first, middle and last time. At most MAX_BARS bars: over longer spans each
bar holds several minutes, and the caption says how many.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

WIDTH, HEIGHT = 600, 160
LEFT, RIGHT, TOP, BOTTOM = 50, 14, 12, 30  # the plot area's margins: labels go there (up to 20 units tall)
MAX_BARS = 120
FAILED = ("dead-lettered",)
INTAKE = ("queued", "ignored")  # one per event received (duplicates are not events)


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def nice(peak: int) -> int:
    """The smallest 1, 2 or 5 × 10^n at or above peak (and at least 2, so the half mark is whole)."""
    if peak <= 2:
        return 2
    step = 10 ** math.floor(math.log10(peak))
    return next(m * step for m in (1, 2, 5, 10) if m * step >= peak)


def per_minute(buckets: list[tuple[int, dict[str, int]]]) -> dict[str, Any]:
    """Bars of events received, the dead-lettered share drawn over each bar, with both axes."""
    counts = [(start, sum(b.get(k, 0) for k in INTAKE), sum(b.get(k, 0) for k in FAILED)) for start, b in buckets]
    group = max(1, math.ceil(len(counts) / MAX_BARS))
    bars_in = [counts[i:i + group] for i in range(0, len(counts), group)]
    sums = [(chunk[0][0], sum(c[1] for c in chunk), sum(c[2] for c in chunk)) for chunk in bars_in]
    peak = max([total for _, total, _ in sums] + [0])
    top = nice(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(sums))
    scale = lambda n: plot_h * n / top  # noqa: E731
    bars = []
    for i, (start, total, failed) in enumerate(sums):
        if not total and not failed:
            continue
        h, f = max(1.0, scale(total)) if total else 0.0, min(plot_h, max(1.0, scale(failed))) if failed else 0.0
        bars.append({"x": round(LEFT + i * step, 2), "h": round(h, 2), "y": round(TOP + plot_h - h, 2),
                     "f": round(f, 2), "fy": round(TOP + plot_h - f, 2),
                     "title": f"{when(start)[11:16]} UTC: {total} received, {failed} dead-lettered"})
    y_ticks = [{"y": round(TOP + plot_h - scale(v), 2), "label": v} for v in (0, top // 2, top)]
    marks = sorted({0, len(sums) // 2, len(sums) - 1}) if sums else []
    x_ticks = [{"x": round(LEFT + (i + 0.5) * step, 2), "label": when(sums[i][0])[11:16],
                "anchor": "start" if i == 0 and len(marks) > 1 else "end" if i == marks[-1] and len(marks) > 1 else "middle"}
               for i in marks]
    return {"width": WIDTH, "height": HEIGHT, "bar": round(max(step - 1, step * 0.8), 2), "bars": bars, "peak": peak,
            "top": top, "group": group, "left": LEFT, "right": WIDTH - RIGHT, "base": TOP + plot_h,
            "y_ticks": y_ticks, "x_ticks": x_ticks,
            "start": when(counts[0][0]) if counts else "-", "end": when(counts[-1][0])[11:16] if counts else "-"}
