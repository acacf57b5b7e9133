# SPDX-License-Identifier: Apache-2.0
"""Synthetic attributes for benchmarks: N indicators without N Python objects.

Attribute ``i`` is computed from ``(seed, i)`` when it is needed: type (45 %
domain, 10 % hostname, 35 % ip-dst, 5 % ip-src, 5 % domain|ip), to_ids (92 %
true), a timestamp within ``max_age_days`` of creation, and a value that is
unique across the set (domains carry ``i`` in hex, IPv4 addresses use a
bijection of ``i`` for their low 24 bits, so up to 16.7 million are distinct).
Attributes are spread over events of ``per_event`` attributes whose tags cycle
through tlp:white, tlp:green, tlp:amber and tlp:amber+apt.

Only the list of matching indices of a search is kept (cached for a minute per
filter set), so a 500,000-attribute set pages through restSearch with a few
megabytes of memory.
"""

from __future__ import annotations

import array
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from misp_standin.store import EventRecord, inherited_tag

if TYPE_CHECKING:
    from misp_standin.query import Query
    from misp_standin.store import AttributeLike, Store

_MASK = (1 << 64) - 1
_TLDS = [
    "com",
    "net",
    "org",
    "info",
    "biz",
    "xyz",
    "top",
    "online",
    "site",
    "ru",
    "cn",
    "io",
    "de",
    "fr",
    "br",
    "in",
]
_SUBS = ["www", "mail", "cdn", "api", "login", "update", "secure", "portal"]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "nu",
    "re",
    "sa",
    "ti",
    "vo",
    "be",
    "da",
    "fe",
    "go",
    "hu",
    "ji",
    "ze",
    "pa",
]
_FIRST_OCTETS = (
    23, 31, 37, 45, 46, 62, 77, 79, 80, 81, 82, 85, 91, 93, 94, 95,
    103, 104, 109, 141, 146, 151, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217,
)  # fmt: skip
_EVENT_TAGS = (["tlp:white"], ["tlp:green"], ["tlp:amber"], ["tlp:amber", "apt"])
_CACHE_SECONDS = 60.0
_JSON_TEMPLATE = (
    '{"id":"%d","event_id":"%s","object_id":"0","object_relation":null,'
    '"category":"Network activity","type":"%s","to_ids":%s,"uuid":"%s","timestamp":"%d",'
    '"distribution":"5","sharing_group_id":"0","comment":"synthetic","deleted":false,'
    '"disable_correlation":false,"first_seen":null,"last_seen":null,"value":"%s"'
)


def _mix(i: int, seed: int) -> int:
    """A 64-bit hash of (i, seed) (splitmix64 finaliser)."""
    z = (i * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + 0x632BE59BD9B4E019) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class SyntheticAttribute:
    """Attribute ``index`` of a :class:`SyntheticSet`, computed on demand."""

    __slots__ = ("_h", "event", "id", "index", "owner", "timestamp", "to_ids", "type")
    category: str = "Network activity"
    deleted: bool = False
    object_relation: str | None = None
    comment: str = "synthetic"
    tag_names: frozenset[str] = frozenset()
    obj: dict[str, Any] | None = None

    def __init__(self, owner: SyntheticSet, index: int) -> None:
        h = _mix(index, owner.seed)
        self.owner = owner
        self.index = index
        self._h = h
        self.id: int = owner.first_id + index
        self.event: EventRecord = owner.events[index // owner.per_event]
        r = h % 100
        self.type: str = (
            "domain"
            if r < 45
            else "hostname"
            if r < 55
            else "ip-dst"
            if r < 90
            else "ip-src"
            if r < 95
            else "domain|ip"
        )
        self.to_ids: bool = (h >> 8) % 100 >= 8
        self.timestamp: int = owner.created - (h >> 16) % owner.age_span

    @property
    def uuid(self) -> str:
        return f"5f5f5f5f-{self.owner.seed & 0xFFFF:04x}-4000-8000-{self.index:012x}"

    def _domain(self) -> str:
        h = self._h
        word = _SYLLABLES[(h >> 20) & 15] + _SYLLABLES[(h >> 24) & 15] + _SYLLABLES[(h >> 28) & 15]
        return f"{word}-{self.index:x}.{_TLDS[(h >> 32) % len(_TLDS)]}"

    def _ip(self) -> str:
        low = (self.index * 0x9E3779B1 + self.owner.seed) & 0xFFFFFF
        first = _FIRST_OCTETS[(self._h >> 40) % len(_FIRST_OCTETS)]
        return f"{first}.{low >> 16}.{(low >> 8) & 255}.{low & 255}"

    @property
    def value(self) -> str:
        kind = self.type
        if kind == "domain":
            return self._domain()
        if kind == "hostname":
            return f"{_SUBS[(self._h >> 44) % len(_SUBS)]}.{self._domain()}"
        if kind == "domain|ip":
            return f"{self._domain()}|{self._ip()}"
        return self._ip()

    def value_parts(self) -> tuple[str, ...]:
        value = self.value
        return tuple(value.split("|", 1)) if "|" in self.type else (value,)

    def misp_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "event_id": self.event.id,
            "object_id": "0",
            "object_relation": None,
            "category": self.category,
            "type": self.type,
            "to_ids": self.to_ids,
            "uuid": self.uuid,
            "timestamp": str(self.timestamp),
            "distribution": "5",
            "sharing_group_id": "0",
            "comment": self.comment,
            "deleted": False,
            "disable_correlation": False,
            "first_seen": None,
            "last_seen": None,
            "value": self.value,
        }

    def misp_tags(self) -> list[dict[str, Any]]:
        return []

    def restsearch_json(self, query: Query) -> str | None:
        """This attribute as restSearch JSON text, built without a dict (the values are
        plain ASCII); None when ``query`` asks for output this fast path does not write."""
        if query.include_context or query.include_sightings or query.include_warninglist_hits:
            return None
        event = self.event
        cached = self.owner.event_json.get(event.id)
        if cached is None:
            tags = [inherited_tag(t) for t in event.tags]
            cached = (
                json.dumps(event.brief, separators=(",", ":")),
                json.dumps(tags, separators=(",", ":")) if tags else "",
            )
            self.owner.event_json[event.id] = cached
        brief, tags_json = cached
        text = _JSON_TEMPLATE % (
            self.id,
            event.id,
            self.type,
            "true" if self.to_ids else "false",
            self.uuid,
            self.timestamp,
            self.value,
        )
        if query.include_event_uuid:
            text += f',"event_uuid":"{event.uuid}"'
        text += ',"Event":' + brief
        if query.include_event_tags and tags_json:
            text += ',"Tag":' + tags_json
        return text + "}"


class SyntheticSet:
    """``count`` synthetic attributes with ids from ``first_id``."""

    def __init__(
        self,
        store: Store,
        count: int,
        *,
        seed: int = 0,
        first_id: int,
        first_event_id: int,
        per_event: int = 500,
        max_age_days: float = 25.0,
    ) -> None:
        if count < 0 or count >= 1 << 24:
            raise ValueError(f"synthetic attribute count must be 0..16777215, got {count}")
        self.count = count
        self.seed = seed
        self.first_id = first_id
        self.per_event = max(1, per_event)
        self.created = int(time.time())
        self.age_span = max(1, int(max_age_days * 86400))
        org = store.org("SYNTHETIC-CERT")
        n_events = (count + self.per_event - 1) // self.per_event
        day = time.strftime("%Y-%m-%d", time.gmtime(self.created))
        self.events: list[EventRecord] = []
        for e in range(n_events):
            event_id = str(first_event_id + e)
            doc = {
                "id": event_id,
                "orgc_id": org["id"],
                "org_id": org["id"],
                "date": day,
                "threat_level_id": "2",
                "info": f"Synthetic indicators {e} (seed {seed})",
                "published": True,
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, f"synthetic/{seed}/{e}")),
                "attribute_count": str(min(self.per_event, count - e * self.per_event)),
                "analysis": "2",
                "timestamp": str(self.created),
                "distribution": "1",
                "proposal_email_lock": False,
                "locked": False,
                "publish_timestamp": str(self.created),
                "sharing_group_id": "0",
                "disable_correlation": False,
                "extends_uuid": "",
                "protected": None,
                "Org": org,
                "Orgc": org,
            }
            tags = [store.tags.get(name) for name in _EVENT_TAGS[e % len(_EVENT_TAGS)]]
            self.events.append(EventRecord(doc, tags))
        self._by_event_id = {ev.id: i for i, ev in enumerate(self.events)}
        self.event_json: dict[str, tuple[str, str]] = {}  # event id -> (Event, Tag) JSON
        self._cache: dict[tuple[str, int], tuple[float, MatchList]] = {}
        self._lock = threading.Lock()

    def owns(self, attribute_id: int) -> bool:
        return self.first_id <= attribute_id < self.first_id + self.count

    def by_id(self, attribute_id: int) -> SyntheticAttribute | None:
        return (
            SyntheticAttribute(self, attribute_id - self.first_id)
            if self.owns(attribute_id)
            else None
        )

    def by_uuid(self, ref: str) -> SyntheticAttribute | None:
        prefix = f"5f5f5f5f-{self.seed & 0xFFFF:04x}-4000-8000-"
        if not ref.lower().startswith(prefix):
            return None
        try:
            index = int(ref[len(prefix) :], 16)
        except ValueError:
            return None
        return SyntheticAttribute(self, index) if 0 <= index < self.count else None

    def event(self, ref: str) -> EventRecord | None:
        if ref in self._by_event_id:
            return self.events[self._by_event_id[ref]]
        return next((e for e in self.events if e.uuid == ref.lower()), None)

    def attributes_of(self, event: EventRecord) -> list[SyntheticAttribute]:
        e = self._by_event_id[event.id]
        stop = min(self.count, (e + 1) * self.per_event)
        return [SyntheticAttribute(self, i) for i in range(e * self.per_event, stop)]

    def all(self) -> Iterator[SyntheticAttribute]:
        for i in range(self.count):
            yield SyntheticAttribute(self, i)

    def cached_matches(self, store: Store, query: Query) -> MatchList:
        """The ordered matches of ``query`` over stored and synthetic attributes."""
        key = (query.cache_key, store.generation)
        now = time.monotonic()
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        stored: list[AttributeLike] = [a for a in store.sorted_attributes() if query.matches(a)]
        cut = next((n for n, a in enumerate(stored) if a.id > self.first_id), len(stored))
        matches = query.matches
        picked = array.array(
            "l", (i for i in range(self.count) if matches(SyntheticAttribute(self, i)))
        )
        indices: Sequence[int] = range(self.count) if len(picked) == self.count else picked
        result = MatchList(self, stored[:cut], indices, stored[cut:])
        with self._lock:
            self._cache[key] = (now + _CACHE_SECONDS, result)
        return result


class MatchList(Sequence["AttributeLike"]):
    """Stored matches below the synthetic ids, synthetic indices, stored matches above."""

    def __init__(
        self,
        owner: SyntheticSet,
        low: Sequence[AttributeLike],
        indices: Sequence[int],
        high: Sequence[AttributeLike],
    ) -> None:
        self._owner, self._low, self._indices, self._high = owner, low, indices, high

    def __len__(self) -> int:
        return len(self._low) + len(self._indices) + len(self._high)

    @overload
    def __getitem__(self, index: int) -> AttributeLike: ...

    @overload
    def __getitem__(self, index: slice) -> list[AttributeLike]: ...

    def __getitem__(self, index: int | slice) -> AttributeLike | list[AttributeLike]:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        n_low, n_mid = len(self._low), len(self._indices)
        if index < n_low:
            return self._low[index]
        if index < n_low + n_mid:
            return SyntheticAttribute(self._owner, self._indices[index - n_low])
        return self._high[index - n_low - n_mid]
