# SPDX-License-Identifier: Apache-2.0
"""MISP feeds without a MISP instance: a feed directory read over HTTP(S).

A MISP feed (as MISP's feed export and PyMISP's ``feed_meta_generator``
write it) is a directory holding ``manifest.json``, which maps each event's
UUID to its summary (``info``, ``Orgc``, ``Tag``, ``date``, ``timestamp``),
and one ``<uuid>.json`` per event, ``{"Event": {...}}`` with the event's
``Attribute`` list and its objects' ``Object[].Attribute`` lists. Timestamps
are epoch seconds, as numbers in the manifest and as strings in events.

The feed is read incrementally by its manifest: an event file is downloaded
only when its manifest ``timestamp`` differs from the copy kept under
``<state_dir>/sources/<name>/``; an event older than the longest age limit is
not read at all (none of its attributes could be kept). Attributes map onto
the shared :class:`~pdnssoc_agent.iocs.source.Attribute` as they are, with
the event's UUID as its id; alerts link to the event's file in the feed.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

import msgspec

from ..config import Secret, SourceConfig
from ..fsutil import atomic_write_bytes
from .http import HttpSource
from .source import Attribute, EventRef, Org, Tag

log = logging.getLogger(__name__)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KEPT = "kept.json"


class _Summary(msgspec.Struct):
    timestamp: int = 0


class _FeedAttribute(Attribute):
    deleted: bool = False


class _FeedObject(msgspec.Struct):
    Attribute: list[_FeedAttribute] = []
    deleted: bool = False


class _FeedEvent(msgspec.Struct):
    uuid: str = ""
    info: str = ""
    timestamp: int = 0
    Orgc: Org | None = None
    Tag: list[Tag] = []
    Attribute: list[_FeedAttribute] = []
    Object: list[_FeedObject] = []


class _FeedFile(msgspec.Struct):
    Event: _FeedEvent


_manifest_decoder = msgspec.json.Decoder(dict[str, _Summary], strict=False)
_event_decoder = msgspec.json.Decoder(_FeedFile, strict=False)
_kept_decoder = msgspec.json.Decoder(dict[str, int])


class MispFeedSource(HttpSource):
    """One configured MISP feed directory (``sources[].type: misp_feed``)."""

    def __init__(self, config: SourceConfig, key: Secret | None, *, cache_dir: Path) -> None:
        super().__init__(config, key)
        self.cache_dir = cache_dir
        self.downloaded = 0
        """Event files downloaded by the last run (the rest came from the cache)."""

    def event_url(self, event_id: str) -> str:
        return f"{self.url}/{event_id}.json" if event_id else self.url

    def records(self, since: int) -> list[Attribute]:
        body = self.request(f"{self.url}/manifest.json").content
        try:
            manifest = _manifest_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise self.error(f"manifest.json is not a MISP feed manifest: {exc}") from None
        cached = self._cached()
        kept: dict[str, int] = {}
        records: list[Attribute] = []
        self.downloaded = 0
        bad = [u for u in manifest if not _UUID.fullmatch(u)]
        if bad:
            log.warning(
                "%s: manifest.json: %d key(s) that are not event UUIDs skipped (first: %s)",
                self.label,
                len(bad),
                self.clean(repr(bad[0][:80])),
            )
        for uuid, summary in manifest.items():
            if uuid in bad or summary.timestamp < since:
                continue
            event = self._event(uuid, summary.timestamp, cached)
            kept[uuid.lower()] = summary.timestamp
            records += self._attributes(uuid, event)
        self._keep(kept)
        return records

    # -- events ---------------------------------------------------------------

    def _event(self, uuid: str, stamp: int, cached: dict[str, int]) -> _FeedEvent:
        path = self.cache_dir / f"{uuid.lower()}.json"
        if cached.get(uuid.lower()) == stamp:
            with contextlib.suppress(OSError, msgspec.DecodeError):
                return _event_decoder.decode(path.read_bytes()).Event
        url = f"{self.url}/{uuid}.json"
        body = self.request(url).content
        self.downloaded += 1
        try:
            event = _event_decoder.decode(body).Event
        except msgspec.DecodeError as exc:
            raise self.error(f"{uuid}.json is not a MISP feed event: {exc}") from None
        try:
            self.cache_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
            atomic_write_bytes(path, body)
        except OSError as exc:
            log.warning("%s: cannot keep %s.json in %s: %s", self.label, uuid, self.cache_dir, exc)
        return event

    def _attributes(self, uuid: str, event: _FeedEvent) -> list[Attribute]:
        ref = EventRef(
            id=uuid, uuid=event.uuid or uuid, info=event.info, Orgc=event.Orgc, Tag=event.Tag
        )
        attrs = list(event.Attribute)
        for obj in event.Object:
            if not obj.deleted:
                attrs += obj.Attribute
        out: list[Attribute] = []
        for attr in attrs:
            if attr.deleted:
                continue
            attr.event_id = uuid
            attr.Event = ref
            out.append(attr)
        return out

    # -- the cache ------------------------------------------------------------

    def _cached(self) -> dict[str, int]:
        try:
            return _kept_decoder.decode((self.cache_dir / _KEPT).read_bytes())
        except (OSError, msgspec.DecodeError):
            return {}

    def _keep(self, kept: dict[str, int]) -> None:
        """Record what the cache holds now, then drop the event files no longer listed."""
        try:
            self.cache_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
            atomic_write_bytes(self.cache_dir / _KEPT, msgspec.json.encode(kept))
            for path in self.cache_dir.glob("*.json"):
                if path.name != _KEPT and path.stem not in kept:
                    path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning(
                "%s: cannot update the feed cache in %s: %s", self.label, self.cache_dir, exc
            )
