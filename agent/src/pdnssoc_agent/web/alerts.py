# SPDX-License-Identifier: Apache-2.0
"""The alerts page's rows: the newest alert lines that match the analyst's filters.

Reads only the last ``web.scan_bytes`` of the alert file (its newest lines), so
a page costs the same however large the file grew; the page says when older
lines were not read. A line that is not an alert is counted and skipped. Of an
alert's revisions the newest is shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..alertfile import Alert, AlertFormatError, decode_alert
from ..suppress.rules import Matcher, normal_name
from ..timefmt import parse_rfc3339

KINDS = ("live", "retro")


class FilterError(ValueError):
    """A filter value the page cannot use (the message names the field)."""


@dataclass(frozen=True)
class Filters:
    institution: str = ""
    indicator: str = ""
    """A matched indicator or a query name (either, case-insensitive, exact)."""
    kind: str = ""
    since: datetime | None = None
    until: datetime | None = None


def parse_time(text: str, key: str) -> datetime | None:
    """A date (midnight UTC) or an RFC 3339 time; None when empty; FilterError names ``key``."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 10:
        text += "T00:00:00Z"
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise FilterError(f"{key}: expected a date (2026-11-30) or an RFC 3339 time") from None


def parse_filters(query: dict[str, str]) -> Filters:
    """Filters from the page's query string; FilterError names a bad field."""
    kind = query.get("kind", "").strip()
    if kind and kind not in KINDS:
        raise FilterError("kind: expected live or retro")
    return Filters(
        institution=query.get("institution", "").strip(),
        indicator=normal_name(query.get("indicator", "")),
        kind=kind,
        since=parse_time(query.get("since", ""), "since"),
        until=parse_time(query.get("until", ""), "until"),
    )


def _wanted(alert: Alert, f: Filters) -> bool:
    if f.institution and alert.sensor != f.institution:
        return False
    if f.kind and alert.kind != f.kind:
        return False
    if f.indicator and f.indicator not in (
        normal_name(alert.match.indicator),
        normal_name(alert.query.name),
    ):
        return False
    if f.since is None and f.until is None:
        return True
    seen = parse_rfc3339(alert.last_seen or alert.detected_at)
    return (f.since is None or seen >= f.since) and (f.until is None or seen < f.until)


@dataclass
class Row:
    alert: Alert
    suppressed_by: str | None


@dataclass
class AlertPage:
    rows: list[Row] = field(default_factory=list)
    more: int = 0
    """Matching alerts beyond the page's limit."""
    bad_lines: int = 0
    older_not_read: bool = False
    institutions: list[str] = field(default_factory=list)
    """Every institution in the lines read (for the filter's choices)."""


def _tail(path: Path, limit: int) -> tuple[bytes, bool]:
    """The last ``limit`` bytes of ``path`` from a line start; True when lines were left."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return b"", False
    with fh:
        size = os.fstat(fh.fileno()).st_size
        start = max(0, size - limit)
        fh.seek(start)
        data = fh.read(size - start)
    if start:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    end = data.rfind(b"\n")
    return data[: end + 1], start > 0


def read_alerts(
    path: Path, f: Filters, *, limit: int, scan_bytes: int, matcher: Matcher, now: datetime
) -> AlertPage:
    data, older = _tail(path, scan_bytes)
    page = AlertPage(older_not_read=older)
    newest: dict[str, Alert] = {}
    institutions: set[str] = set()
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            alert = decode_alert(line)
        except AlertFormatError:
            page.bad_lines += 1
            continue
        institutions.add(alert.sensor)
        if not _wanted(alert, f):
            continue
        known = newest.pop(alert.id, None)  # re-inserted: the dict keeps file order
        newest[alert.id] = alert if known is None or alert.revision >= known.revision else known
    ordered = list(reversed(newest.values()))
    page.more = max(0, len(ordered) - limit)
    for alert in ordered[:limit]:
        rule = matcher.match_alert(alert, now)
        page.rows.append(Row(alert, None if rule is None else rule.id))
    page.institutions = sorted(institutions)
    return page
