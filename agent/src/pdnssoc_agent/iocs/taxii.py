# SPDX-License-Identifier: Apache-2.0
"""A TAXII 2.1 collection as a source: STIX 2.1 indicators, read incrementally.

The TAXII 2.1 "Get Objects" endpoint, ``GET <api root>/collections/<id>/objects/``
with ``Accept: application/taxii+json;version=2.1``, answers an envelope
``{"more": bool, "next": str, "objects": [...]}``; ``next`` asks for the
following page, and the ``X-TAXII-Date-Added-Last`` header says when the
newest object of the answer was added. The first run asks for the
indicators (``match[type]=indicator``) added since the longest age limit
(a new version of an indicator is added anew, so nothing recent is missed);
later runs only for those added after the last run's
``X-TAXII-Date-Added-Last`` (``added_after``); an age limit made longer reads
from the new limit again. The indicators
already known are kept under ``<state_dir>/sources/<name>/taxii.json``, a
newer version of an indicator (``modified``) replaces the older, and an
indicator is dropped once it is revoked, past its ``valid_until`` or older than
the longest age limit. The state is written only after every page was read,
so a run that fails part-way asks again from the same point.

Only STIX patterns (``pattern_type: stix``) made of ``domain-name:value``,
``ipv4-addr:value`` and ``ipv6-addr:value`` equality comparisons joined by
``OR`` (within one observation or between observations) are used: each such
value is an indicator. ``AND``, ``FOLLOWEDBY``, other operators, qualifiers
and other object types would need more than one observation, or a match DNS
traffic cannot make, to mean what the pattern says; such indicators are
counted and logged, not guessed at. TLP comes from ``object_marking_refs``
naming the TLP 1.0 marking definitions of STIX 2.1 or the TLP 2.0 ones of the
OASIS extension.

The protocol surface is one GET with paging, so it is implemented on the
shared HTTP base (its deadline, bounds and key handling) rather than through
``taxii2-client``, whose own session would bypass them.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import msgspec

from ..config import Secret, SourceConfig
from ..fsutil import atomic_write_bytes
from .http import HttpSource
from .source import Attribute, EventRef, Tag

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/taxii+json;version=2.1"
_STATE = "taxii.json"

TLP_MARKINGS = {
    # TLP 1.0, predefined by STIX 2.1 (section 7.2.1.4)
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "white",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
    # TLP 2.0, OASIS cti-stix-common-objects extension
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}
"""STIX marking definition id -> TLP level."""

_TYPES = {"domain-name": "domain", "ipv4-addr": "ip-dst", "ipv6-addr": "ip-dst"}
_COMPARISON = re.compile(r"(domain-name|ipv4-addr|ipv6-addr):value\s*=\s*'((?:[^'\\]|\\.)*)'")
_OBSERVATION = r"\[ ?C(?: OR C)* ?\]"
_SIMPLE = re.compile(rf"{_OBSERVATION}(?: OR {_OBSERVATION})*")


def pattern_values(pattern: str) -> list[tuple[str, str]] | None:
    """(attribute type, value) of each comparison; None when the pattern is not simple."""
    found = [(_TYPES[t], re.sub(r"\\(.)", r"\1", v)) for t, v in _COMPARISON.findall(pattern)]
    shape = " ".join(_COMPARISON.sub("C", pattern).split())
    shape = shape.replace("[ ", "[").replace(" ]", "]")
    if not found or not _SIMPLE.fullmatch(shape):
        return None
    return found


class Indicator(msgspec.Struct, omit_defaults=True):
    """The fields of a STIX 2.1 indicator the agent keeps."""

    id: str
    modified: str = ""
    created: str = ""
    valid_from: str = ""
    type: str = "indicator"
    name: str = ""
    pattern: str = ""
    pattern_type: str = "stix"
    valid_until: str | None = None
    revoked: bool = False
    labels: list[str] = []
    object_marking_refs: list[str] = []
    created_by_ref: str = ""


class _Object(msgspec.Struct):
    type: str
    id: str = ""


class _Envelope(msgspec.Struct):
    more: bool = False
    next: str | None = None
    objects: list[msgspec.Raw] = []


class _State(msgspec.Struct):
    added_after: str | None = None
    floor: int = 0
    """The oldest time the kept indicators cover (epoch seconds)."""
    indicators: dict[str, Indicator] = {}


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_object_decoder = msgspec.json.Decoder(_Object)
_indicator_decoder = msgspec.json.Decoder(Indicator)
_state_decoder = msgspec.json.Decoder(_State)


def _epoch(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return None


def _iso(epoch: int) -> str:
    """A TAXII timestamp (RFC 3339, UTC, milliseconds)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class TaxiiSource(HttpSource):
    """One TAXII 2.1 collection (``sources[].type: taxii``)."""

    def __init__(self, config: SourceConfig, key: Secret | None, *, cache_dir: Path) -> None:
        super().__init__(config, key)
        self.cache_dir = cache_dir
        self.collection_url = f"{self.url}/collections/{config.collection}"
        self.requests_made = 0
        self.unused_patterns = 0
        """Indicators of the last run whose pattern the agent does not use."""

    def event_url(self, event_id: str) -> str:
        return f"{self.collection_url}/objects/{event_id}/" if event_id else self.collection_url

    def records(self, since: int) -> list[Attribute]:
        state = self._load()
        if not state.added_after or since < state.floor:
            # First read, or an age limit made longer: read from the oldest time wanted.
            state = _State(added_after=_iso(since), floor=since)
        known = state.indicators
        added_after = self._pages(state.added_after, known)
        now = time.time()
        for ind_id, ind in list(known.items()):
            until = _epoch(ind.valid_until)
            changed = _epoch(ind.modified) or _epoch(ind.created) or 0
            if ind.revoked or (until is not None and until <= now) or changed < since:
                del known[ind_id]
        self._save(_State(added_after=added_after, floor=state.floor, indicators=known))
        records: list[Attribute] = []
        self.unused_patterns = 0
        for ind in known.values():
            values = pattern_values(ind.pattern) if ind.pattern_type == "stix" else None
            if values is None:
                self.unused_patterns += 1
                continue
            records += self._to_records(ind, values)
        if self.unused_patterns:
            log.info(
                "%s: %d indicator(s) with a pattern the agent does not use (only domain-name, "
                "ipv4-addr and ipv6-addr :value = '...' comparisons joined by OR)",
                self.label,
                self.unused_patterns,
            )
        return records

    # -- protocol -------------------------------------------------------------

    def _pages(self, added_after: str | None, known: dict[str, Indicator]) -> str | None:
        """Read every page added after ``added_after`` into ``known``; the next bookmark."""
        params: dict[str, str] = {"match[type]": "indicator", "limit": str(self.config.page_size)}
        if added_after:
            params["added_after"] = added_after
        bookmark = added_after
        seen = 0
        while True:
            url = f"{self.collection_url}/objects/?{urlencode(params)}"
            response = self.request(url, headers={"Accept": MEDIA_TYPE})
            self.requests_made += 1
            try:
                envelope = _envelope_decoder.decode(response.content)
            except msgspec.DecodeError as exc:
                raise self.error(f"not a TAXII 2.1 envelope: {exc}") from None
            for raw in envelope.objects:
                self._merge(raw, known)
            seen += len(envelope.objects)
            if seen > self.config.max_indicators:
                raise self.error(f"more than max_indicators ({self.config.max_indicators}) objects")
            bookmark = response.headers.get("X-TAXII-Date-Added-Last") or bookmark
            if not envelope.more:
                return bookmark
            if not envelope.next:
                raise self.error("the server says there is more but gives no 'next'")
            if params.get("next") == envelope.next:
                raise self.error("the server answers the same 'next' again: it ignores paging")
            params["next"] = envelope.next

    def _merge(self, raw: msgspec.Raw, known: dict[str, Indicator]) -> None:
        try:
            if _object_decoder.decode(raw).type != "indicator":
                return
            ind = _indicator_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise self.error(f"an object that is not STIX 2.1: {exc}") from None
        old = known.get(ind.id)
        if old is None or (_epoch(ind.modified) or 0) >= (_epoch(old.modified) or 0):
            known[ind.id] = ind

    # -- records --------------------------------------------------------------

    def _to_records(self, ind: Indicator, values: list[tuple[str, str]]) -> list[Attribute]:
        tags = [Tag(name=label) for label in ind.labels if label]
        tlp = [TLP_MARKINGS[m] for m in ind.object_marking_refs if m in TLP_MARKINGS]
        tags += [Tag(name=f"tlp:{level}") for level in dict.fromkeys(tlp)]
        stamp = _epoch(ind.modified) or _epoch(ind.created) or 0
        event = EventRef(id=ind.id, uuid=ind.id.partition("--")[2], info=ind.name, Tag=[])
        return [
            Attribute(
                value=value,
                type=kind,
                id=ind.id,
                uuid=f"{ind.id}#{n}",
                category="Network activity",
                timestamp=stamp,
                comment=ind.pattern[:200],
                first_seen=ind.valid_from or ind.created or None,
                event_id=ind.id,
                Event=event,
                Tag=tags,
            )
            for n, (kind, value) in enumerate(values)
        ]

    # -- state ----------------------------------------------------------------

    def _load(self) -> _State:
        try:
            return _state_decoder.decode((self.cache_dir / _STATE).read_bytes())
        except FileNotFoundError:
            return _State()
        except (OSError, msgspec.DecodeError) as exc:
            log.warning(
                "%s: kept state unusable, reading the collection afresh: %s", self.label, exc
            )
            return _State()

    def _save(self, state: _State) -> None:
        try:
            self.cache_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
            atomic_write_bytes(self.cache_dir / _STATE, msgspec.json.encode(state))
        except OSError as exc:
            # Without its state the next run reads the collection afresh: slower, not wrong.
            log.warning("%s: cannot keep the state in %s: %s", self.label, self.cache_dir, exc)
