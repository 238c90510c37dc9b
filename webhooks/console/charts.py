"""Server-side figures for the templates: times, and the events-per-minute bars as SVG geometry."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

HEIGHT, BAR = 80, 4
FAILED = ("dead-lettered",)
INTAKE = ("queued", "ignored")  # one per event received (duplicates are not events)


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def per_minute(buckets: list[tuple[int, dict[str, int]]]) -> dict[str, Any]:
    """Bars of events received per minute, the dead-lettered share drawn over each bar."""
    counts = [(start, sum(b.get(k, 0) for k in INTAKE), sum(b.get(k, 0) for k in FAILED)) for start, b in buckets]
    peak = max([total for _, total, _ in counts] + [1])
    bars = []
    for i, (start, total, failed) in enumerate(counts):
        if not total and not failed:
            continue
        h = max(1, round(HEIGHT * total / peak)) if total else 0
        f = min(HEIGHT, max(1, round(HEIGHT * failed / peak))) if failed else 0
        bars.append({"x": i * BAR, "h": h, "y": HEIGHT - h, "f": f, "fy": HEIGHT - f,
                     "title": f"{when(start)[11:16]} UTC: {total} received, {failed} dead-lettered"})
    return {"width": max(1, len(counts)) * BAR, "height": HEIGHT, "bar": BAR - 1, "bars": bars, "peak": peak,
            "start": when(counts[0][0]) if counts else "-", "end": when(counts[-1][0])[11:16] if counts else "-"}
