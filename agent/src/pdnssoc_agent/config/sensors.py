# SPDX-License-Identifier: Apache-2.0
"""``sensors``: when a sensor that stopped sending is announced to the operators."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._schema import Problem

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")


def minutes_of(text: str) -> int:
    """Minutes after midnight of a valid ``HH:MM`` (``24:00`` is 1440)."""
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time of ``sensors.timezone``) in which a sensor may be quiet.

    ``start`` after ``end`` spans midnight (``22:00``-``06:00``).
    """

    start: str
    end: str

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        for key in ("start", "end"):
            value = getattr(self, key)
            if isinstance(value, str) and not _HHMM.fullmatch(value):
                problems.append(Problem(prefix + key, "expected a time of day HH:MM (00:00-24:00)"))
        if self.start == self.end and isinstance(self.start, str):
            problems.append(Problem(path, "start and end are the same: an empty window"))


@dataclass(frozen=True)
class SensorRule:
    """Settings for one sensor (by its identity) that replace the defaults."""

    silent_after: timedelta | None = field(default=None, metadata={"min": timedelta(minutes=1)})
    """Announce the sensor once it has sent nothing for this long (outside its
    quiet hours), instead of the threshold derived from its history."""
    quiet_hours: list[QuietHours] | None = None
    """This sensor's quiet hours instead of ``sensors.quiet_hours`` (``[]``: none)."""
    watch: bool = True
    """False: never announce this sensor (it is still listed by ``status``)."""


@dataclass(frozen=True)
class Sensors:
    """Silent-sensor detection: correlate counts each sensor's replies, ``alert``
    tells the operators when one stops sending and when it sends again."""

    watch: bool = True
    """False: sensors are counted and listed by ``status``, never announced."""
    gap_multiple: float = field(default=4.0, metadata={"min": 1, "max": 1000})
    """The derived threshold: this many times the longest gap in the sensor's history."""
    min_silence: timedelta = field(
        default=timedelta(minutes=30), metadata={"min": timedelta(minutes=1)}
    )
    """The derived threshold is never shorter than this."""
    max_silence: timedelta = field(
        default=timedelta(days=1), metadata={"min": timedelta(minutes=1)}
    )
    """...and never longer than this."""
    min_history: timedelta = field(default=timedelta(days=1), metadata={"min": timedelta(0)})
    """A sensor is announced only once its first and last replies seen are this far
    apart: a sensor that just appeared has no usual rhythm yet."""
    quiet_hours: list[QuietHours] = field(default_factory=list)
    """Daily windows in which silence does not count and nothing is announced."""
    timezone: str = "UTC"
    """The time zone of the quiet hours (an IANA name such as ``Europe/Zurich``)."""
    forget_after: timedelta = field(default=timedelta(days=30), metadata={"min": timedelta(days=1)})
    """A sensor that sent nothing for this long is dropped (decommissioned)."""
    overrides: dict[str, SensorRule] = field(default_factory=dict)
    """Per sensor identity: its own threshold, quiet hours, or no announcement."""
    spool_reports: Path = Path("incoming/.sensors")
    """Where spooling sensors' reports arrive (``<sensor>/spool-report.json``; relative
    to ``data_dir``): the dnscollector role's ingest directory plus ``.sensors``."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        if self.min_silence > self.max_silence:
            problems.append(Problem(f"{prefix}max_silence", "must not be shorter than min_silence"))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(Problem(f"{prefix}timezone", "unknown time zone; use an IANA name"))

    def rule(self, sensor: str) -> SensorRule:
        return self.overrides.get(sensor) or SensorRule()

    def quiet_for(self, sensor: str) -> list[QuietHours]:
        own = self.rule(sensor).quiet_hours
        return self.quiet_hours if own is None else own
