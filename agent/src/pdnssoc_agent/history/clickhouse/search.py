# SPDX-License-Identifier: Apache-2.0
"""Finding rows on the cluster: a coarse filter in ClickHouse, correlate's matcher in Python.

ClickHouse selects, on every shard, the committed rows of the time span and
sensors asked for whose query name is an indicator domain or under one (a
few domains: ranges of the sorted reversed names, as the embedded store
searches; many: the name and every name it is under, looked up in a set),
whose CNAME targets are or are under one (the same set), or whose addresses
begin with an indicator network's prefix (a set per prefix length).
Each row it returns then goes through
:class:`~pdnssoc_agent.correlate.indicators.Matcher`, the matcher the raw
scan uses, which decides the hits and their order (query name, CNAME targets,
IPv4 then IPv6 answers, as the embedded store lists them). The filter only
has to let through every row that can match; what matches is decided by the
same code as everywhere else.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from ...correlate.indicators import Matcher
from ...correlate.scan import Hit
from ..aggregate import reverse_name
from ..query import QueryResult, Row
from .client import Client, quote
from .schema import DAY_US, day_text

SETTINGS = {
    # a filter of thousands of indicators is a long statement
    "max_query_size": str(1 << 26),
    "max_ast_elements": "10000000",
    "max_expanded_ast_elements": "10000000",
}


DIRECT_MAX = 16
"""Up to this many domains, query names are selected by ranges of the sorted reversed
names (the primary key: a hunt reads a few granules); more go through a set."""


def _suffixes(name: str) -> str:
    """The SQL array of ``name`` and every name it is under (``a.b.c``, ``b.c``, ``c``)."""
    parts = f"splitByChar('.', {name})"
    return f"arrayMap(i -> arrayStringConcat(arraySlice({parts}, i), '.'), arrayEnumerate({parts}))"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(values) + ")"


def _names(matcher: Matcher) -> list[str]:
    domains = sorted(matcher.domains)
    if not domains:
        return []
    if len(domains) > DIRECT_MAX:
        names = _in(quote(d) for d in domains)
        if not matcher.subdomains:
            return [f"reverseUTF8(rname) IN {names}"]
        return [f"arrayExists(s -> s IN {names}, {_suffixes('reverseUTF8(rname)')})"]
    out = []
    for d in domains:
        r = reverse_name(d)
        if matcher.subdomains:
            out.append(f"(rname = {quote(r)} OR (rname > {quote(r + '.')} "
                       f"AND rname < {quote(r + '/')}))")  # fmt: skip
        else:
            out.append(f"rname = {quote(r)}")
    return out


def _cnames(matcher: Matcher) -> str | None:
    if not matcher.cnames or not matcher.domains:
        return None
    names = _in(quote(d) for d in sorted(matcher.domains))
    test = f"x IN {names}"
    if matcher.subdomains:
        test = f"arrayExists(s -> s IN {names}, {_suffixes('x')})"
    canon = r"arrayMap(c -> replaceRegexpOne(lowerUTF8(c), '\\.+$', ''), cnames)"
    return f"arrayExists(x -> {test}, {canon})"


def _unhex(raw: bytes) -> str:
    return f"unhex('{raw.hex()}')"


def _addresses(matcher: Matcher) -> list[str]:
    """Stored addresses whose first bits are those of an indicator network: IPv4 shifted
    right per prefix length, IPv6 cut to whole bytes (a length that is not widened to
    every byte prefix inside it, at most 128 of them)."""
    v4: dict[int, set[int]] = {}
    v6: dict[int, set[bytes]] = {}
    for text in matcher.network_values():
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4:
            v4.setdefault(net.prefixlen, set()).add(
                int(net.network_address) >> (32 - net.prefixlen)
            )
            continue
        whole = (net.prefixlen + 7) // 8
        base = int(net.network_address) >> (128 - 8 * whole)
        keys = v6.setdefault(whole, set())
        for k in range(1 << (8 * whole - net.prefixlen)):
            keys.add((base | k).to_bytes(whole) if whole else b"")
    out = []
    if v4:
        tests = [
            "1" if plen == 0 else
            f"bitShiftRight(x, {32 - plen}) IN {_in(str(k) for k in sorted(keys))}"
            for plen, keys in sorted(v4.items())
        ]  # fmt: skip
        out.append(f"arrayExists(x -> {' OR '.join(tests)}, ip4)")
    if v6:
        tests = [
            "1" if whole == 0 else
            f"substring(x, 1, {whole}) IN {_in(_unhex(k) for k in sorted(keys))}"
            for whole, keys in sorted(v6.items())
        ]  # fmt: skip
        out.append(f"arrayExists(x -> {' OR '.join(tests)}, ip6)")
    return out


def statement(
    db: str,
    matcher: Matcher,
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    sensors: Iterable[str] | None = None,
    own: bool = False,
) -> str:
    """The SELECT of the rows that may match, on every shard (``own``: on the
    node's own shard only)."""
    match = _names(matcher)
    cn = _cnames(matcher)
    if cn is not None:
        match.append(cn)
    match += _addresses(matcher)
    where = [
        "(" + " OR ".join(match) + ")",
        # committed, on each shard; db is checked by the configuration, values go through quote()
        f"batch IN (SELECT batch FROM {db}.batches_local)",  # noqa: S608
    ]
    if since_us is not None:
        # a row's first and last seen lie in one bucket (a day at most)
        where += [f"day >= {quote(day_text(since_us - DAY_US))}", f"last_us >= {since_us}"]
    if until_us is not None:
        where += [f"day <= {quote(day_text(until_us))}", f"first_us <= {until_us}"]
    if sensors is not None:
        where.append("sensor IN (" + ", ".join(quote(s) for s in sorted(set(sensors))) + ")")
    columns = (
        "sensor, client, qname, qtype, rcode, cnames, ip4, arrayMap(x -> hex(x), ip6) AS ip6hex, "
        "count, first_us, last_us"
    )
    table = "history_local" if own else "history"
    return f"SELECT {columns} FROM {db}.{table} WHERE " + " AND ".join(where)  # noqa: S608


def search(
    client: Client,
    matcher: Matcher,
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    sensors: Iterable[str] | None = None,
    own: bool = False,
) -> QueryResult:
    """Every committed row on the cluster (``own``: on the node's shard) that
    ``matcher`` matches (raises ClusterError)."""
    result = QueryResult()
    if matcher.empty:
        return result
    sql = statement(client.database, matcher, since_us=since_us, until_us=until_us,
                    sensors=sensors, own=own)  # fmt: skip
    for r in client.rows(sql, settings=SETTINGS):
        row = _row(r, matcher)
        if row is not None:
            result.rows.append(row)
    return result


def _row(r: dict[str, Any], matcher: Matcher) -> Row | None:
    qname: str = r["qname"]
    cnames: list[str] = list(r["cnames"])
    ips = [socket.inet_ntop(socket.AF_INET, int(v).to_bytes(4)) for v in r["ip4"]]
    ips += [socket.inet_ntop(socket.AF_INET6, bytes.fromhex(h)) for h in r["ip6hex"]]
    hits: list[Hit] = []
    h = matcher.match_name(qname)
    if h is not None:
        hits.append((h[0], h[1], qname))
    if matcher.cnames:
        for c in cnames:
            h = matcher.match_name(c)
            if h is not None:
                hits.append(("cname", h[1], c))
    for ip in ips:
        h = matcher.match_ip(ip)
        if h is not None:
            hits.append((h[0], h[1], ip))
    if not hits:
        return None
    return Row(
        sensor=r["sensor"], client=r["client"], qname=qname, qtype=r["qtype"], rcode=r["rcode"],
        cnames=cnames, ips=ips, count=int(r["count"]), first_us=int(r["first_us"]),
        last_us=int(r["last_us"]), hits=hits,
    )  # fmt: skip
