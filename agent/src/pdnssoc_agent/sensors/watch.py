# SPDX-License-Identifier: Apache-2.0
"""Tell the operators once when a sensor falls silent, once when it sends again.

Run by the ``alert`` step after its deliveries. It reads correlate's
:class:`~.book.SensorBook` (never writes it) and keeps what it announced in its
own file, ``<state_dir>/sensors-notices.json``, replaced atomically: a notice
is recorded only once a channel accepted it (or when no operator channel is
configured, which is logged), so a failed delivery is tried again on the next
run and an accepted one is never repeated, restarts included.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..alerts.operators import notify_operators
from ..config import Config
from ..fsutil import atomic_write_text
from ..timefmt import format_rfc3339
from .book import BOOK_FILE, HOUR, SensorBook, SensorSeen
from .rhythm import has_history, in_quiet_hours, per_hour, silence, threshold
from .spool import SpoolReport, read_reports, silent_note

log = logging.getLogger(__name__)

NOTICES_FILE = "sensors-notices.json"
UNNAMED = "(no identity)"


def _label(name: str) -> str:
    return name or UNNAMED


def _iso(epoch: float) -> str:
    return format_rfc3339(datetime.fromtimestamp(epoch).astimezone(), seconds=True)


@dataclass
class SensorView:
    """One sensor as ``status`` shows it."""

    sensor: str
    last_seen: str
    age_s: int
    first_seen: str
    replies_last_hour: int
    replies_per_hour: float
    """Average over the whole hours of the kept history that had replies."""
    threshold_s: int | None
    """None: not watched (``watch: false``, or no history yet)."""
    silent: bool
    announced: bool


def book_path(config: Config) -> Path:
    return config.correlation.state_dir / BOOK_FILE


def notices_path(config: Config) -> Path:
    return config.correlation.state_dir / NOTICES_FILE


def load_notices(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); silent sensors may be announced again", path, exc)
        return {}
    notices = data.get("silent") if isinstance(data, dict) else None
    return {str(k): v for k, v in notices.items() if isinstance(v, dict)} if notices else {}


def _watched(config: Config, name: str, seen: SensorSeen) -> bool:
    cfg = config.sensors
    return cfg.watch and cfg.rule(name).watch and has_history(seen, cfg)


def view(config: Config, now: datetime) -> list[SensorView]:
    """Every known sensor, for ``status`` (reads only)."""
    book = SensorBook.load(book_path(config))
    notices = load_notices(notices_path(config))
    now_s = int(now.timestamp())
    out = []
    for name, seen in sorted(book.sensors.items()):
        watched = _watched(config, name, seen)
        limit = threshold(name, seen, config.sensors) if watched else None
        out.append(
            SensorView(
                sensor=_label(name),
                last_seen=_iso(seen.last),
                age_s=max(0, now_s - seen.last),
                first_seen=_iso(seen.first),
                replies_last_hour=seen.hours.get(now_s - now_s % HOUR, 0),
                replies_per_hour=per_hour(seen),
                threshold_s=None if limit is None else int(limit),
                silent=limit is not None and silence(name, seen, config.sensors, now) > limit,
                announced=name in notices,
            )
        )
    return out


def _say(config: Config, subject: str, text: str, failed: dict[str, str]) -> bool:
    """Send to the operators; True when a channel took it or none is configured."""
    result = notify_operators(config, subject, text, what="sensors")
    for channel, outcome in result.items():
        if outcome != "sent":
            failed[f"operators ({channel})"] = outcome
    return not result or any(v == "sent" for v in result.values())


def check(config: Config, now: datetime) -> tuple[dict[str, str], dict[str, str]]:
    """Announce newly silent sensors and recoveries.

    Returns (sensor -> "silent" or "sending again" for each notice accepted,
    channel -> error for each channel that refused one).
    """
    cfg = config.sensors
    book = SensorBook.load(book_path(config))
    path = notices_path(config)
    notices = load_notices(path)
    said: dict[str, str] = {}
    failed: dict[str, str] = {}
    changed = False
    spools, _ = read_reports(cfg.spool_reports)  # unreadable ones: status says so
    for name in [n for n in notices if n not in book.sensors]:
        del notices[name]  # forgotten (decommissioned) meanwhile
        changed = True
    for name, seen in sorted(book.sensors.items()):
        told = notices.get(name)
        if told is not None:
            sends_again = seen.last > int(told.get("last", 0))
            if sends_again and _say(config, *_recovery(name, seen, told), failed):
                del notices[name]
                said[name] = "sending again"
                changed = True
            continue
        if not _watched(config, name, seen):
            continue
        quiet = cfg.quiet_for(name)
        if quiet and in_quiet_hours(now, quiet, ZoneInfo(cfg.timezone)):
            continue
        limit = threshold(name, seen, cfg)
        quiet_for = silence(name, seen, cfg, now)
        if quiet_for <= limit:
            continue
        if _say(config, *_silent(name, seen, limit, now, spools.get(name)), failed):
            notices[name] = {"last": seen.last, "announced": format_rfc3339(now, seconds=True)}
            said[name] = "silent"
            changed = True
    if changed:
        body = {"version": 1, "silent": notices}
        atomic_write_text(path, json.dumps(body, indent=1, sort_keys=True) + "\n")
    for name, what in said.items():
        log.warning("sensor %s: %s; the operators were told", _label(name), what)
    return said, failed


def _ago(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


def _silent(
    name: str, seen: SensorSeen, limit: float, now: datetime, spool: SpoolReport | None
) -> tuple[str, str]:
    label = _label(name)
    last = _iso(seen.last)
    text = (
        f"Sensor {label} has sent no DNS reply since {last} "
        f"({_ago(now.timestamp() - seen.last)} ago; its threshold is {_ago(limit)}).\n"
        "Detection for this sensor's institution is stopped until it sends again.\n"
        "Check the sensor's go-dnscollector and its dnstap input, the resolver's dnstap "
        "configuration and the sensor's client certificate.\n"
        + (f"{silent_note(spool, seen.last)}\n" if spool is not None else "")
        + "One more message follows when it sends again."
    )
    return f"sensor {label} is silent", text


def _recovery(name: str, seen: SensorSeen, told: dict[str, Any]) -> tuple[str, str]:
    label = _label(name)
    since = _iso(float(told.get("last", seen.first)))
    text = (
        f"Sensor {label} sends again: newest reply {_iso(seen.last)}, "
        f"silent since {since} ({_ago(seen.last - float(told.get('last', seen.last)))}).\n"
        f"Announced silent at {told.get('announced', '?')}; this is the last message about it."
    )
    return f"sensor {label} sends again", text


def as_dict(views: list[SensorView]) -> list[dict[str, Any]]:
    return [asdict(v) for v in views]
