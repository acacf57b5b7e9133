# SPDX-License-Identifier: Apache-2.0
"""What spooling sensors report about their spool: its fill, its bounds, what it dropped.

A sensor that spools (transport ``spool`` or ``both``) keeps its unshipped dnstap
files within a size and an age bound and counts what it had to drop
(``dnscollector-spool-prune`` of the dnscollector role). After each successful
shipping round it sends its report, ``spool-report.json``, to the server, where it
lands in ``<sensors.spool_reports>/<sensor>/`` (the server's ingest account files
it under the name the sensor's key was authorized for, whatever the file says).
``status`` lists these reports; a silent sensor's notice says when its spool
starts dropping files. Reading never changes anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..timefmt import format_rfc3339

REPORT_FILE = "spool-report.json"


class ReportError(ValueError):
    """A report that is not what a sensor writes."""


@dataclass(frozen=True)
class SpoolReport:
    """One sensor's last shipped spool report (times are epoch seconds)."""

    sensor: str
    updated: int
    """When the sensor wrote it (its clock)."""
    spool_bytes: int
    spool_files: int
    oldest_waiting: int | None
    """Last write of the oldest file waiting to be shipped; None: none waiting."""
    limit_bytes: int
    limit_seconds: int
    warn_percent: int
    warned: bool
    """The spool was past its warning watermark."""
    dropped_files: int
    dropped_bytes: int
    dropped_replies: int
    first_drop: int | None
    last_drop: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(f"{key}: expected a non-negative integer, got {value!r}")
    return value


def _maybe(data: dict[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else _count(data, key)


def parse_report(sensor: str, data: Any) -> SpoolReport:
    """A report from its JSON document; :class:`ReportError` names what is wrong."""
    if not isinstance(data, dict):
        raise ReportError("not a JSON object")
    dropped = data.get("dropped")
    if not isinstance(dropped, dict):
        raise ReportError("dropped: expected an object")
    if not isinstance(data.get("warned"), bool):
        raise ReportError(f"warned: expected true or false, got {data.get('warned')!r}")
    limit_bytes, limit_seconds = _count(data, "limit_bytes"), _count(data, "limit_seconds")
    if not limit_bytes or not limit_seconds:
        raise ReportError("limit_bytes and limit_seconds must be positive")
    return SpoolReport(
        sensor=sensor,
        updated=_count(data, "updated"),
        spool_bytes=_count(data, "spool_bytes"),
        spool_files=_count(data, "spool_files"),
        oldest_waiting=_maybe(data, "oldest_waiting"),
        limit_bytes=limit_bytes,
        limit_seconds=limit_seconds,
        warn_percent=_count(data, "warn_percent"),
        warned=bool(data["warned"]),
        dropped_files=_count(dropped, "files"),
        dropped_bytes=_count(dropped, "bytes"),
        dropped_replies=_count(dropped, "replies"),
        first_drop=_maybe(dropped, "first"),
        last_drop=_maybe(dropped, "last"),
    )


def read_reports(directory: Path) -> tuple[dict[str, SpoolReport], list[str]]:
    """Every sensor's report under ``directory``, and a problem per unreadable one.

    No directory (no sensor spools, or none shipped yet): no reports."""
    reports: dict[str, SpoolReport] = {}
    problems: list[str] = []
    try:
        sensors = sorted(p for p in directory.iterdir() if p.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return reports, problems
    except OSError as exc:
        return reports, [f"sensor spool reports: cannot read {directory}: {exc.strerror}"]
    for sensor_dir in sensors:
        path = sensor_dir / REPORT_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            reports[sensor_dir.name] = parse_report(sensor_dir.name, data)
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"sensor {sensor_dir.name}: cannot read its spool report {path}: {exc}")
        except ValueError as exc:  # JSON, or ReportError
            problems.append(f"sensor {sensor_dir.name}: spool report {path} is not valid: {exc}")
    return reports, problems


def drops_begin(report: SpoolReport, last_reply: int) -> int:
    """Epoch seconds by which a sensor whose replies stopped arriving at ``last_reply``
    drops its first unshipped file under the age bound (the size bound may come first).

    What it could not ship is newer than ``last_reply``; a file older than the report's
    oldest waiting one cannot be waiting."""
    start = last_reply if report.oldest_waiting is None else min(report.oldest_waiting, last_reply)
    return start + report.limit_seconds


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _when(epoch: int) -> str:
    return format_rfc3339(datetime.fromtimestamp(epoch, UTC), seconds=True)


def _span(seconds: float) -> str:
    return str(timedelta(seconds=int(max(seconds, 0))))


def describe(report: SpoolReport, now: datetime) -> str:
    """One line for ``status``: fill, bounds, drops, and when the sensor said so."""
    oldest = (
        f"oldest waiting {_span(now.timestamp() - report.oldest_waiting)} old"
        if report.oldest_waiting is not None
        else "nothing waiting"
    )
    dropped = (
        f"dropped {report.dropped_files} file(s), {_size(report.dropped_bytes)}, "
        f"{report.dropped_replies} replies (last at {_when(report.last_drop)})"
        if report.dropped_files and report.last_drop is not None
        else "nothing dropped"
    )
    return (
        f"{report.sensor}: {_size(report.spool_bytes)} of {_size(report.limit_bytes)}, {oldest} "
        f"(bound {_span(report.limit_seconds)}); {dropped}; reported {_when(report.updated)}"
    )


def problem(report: SpoolReport) -> str | None:
    """A problem for ``status`` while the sensor's last report says it was past its watermark."""
    if not report.warned:
        return None
    return (
        f"sensor {report.sensor}: its spool was past {report.warn_percent}% of its bounds "
        f"({_size(report.spool_bytes)} of {_size(report.limit_bytes)}) at "
        f"{_when(report.updated)}: it drops its oldest unshipped files beyond them"
    )


def silent_note(report: SpoolReport, last_reply: int) -> str:
    """For a silent sensor's notice: when its spool starts dropping what it could not ship."""
    begin = _when(drops_begin(report, last_reply))
    return (
        "This sensor spools: it keeps what it cannot ship, within its bounds. Unless shipping "
        f"resumes, it drops its oldest unshipped files from {begin} on (its age bound, "
        f"{_span(report.limit_seconds)}), sooner if they fill its size bound "
        f"({_size(report.limit_bytes)}) first. Its last report, at {_when(report.updated)}: "
        f"{_size(report.spool_bytes)} in its spool, {report.dropped_files} file(s) dropped so "
        "far. Check also its shipping timer (dnscollector-spool-ship) and the server's SSH "
        "ingest account."
    )
