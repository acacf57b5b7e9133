# SPDX-License-Identifier: Apache-2.0
"""Alerts as ``correlate`` and ``retro`` write them (one JSON object a line).

Only the fields delivery needs are checked; the whole object is kept in
``raw`` and handed unchanged to the generic webhook.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_ID = re.compile(r"^[0-9a-f]{32}$")


class AlertFormatError(ValueError):
    """A line of the alert file is not an alert this version understands."""


@dataclass(frozen=True)
class MispContext:
    """One MISP attribute behind the indicator."""

    server: str
    event_id: str
    event_info: str = ""
    event_url: str = ""
    org: str = ""
    tags: tuple[str, ...] = ()
    comment: str = ""
    category: str = ""
    attribute_type: str = ""
    tlp: str | None = None


@dataclass(frozen=True)
class Alert:
    """One alert line."""

    id: str
    revision: int
    kind: str
    sensor: str
    client: str
    query_name: str
    query_type: str
    rcode: str
    match_how: str
    indicator: str
    match_value: str
    detected_at: str
    first_seen: str
    last_seen: str
    count: int
    answers: tuple[dict[str, Any], ...] = ()
    misp: tuple[MispContext, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def incident_key(self) -> str:
        """Identity for re-notification: the same client resolving the same indicator.

        The alert id also carries the de-duplication window and the kind; this
        key carries neither, so a client that keeps resolving a domain is not
        re-announced every window, and a reply that both live correlation and
        retro found (retro also reads the lines logged shortly before an
        indicator arrived) is announced once per ``alerting.renotify_after``.
        """
        parts = (self.sensor, self.client, self.query_name, self.indicator)
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]

    def seen_epoch(self) -> int:
        """``last_seen`` as epoch seconds (the DNS answer time reported in sightings)."""
        return int(parse_time(self.last_seen or self.detected_at).timestamp())


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset); naive values are UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _str(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise AlertFormatError(f"{where}{key}: missing")
        return ""
    if not isinstance(value, str | int | float):
        raise AlertFormatError(f"{where}{key}: expected a string")
    return str(value)


def _context(obj: Any) -> MispContext:
    if not isinstance(obj, dict):
        raise AlertFormatError("misp[]: expected an object")
    tags_raw = obj.get("tags") or []
    tags = tuple(str(t) for t in tags_raw) if isinstance(tags_raw, list) else ()
    tlp = obj.get("tlp")
    return MispContext(
        server=_str(obj, "server", "misp[]."),
        event_id=_str(obj, "event_id", "misp[]."),
        event_info=_str(obj, "event_info", "misp[]."),
        event_url=_str(obj, "event_url", "misp[]."),
        org=_str(obj, "org", "misp[]."),
        tags=tags,
        comment=_str(obj, "comment", "misp[]."),
        category=_str(obj, "category", "misp[]."),
        attribute_type=_str(obj, "attribute_type", "misp[]."),
        tlp=str(tlp) if tlp else None,
    )


def parse_alert(obj: Any) -> Alert:
    """Build an Alert from a decoded line; raise AlertFormatError naming the bad field."""
    if not isinstance(obj, dict):
        raise AlertFormatError("expected a JSON object")
    if obj.get("schema_version", 1) != 1:
        raise AlertFormatError(f"schema_version {obj.get('schema_version')!r} is not 1")
    alert_id = _str(obj, "id", "", required=True)
    if not _ID.match(alert_id):
        raise AlertFormatError(f"id: expected 32 lower-case hex digits, got {alert_id[:40]!r}")
    revision = obj.get("revision", 1)
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise AlertFormatError("revision: expected a positive integer")
    kind = _str(obj, "kind", "", required=True)
    if kind not in ("live", "retro"):
        raise AlertFormatError(f"kind: expected 'live' or 'retro', got {kind[:20]!r}")
    query = obj.get("query")
    match = obj.get("match")
    if not isinstance(query, dict):
        raise AlertFormatError("query: expected an object")
    if not isinstance(match, dict):
        raise AlertFormatError("match: expected an object")
    answers = obj.get("answers") or []
    misp = obj.get("misp") or []
    if not isinstance(answers, list) or not isinstance(misp, list):
        raise AlertFormatError("answers and misp: expected lists")
    count = obj.get("count", 1)
    return Alert(
        id=alert_id,
        revision=revision,
        kind=kind,
        sensor=_str(obj, "sensor", "", required=True),
        client=_str(obj, "client", ""),
        query_name=_str(query, "name", "query.", required=True),
        query_type=_str(query, "type", "query."),
        rcode=_str(query, "rcode", "query."),
        match_how=_str(match, "how", "match."),
        indicator=_str(match, "indicator", "match.", required=True),
        match_value=_str(match, "value", "match."),
        detected_at=_str(obj, "detected_at", ""),
        first_seen=_str(obj, "first_seen", ""),
        last_seen=_str(obj, "last_seen", ""),
        count=count if isinstance(count, int) and not isinstance(count, bool) else 1,
        answers=tuple(a for a in answers if isinstance(a, dict)),
        misp=tuple(_context(m) for m in misp),
        raw=obj,
    )


def parse_line(line: bytes) -> Alert:
    """Decode and parse one line of the alert file."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AlertFormatError(f"not JSON: {exc}") from None
    return parse_alert(obj)
