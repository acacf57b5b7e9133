# SPDX-License-Identifier: Apache-2.0
"""Alerts as ``correlate`` and ``retro`` write them (one JSON object a line).

The fields delivery uses are checked, and anything that could stop a channel
later is refused here, at the door, so a bad line is skipped once instead of
failing every run: NaN or infinite numbers, lone surrogates (no UTF-8 form),
nesting deeper than :data:`MAX_DEPTH`, integers SQLite cannot store, times that
do not parse. The whole object is kept in ``raw`` and handed unchanged to the
generic webhook.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_ID = re.compile(r"^[0-9a-f]{32}$")

MAX_DEPTH = 16
"""Deepest nesting of arrays and objects accepted (an alert line has 3 levels)."""
MAX_INT = 2**63 - 1
"""Largest revision or count accepted (SQLite's largest integer)."""


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
    misp_more: int = 0
    """MISP attributes carrying the indicator that the line does not list."""
    answers_more: int = 0
    """Answers of the DNS message that the line does not list."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
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


def show(value: Any, limit: int = 40) -> str:
    """``value`` for a log line or an error: ASCII only (escapes), at most ``limit`` chars."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _str(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise AlertFormatError(f"{where}{key}: missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AlertFormatError(f"{where}{key}: expected a string, got {type(value).__name__}")
    return str(value)


def _int(obj: dict[str, Any], key: str, default: int, low: int) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
        raise AlertFormatError(f"{key}: expected an integer from {low} to 2**63-1")
    return value


def _time(obj: dict[str, Any], key: str) -> str:
    text = _str(obj, key, "")
    if text:
        try:
            parse_time(text).timestamp()
        except (ValueError, OverflowError):
            raise AlertFormatError(f"{key}: not an RFC 3339 time: {show(text)}") from None
    return text


def _context(obj: Any) -> MispContext:
    if not isinstance(obj, dict):
        raise AlertFormatError("misp[]: expected an object")
    tags_raw = obj.get("tags") or []
    if not isinstance(tags_raw, list) or not all(isinstance(t, str) for t in tags_raw):
        raise AlertFormatError("misp[].tags: expected a list of strings")
    tags = tuple(tags_raw)
    tlp = obj.get("tlp")
    if tlp is not None and not isinstance(tlp, str):
        raise AlertFormatError("misp[].tlp: expected a string or null")
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
    version = obj.get("schema_version", 1)
    if isinstance(version, bool) or version != 1:
        raise AlertFormatError(f"schema_version {show(version)} is not 1")
    alert_id = _str(obj, "id", "", required=True)
    if not _ID.match(alert_id):
        raise AlertFormatError(f"id: expected 32 lower-case hex digits, got {show(alert_id)}")
    revision = _int(obj, "revision", 1, 1)
    kind = _str(obj, "kind", "", required=True)
    if kind not in ("live", "retro"):
        raise AlertFormatError(f"kind: expected 'live' or 'retro', got {show(kind, 20)}")
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
    detected_at, first_seen, last_seen = (
        _time(obj, k) for k in ("detected_at", "first_seen", "last_seen")
    )
    if not (last_seen or detected_at):
        raise AlertFormatError("last_seen: missing (and no detected_at)")
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
        detected_at=detected_at,
        first_seen=first_seen,
        last_seen=last_seen,
        count=_int(obj, "count", 1, 0),
        answers=tuple(a for a in answers if isinstance(a, dict)),
        misp=tuple(_context(m) for m in misp),
        misp_more=_int(obj, "misp_more", 0, 0),
        answers_more=_int(obj, "answers_more", 0, 0),
        raw=obj,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_value(obj: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH, lone surrogates and NaN or infinite numbers.

    The depth walk is iterative (a hostile depth cannot exhaust the stack here)
    and visits containers only; strings and numbers are checked by encoding
    the whole value once, strictly, as UTF-8 JSON.
    """
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise AlertFormatError(f"nested deeper than {MAX_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in children if isinstance(v, dict | list))
    if not isinstance(obj, dict | list):
        return
    try:
        json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise AlertFormatError("a string holds a lone surrogate (not valid Unicode)") from None
    except ValueError:
        raise AlertFormatError("a number is NaN or infinite") from None


def parse_line(line: bytes) -> Alert:
    """Decode and parse one line of the alert file (AlertFormatError says what is wrong)."""
    try:
        obj = json.loads(line, parse_constant=_no_constant)
    except RecursionError:
        raise AlertFormatError(f"not JSON: nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise AlertFormatError(f"not JSON: {exc.msg} at character {exc.pos}") from None
    except UnicodeDecodeError:
        raise AlertFormatError("not JSON: invalid UTF-8") from None
    except ValueError as exc:  # NaN, Infinity, an integer of thousands of digits
        raise AlertFormatError(f"not JSON: {str(exc)[:80]}") from None
    check_value(obj)
    return parse_alert(obj)
