# SPDX-License-Identifier: Apache-2.0
"""Finding rows in the store: the matching of ``correlate``, over stored rows.

Every decision is the matcher's own (:class:`~pdnssoc_agent.correlate.indicators.Matcher`):

* query names: a segment is sorted by reversed name, so an indicator domain
  and its subdomains are two ranges of it, found by binary search
  (``com.evil`` exactly, and everything from ``com.evil.`` up to ``com.evil/``);
  where several indicators cover a name the most specific one is reported, as
  ``Matcher.match_name`` does;
* CNAME targets: each distinct target of a segment goes through ``match_name``;
* addresses: every stored address is compared, in bulk, with the indicator
  networks' prefixes, and each candidate goes through ``match_ip``.

A row's hits are listed as ``scan`` lists a line's: the query name first, then
CNAME targets, IPv4 and IPv6 answers in answer order. Rows are selected by
time when their [first, last] seen span meets [since, until].
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..correlate.indicators import Matcher
from ..correlate.scan import Hit
from .aggregate import reverse_name, unreverse_name
from .manifest import SegmentInfo
from .segment import SegmentError, open_segment
from .store import HistoryStore

log = logging.getLogger(__name__)


@dataclass
class Row:
    """A stored row that matched, with its hits."""

    sensor: str
    client: str
    qname: str
    qtype: str
    rcode: str
    cnames: list[str]
    ips: list[str]
    count: int
    first_us: int
    last_us: int
    hits: list[Hit]


@dataclass
class QueryResult:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Damaged or missing segments, skipped; the rest still answered."""
    segments: int = 0
    """Segments searched."""


def _v4_prefixes(matcher: Matcher) -> dict[int, set[int]]:
    """IPv4 indicator networks by prefix length: {length: {address >> (32 - length)}}."""
    out: dict[int, set[int]] = {}
    for text in matcher.network_values():
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4:
            out.setdefault(net.prefixlen, set()).add(int(net.network_address) >> (32 - net.prefixlen))
    return out


class _Plan:
    """What a search looks for, prepared once for every segment."""

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        by_len = sorted(matcher.domains, key=len)
        self.domains = by_len
        rev = [reverse_name(d) for d in by_len]
        self.exact = pa.array(rev, pa.string())
        self.sub_lo = pa.array([r + "." for r in rev], pa.string())
        self.sub_hi = pa.array([r + "/" for r in rev], pa.string())
        self.v4 = _v4_prefixes(matcher)

    def name_hits(self, rname: pa.Array) -> dict[int, tuple[str, str]]:
        """Row -> (how, indicator) for rows whose query name matches."""
        out: dict[int, tuple[str, str]] = {}
        if not self.domains or len(rname) == 0:
            return out
        lo = pc.search_sorted(rname, self.exact, side="left").to_pylist()
        hi = pc.search_sorted(rname, self.exact, side="right").to_pylist()
        if self.matcher.subdomains:
            slo = pc.search_sorted(rname, self.sub_lo, side="left").to_pylist()
            shi = pc.search_sorted(rname, self.sub_hi, side="left").to_pylist()
        else:
            slo = shi = [0] * len(lo)
        # shortest first: a longer (more specific) indicator overwrites
        for k, d in enumerate(self.domains):
            for i in range(slo[k], shi[k]):
                out[i] = ("subdomain", d)
            for i in range(lo[k], hi[k]):
                out[i] = ("exact", d)
        return out

    def cname_hits(self, cnames: pa.ChunkedArray | pa.Array) -> dict[int, list[Hit]]:
        out: dict[int, list[Hit]] = {}
        if not self.matcher.cnames or not self.domains:
            return out
        arr = cnames.combine_chunks() if isinstance(cnames, pa.ChunkedArray) else cnames
        flat = pc.list_flatten(arr)
        if len(flat) == 0:
            return out
        found = {}
        for v in pc.unique(flat).to_pylist():
            h = self.matcher.match_name(v)
            if h is not None:
                found[v] = h[1]
        if not found:
            return out
        parents = pc.list_parent_indices(arr)
        pos = pc.indices_nonzero(pc.is_in(flat, pa.array(list(found), pa.string())))
        for p, v in zip(parents.take(pos).to_pylist(), flat.take(pos).to_pylist(), strict=True):
            out.setdefault(p, []).append(("cname", found[v], v))
        return out

    def ip4_hits(self, ip4: pa.ChunkedArray | pa.Array) -> dict[int, list[Hit]]:
        out: dict[int, list[Hit]] = {}
        if not self.v4:
            return out
        arr = ip4.combine_chunks() if isinstance(ip4, pa.ChunkedArray) else ip4
        flat = pc.list_flatten(arr)
        if len(flat) == 0:
            return out
        mask = None
        for plen, keys in self.v4.items():
            if plen == 0:
                m = pc.is_valid(flat)
            else:
                shifted = pc.shift_right(flat, pa.scalar(32 - plen, pa.uint32()))
                m = pc.is_in(shifted, pa.array(sorted(keys), pa.uint32()))
            mask = m if mask is None else pc.or_(mask, m)
        pos = pc.indices_nonzero(mask)
        if len(pos) == 0:
            return out
        parents = pc.list_parent_indices(arr).take(pos).to_pylist()
        for p, v in zip(parents, flat.take(pos).to_pylist(), strict=True):
            text = socket.inet_ntop(socket.AF_INET, v.to_bytes(4))
            h = self.matcher.match_ip(text)
            if h is not None:
                out.setdefault(p, []).append((h[0], h[1], text))
        return out

    def ip6_hits(self, ip6: pa.ChunkedArray | pa.Array) -> dict[int, list[Hit]]:
        out: dict[int, list[Hit]] = {}
        if not self.matcher.v6:
            return out
        arr = ip6.combine_chunks() if isinstance(ip6, pa.ChunkedArray) else ip6
        flat = pc.list_flatten(arr)
        if len(flat) == 0:
            return out
        found: dict[bytes, tuple[str, str, str]] = {}
        for v in pc.unique(flat).to_pylist():
            text = socket.inet_ntop(socket.AF_INET6, v)
            h = self.matcher.match_ip(text)
            if h is not None:
                found[v] = (h[0], h[1], text)
        if not found:
            return out
        pos = pc.indices_nonzero(pc.is_in(flat, pa.array(list(found), pa.binary(16))))
        parents = pc.list_parent_indices(arr).take(pos).to_pylist()
        for p, v in zip(parents, flat.take(pos).to_pylist(), strict=True):
            out.setdefault(p, []).append(found[v])
        return out


def search(
    store: HistoryStore,
    matcher: Matcher,
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    sensors: Iterable[str] | None = None,
) -> QueryResult:
    """Every stored row that matches ``matcher``, within the time span and sensors given."""
    result = QueryResult()
    if matcher.empty:
        return result
    plan = _Plan(matcher)
    wanted = set(sensors) if sensors is not None else None
    for seg in store.manifest().segments:
        if since_us is not None and seg.last_us < since_us:
            continue
        if until_us is not None and seg.first_us > until_us:
            continue
        result.segments += 1
        try:
            rows = _search_segment(store, seg, plan)
        except SegmentError as exc:
            log.warning("history: skipped %s", exc)
            result.problems.append(str(exc))
            continue
        for r in rows:
            if since_us is not None and r.last_us < since_us:
                continue
            if until_us is not None and r.first_us > until_us:
                continue
            if wanted is not None and r.sensor not in wanted:
                continue
            result.rows.append(r)
    return result


def _search_segment(store: HistoryStore, seg: SegmentInfo, plan: _Plan) -> list[Row]:
    pf = open_segment(store.segment_path(seg), seg.bytes)
    try:
        t = pf.read(columns=["rname", "cnames", "ip4", "ip6"])
    except (OSError, pa.ArrowException) as exc:
        raise SegmentError(f"{store.segment_path(seg)}: damaged ({exc})") from None
    names = plan.name_hits(t["rname"].combine_chunks())
    extra = [plan.cname_hits(t["cnames"]), plan.ip4_hits(t["ip4"]), plan.ip6_hits(t["ip6"])]
    hit_rows = set(names)
    for e in extra:
        hit_rows.update(e)
    if not hit_rows:
        return []
    full = _read_rows(pf, sorted(hit_rows), store, seg)
    out = []
    for i, rec in full:
        qname = rec["qname"] if rec["qname"] is not None else unreverse_name(rec["rname"])
        hits: list[Hit] = []
        h = names.get(i)
        if h is not None:
            hits.append((h[0], h[1], qname))
        for e in extra:
            hits.extend(e.get(i, ()))
        ips = [socket.inet_ntop(socket.AF_INET, v.to_bytes(4)) for v in rec["ip4"]]
        ips += [socket.inet_ntop(socket.AF_INET6, v) for v in rec["ip6"]]
        out.append(
            Row(
                sensor=rec["sensor"], client=rec["client"], qname=qname, qtype=rec["qtype"],
                rcode=rec["rcode"], cnames=rec["cnames"], ips=ips, count=rec["count"],
                first_us=int(rec["first"]), last_us=int(rec["last"]), hits=hits,  # type: ignore[call-overload]
            )  # fmt: skip
        )
    return out


def _read_rows(
    pf: pq.ParquetFile, rows: list[int], store: HistoryStore, seg: SegmentInfo
) -> list[tuple[int, dict[str, object]]]:
    """(row, values) for ``rows`` (sorted), reading only the row groups that hold them."""
    starts = []
    at = 0
    for g in range(pf.metadata.num_row_groups):
        starts.append(at)
        at += pf.metadata.row_group(g).num_rows
    groups: dict[int, list[int]] = {}
    for r in rows:
        g = _group_of(starts, r)
        groups.setdefault(g, []).append(r)
    out: list[tuple[int, dict[str, object]]] = []
    for g, members in sorted(groups.items()):
        try:
            t = pf.read_row_group(g)
        except (OSError, pa.ArrowException) as exc:
            raise SegmentError(f"{store.segment_path(seg)}: damaged ({exc})") from None
        t = t.take(pa.array([r - starts[g] for r in members], pa.int64()))
        t = t.set_column(t.schema.get_field_index("first"), "first", pc.cast(t["first"], pa.int64()))
        t = t.set_column(t.schema.get_field_index("last"), "last", pc.cast(t["last"], pa.int64()))
        out.extend(zip(members, t.to_pylist(), strict=True))
    return out


def _group_of(starts: list[int], row: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= row:
            lo = mid
        else:
            hi = mid - 1
    return lo
