# SPDX-License-Identifier: Apache-2.0
"""The alert line: the one contract between correlation and delivery.

``correlate`` and ``retro`` append one JSON object a line to
``<correlation.output_dir>/matches.json`` (:data:`ALERTS_FILE`); ``alert``
reads them back. Both sides use the one :class:`Alert` type defined here, its
encoder (:func:`encode_alert`) and its decoder (:func:`decode_alert`). The
published JSON Schema is ``schemas/alert.schema.json``.

The decoder checks the fields delivery uses, and refuses here, at the door,
anything that could stop a channel later, so a bad line is skipped once
instead of failing every run: NaN or infinite numbers, lone surrogates (no
UTF-8 form), nesting deeper than :data:`MAX_DEPTH`, integers SQLite cannot
store, times that do not parse. It is lenient about what delivery does not
use (a missing ``client``, a number where a string is expected).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import msgspec

from .timefmt import parse_rfc3339

SCHEMA_VERSION = 1
ALERTS_FILE = "matches.json"
"""The alert file's name in ``correlation.output_dir``."""

MAX_DEPTH = 16
"""Deepest nesting of arrays and objects accepted (an alert line has 3 levels)."""
MAX_INT = 2**63 - 1
"""Largest revision or count accepted (SQLite's largest integer)."""

_ID = re.compile(r"^[0-9a-f]{32}$")


def alerts_path(output_dir: Path) -> Path:
    """The alert file in ``output_dir`` (``correlation.output_dir``)."""
    return output_dir / ALERTS_FILE


class AlertFormatError(ValueError):
    """A line of the alert file is not an alert this version understands."""


class AlertQuery(msgspec.Struct, frozen=True):
    name: str
    type: str = ""
    rcode: str = ""


class AlertAnswer(msgspec.Struct, frozen=True):
    name: str = ""
    type: str = ""
    data: str = ""
    ttl: int = 0


class AlertMatch(msgspec.Struct, frozen=True):
    how: str
    indicator: str
    value: str = ""


class MispAttribute(msgspec.Struct, frozen=True):
    """One MISP attribute behind the indicator, or one record of another source.

    ``server`` is the source's configured name and ``source_type`` its kind:
    ``misp`` (a MISP server, and lines written before other sources existed)
    or a ``sources[].type`` (``misp_feed``, ``list``, ``threatfox``, ``taxii``).
    """

    server: str
    event_id: str
    event_uuid: str = ""
    event_info: str = ""
    event_url: str = ""
    org: str = ""
    tags: tuple[str, ...] = ()
    attribute_uuid: str = ""
    attribute_type: str = ""
    category: str = ""
    comment: str = ""
    timestamp: int = 0
    tlp: str | None = None
    source_type: str = "misp"


class AlertSource(msgspec.Struct, frozen=True):
    file: str = ""


class Alert(msgspec.Struct, frozen=True, omit_defaults=True):
    """One line of the alert file (see schemas/alert.schema.json).

    Only ``misp_more`` and ``answers_more`` have defaults, so only they are
    left out of a line (when 0).
    """

    schema_version: int
    id: str
    revision: int
    kind: str
    detected_at: str
    first_seen: str
    last_seen: str
    count: int
    sensor: str
    client: str
    query: AlertQuery
    answers: tuple[AlertAnswer, ...]
    match: AlertMatch
    misp: tuple[MispAttribute, ...]
    ioc_added: str | None
    source: AlertSource
    misp_more: int = 0
    """MISP attributes carrying the indicator that the line does not list."""
    answers_more: int = 0
    """Answers of the DNS message that the line does not list."""

    @property
    def incident_key(self) -> str:
        """Identity for re-notification: the same client resolving the same indicator.

        The alert id also carries the de-duplication window and the kind; this
        key carries neither, so a client that keeps resolving a domain is not
        re-announced every window, and a reply that both live correlation and
        retro found (retro also reads the lines logged shortly before an
        indicator arrived) is announced once per ``alerting.renotify_after``.
        """
        parts = (self.sensor, self.client, self.query.name, self.match.indicator)
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]

    def seen_epoch(self) -> int:
        """``last_seen`` as epoch seconds (the DNS answer time reported in sightings)."""
        return int(parse_rfc3339(self.last_seen or self.detected_at).timestamp())


_encoder = msgspec.json.Encoder()


def encode_alert(alert: Alert) -> bytes:
    """``alert`` as one line of the alert file (without the newline)."""
    return _encoder.encode(alert)


def alert_object(alert: Alert) -> dict[str, Any]:
    """``alert`` as the JSON object of its line (for a JSON receiver): equal to the
    line decoded as plain JSON."""
    obj: dict[str, Any] = msgspec.json.decode(encode_alert(alert))
    return obj


# ---------------------------------------------------------------------- decoding


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


def _loose_str(obj: dict[str, Any], key: str) -> str:
    """A field delivery only passes on: a string, a number as text, else empty."""
    value = obj.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _loose_int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT
    return value if ok else 0  # type: ignore[return-value]


def _int(obj: dict[str, Any], key: str, default: int, low: int) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
        raise AlertFormatError(f"{key}: expected an integer from {low} to 2**63-1")
    return value


def _time(obj: dict[str, Any], key: str) -> str:
    text = _str(obj, key, "")
    if text:
        try:
            parse_rfc3339(text)
        except ValueError:
            raise AlertFormatError(f"{key}: not an RFC 3339 time: {show(text)}") from None
    return text


def _misp(obj: Any) -> MispAttribute:
    if not isinstance(obj, dict):
        raise AlertFormatError("misp[]: expected an object")
    tags = obj.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise AlertFormatError("misp[].tags: expected a list of strings")
    tlp = obj.get("tlp")
    if tlp is not None and not isinstance(tlp, str):
        raise AlertFormatError("misp[].tlp: expected a string or null")
    return MispAttribute(
        server=_str(obj, "server", "misp[]."),
        event_id=_str(obj, "event_id", "misp[]."),
        event_uuid=_loose_str(obj, "event_uuid"),
        event_info=_str(obj, "event_info", "misp[]."),
        event_url=_str(obj, "event_url", "misp[]."),
        org=_str(obj, "org", "misp[]."),
        tags=tuple(tags),
        attribute_uuid=_loose_str(obj, "attribute_uuid"),
        attribute_type=_str(obj, "attribute_type", "misp[]."),
        category=_str(obj, "category", "misp[]."),
        comment=_str(obj, "comment", "misp[]."),
        timestamp=_loose_int(obj, "timestamp"),
        tlp=tlp,
        source_type=_str(obj, "source_type", "misp[].") or "misp",
    )


def _answer(obj: dict[str, Any]) -> AlertAnswer:
    return AlertAnswer(
        name=_loose_str(obj, "name"),
        type=_loose_str(obj, "type"),
        data=_loose_str(obj, "data"),
        ttl=_loose_int(obj, "ttl"),
    )


def parse_alert(obj: Any) -> Alert:
    """An Alert from a decoded line; AlertFormatError names the bad field."""
    if not isinstance(obj, dict):
        raise AlertFormatError("expected a JSON object")
    version = obj.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise AlertFormatError(f"schema_version {show(version)} is not {SCHEMA_VERSION}")
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
    ioc_added = obj.get("ioc_added")
    source = obj.get("source")
    return Alert(
        schema_version=SCHEMA_VERSION,
        id=alert_id,
        revision=revision,
        kind=kind,
        detected_at=detected_at,
        first_seen=first_seen,
        last_seen=last_seen,
        count=_int(obj, "count", 1, 0),
        sensor=_str(obj, "sensor", "", required=True),
        client=_str(obj, "client", ""),
        query=AlertQuery(
            name=_str(query, "name", "query.", required=True),
            type=_str(query, "type", "query."),
            rcode=_str(query, "rcode", "query."),
        ),
        answers=tuple(_answer(a) for a in answers if isinstance(a, dict)),
        match=AlertMatch(
            how=_str(match, "how", "match."),
            indicator=_str(match, "indicator", "match.", required=True),
            value=_str(match, "value", "match."),
        ),
        misp=tuple(_misp(m) for m in misp),
        ioc_added=ioc_added if isinstance(ioc_added, str) else None,
        source=AlertSource(_loose_str(source, "file") if isinstance(source, dict) else ""),
        misp_more=_int(obj, "misp_more", 0, 0),
        answers_more=_int(obj, "answers_more", 0, 0),
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


def decode_alert(line: bytes | str) -> Alert:
    """One line of the alert file as an Alert (AlertFormatError says what is wrong)."""
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
