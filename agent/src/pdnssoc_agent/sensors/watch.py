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
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..alerts.operators import notify_operators
from ..config import Config
from ..fsutil import atomic_write_text
from ..timefmt import format_rfc3339
from .book import BOOK_FILE, HOUR, SensorBook, SensorSeen
from .notices import Recovered, Silent, recovery_notice, silent_notice
from .notices import iso as _iso
from .notices import label as _label
from .rhythm import has_history, in_quiet_hours, per_hour, silence, threshold
from .spool import read_reports

log = logging.getLogger(__name__)

NOTICES_FILE = "sensors-notices.json"


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

    The sensors found silent by one check are announced in one message, and
    those sending again in one more: when the server's collector stops, every
    sensor falls silent at once, and that is one fault, not one per sensor.

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
    back: list[Recovered] = []
    silent: list[Silent] = []
    for name, seen in sorted(book.sensors.items()):
        told = notices.get(name)
        if told is not None:
            if seen.last > int(told.get("last", 0)):
                back.append(Recovered(name, seen, told))
            continue
        if not _watched(config, name, seen):
            continue
        quiet = cfg.quiet_for(name)
        if quiet and in_quiet_hours(now, quiet, ZoneInfo(cfg.timezone)):
            continue
        limit = threshold(name, seen, cfg)
        if silence(name, seen, cfg, now) > limit:
            silent.append(Silent(name, seen, limit, spools.get(name)))
    if back and _say(config, *recovery_notice(back), failed):
        for r in back:
            del notices[r.name]
            said[r.name] = "sending again"
        changed = True
    if silent and _say(config, *silent_notice(silent, now), failed):
        for s in silent:
            notices[s.name] = {"last": s.seen.last, "announced": format_rfc3339(now, seconds=True)}
            said[s.name] = "silent"
        changed = True
    if changed:
        body = {"version": 1, "silent": notices}
        atomic_write_text(path, json.dumps(body, indent=1, sort_keys=True) + "\n")
    for name, what in said.items():
        log.warning("sensor %s: %s; the operators were told", _label(name), what)
    return said, failed


def as_dict(views: list[SensorView]) -> list[dict[str, Any]]:
    return [asdict(v) for v in views]
