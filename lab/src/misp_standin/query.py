# SPDX-License-Identifier: Apache-2.0
"""restSearch filters for ``/attributes/restSearch``, parsed the way MISP 2.5 parses them.

The semantics follow ``MispAttribute::restSearch`` / ``buildFilterConditions``
and the ``Event::set_filter_*`` helpers of MISP 2.5:

* only the parameters of MISP's attribute ``paramArray`` are read; others are
  dropped silently (as MISP does) and listed in :attr:`Query.dropped`;
* a parameter whose JSON value is ``false`` is not applied (``to_ids: false``
  and ``published: false`` filter nothing, as in MISP);
* list filters accept ``[a, "!b"]``, ``{"OR": [...], "NOT": [...], "AND": [...]}``
  and ``"a&&!b"``; ``%`` at either end of a value is a SQL ``LIKE`` wildcard;
* time filters take an epoch, ``7d`` / ``12h`` / ``30m`` / ``10s``, an ISO 8601
  date, or a two-element ``[from, to]`` range. ``timestamp`` and
  ``attribute_timestamp`` apply to the attribute, ``publish_timestamp`` and
  ``last`` to the event's publish time, ``event_timestamp`` to the event;
* ``tags``: OR matches a tag on the attribute or its event, NOT excludes an
  attribute when the attribute or its event carries the tag, every AND tag must
  be on one of the two. An OR list naming no existing tag, or an AND tag that
  does not exist, matches nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from misp_standin.store import AttributeLike

# MISP's RestSearchComponent::$paramArray['Attribute'] (MISP 2.5), plus page/limit.
KNOWN_PARAMS = frozenset(
    [
        "returnFormat",
        "value",
        "value1",
        "value2",
        "type",
        "category",
        "org",
        "tags",
        "from",
        "to",
        "last",
        "eventid",
        "withAttachments",
        "uuid",
        "publish_timestamp",
        "published",
        "timestamp",
        "enforceWarninglist",
        "to_ids",
        "deleted",
        "includeEventUuid",
        "event_timestamp",
        "threat_level_id",
        "includeEventTags",
        "includeProposals",
        "limit",
        "page",
        "requested_attributes",
        "includeContext",
        "headerless",
        "includeWarninglistHits",
        "attackGalaxy",
        "object_relation",
        "includeSightings",
        "includeCorrelations",
        "includeDecayScore",
        "decayingModel",
        "excludeDecayed",
        "modelOverrides",
        "includeFullModel",
        "score",
        "attribute_timestamp",
        "first_seen",
        "last_seen",
        "eventinfo",
        "sharinggroup",
        "allow_proposal_blocking",
        "flatten",
        "list",
        "event_ids",
        "includeAllTags",
        "includeAttributeUuid",
        "includeGalaxy",
        "order",
        "policy",
        "walled_garden",
        "ns",
        "email",
        "serial",
        "refresh",
        "retry",
        "expiry",
        "minimum_ttl",
        "ttl",
    ]
)
# Accepted, but without effect here: a non-empty value is reported in Query.ignored.
IGNORED_PARAMS = frozenset(
    [
        "withAttachments",
        "includeProposals",
        "requested_attributes",
        "headerless",
        "attackGalaxy",
        "includeCorrelations",
        "includeDecayScore",
        "decayingModel",
        "excludeDecayed",
        "modelOverrides",
        "includeFullModel",
        "score",
        "first_seen",
        "last_seen",
        "sharinggroup",
        "allow_proposal_blocking",
        "flatten",
        "list",
        "event_ids",
        "includeAllTags",
        "includeGalaxy",
        "order",
        "policy",
        "walled_garden",
        "ns",
        "email",
        "serial",
        "refresh",
        "retry",
        "expiry",
        "minimum_ttl",
        "ttl",
        "value1",
        "value2",
    ]
)
RETURN_FORMATS = frozenset(
    [
        "json",
        "xml",
        "csv",
        "text",
        "stix",
        "stix2",
        "stix-json",
        "hashes",
        "cache",
        "count",
        "netfilter",
        "opendata",
        "openioc",
        "rpz",
        "snort",
        "suricata",
        "yara",
        "yara-json",
        "attack",
        "attack-sightings",
        "context",
        "context-markdown",
        "download",
    ]
)
_DELTA = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_NUMERIC = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class QueryError(ValueError):
    """A restSearch body MISP would refuse; the message says which parameter and why."""


def php_empty(value: Any) -> bool:
    """PHP's ``empty()``: None, False, 0, 0.0, "", "0", [] and {} are empty."""
    return value is None or value is False or value in (0, "", "0") or value in ([], {})


def is_numeric(value: Any) -> bool:
    """PHP's ``is_numeric()`` for JSON scalars."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_NUMERIC.match(value))


def resolve_time(value: Any, now: float) -> float:
    """MISP's ``AppModel::resolveTimeDelta``: an epoch for ``value``.

    Unparsable values give ``now + 1`` (nothing matches), as in MISP.
    """
    if is_numeric(value):
        return math.floor(float(value))
    text = str(value).strip()
    if len(text) > 1 and text[-1].lower() in _DELTA and is_numeric(text[:-1]):
        return now - float(text[:-1]) * _DELTA[text[-1].lower()]
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return now + 1
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


Bounds = tuple[float | None, float | None]


def time_bounds(value: Any, now: float, name: str) -> Bounds:
    """``setTimestampConditions``: (lower, upper) bounds, either may be None."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise QueryError(
                f"{name}: invalid date specification, must be string or array with two elements"
            )
        low, high = sorted((resolve_time(value[0], now), resolve_time(value[1], now)))
        return (low if low != 0 else None, high)
    moment = resolve_time(value, now)
    return (moment if moment != 0 else None, None)


def in_bounds(moment: float, bounds: Bounds) -> bool:
    low, high = bounds
    return (low is None or moment >= low) and (high is None or moment <= high)


@dataclass
class Filter:
    """A converted filter (MISP's ``convert_filters``): OR / NOT / AND value lists."""

    any_of: list[str] = field(default_factory=list)
    none_of: list[str] = field(default_factory=list)
    all_of: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: Any) -> Filter:
        result = cls()
        if isinstance(raw, dict):
            for key, target in (("OR", result.any_of), ("NOT", result.none_of)):
                target.extend(str(v) for v in _as_list(raw.get(key)))
            result.all_of.extend(str(v) for v in _as_list(raw.get("AND")))
            return result
        items = raw.split("&&") if isinstance(raw, str) else _as_list(raw)
        for item in items:
            text = _scalar_text(item)
            if text.startswith("!"):
                result.none_of.append(text[1:])
            elif text != "":
                result.any_of.append(text)
        return result

    def __bool__(self) -> bool:
        return bool(self.any_of or self.none_of or self.all_of)


def _as_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list | tuple) else [raw]


def _scalar_text(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return ""
    return str(value)


def like(pattern: str) -> Callable[[str], bool]:
    """A case-insensitive matcher for an exact value or a ``%`` LIKE pattern."""
    if pattern.startswith("%") or pattern.endswith("%"):
        regex = re.compile(
            "^" + ".*".join(re.escape(p) for p in pattern.split("%")) + "$", re.I | re.S
        )
        return lambda v: regex.match(v) is not None
    folded = pattern.casefold()
    return lambda v: v.casefold() == folded


def _matchers(values: Iterable[str]) -> list[Callable[[str], bool]]:
    return [like(v) for v in values]


@dataclass
class Query:
    """A parsed restSearch body; :meth:`matches` applies it to one attribute."""

    page: int | None = None
    limit: int | None = None
    enforce_warninglist: bool = False
    include_event_tags: bool = False
    include_context: bool = False
    include_event_uuid: bool = False
    include_warninglist_hits: bool = False
    include_sightings: bool = False
    ignored: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    predicates: list[Callable[[AttributeLike], bool]] = field(default_factory=list)
    cache_key: str = ""

    def matches(self, attribute: AttributeLike) -> bool:
        for predicate in self.predicates:  # noqa: SIM110 (a plain loop: runs per attribute)
            if not predicate(attribute):
                return False
        return True

    def window(self) -> tuple[int, int | None]:
        """(offset, count) of the page asked for; count None means everything.

        As in MISP: no ``limit`` (or 0) returns every result and ignores
        ``page``; a ``limit`` without ``page`` is page 1; pages count from 1.
        """
        if not self.limit:
            return 0, None
        page = self.page or 1
        return self.limit * (page - 1), self.limit


def _int_param(body: dict[str, Any], name: str, minimum: int) -> int | None:
    raw: Any = body.get(name)
    if php_empty(raw):
        return None
    if isinstance(raw, bool) or not is_numeric(raw) or float(raw) != int(float(raw)):
        raise QueryError(f"{name}: expected an integer, got {raw!r}")
    value = int(float(raw))
    if value < minimum:
        raise QueryError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _bool_set(raw: Any) -> set[bool]:
    values = _as_list(raw) if isinstance(raw, list | tuple) else [raw]
    result = set()
    for item in values:
        if item == "exclude":
            result.add(False)
        elif item in ("only",):
            result.add(True)
        else:
            result.add(not php_empty(item) and str(item).lower() not in ("false", "0"))
    return result


def parse_query(  # noqa: PLR0915 (one filter a statement, in MISP's order)
    body: Any, now: float, known_tags: Callable[[str], list[str]]
) -> Query:
    """Parse a restSearch JSON body. ``known_tags(pattern)`` lists existing tag names
    (lower case) matching a name or LIKE pattern; it gives tag filters MISP's
    "unknown tag" semantics. Raises :class:`QueryError` on a body MISP refuses."""
    if isinstance(body, dict) and isinstance(body.get("request"), dict):
        body = body["request"]
    if not isinstance(body, dict) or not body:
        raise QueryError(
            "Either specify the search terms in the url, or POST a json with the filter parameters."
        )
    query = Query()
    query.dropped = sorted(k for k in body if k not in KNOWN_PARAMS)
    params = {k: v for k, v in body.items() if k in KNOWN_PARAMS and v is not None}
    fmt = str(params.get("returnFormat") or "json")
    if fmt not in RETURN_FORMATS:
        raise QueryError(f"returnFormat: invalid output format {fmt!r}")
    if fmt not in ("json", "download"):
        raise QueryError(f"returnFormat: {fmt!r} is not served by this stand-in (json only)")
    query.page = _int_param(params, "page", 1)
    query.limit = _int_param(params, "limit", 0)
    query.ignored = sorted(k for k in params if k in IGNORED_PARAMS and not php_empty(params[k]))
    flag = {k: not php_empty(params.get(k)) for k in params}
    query.enforce_warninglist = flag.get("enforceWarninglist", False)
    query.include_event_tags = flag.get("includeEventTags", False)
    query.include_context = flag.get("includeContext", False)
    query.include_event_uuid = flag.get("includeEventUuid", False) or flag.get(
        "includeAttributeUuid", False
    )
    query.include_warninglist_hits = flag.get("includeWarninglistHits", False)
    query.include_sightings = flag.get("includeSightings", False)
    add = query.predicates.append

    def applies(name: str) -> bool:
        return name in params and params[name] is not False

    for name, getter in (
        ("type", lambda a: a.type),
        ("category", lambda a: a.category),
        ("object_relation", lambda a: a.object_relation or ""),
        ("comment", lambda a: a.comment),
        ("threat_level_id", lambda a: a.event.threat_level_id),
    ):
        if applies(name) and not php_empty(params[name]):
            add(_list_predicate(Filter.parse(params[name]), getter))
    if applies("value") and not php_empty(params["value"]):
        add(_value_predicate(Filter.parse(params["value"])))
    if applies("eventinfo") and not php_empty(params["eventinfo"]):
        add(_list_predicate(Filter.parse(params["eventinfo"]), lambda a: a.event.info))
    if applies("uuid") and not php_empty(params["uuid"]):
        wanted = {u.lower() for u in Filter.parse(params["uuid"]).any_of}
        add(lambda a: a.uuid.lower() in wanted or a.event.uuid.lower() in wanted)
    if applies("eventid") and not php_empty(params["eventid"]) and params["eventid"] != "all":
        add(_eventid_predicate(Filter.parse(params["eventid"])))
    if applies("org") and not php_empty(params["org"]):
        add(_org_predicate(Filter.parse(params["org"])))
    if applies("to_ids"):
        allowed = _bool_set(params["to_ids"])
        add(lambda a: a.to_ids in allowed)
    if applies("published") and params["published"] not in ([True, False], [False, True]):
        published = _bool_set(params["published"])
        add(lambda a: a.event.published in published)
    deleted = _bool_set(params["deleted"]) if applies("deleted") else {False}
    add(lambda a: a.deleted in deleted)
    for name, getter in (
        ("timestamp", lambda a: a.timestamp),
        ("attribute_timestamp", lambda a: a.timestamp),
        ("publish_timestamp", lambda a: a.event.publish_timestamp),
        ("last", lambda a: a.event.publish_timestamp),
        ("event_timestamp", lambda a: a.event.timestamp),
    ):
        if applies(name):
            add(_time_predicate(time_bounds(params[name], now, name), getter))
    for name, is_lower in (("from", True), ("to", False)):
        if applies(name) and not php_empty(params[name]):
            add(_date_predicate(params[name], is_lower))
    if applies("tags") and not php_empty(params["tags"]):
        add(_tag_predicate(Filter.parse(params["tags"]), known_tags))
    canonical = {k: v for k, v in params.items() if k not in ("page", "limit")}
    query.cache_key = repr(sorted(canonical.items()))
    return query


def _split(patterns: list[str]) -> tuple[frozenset[str], list[Callable[[str], bool]]]:
    """Exact values (case-folded, for a set lookup) and LIKE matchers."""
    exact = frozenset(p.casefold() for p in patterns if not (p.startswith("%") or p.endswith("%")))
    return exact, [like(p) for p in patterns if p.startswith("%") or p.endswith("%")]


def _list_predicate(flt: Filter, getter: Callable[[Any], str]) -> Callable[[Any], bool]:
    want_exact, want_like = _split(flt.any_of)
    skip_exact, skip_like = _split(flt.none_of)
    wanted = bool(flt.any_of)

    def predicate(a: Any) -> bool:
        value = str(getter(a))
        folded = value.casefold()
        if wanted and folded not in want_exact and not any(m(value) for m in want_like):
            return False
        return folded not in skip_exact and not any(m(value) for m in skip_like)

    return predicate


def _value_predicate(flt: Filter) -> Callable[[Any], bool]:
    wanted = _matchers(flt.any_of)
    unwanted = _matchers(flt.none_of)

    def predicate(a: Any) -> bool:
        parts = a.value_parts()
        if wanted and not any(m(p) for m in wanted for p in parts):
            return False
        return not any(m(p) for m in unwanted for p in parts)

    return predicate


def _eventid_predicate(flt: Filter) -> Callable[[Any], bool]:
    def key(event: Any, ref: str) -> bool:
        if _UUID.match(ref):
            return bool(event.uuid.lower() == ref.lower())
        return bool(event.id == ref)

    def predicate(a: Any) -> bool:
        if flt.any_of and not any(key(a.event, r) for r in flt.any_of):
            return False
        if flt.all_of and not all(key(a.event, r) for r in flt.all_of):
            return False
        return not any(key(a.event, r) for r in flt.none_of)

    return predicate


def _org_predicate(flt: Filter) -> Callable[[Any], bool]:
    def key(event: Any, ref: str) -> bool:
        if is_numeric(ref):
            return bool(event.orgc_id == str(int(float(ref))))
        return ref.casefold() in (event.orgc_name.casefold(), event.orgc_uuid.casefold())

    def predicate(a: Any) -> bool:
        if flt.any_of and not any(key(a.event, r) for r in flt.any_of):
            return False
        return not any(key(a.event, r) for r in flt.none_of)

    return predicate


def _time_predicate(bounds: Bounds, getter: Callable[[Any], int]) -> Callable[[Any], bool]:
    return lambda a: in_bounds(getter(a), bounds)


def _date_predicate(raw: Any, is_lower: bool) -> Callable[[Any], bool]:
    if is_numeric(raw):
        moment = dt.datetime.fromtimestamp(float(raw), dt.UTC)
        limit = moment.strftime("%Y-%m-%d")
    else:
        limit = str(raw)
    if is_lower:
        return lambda a: a.event.date >= limit
    return lambda a: a.event.date <= limit


def _tag_predicate(flt: Filter, known_tags: Callable[[str], list[str]]) -> Callable[[Any], bool]:
    def resolve(names: list[str]) -> set[str]:
        found: set[str] = set()
        for name in names:
            found.update(known_tags(name))
        return found

    any_of = resolve(flt.any_of)
    none_of = resolve(flt.none_of)
    all_of = [set(known_tags(name)) for name in flt.all_of]
    if (flt.any_of and not any_of) or any(not group for group in all_of):
        return lambda a: False

    def predicate(a: Any) -> bool:
        names = a.tag_names | a.event.tag_names
        if any_of and names.isdisjoint(any_of):
            return False
        if none_of and not names.isdisjoint(none_of):
            return False
        return all(not names.isdisjoint(group) for group in all_of)

    return predicate
