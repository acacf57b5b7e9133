# SPDX-License-Identifier: Apache-2.0
"""Events, attributes, tags and sightings of the stand-in, in MISP's JSON shapes.

Events come in as MISP event JSON (``{"Event": {...}}`` or the bare event, as
``/events/view`` returns it and as PyMISP's fixtures are written). Missing
fields get MISP's defaults; ids and uuids are assigned when absent. Numbers are
served as strings and flags as booleans, as MISP 2.4/2.5 does.
"""

from __future__ import annotations

import array
import bisect
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from misp_standin.query import Query, like
from misp_standin.warninglists import Warninglists

NAMESPACE = uuid.UUID("6f1c3c4e-5b0e-4d7e-9a49-1c1f0f3a6b55")
NETWORK_TYPES = frozenset(
    [
        "domain",
        "hostname",
        "domain|ip",
        "ip-src",
        "ip-dst",
        "ip-src|port",
        "ip-dst|port",
        "hostname|port",
        "url",
        "uri",
        "user-agent",
        "AS",
        "port",
        "mac-address",
    ]
)
NON_IDS_TYPES = frozenset(
    [
        "comment",
        "text",
        "other",
        "link",
        "datetime",
        "counter",
        "float",
        "boolean",
        "anonymised",
        "attachment",
    ]
)
ATTRIBUTE_FIELDS = [
    "id",
    "event_id",
    "object_id",
    "object_relation",
    "category",
    "type",
    "to_ids",
    "uuid",
    "timestamp",
    "distribution",
    "sharing_group_id",
    "comment",
    "deleted",
    "disable_correlation",
    "first_seen",
    "last_seen",
    "value",
]


class StoreError(ValueError):
    """An event that cannot be loaded; the message names the event and the field."""


def _str_id(value: Any, what: str) -> str:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise StoreError(f"{what}: expected a numeric id, got {value!r}")
    return str(int(text))


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false")
    return bool(value)


def _epoch(value: Any, default: int, what: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what}: expected an epoch timestamp, got {value!r}") from exc


class AttributeLike(Protocol):
    """What searches read from an attribute (real or synthetic)."""

    id: int
    event: EventRecord
    type: str
    category: str
    to_ids: bool
    timestamp: int
    deleted: bool
    tag_names: frozenset[str]
    object_relation: str | None
    comment: str

    @property
    def uuid(self) -> str: ...

    @property
    def value(self) -> str: ...

    def value_parts(self) -> tuple[str, ...]: ...

    def misp_dict(self) -> dict[str, Any]: ...

    def misp_tags(self) -> list[dict[str, Any]]: ...


class TagRegistry:
    """Tag ids and colours by (case-insensitive) name, as MISP's ``tags`` table."""

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, raw: Any) -> dict[str, Any]:
        """The full tag for a name or a tag dict, registering it when new."""
        name = raw.get("name") if isinstance(raw, dict) else raw
        if not isinstance(name, str) or not name.strip():
            raise StoreError(f"tag without a name: {raw!r}")
        key = name.strip().lower()
        with self._lock:
            tag = self._by_name.get(key)
            if tag is None:
                given = raw if isinstance(raw, dict) else {}
                tag = {
                    "id": str(len(self._by_name) + 1),
                    "name": name.strip(),
                    "colour": str(given.get("colour") or "#ffffff")[:7],
                    "exportable": _flag(given.get("exportable", True)),
                    "user_id": "0",
                    "hide_tag": False,
                    "numerical_value": given.get("numerical_value"),
                    "is_galaxy": name.startswith("misp-galaxy:"),
                    "is_custom_galaxy": False,
                    "local_only": False,
                }
                self._by_name[key] = tag
            return tag

    def find(self, pattern: str) -> list[str]:
        """Lower-case names of existing tags equal to ``pattern`` or matching it as LIKE."""
        match = like(pattern)
        with self._lock:
            return [k for k, t in self._by_name.items() if match(t["name"])]


@dataclass(eq=False)
class EventRecord:
    """One event: its full MISP dict plus the fields searches read."""

    doc: dict[str, Any]
    tags: list[dict[str, Any]]
    attributes: list[AttributeRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        doc = self.doc
        self.id: str = doc["id"]
        self.uuid: str = doc["uuid"]
        self.info: str = doc["info"]
        self.date: str = doc["date"]
        self.orgc_id: str = doc["orgc_id"]
        self.orgc_name: str = doc["Orgc"]["name"]
        self.orgc_uuid: str = doc["Orgc"]["uuid"]
        self.threat_level_id: str = doc["threat_level_id"]
        self.published: bool = doc["published"]
        self.timestamp = int(doc["timestamp"])
        self.publish_timestamp = int(doc["publish_timestamp"])
        self.tag_names = frozenset(t["name"].lower() for t in self.tags)
        self.brief = {k: doc[k] for k in ("org_id", "distribution", "publish_timestamp")} | {
            k: doc[k] for k in ("id", "info", "orgc_id", "uuid")
        }

    def context(self) -> dict[str, Any]:
        """The event as ``includeContext`` embeds it in each attribute."""
        fields = [
            "id",
            "orgc_id",
            "org_id",
            "date",
            "threat_level_id",
            "info",
            "published",
            "uuid",
            "analysis",
            "timestamp",
            "distribution",
            "publish_timestamp",
            "sharing_group_id",
            "extends_uuid",
        ]
        result = {k: self.doc.get(k) for k in fields}
        result["Tag"] = [
            {"local": False} | {k: t[k] for k in ("id", "name", "colour", "numerical_value")}
            for t in self.tags
        ]
        result["Orgc"] = self.doc["Orgc"]
        return result


@dataclass(eq=False)
class AttributeRecord:
    """A stored attribute (top level or inside an object)."""

    data: dict[str, Any]
    event: EventRecord
    tags: list[dict[str, Any]]
    obj: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = self.data
        self.id = int(data["id"])
        self.type: str = data["type"]
        self.category: str = data["category"]
        self.to_ids: bool = data["to_ids"]
        self.timestamp = int(data["timestamp"])
        self.deleted: bool = data["deleted"]
        self.object_relation: str | None = data["object_relation"]
        self.comment: str = data["comment"]
        self.tag_names = frozenset(t["name"].lower() for t in self.tags)

    @property
    def uuid(self) -> str:
        return str(self.data["uuid"])

    @property
    def value(self) -> str:
        return str(self.data["value"])

    def value_parts(self) -> tuple[str, ...]:
        value = self.value
        return tuple(value.split("|", 1)) if "|" in self.type else (value,)

    def misp_dict(self) -> dict[str, Any]:
        return dict(self.data)

    def misp_tags(self) -> list[dict[str, Any]]:
        return self.tags


def attribute_tag(tag: dict[str, Any]) -> dict[str, Any]:
    """A tag as restSearch lists it on an attribute."""
    return {k: tag[k] for k in ("id", "name", "colour", "numerical_value", "is_galaxy")} | {
        "local": False
    }


def inherited_tag(tag: dict[str, Any]) -> dict[str, Any]:
    """An event tag as restSearch adds it to an attribute with ``includeEventTags``."""
    return {k: tag[k] for k in ("id", "name", "colour", "numerical_value")} | {"inherited": 1}


def full_tag(tag: dict[str, Any]) -> dict[str, Any]:
    """A tag as ``/events/view`` shows it."""
    return dict(tag) | {"local": False}


class Store:
    """All events of the stand-in; thread-safe for concurrent reads and writes."""

    def __init__(self, warninglists: Warninglists | None = None) -> None:
        self.tags = TagRegistry()
        self.warninglists = warninglists or Warninglists()
        self.orgs: dict[str, dict[str, str]] = {}
        self.sightings: list[dict[str, Any]] = []
        self._events: dict[str, EventRecord] = {}
        self._by_uuid: dict[str, str] = {}
        self._attrs: dict[int, AttributeRecord] = {}
        self._sorted: list[AttributeRecord] | None = None
        self._next_event = 1
        self._next_attr = 1
        self._lock = threading.RLock()
        self.synthetic: Any = None  # misp_standin.synthetic.SyntheticSet
        self.generation = 0

    # -- organisations -----------------------------------------------------------------

    def org(
        self, name: str, org_id: str | None = None, org_uuid: str | None = None
    ) -> dict[str, str]:
        """The organisation called ``name``, registered when new."""
        with self._lock:
            found = self.orgs.get(name.lower())
            if found is None:
                taken = {o["id"] for o in self.orgs.values()}
                if org_id is None or org_id in taken:
                    org_id = str(max((int(i) for i in taken), default=0) + 1)
                found = {
                    "id": org_id,
                    "name": name,
                    "uuid": org_uuid or str(uuid.uuid5(NAMESPACE, "org/" + name)),
                }
                self.orgs[name.lower()] = found
            return found

    def _org_by_id(self, org_id: str) -> dict[str, str] | None:
        return next((o for o in self.orgs.values() if o["id"] == org_id), None)

    # -- loading -----------------------------------------------------------------------

    def load_event_file(self, path: Path) -> EventRecord:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: not a readable MISP event JSON file: {exc}") from exc
        try:
            return self.add_event(document)
        except StoreError as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def add_event(self, document: dict[str, Any]) -> EventRecord:
        """Add an event, or replace the stored one with the same id or uuid."""
        if not isinstance(document, dict):
            raise StoreError(f"an event must be a JSON object, got {type(document).__name__}")
        raw = document.get("Event", document)
        if not isinstance(raw, dict):
            raise StoreError("'Event' must be a JSON object")
        with self._lock:
            old = self._find_existing(raw)
            event = self._build_event(raw, old)
            if old is not None:
                self._drop(old)
            self._events[event.id] = event
            self._by_uuid[event.uuid.lower()] = event.id
            for attribute in event.attributes:
                self._attrs[attribute.id] = attribute
            self._sorted = None
            self.generation += 1
            return event

    def remove_event(self, ref: str | int) -> bool:
        with self._lock:
            event = self.event(str(ref))
            if event is None:
                return False
            self._drop(event)
            self._sorted = None
            self.generation += 1
            return True

    def _drop(self, event: EventRecord) -> None:
        del self._events[event.id]
        self._by_uuid.pop(event.uuid.lower(), None)
        for attribute in event.attributes:
            self._attrs.pop(attribute.id, None)

    def _find_existing(self, raw: dict[str, Any]) -> EventRecord | None:
        if raw.get("uuid") and str(raw["uuid"]).lower() in self._by_uuid:
            return self._events[self._by_uuid[str(raw["uuid"]).lower()]]
        if raw.get("id") not in (None, ""):
            return self._events.get(_str_id(raw["id"], "Event.id"))
        return None

    def _new_event_id(self) -> str:
        while str(self._next_event) in self._events:
            self._next_event += 1
        return str(self._next_event)

    def _new_attribute_id(self, owned: set[int]) -> int:
        while (
            self._next_attr in self._attrs
            or self._next_attr in owned
            or self._in_synthetic(self._next_attr)
        ):
            self._next_attr += 1
        return self._next_attr

    def _in_synthetic(self, attribute_id: int) -> bool:
        return self.synthetic is not None and self.synthetic.owns(attribute_id)

    def _build_event(self, raw: dict[str, Any], old: EventRecord | None) -> EventRecord:
        now = int(time.time())
        event_id = (
            old.id
            if old is not None
            else (
                _str_id(raw["id"], "Event.id")
                if raw.get("id") not in (None, "")
                else self._new_event_id()
            )
        )
        if "info" not in raw or not isinstance(raw["info"], str):
            raise StoreError(f"event {event_id}: 'info' (a string) is required")
        event_uuid = str(raw.get("uuid") or uuid.uuid5(NAMESPACE, f"event/{event_id}"))
        orgc = self._event_org(raw, "Orgc", "orgc_id")
        org = self._event_org(raw, "Org", "org_id") if raw.get("Org") else orgc
        published = _flag(raw.get("published", False))
        doc: dict[str, Any] = {
            "id": event_id,
            "orgc_id": orgc["id"],
            "org_id": org["id"],
            "date": str(raw.get("date") or time.strftime("%Y-%m-%d", time.gmtime(now))),
            "threat_level_id": str(raw.get("threat_level_id", "4")),
            "info": raw["info"],
            "published": published,
            "uuid": event_uuid,
            "attribute_count": "0",
            "analysis": str(raw.get("analysis", "0")),
            "timestamp": "0",
            "distribution": str(raw.get("distribution", "1")),
            "proposal_email_lock": _flag(raw.get("proposal_email_lock", False)),
            "locked": _flag(raw.get("locked", False)),
            "publish_timestamp": "0",
            "sharing_group_id": str(raw.get("sharing_group_id") or "0"),
            "disable_correlation": _flag(raw.get("disable_correlation", False)),
            "extends_uuid": str(raw.get("extends_uuid") or ""),
            "protected": raw.get("protected"),
        }
        if raw.get("event_creator_email"):
            doc["event_creator_email"] = str(raw["event_creator_email"])
        doc["Org"], doc["Orgc"] = org, orgc
        tags = [self.tags.get(t) for t in raw.get("Tag") or []]
        event = EventRecord.__new__(EventRecord)
        owned: set[int] = set()
        attributes: list[AttributeRecord] = []
        objects = []
        for i, raw_attr in enumerate(raw.get("Attribute") or []):
            attributes.append(
                self._build_attribute(
                    raw_attr, event=event, doc=doc, obj=None, owned=owned, index=i, now=now
                )
            )
        for j, raw_obj in enumerate(raw.get("Object") or []):
            obj_doc, obj_attrs = self._build_object(
                raw_obj, event=event, doc=doc, owned=owned, index=j, now=now
            )
            objects.append(obj_doc)
            attributes.extend(obj_attrs)
        newest = max((a.timestamp for a in attributes), default=now)
        doc["timestamp"] = str(_epoch(raw.get("timestamp"), newest, "Event.timestamp"))
        default_publish = int(doc["timestamp"]) if published else 0
        doc["publish_timestamp"] = str(
            _epoch(raw.get("publish_timestamp"), default_publish, "Event.publish_timestamp")
        )
        doc["attribute_count"] = str(sum(1 for a in attributes if not a.deleted))
        passthrough = {k: v for k, v in raw.items() if k not in doc and k[:1].isupper()}
        passthrough.pop("Attribute", None)
        passthrough.pop("Object", None)
        passthrough.pop("Tag", None)
        doc["_objects"] = objects
        doc["_passthrough"] = passthrough
        event.doc, event.tags, event.attributes = doc, tags, attributes
        event.__post_init__()
        return event

    def _event_org(self, raw: dict[str, Any], key: str, id_key: str) -> dict[str, str]:
        given = raw.get(key)
        if isinstance(given, dict) and given.get("name"):
            given_id = str(given["id"]) if str(given.get("id", "")).isdigit() else None
            return self.org(str(given["name"]), given_id, given.get("uuid"))
        if raw.get(id_key) not in (None, ""):
            found = self._org_by_id(_str_id(raw[id_key], f"Event.{id_key}"))
            if found:
                return found
            return self.org(f"ORG{raw[id_key]}", _str_id(raw[id_key], f"Event.{id_key}"))
        return self.org("ORGNAME")

    def _build_object(
        self,
        raw: dict[str, Any],
        *,
        event: EventRecord,
        doc: dict[str, Any],
        owned: set[int],
        index: int,
        now: int,
    ) -> tuple[dict[str, Any], list[AttributeRecord]]:
        obj_id = str(raw.get("id") or (int(doc["id"]) * 1000 + index + 1))
        obj_doc = {k: v for k, v in raw.items() if k != "Attribute"}
        obj_doc.update(
            id=obj_id,
            event_id=doc["id"],
            uuid=str(raw.get("uuid") or uuid.uuid5(NAMESPACE, f"object/{doc['uuid']}/{index}")),
            distribution=str(raw.get("distribution", "5")),
            sharing_group_id=str(raw.get("sharing_group_id") or "0"),
        )
        ref = {k: obj_doc[k] for k in ("id", "distribution", "sharing_group_id")}
        attrs = [
            self._build_attribute(a, event=event, doc=doc, obj=ref, owned=owned, index=i, now=now)
            for i, a in enumerate(raw.get("Attribute") or [])
        ]
        return obj_doc, attrs

    def _build_attribute(
        self,
        raw: dict[str, Any],
        *,
        event: EventRecord,
        doc: dict[str, Any],
        obj: dict[str, Any] | None,
        owned: set[int],
        index: int,
        now: int,
    ) -> AttributeRecord:
        where = f"event {doc['id']} attribute #{index}"
        if not isinstance(raw, dict):
            raise StoreError(f"{where}: must be a JSON object")
        for key in ("type", "value"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise StoreError(f"{where}: '{key}' (a non-empty string) is required")
        attr_type, value = raw["type"], raw["value"]
        attr_id: int | None = None
        if raw.get("id") not in (None, ""):
            attr_id = int(_str_id(raw["id"], f"{where}: id"))
            holder = self._attrs.get(attr_id)
            if (
                attr_id in owned
                or self._in_synthetic(attr_id)
                or (holder is not None and holder.event.id != doc["id"])
            ):
                attr_id = None  # taken elsewhere: renumber, as MISP would on import
        if attr_id is None:
            attr_id = self._new_attribute_id(owned)
        owned.add(attr_id)
        category = raw.get("category") or (
            "Network activity" if attr_type in NETWORK_TYPES else "Other"
        )
        data = {
            "id": str(attr_id),
            "event_id": doc["id"],
            "object_id": obj["id"] if obj else "0",
            "object_relation": raw.get("object_relation"),
            "category": str(category),
            "type": attr_type,
            "to_ids": _flag(raw.get("to_ids", attr_type not in NON_IDS_TYPES)),
            "uuid": str(raw.get("uuid") or uuid.uuid5(NAMESPACE, f"attr/{doc['uuid']}/{attr_id}")),
            "timestamp": str(_epoch(raw.get("timestamp"), now, f"{where}: timestamp")),
            "distribution": str(raw.get("distribution", "5")),
            "sharing_group_id": str(raw.get("sharing_group_id") or "0"),
            "comment": str(raw.get("comment") or ""),
            "deleted": _flag(raw.get("deleted", False)),
            "disable_correlation": _flag(raw.get("disable_correlation", False)),
            "first_seen": raw.get("first_seen"),
            "last_seen": raw.get("last_seen"),
            "value": value,
        }
        tags = [self.tags.get(t) for t in raw.get("Tag") or []]
        extra: dict[str, Any] = {
            k: raw[k] for k in ("Galaxy", "ShadowAttribute", "Sighting") if k in raw
        }
        return AttributeRecord(data, event, tags, obj, extra)

    # -- reading -------------------------------------------------------------------------

    def event(self, ref: str) -> EventRecord | None:
        """An event by id or uuid."""
        with self._lock:
            if ref.lower() in self._by_uuid:
                return self._events[self._by_uuid[ref.lower()]]
            found = self._events.get(ref.lstrip("0") or "0")
            if found is None and self.synthetic is not None:
                return self.synthetic.event(ref)  # type: ignore[no-any-return]
            return found

    def attribute(self, ref: str) -> AttributeLike | None:
        """An attribute by id or uuid."""
        with self._lock:
            if ref.isdigit():
                found: AttributeLike | None = self._attrs.get(int(ref))
                if found is None and self.synthetic is not None:
                    found = self.synthetic.by_id(int(ref))
                return found
            lowered = ref.lower()
            for attribute in self._attrs.values():
                if attribute.uuid.lower() == lowered:
                    return attribute
            return self.synthetic.by_uuid(ref) if self.synthetic is not None else None

    def sorted_attributes(self) -> list[AttributeRecord]:
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self._attrs.values(), key=lambda a: a.id)
            return self._sorted

    def all_attributes(self) -> Iterator[AttributeLike]:
        """Every attribute, ordered by id (stored, then synthetic, then stored above)."""
        stored = self.sorted_attributes()
        if self.synthetic is None:
            yield from stored
            return
        cut = bisect.bisect_left([a.id for a in stored], self.synthetic.first_id)
        yield from stored[:cut]
        yield from self.synthetic.all()
        yield from stored[cut:]

    def search(self, query: Query) -> SearchResult:
        """The page of attributes a restSearch returns, with MISP's counters.

        As in MISP, the page is cut first and warninglisted attributes are then
        dropped from it, so a page can be shorter than ``limit`` while more pages
        follow.
        """
        matches = self._matches(query)
        offset, count = query.window()
        stop = len(matches) if count is None else min(len(matches), offset + count)
        rows = max(0, stop - offset)
        kept: Sequence[int] = range(offset, stop)
        skipped = 0
        if query.enforce_warninglist and len(self.warninglists):
            positions = array.array("l")
            check = self.warninglists.check
            for k in kept:
                attribute = matches[k]
                if check(attribute.type, attribute.value):
                    skipped += 1
                else:
                    positions.append(k)
            kept = positions
        # MISP's X-Result-Count: rows fetched for the page (+1 when a limited page is full).
        result_count = rows + (1 if count is not None and rows == count else 0)
        return SearchResult(matches, kept, result_count, skipped)

    def _matches(self, query: Query) -> Sequence[AttributeLike]:
        if self.synthetic is not None:
            return self.synthetic.cached_matches(self, query)  # type: ignore[no-any-return]
        return [a for a in self.sorted_attributes() if query.matches(a)]

    def render_attribute(self, attribute: AttributeLike, query: Query) -> dict[str, Any]:
        """One attribute of a restSearch response, as MISP's JsonExport writes it."""
        result = attribute.misp_dict()
        if query.include_event_uuid:
            result["event_uuid"] = attribute.event.uuid
        if query.include_warninglist_hits and attribute.to_ids:
            hit = self.warninglists.check(attribute.type, attribute.value)
            if hit is not None:
                wl, entry, part = hit
                result["warnings"] = [{"match": entry, "value": part, "warninglist_name": wl.name}]
        if query.include_sightings:
            result["Sighting"] = self.sightings_of(attribute)
        result["Event"] = (
            attribute.event.context() if query.include_context else dict(attribute.event.brief)
        )
        obj = getattr(attribute, "obj", None)
        if obj is not None:
            result["Object"] = obj
        tags = [attribute_tag(t) for t in attribute.misp_tags()]
        if query.include_event_tags:
            tags.extend(inherited_tag(t) for t in attribute.event.tags)
        if tags:
            result["Tag"] = tags
        return result

    def event_view(self, event: EventRecord) -> dict[str, Any]:
        """The ``/events/view`` body of an event."""
        doc = event.doc
        result = {k: v for k, v in doc.items() if not k.startswith("_")}

        def full(attribute: AttributeLike) -> dict[str, Any]:
            item = attribute.misp_dict()
            extra = getattr(attribute, "extra", {})
            item["Galaxy"] = extra.get("Galaxy", [])
            item["ShadowAttribute"] = extra.get("ShadowAttribute", [])
            item["Sighting"] = list(extra.get("Sighting", [])) + self.sightings_of(attribute)
            if attribute.misp_tags():
                item["Tag"] = [full_tag(t) for t in attribute.misp_tags()]
            return item

        attributes: Sequence[AttributeLike] = event.attributes
        if not attributes and self.synthetic is not None and self.synthetic.event(event.id):
            attributes = self.synthetic.attributes_of(event)

        def in_object(attribute: AttributeLike) -> str:
            obj = getattr(attribute, "obj", None)
            return str(obj["id"]) if obj else "0"

        result["Attribute"] = [full(a) for a in attributes if in_object(a) == "0"]
        result["ShadowAttribute"] = []
        result["RelatedEvent"] = []
        result["Galaxy"] = []
        objects = []
        for obj in doc.get("_objects", []):
            objects.append(
                obj | {"Attribute": [full(a) for a in attributes if in_object(a) == obj["id"]]}
            )
        result["Object"] = objects
        result["EventReport"] = []
        result["CryptographicKey"] = []
        result["Tag"] = [full_tag(t) for t in event.tags]
        result.update(doc.get("_passthrough", {}))
        return {"Event": result}

    # -- sightings -----------------------------------------------------------------------

    def sightings_of(self, attribute: AttributeLike) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {k: v for k, v in s.items() if k != "value"}
                for s in self.sightings
                if s["attribute_id"] == str(attribute.id)
            ]

    def add_sightings(
        self,
        org: dict[str, str],
        *,
        attribute_ref: str | None,
        values: list[str],
        sighting_type: str,
        source: str,
        timestamp: int,
        sighting_uuid: str | None = None,
    ) -> dict[str, Any] | str:
        """MISP's ``Sighting::saveSightings``: the last saved sighting, or an error text."""
        if attribute_ref:
            found = self.attribute(attribute_ref)
            targets: list[AttributeLike] = [found] if found is not None else []
        else:
            if not values:
                return "No valid attributes found."
            wanted = set(values)
            targets = [
                a
                for a in self.all_attributes()
                if not a.deleted
                and (a.value in wanted or any(p in wanted for p in a.value_parts()))
            ]
        if not targets:
            return "No valid attributes found that match the criteria."
        saved: dict[str, Any] = {}
        with self._lock:
            if sighting_uuid and any(s["uuid"] == sighting_uuid for s in self.sightings):
                return dict(next(s for s in self.sightings if s["uuid"] == sighting_uuid))
            for attribute in targets:
                if sighting_type == "2":
                    self.sightings[:] = [
                        s
                        for s in self.sightings
                        if not (
                            s["org_id"] == org["id"]
                            and s["type"] == "2"
                            and s["attribute_id"] == str(attribute.id)
                        )
                    ]
                saved = {
                    "id": str(max((int(s["id"]) for s in self.sightings), default=0) + 1),
                    "attribute_id": str(attribute.id),
                    "event_id": attribute.event.id,
                    "org_id": org["id"],
                    "date_sighting": str(timestamp),
                    "uuid": sighting_uuid or str(uuid.uuid4()),
                    "source": source,
                    "type": sighting_type,
                    "attribute_uuid": attribute.uuid,
                    "Organisation": dict(org),
                    "value": attribute.value,
                }
                self.sightings.append(saved)
            return dict(saved)


@dataclass
class SearchResult:
    """One restSearch page: positions into the ordered matches, and MISP's counters."""

    matches: Sequence[AttributeLike]
    positions: Sequence[int]
    result_count: int
    skipped: int

    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self) -> Iterator[AttributeLike]:
        matches = self.matches
        for k in self.positions:
            yield matches[k]
