# SPDX-License-Identifier: Apache-2.0
"""Retention by age: whole days older than the configured age go, as one unit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .manifest import Manifest, SegmentInfo


@dataclass
class Plan:
    """What an expiry removes (or, in a dry run, would remove)."""

    cutoff: str
    """Days before this ``YYYY-MM-DD`` date go."""
    segments: list[SegmentInfo] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    """Fingerprints of log files whose every row is in those days: forgotten too."""

    @property
    def days(self) -> list[str]:
        return sorted({s.day for s in self.segments})

    @property
    def bytes(self) -> int:
        return sum(s.bytes + s.index for s in self.segments)

    def lines(self) -> list[str]:
        """A listing for a dry run: one line per day."""
        out = []
        for day in self.days:
            segs = [s for s in self.segments if s.day == day]
            out.append(
                f"day={day}: {len(segs)} file(s), {sum(s.bytes + s.index for s in segs):,} bytes, "
                f"{sum(s.rows for s in segs):,} rows, {sum(s.replies for s in segs):,} replies"
            )
        return out


def plan(m: Manifest, keep: timedelta, now: datetime) -> Plan:
    """Days whose whole date lies more than ``keep`` before ``now``."""
    if keep <= timedelta(0):
        raise ValueError(f"history retention must be positive, not {keep}")
    cutoff = (now - keep).strftime("%Y-%m-%d")
    p = Plan(cutoff=cutoff, segments=[s for s in m.segments if s.day < cutoff])
    p.sources = [fp for fp, src in m.sources.items() if src.last_day and src.last_day < cutoff]
    return p
