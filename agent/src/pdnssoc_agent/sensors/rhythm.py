# SPDX-License-Identifier: Apache-2.0
"""A sensor's usual rhythm: its threshold of silence, and silence outside quiet hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ..config.sensors import QuietHours, Sensors, minutes_of
from .book import HOUR, SensorSeen

MAX_DAYS = 62
"""Quiet hours are subtracted over at most this many days of silence."""


def _windows(day: datetime, quiet: list[QuietHours]) -> list[tuple[datetime, datetime]]:
    """The quiet windows of local calendar ``day`` (midnight, aware) as aware intervals."""
    out = []
    for q in quiet:
        start, end = minutes_of(q.start), minutes_of(q.end)
        spans = [(start, end)] if start < end else [(start, 1440), (0, end)]
        for a, b in spans:
            if b > a:
                out.append((day + timedelta(minutes=a), day + timedelta(minutes=b)))
    return out


def quiet_seconds(start: datetime, end: datetime, quiet: list[QuietHours], tz: ZoneInfo) -> float:
    """Seconds of [start, end] that fall in the daily ``quiet`` windows (local time ``tz``)."""
    if not quiet or end <= start:
        return 0.0
    start = max(start, end - timedelta(days=MAX_DAYS))
    local = start.astimezone(tz)
    day = datetime(local.year, local.month, local.day, tzinfo=tz)
    total = 0.0
    while day < end:
        for a, b in _windows(day, quiet):
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        nxt = day + timedelta(days=1, hours=3)  # across a DST change, then to midnight
        day = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return total


def in_quiet_hours(when: datetime, quiet: list[QuietHours], tz: ZoneInfo) -> bool:
    local = when.astimezone(tz)
    minute = local.hour * 60 + local.minute
    for q in quiet:
        start, end = minutes_of(q.start), minutes_of(q.end)
        if (start <= minute < end) if start < end else (minute >= start or minute < end):
            return True
    return False


def longest_gap(seen: SensorSeen, quiet: list[QuietHours], tz: ZoneInfo) -> float:
    """The longest gap between replies in the kept history, in seconds (an estimate
    from the hourly counts: ``3600/n`` in an hour of ``n`` replies, the length of a
    run of empty hours plus one hour between two busy ones). The first and the
    newest hour are partly seen: their counts say nothing of the rate. Empty hours
    that start in quiet hours are not counted."""
    if not seen.hours:
        return 0.0
    first, last = min(seen.hours), max(seen.hours)
    gap, run = 0.0, 0
    for hour in range(first, last + HOUR, HOUR):
        n = seen.hours.get(hour, 0)
        if n:
            whole = first < hour < last or last - first < 2 * HOUR
            gap = max(gap, HOUR / n if whole else 0.0, (run + 1) * HOUR if run else 0.0)
            run = 0
        elif not in_quiet_hours(datetime.fromtimestamp(hour, tz), quiet, tz):
            run += 1
    return gap


def threshold(name: str, seen: SensorSeen, cfg: Sensors) -> float:
    """Seconds of silence (outside quiet hours) after which ``name`` is announced."""
    own = cfg.rule(name).silent_after
    if own is not None:
        return own.total_seconds()
    tz = ZoneInfo(cfg.timezone)
    derived = cfg.gap_multiple * longest_gap(seen, cfg.quiet_for(name), tz)
    return min(max(derived, cfg.min_silence.total_seconds()), cfg.max_silence.total_seconds())


def silence(name: str, seen: SensorSeen, cfg: Sensors, now: datetime) -> float:
    """Seconds since the sensor's last reply, less those in its quiet hours."""
    last = datetime.fromtimestamp(seen.last, now.tzinfo)
    tz = ZoneInfo(cfg.timezone)
    quiet = quiet_seconds(last, now, cfg.quiet_for(name), tz)
    return max(0.0, (now - last).total_seconds() - quiet)


def has_history(seen: SensorSeen, cfg: Sensors) -> bool:
    return seen.last - seen.first >= cfg.min_history.total_seconds()


def per_hour(seen: SensorSeen) -> float:
    """Average replies in the hours with replies, the partly seen first and newest
    hours left out when there are others."""
    hours = sorted(seen.hours)
    if len(hours) > 2:
        hours = hours[1:-1]
    counts = [seen.hours[h] for h in hours if seen.hours[h]]
    return round(sum(counts) / len(counts), 1) if counts else 0.0
