# SPDX-License-Identifier: Apache-2.0
"""What correlate saw of each sensor: first and last reply, replies per hour.

correlate hands every chunk of query-log records it decoded to
:meth:`SensorBook.add` (the same records it matched: nothing is read twice).
A record's sensor is its identity (``dnstap.identity``, or ``client_id`` in
pdnssoc's minified archives); its time is the record's own time stamp, so a
backlog read late is counted in the hours it belongs to. Per chunk, each
sensor's newest time stamp is parsed once; hours are the first 13 characters
of the (UTC) time stamp.

The book is a small JSON file beside correlate's state, replaced atomically
after correlate committed the same bytes: a crash in between loses those
counts, it never counts a reply twice.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..timefmt import parse_rfc3339_or_none

log = logging.getLogger(__name__)

BOOK_FILE = "sensors.json"
KEEP_HOURS = 24 * 7
"""Hourly counts kept per sensor: the history the threshold is derived from."""
HOUR = 3600


@dataclass
class SensorSeen:
    """One sensor's record."""

    first: int
    """Epoch seconds of the oldest reply seen."""
    last: int
    """Epoch seconds of the newest reply seen."""
    hours: dict[int, int] = field(default_factory=dict)
    """Start of the hour (epoch seconds) -> replies seen in it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "last": self.last,
            "hours": {str(h): n for h, n in sorted(self.hours.items())},
        }


@functools.lru_cache(maxsize=1024)
def _hour_of(prefix: str) -> int | None:
    """``YYYY-MM-DDTHH`` -> epoch seconds of that UTC hour."""
    try:
        when = datetime.strptime(prefix, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(when.timestamp())


def _epoch(ts: str, now_s: int) -> int:
    """Epoch seconds of a record's time stamp; ``now_s`` when it has none or one
    from the future (a sensor's clock ahead must not hide its silence)."""
    when: datetime | None = None
    if len(ts) >= 20 and ts[-1] == "Z" and ts[19] in ".Z":  # go-dnscollector's UTC form
        try:
            when = datetime.fromisoformat(ts[:19]).replace(tzinfo=UTC)
        except ValueError:
            when = None
    if when is None:
        when = parse_rfc3339_or_none(ts) if ts else None
    return min(int(when.timestamp()), now_s) if when is not None else now_s


_TAP = operator.attrgetter("dnstap")
_IDENTITY = operator.attrgetter("identity")
_TIMESTAMP = operator.attrgetter("timestamp")


class SensorBook:
    """Every sensor seen, loaded from and saved to ``<state_dir>/sensors.json``."""

    def __init__(self, path: Path, sensors: dict[str, SensorSeen] | None = None) -> None:
        self.path = path
        self.sensors: dict[str, SensorSeen] = sensors or {}
        self.changed = False

    @classmethod
    def load(cls, path: Path) -> SensorBook:
        """The book at ``path``; an empty one when it does not exist or is unreadable
        (logged: the counts start again, detection waits for a new history)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            sensors = {
                str(name): SensorSeen(
                    int(s["first"]),
                    int(s["last"]),
                    {int(h): int(n) for h, n in s.get("hours", {}).items()},
                )
                for name, s in data["sensors"].items()
            }
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("%s: unreadable (%s); sensors are counted afresh", path, exc)
            return cls(path)
        return cls(path, sensors)

    def add(self, records: list[Any], now: datetime) -> None:
        """Count one chunk of decoded records (``HotRecord`` or a wider record).

        Each sensor's newest reply in the chunk is taken to be its last record in
        the chunk (the query log is written in arrival order): no per-record
        comparison, and at most the order of one sensor's replies within a chunk
        is lost.
        """
        if not records:
            return
        taps = list(map(_TAP, records))
        if None in taps:  # pdnssoc's minified archive records
            both = list(zip(records, taps, strict=True))
            ids = [t.identity if t is not None else r.client_id for r, t in both]
            tss = [t.timestamp if t is not None else r.timestamp for r, t in both]
        else:
            ids, tss = list(map(_IDENTITY, taps)), list(map(_TIMESTAMP, taps))
        prefixes = [t[:13] for t in tss]
        one = set(prefixes)
        if len(one) == 1:  # the usual chunk: all in one hour, counted per sensor
            (prefix,) = one
            counts = {(sensor, prefix): n for sensor, n in Counter(ids).items()}
        else:
            counts = Counter(zip(ids, prefixes, strict=True))
        now_s = int(now.timestamp())
        oldest = dict(zip(ids[::-1], tss[::-1], strict=True))
        for sensor, newest in dict(zip(ids, tss, strict=True)).items():
            last = _epoch(newest, now_s)
            seen = self.sensors.get(sensor)
            if seen is None:
                self.sensors[sensor] = SensorSeen(min(_epoch(oldest[sensor], now_s), last), last)
            elif last > seen.last:
                seen.last = last
        now_hour = now_s - now_s % HOUR
        for (sensor, prefix), n in counts.items():
            hour = _hour_of(prefix)
            if hour is None or hour > now_hour:
                hour = now_hour  # no time stamp, or one from the future: counted now
            hours = self.sensors[sensor].hours
            hours[hour] = hours.get(hour, 0) + n
        self.changed = True

    def prune(self, now: datetime, forget_after: timedelta) -> None:
        """Drop hours past the kept history and sensors silent beyond ``forget_after``."""
        now_s = int(now.timestamp())
        oldest_hour = now_s - now_s % HOUR - KEEP_HOURS * HOUR
        horizon = now_s - int(forget_after.total_seconds())
        for name in [n for n, s in self.sensors.items() if s.last < horizon]:
            log.info("sensor %r sent nothing for %s: forgotten", name, forget_after)
            del self.sensors[name]
            self.changed = True
        for seen in self.sensors.values():
            old = [h for h in seen.hours if h < oldest_hour]
            for h in old:
                del seen.hours[h]
            self.changed = self.changed or bool(old)

    def save(self) -> None:
        """Replace the file atomically (only when something changed)."""
        if not self.changed:
            return
        data = {
            "version": 1,
            "sensors": {n: s.to_json() for n, s in sorted(self.sensors.items())},
        }
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
        self.changed = False
