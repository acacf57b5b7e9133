# SPDX-License-Identifier: Apache-2.0
"""The texts of the silent-sensor notices: one message per check, however many sensors.

When the server's collector stops, every sensor falls silent at once; the
operators then get one message naming them all (and one when they send
again), not one per sensor. A single sensor keeps its own wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..timefmt import format_rfc3339
from .book import SensorSeen
from .spool import SpoolReport, silent_note

UNNAMED = "(no identity)"


def label(name: str) -> str:
    """A sensor's name in a message (an empty identity is shown as such)."""
    return name or UNNAMED


def iso(epoch: float) -> str:
    """An epoch time as local RFC 3339 text, to the second."""
    return format_rfc3339(datetime.fromtimestamp(epoch).astimezone(), seconds=True)


@dataclass(frozen=True)
class Silent:
    """A sensor found silent by this check."""

    name: str
    seen: SensorSeen
    limit: float
    spool: SpoolReport | None


@dataclass(frozen=True)
class Recovered:
    """An announced sensor that sends again."""

    name: str
    seen: SensorSeen
    told: dict[str, Any]


def _ago(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


_CHECK = (
    "Check the sensor's go-dnscollector and its dnstap input, the resolver's dnstap "
    "configuration and the sensor's client certificate."
)


def silent_notice(silent: list[Silent], now: datetime) -> tuple[str, str]:
    """Subject and text of one message announcing every sensor in ``silent``."""
    if len(silent) == 1:
        (s,) = silent
        name = label(s.name)
        text = (
            f"Sensor {name} has sent no DNS reply since {iso(s.seen.last)} "
            f"({_ago(now.timestamp() - s.seen.last)} ago; its threshold is {_ago(s.limit)}).\n"
            "Detection for this sensor's institution is stopped until it sends again.\n"
            f"{_CHECK}\n"
            + (f"{silent_note(s.spool, s.seen.last)}\n" if s.spool is not None else "")
            + "One more message follows when it sends again."
        )
        return f"sensor {name} is silent", text
    lines = [
        f"{len(silent)} sensors have sent no DNS reply for longer than their threshold:",
        *(
            f"- {label(s.name)}: none since {iso(s.seen.last)} "
            f"({_ago(now.timestamp() - s.seen.last)} ago; threshold {_ago(s.limit)})"
            for s in silent
        ),
        "Detection for their institutions is stopped until they send again.",
        "Several sensors falling silent together points at this server rather than at "
        "each sensor: check the server's go-dnscollector (is it running and listening?), "
        "its certificate and the network path from the sensors first.",
        *(
            f"{label(s.name)}: {silent_note(s.spool, s.seen.last)}"
            for s in silent
            if s.spool is not None
        ),
        "One more message follows when they send again.",
    ]
    return f"{len(silent)} sensors are silent", "\n".join(lines)


def recovery_notice(back: list[Recovered]) -> tuple[str, str]:
    """Subject and text of one message announcing every sensor in ``back``."""
    if len(back) == 1:
        (r,) = back
        name = label(r.name)
        since = iso(float(r.told.get("last", r.seen.first)))
        text = (
            f"Sensor {name} sends again: newest reply {iso(r.seen.last)}, "
            f"silent since {since} "
            f"({_ago(r.seen.last - float(r.told.get('last', r.seen.last)))}).\n"
            f"Announced silent at {r.told.get('announced', '?')}; "
            "this is the last message about it."
        )
        return f"sensor {name} sends again", text
    lines = [
        f"{len(back)} sensors send again:",
        *(
            f"- {label(r.name)}: newest reply {iso(r.seen.last)}, silent since "
            f"{iso(float(r.told.get('last', r.seen.first)))}, announced silent at "
            f"{r.told.get('announced', '?')}"
            for r in back
        ),
        "This is the last message about them.",
    ]
    return f"{len(back)} sensors send again", "\n".join(lines)
