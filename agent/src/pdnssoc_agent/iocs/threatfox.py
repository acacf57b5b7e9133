# SPDX-License-Identifier: Apache-2.0
"""abuse.ch ThreatFox as a source: the recent IOCs of its JSON API.

One ``POST`` to the API endpoint (``https://threatfox-api.abuse.ch/api/v1/``)
with ``{"query": "get_iocs", "days": N}`` and the ``Auth-Key`` header; the
answer is ``{"query_status": "ok", "data": [...]}`` (``no_result`` when
nothing was added), each IOC with ``id``, ``ioc``, ``ioc_type`` (``domain``,
``ip:port``, ``url``, file hashes), ``threat_type_desc``,
``malware_printable``, ``confidence_level``, ``first_seen``/``last_seen``
(``YYYY-MM-DD HH:MM:SS UTC``), ``reporter`` and ``tags``.

``domain`` IOCs become ``domain`` records and ``ip:port`` IOCs ``ip-dst|port``
records; URLs and hashes are not indicators DNS traffic can reveal and are
left out. A record's time is its ``last_seen`` (or ``first_seen``), so the
age limits count from the last sighting; the comment keeps ``first_seen``.
Alerts link to the IOC's page on ThreatFox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from .http import HttpSource
from .source import Attribute, EventRef, Org, Tag

_TYPES = {"domain": "domain", "ip:port": "ip-dst|port"}


class _Ioc(msgspec.Struct):
    id: int | str
    ioc: str
    ioc_type: str
    threat_type_desc: str | None = None
    malware_printable: str | None = None
    confidence_level: int | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    reporter: str | None = None
    tags: list[str] | None = None


class _Answer(msgspec.Struct):
    query_status: str
    data: list[_Ioc] | str | None = None


_decoder = msgspec.json.Decoder(_Answer)


def _time(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


class ThreatFoxSource(HttpSource):
    """ThreatFox's recent IOCs (``sources[].type: threatfox``)."""

    def event_url(self, event_id: str) -> str:
        parts = urlsplit(self.url)
        host = parts.netloc.replace("threatfox-api.", "threatfox.", 1)
        return f"{parts.scheme}://{host}/ioc/{event_id}/" if event_id else ""

    def records(self, since: int) -> list[Attribute]:
        query: dict[str, Any] = {"query": "get_iocs", "days": self.config.days}
        body = self.request(self.url, json=query).content
        try:
            answer = _decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise self.error(f"not a ThreatFox answer: {exc}") from None
        if answer.query_status == "no_result":
            return []
        if answer.query_status != "ok" or not isinstance(answer.data, list):
            raise self.error(f"ThreatFox answered query_status {answer.query_status!r}")
        return [self._record(n, ioc) for n, ioc in enumerate(answer.data)]

    def _record(self, n: int, ioc: _Ioc) -> Attribute:
        kind = _TYPES.get(ioc.ioc_type, ioc.ioc_type)
        value = ioc.ioc
        if kind == "ip-dst|port" and ":" in value:
            host, _, port = value.rpartition(":")
            value = f"{host.strip('[]')}|{port}"
        first = _time(ioc.first_seen)
        if first is None:
            raise self.error(
                f"IOC {n} (id {ioc.id}): first_seen is not a time like 2024-01-31 12:00:00 UTC"
            )
        last = _time(ioc.last_seen) or first
        info = " - ".join(t for t in (ioc.malware_printable, ioc.threat_type_desc) if t)
        comment = f"first seen {ioc.first_seen}"
        if ioc.confidence_level is not None:
            comment += f", confidence {ioc.confidence_level}%"
        return Attribute(
            value=value,
            type=kind,
            id=str(ioc.id),
            uuid=f"threatfox:{ioc.id}",
            category="Network activity",
            timestamp=max(first, last),
            comment=comment,
            first_seen=datetime.fromtimestamp(first, UTC).isoformat(),
            event_id=str(ioc.id),
            Event=EventRef(
                id=str(ioc.id),
                info=info,
                Orgc=Org(name=f"ThreatFox ({ioc.reporter})" if ioc.reporter else "ThreatFox"),
            ),
            Tag=[Tag(name=t) for t in ioc.tags or [] if t],
        )
