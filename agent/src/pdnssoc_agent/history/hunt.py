# SPDX-License-Identifier: Apache-2.0
"""``hunt``: who resolved these names or addresses, from the history store.

Values are domains (matched with their subdomains and CNAMEs into them),
IP addresses and CIDRs, as the indicators ``correlate`` matches. Rows of the
same reply in different buckets are merged into one line: count added up,
earliest first seen, latest last seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..correlate.indicators import Matcher
from .backend import Embedded
from .query import QueryResult, Row, search_merged, search_tables
from .store import HistoryStore

if TYPE_CHECKING:
    from ..config import Config
    from .backend import Store


class HuntValueError(ValueError):
    """A value is neither a domain nor an IP address or network."""


def matcher_for(values: Iterable[str]) -> Matcher:
    """A matcher for hunt values (domains with subdomains and CNAMEs, IPs, CIDRs)."""
    m = Matcher(subdomains=True, cnames=True)
    bad = []
    for v in values:
        if m.add_network(v):
            continue
        m.invalid.clear()
        # a value shaped like an address or network is one, or it is wrong
        if _address_like(v) or not m.add_domain(v):
            bad.append(v)
    if bad:
        raise HuntValueError("not a domain, IP address or network: " + ", ".join(map(repr, bad)))
    return m


def _address_like(value: str) -> bool:
    v = value.strip().rstrip(".")
    return "/" in v or ":" in v or (bool(v) and all(p.isdigit() for p in v.split(".")))


def hunt(
    store: HistoryStore | Store,
    values: Iterable[str],
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    sensors: Iterable[str] | None = None,
    config: Config | None = None,
) -> QueryResult:
    """Matching rows, one per distinct reply, oldest first seen first. With the
    server's ``config``, also the replies of its query log the store does not hold
    yet (see :mod:`.tail`)."""
    matcher = matcher_for(values)
    extra = []
    skipped = []
    if config is not None:
        from . import tail  # noqa: PLC0415

        if tail.applies(config):
            table, stats = tail.unheld(config, matcher, since_us=since_us)
            extra.append(table)
            skipped = tail.problems(stats)
    if isinstance(store, Embedded):  # the command's and the web page's way in
        store = store.store
    if isinstance(store, HistoryStore):
        # merged on the columns, before rows are made: the same rows as merge() of search()'s
        result = search_merged(store, matcher, since_us=since_us, until_us=until_us,
                               sensors=sensors, extra=extra)  # fmt: skip
    else:
        result = store.search(matcher, since_us=since_us, until_us=until_us, sensors=sensors)
        if extra:
            result.rows += search_tables(extra, matcher, since_us=since_us, until_us=until_us,
                                         sensors=sensors).rows  # fmt: skip
        result.rows = merge(result.rows)
    result.log_problems += skipped
    return result


def merge(rows: Iterable[Row]) -> list[Row]:
    """One row per (sensor, client, query, answer section, hits), buckets folded together."""
    out: dict[tuple[object, ...], Row] = {}
    for r in rows:
        key = (r.sensor, r.client, r.qname, r.qtype, r.rcode, tuple(r.cnames), tuple(r.ips),
               tuple(r.hits))  # fmt: skip
        have = out.get(key)
        if have is None:
            out[key] = Row(**{**r.__dict__, "cnames": list(r.cnames), "ips": list(r.ips),
                              "hits": list(r.hits)})  # fmt: skip
        else:
            have.count += r.count
            have.first_us = min(have.first_us, r.first_us)
            have.last_us = max(have.last_us, r.last_us)
    return sorted(out.values(), key=lambda r: (r.first_us, r.sensor, r.client, r.qname))
