# SPDX-License-Identifier: Apache-2.0
"""A sensor's replies per day as a small inline SVG bar chart (no script, no image file)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..sensors.book import SensorSeen

DAYS = 7
WIDTH, HEIGHT, GAP = 18, 40, 2


@dataclass(frozen=True)
class Day:
    date: str
    replies: int


def daily(seen: SensorSeen, now: datetime, days: int = DAYS) -> list[Day]:
    """Replies per UTC day over the last ``days`` days (today last), zeros included."""
    today = now.astimezone(UTC).date()
    totals = {today - timedelta(days=i): 0 for i in range(days)}
    for hour, count in seen.hours.items():
        day = datetime.fromtimestamp(hour, UTC).date()
        if day in totals:
            totals[day] += count
    return [Day(d.isoformat(), n) for d, n in sorted(totals.items())]


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    height: int
    title: str


def bars(days: list[Day]) -> list[Bar]:
    """One bar per day, scaled to the highest; each with its date and count as a tooltip."""
    top = max((d.replies for d in days), default=0) or 1
    out = []
    for i, d in enumerate(days):
        h = round(HEIGHT * d.replies / top) if d.replies else 0
        h = max(h, 1) if d.replies else 0
        out.append(Bar(i * (WIDTH + GAP), HEIGHT - h, h, f"{d.date}: {d.replies:,} replies"))
    return out


def size(days: list[Day]) -> tuple[int, int]:
    return max(0, len(days) * (WIDTH + GAP) - GAP), HEIGHT
