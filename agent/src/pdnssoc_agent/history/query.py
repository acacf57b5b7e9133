# SPDX-License-Identifier: Apache-2.0
"""Finding rows in the store: the matching of ``correlate``, over stored rows.

The matching is that of :class:`~pdnssoc_agent.correlate.indicators.Matcher`
(exact, subdomain, CNAME, IP, CIDR; case-insensitive), done in bulk:

* query names: a segment is sorted by reversed name, so an indicator domain
  and its subdomains are two ranges of it, found by binary search
  (``moc.live`` exactly, and everything from ``moc.live.`` up to ``moc.live/``);
  where several indicators cover a name the most specific one is reported, as
  ``Matcher.match_name`` does;
* CNAME targets: the distinct targets of a segment are compared with each
  indicator (a few) or reversed, sorted and searched the same way (many);
* addresses: every stored address is compared, in bulk, with the indicator
  networks' prefixes, and each candidate goes through ``Matcher.match_ip``.

A row's hits are listed as ``scan`` lists a line's: the query name first, then
CNAME targets, IPv4 and IPv6 answers in answer order. Rows are selected by
time when their [first, last] seen span meets [since, until].
"""

from __future__ import annotations

import logging
import socket
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..correlate.indicators import Matcher
from ..correlate.scan import Hit
from ..correlate.step import gc_paused
from . import index, segment
from .aggregate import reverse_name
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
    log_problems: list[str] = field(default_factory=list)
    """Lines of the query log not in the store yet that could not be read (see
    :mod:`.tail`), skipped; the rest still answered."""
    segments: int = 0
    """Segments searched."""


def _prefixes(matcher: Matcher) -> tuple[dict[int, set[int]], dict[int, set[bytes]]]:
    """The indicator networks as prefixes to test stored addresses against in bulk.

    IPv4: {length: {address >> (32 - length)}}. IPv6: {bytes: {first bytes}}, a
    length that is not a whole number of bytes widened to every byte prefix
    inside it (at most 128 of them).
    """
    v4 = matcher.prefixes(4)
    v6: dict[int, set[bytes]] = {}
    for plen, prefixes in matcher.prefixes(6).items():
        whole = (plen + 7) // 8
        spare = 8 * whole - plen
        keys = v6.setdefault(whole, set())
        for prefix in prefixes:
            base = prefix << spare
            for k in range(1 << spare):
                keys.add((base | k).to_bytes(whole) if whole else b"")
    return v4, v6


COARSE_MIN = 16
"""Networks of this prefix length and longer are looked for in one pass over the
addresses, by their first bits (the candidates then go through ``Matcher.match_ip``);
a shorter one makes each length a pass of its own (it would make most addresses
candidates)."""


def _coarse4(v4: dict[int, set[int]]) -> tuple[int, set[int]] | None:
    """Every IPv4 prefix cut to the shortest length, when that is at least COARSE_MIN."""
    if not v4 or min(v4) < COARSE_MIN:
        return None
    short = min(v4)
    return short, {k >> (plen - short) for plen, keys in v4.items() for k in keys}


def _coarse6(v6: dict[int, set[bytes]]) -> tuple[int, set[bytes]] | None:
    """The same for IPv6 prefixes (whole bytes)."""
    if not v6 or 8 * min(v6) < COARSE_MIN:
        return None
    short = min(v6)
    return short, {k[:short] for keys in v6.values() for k in keys}


SEEN_WIDEST = 256
"""A network is looked for among an index's ``seen`` keys by the /24s (/48s) it covers,
up to this many; a wider one is always looked for in the address section."""


class _Nets:
    """Indicator networks of one family as an index looks for them: each one's first and
    last address (big-endian bytes, the index's keys) and the ``seen`` keys of the
    /24s (IPv4) or /48s (IPv6) it covers."""

    def __init__(self, nets: list[tuple[int, int]], width: int) -> None:
        """``nets``: (host bits, prefix) of each network; ``width``: 4 or 16 bytes."""
        self.lo: list[bytes] = []
        self.hi: list[bytes] = []
        self.wide: list[int] = []
        """Networks too wide to list their keys."""
        keys: list[int] = []
        owner: list[int] = []
        seen_bits = 8 if width == 4 else 80  # below a /24, a /48
        for n, (bits, prefix) in enumerate(nets):
            base = prefix << bits
            self.lo.append(base.to_bytes(width))
            self.hi.append((base + (1 << bits) - 1).to_bytes(width))
            if bits <= seen_bits:  # inside one /24 (/48)
                heads = [base >> seen_bits]
            elif 1 << (bits - seen_bits) <= SEEN_WIDEST:
                heads = list(
                    range(base >> seen_bits, (base >> seen_bits) + (1 << (bits - seen_bits)))
                )
            else:
                self.wide.append(n)
                continue
            for h in heads:
                keys.append(index.net4_key(h) if width == 4 else index.net6_key(h.to_bytes(6)))
                owner.append(n)
        self.keys = pa.array(keys, pa.uint32())
        self.owner = owner

    def wanted(self, idx: index.Index) -> list[int]:
        """The networks to look for in ``idx``: those it has seen a /24 (/48) of, and the
        wide ones."""
        hit = {self.owner[i] for i in idx.which(self.keys)} if len(self.keys) else set()
        return sorted(hit.union(self.wide))


DIRECT_MAX = 16
"""Up to this many domains, CNAME targets are compared with each directly."""


def _arr(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


class _Names:
    """Indicator domains, as a search of names sorted by reversed name looks for them."""

    def __init__(self, domains: list[str], subdomains: bool) -> None:
        self.domains = domains
        """Shortest first."""
        self.subdomains = subdomains
        self.rev = [reverse_name(d) for d in domains]
        self.exact = pa.array(self.rev, pa.string())
        self.sub_lo = pa.array([r + "." for r in self.rev], pa.string())
        self.sub_hi = pa.array([r + "/" for r in self.rev], pa.string())

    def only(self, positions: list[int]) -> _Names:
        """These domains only (positions in ``domains``, in order)."""
        return _Names([self.domains[k] for k in positions], self.subdomains)

    def hits(self, rname: pa.Array) -> dict[int, tuple[str, str]]:
        """Position -> (how, indicator) for the names of a sorted column that match."""
        out: dict[int, tuple[str, str]] = {}
        if not self.domains or len(rname) == 0:
            return out
        lo = pc.search_sorted(rname, self.exact, side="left")
        hi = pc.search_sorted(rname, self.exact, side="right")
        some = pc.not_equal(lo, hi)
        if self.subdomains:
            slo = pc.search_sorted(rname, self.sub_lo, side="left")
            shi = pc.search_sorted(rname, self.sub_hi, side="left")
            some = pc.or_(some, pc.not_equal(slo, shi))
        else:
            slo = shi = lo
        ks = pc.indices_nonzero(some)  # the indicators with rows, in order
        if len(ks) == 0:
            return out
        lo_, hi_, slo_, shi_ = (a.take(ks).to_pylist() for a in (lo, hi, slo, shi))
        # shortest first: a longer (more specific) indicator overwrites
        for j, k in enumerate(ks.to_pylist()):
            d = self.domains[k]
            for i in range(slo_[j], shi_[j]):
                out[i] = ("subdomain", d)
            for i in range(lo_[j], hi_[j]):
                out[i] = ("exact", d)
        return out


class _Plan:
    """What a search looks for, prepared once for every segment."""

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        self.names = _Names(sorted(matcher.domains, key=len), matcher.subdomains)
        self.domains = self.names.domains
        self.v4, self.v6 = _prefixes(matcher)
        self.v4_one = _coarse4(self.v4)
        self.v6_one = _coarse6(self.v6)
        self.nets4 = _Nets([(32 - p, k) for p, keys in self.v4.items() for k in keys], 4)
        self.nets6 = _Nets(
            [(8 * (16 - whole), int.from_bytes(k, "big")) for whole, keys in self.v6.items()
             for k in keys],
            16,
        )  # fmt: skip
        # each domain's keys among an index's ``seen`` ones: as a query name, as a target
        self.seen_names = pa.array([index.domain_key(index.NAME, r) for r in self.names.rev],
                                   pa.uint32())  # fmt: skip
        self.seen_cnames = pa.array([index.domain_key(index.CNAME, r) for r in self.names.rev],
                                    pa.uint32())  # fmt: skip

    def name_hits(self, rname: pa.Array) -> dict[int, tuple[str, str]]:
        """Position -> (how, indicator) for the names of a sorted column that match."""
        return self.names.hits(rname)

    def cname_hits(self, cnames: pa.Array) -> dict[int, list[Hit]]:
        """Row -> CNAME hits, found among the distinct targets."""
        out: dict[int, list[Hit]] = {}
        m = self._cname_matches(cnames)
        if m is None:
            return out
        flat, where, pos, found = m
        indicator = {at: d for at, (_, d) in found.items()}
        parents = pc.list_parent_indices(cnames).take(pos).to_pylist()
        values = flat.take(pos).to_pylist()
        for p, at, v in zip(parents, where.take(pos).to_pylist(), values, strict=True):
            h: Hit = ("cname", indicator[at], v)
            have = out.get(p)
            if have is None:
                out[p] = [h]
            else:
                have.append(h)
        return out

    def cname_rows(self, cnames: pa.Array) -> pa.Array | None:
        """The rows with a CNAME hit (a row once per hit), without making the hits."""
        m = self._cname_matches(cnames)
        return None if m is None else pc.list_parent_indices(cnames).take(m[2])

    def _cname_matches(
        self, cnames: pa.Array
    ) -> tuple[pa.Array, pa.Array, pa.Array, dict[int, tuple[str, str]]] | None:
        """(the targets flattened, each one's distinct number, the positions in the
        flattened targets that match, distinct number -> (how, indicator)), or None."""
        if not self.matcher.cnames or not self.domains:
            return None
        flat = pc.list_flatten(cnames)
        if len(flat) == 0:
            return None
        enc = pc.dictionary_encode(flat)  # the distinct targets, and where each is
        distinct, where = enc.dictionary, enc.indices
        canon = pc.utf8_rtrim(pc.utf8_lower(distinct), characters=".")
        found = self._canon_hits(canon)  # position in ``distinct`` -> (how, indicator)
        if not found:
            return None
        pos = pc.indices_nonzero(pc.is_in(where, pa.array(list(found), pa.int32())))
        return flat, where, pos, found

    def any_name_hits(self, rname: pa.Array) -> dict[int, tuple[str, str]]:
        """:meth:`name_hits` for reversed names in any order."""
        if not self.domains or len(rname) == 0:
            return {}
        order = pc.sort_indices(rname)
        back = order.to_pylist()
        return {back[i]: h for i, h in self.name_hits(rname.take(order)).items()}

    def _canon_hits(self, canon: pa.Array) -> dict[int, tuple[str, str]]:
        """Position -> (how, indicator) for canonical names (lower case, no trailing dot).

        A few indicators are compared directly; many are searched for in the
        names reversed and sorted, as :meth:`name_hits` does.
        """
        if len(self.domains) > DIRECT_MAX:
            order = pc.sort_indices(pc.utf8_reverse(canon))
            rev_sorted = pc.utf8_reverse(canon.take(order))
            back = order.to_pylist()
            return {back[i]: h for i, h in self.name_hits(rev_sorted).items()}
        out: dict[int, tuple[str, str]] = {}
        for d in self.domains:  # shortest first: a more specific one overwrites
            if self.matcher.subdomains:
                sub = pc.ends_with(canon, "." + d)
                for i in pc.indices_nonzero(sub).to_pylist():
                    out[i] = ("subdomain", d)
            for i in pc.indices_nonzero(pc.equal(canon, d)).to_pylist():
                out[i] = ("exact", d)
        return out

    def ip4_hits(self, ip4: pa.Array) -> dict[int, list[Hit]]:
        out: dict[int, list[Hit]] = {}
        if not self.v4:
            return out
        flat = pc.list_flatten(ip4)
        if len(flat) == 0:
            return out
        mask = None
        v4 = self.v4 if self.v4_one is None else dict([self.v4_one])
        for plen, keys in v4.items():
            if plen == 0:
                m = pc.is_valid(flat)
            else:
                shifted = pc.shift_right(flat, pa.scalar(32 - plen, pa.uint32()))
                m = pc.is_in(shifted, pa.array(sorted(keys), pa.uint32()))
            mask = m if mask is None else pc.or_(mask, m)
        pos = pc.indices_nonzero(mask)
        if len(pos) == 0:
            return out
        parents = pc.list_parent_indices(ip4).take(pos).to_pylist()
        for p, v in zip(parents, flat.take(pos).to_pylist(), strict=True):
            text = socket.inet_ntop(socket.AF_INET, v.to_bytes(4))
            h = self.matcher.match_ip(text)
            if h is not None:
                out.setdefault(p, []).append((h[0], h[1], text))
        return out

    def ip6_hits(self, ip6: pa.Array) -> dict[int, list[Hit]]:
        out: dict[int, list[Hit]] = {}
        if not self.v6:
            return out
        flat = pc.list_flatten(ip6)
        if len(flat) == 0:
            return out
        as_bytes = flat.cast(pa.binary())
        mask = None
        v6 = self.v6 if self.v6_one is None else dict([self.v6_one])
        for whole, keys in v6.items():
            head = pc.binary_slice(as_bytes, 0, whole) if whole < 16 else as_bytes
            m = pc.is_in(head, pa.array(sorted(keys), pa.binary()))
            mask = m if mask is None else pc.or_(mask, m)
        pos = pc.indices_nonzero(mask)
        if len(pos) == 0:
            return out
        parents = pc.list_parent_indices(ip6).take(pos).to_pylist()
        for p, v in zip(parents, flat.take(pos).to_pylist(), strict=True):
            text = socket.inet_ntop(socket.AF_INET6, v)
            h = self.matcher.match_ip(text)
            if h is not None:
                out.setdefault(p, []).append((h[0], h[1], text))
        return out

    def other_rows(self, column: str, values: pa.Array) -> pa.Array | None:
        """The rows with a hit in ``column`` (cnames, ip4 or ip6; a row may come more
        than once), or None."""
        if column == "cnames":
            return self.cname_rows(values)
        hits = (self.ip4_hits if column == "ip4" else self.ip6_hits)(values)
        return pa.array(sorted(hits), pa.int64()) if hits else None


def search(
    store: HistoryStore,
    matcher: Matcher,
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    sensors: Iterable[str] | None = None,
) -> QueryResult:
    """Every stored row that matches ``matcher``, within the time span and sensors given."""
    return _search(store, matcher, since_us, until_us, sensors, merged=False)


def search_tables(
    tables: Sequence[pa.Table],
    matcher: Matcher,
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    sensors: Iterable[str] | None = None,
) -> QueryResult:
    """:func:`search` of rows that are in no store (tables of the store's schema)."""
    return _search(None, matcher, since_us, until_us, sensors, merged=False, extra=tables)


def search_merged(
    store: HistoryStore,
    matcher: Matcher,
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    sensors: Iterable[str] | None = None,
    extra: Sequence[pa.Table] = (),
) -> QueryResult:
    """:func:`search`, its rows of the same reply in different buckets merged into one
    (count added up, earliest first seen, latest last seen), oldest first seen first:
    what ``hunt`` answers. The merging is done on the columns, so only the merged rows
    become Python objects. ``extra``: rows not in the store (the store's schema, e.g.
    :func:`.tail.unheld`'s), searched alike."""
    return _search(store, matcher, since_us, until_us, sensors, merged=True, extra=extra)


def _search(
    store: HistoryStore | None,
    matcher: Matcher,
    since_us: int | None,
    until_us: int | None,
    sensors: Iterable[str] | None,
    *,
    merged: bool,
    extra: Sequence[pa.Table] = (),
) -> QueryResult:
    result = QueryResult()
    if matcher.empty:
        return result
    plan = _Plan(matcher)
    table = _search_table(store, plan, result, since_us, until_us, sensors, extra)
    if table is not None:
        with gc_paused():  # many objects, no cycles: collections would only cost time
            result.rows = _rows(_merged(table) if merged else table, plan)
    return result


def _search_table(  # noqa: PLR0917
    store: HistoryStore | None,
    plan: _Plan,
    result: QueryResult,
    since_us: int | None,
    until_us: int | None,
    sensors: Iterable[str] | None,
    extra: Sequence[pa.Table] = (),
) -> pa.Table | None:
    """The matching rows of ``extra`` (tables of the store's schema), then of every
    segment in the time span, in the order :func:`search` gives them, as one table of
    the columns ``_ALL`` (see :func:`_normal`); None if none."""
    wanted = sorted(set(sensors)) if sensors is not None else None
    found = [_search_in_memory(t, plan) for t in extra]
    if store is not None:
        found += _search_segments(store, plan, result, since_us, until_us)
    kept = [_within(t, since_us, until_us, wanted) for t in found if t is not None]
    parts = [t for t in kept if t.num_rows]
    return pa.concat_tables(parts) if parts else None


def _search_segments(
    store: HistoryStore, plan: _Plan, result: QueryResult, since_us: int | None,
    until_us: int | None,
) -> list[pa.Table | None]:  # fmt: skip
    """Each segment's matching rows (None: none), of the segments the time span meets;
    a damaged one is skipped and named in ``result.problems``."""
    found: list[pa.Table | None] = []
    for seg in store.manifest().segments:
        if since_us is not None and seg.last_us < since_us:
            continue
        if until_us is not None and seg.first_us > until_us:
            continue
        result.segments += 1
        try:
            found.append(_search_segment(store, seg, plan))
        except SegmentError as exc:
            log.warning("history: skipped %s", exc)
            result.problems.append(str(exc))
    return found


def _within(
    t: pa.Table, since_us: int | None, until_us: int | None, sensors: list[str] | None
) -> pa.Table:
    """The rows of ``t`` whose [first, last] seen span meets [since, until], of ``sensors``."""
    masks = []
    if since_us is not None:
        masks.append(pc.greater_equal(pc.add(t["first"], t["span_us"]), since_us))
    if until_us is not None:
        masks.append(pc.less_equal(t["first"], until_us))
    if sensors is not None:
        masks.append(pc.is_in(t["sensor"], value_set=pa.array(sensors, pa.string())))
    if not masks:
        return t
    mask = masks[0]
    for m in masks[1:]:
        mask = pc.and_(mask, m)
    return t.filter(mask)


def _normal(columns: dict[str, pa.Array | pa.ChunkedArray]) -> pa.Table:
    """The columns ``_ALL`` as one table, alike for every segment: the few-valued ones
    as plain strings, ``first`` as microseconds (int64)."""
    out: dict[str, pa.Array] = {}
    for name in _ALL:
        col = _arr(columns[name])
        if name in _FEW and pa.types.is_dictionary(col.type):
            col = pc.cast(col, pa.string())
        elif name == "first":
            col = pc.cast(col, pa.int64())
        out[name] = col
    return pa.table(out)


def _name_groups(pf: pq.ParquetFile, names: _Names) -> list[int]:
    """Row groups whose range of reversed names can hold an indicator or its subdomains
    (from the min/max the file keeps per row group)."""
    md = pf.metadata
    if len(names.domains) >= md.num_row_groups:
        # as many indicators as row groups or more: they would touch most of them,
        # and telling which costs more than reading them all
        return list(range(md.num_row_groups))
    col = md.schema.names.index("rname")
    bounds = []
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(col).statistics
        if st is None or not st.has_min_max:
            return list(range(md.num_row_groups))
        bounds.append((st.min, st.max))
    lows = [lo for lo, _ in bounds]
    wanted: set[int] = set()
    for r in names.rev:
        hi = r + "/" if names.subdomains else r
        # from the last group starting before r (its end may hold r: the rows of one
        # name run across groups) up to the last one starting at or before hi
        g0 = max(0, bisect_left(lows, r) - 1)
        g1 = bisect_right(lows, hi)
        wanted.update(g for g in range(g0, g1) if bounds[g][1] >= r)
    return sorted(wanted)


@dataclass
class _Found:
    """What one segment's matching columns gave: the name hits and the other matching rows,
    and what was read."""

    names: dict[int, tuple[str, str]] = field(default_factory=dict)
    others: list[pa.Array] = field(default_factory=list)
    """Rows with a hit in a column other than the name (a row may come more than once)."""
    rname: pa.Array | None = None
    """The reversed names of the row groups in ``name_groups``, concatenated."""
    name_groups: dict[int, int] = field(default_factory=dict)
    """Row group -> position of its first row in ``rname``."""
    table: pa.Table | None = None
    """Every row's ``columns``."""
    columns: list[str] = field(default_factory=list)

    def rows(self) -> list[int]:
        found = set(self.names)
        for e in self.others:
            found.update(e.to_pylist())
        return sorted(found)


def _match_names(pf: pq.ParquetFile, names: _Names, starts: list[int], found: _Found) -> None:
    """The rows whose name matches (into ``found.names``), reading the names of the row
    groups that can hold them."""
    groups = _name_groups(pf, names)
    if not groups:
        return
    t = pf.read_row_groups(groups, columns=["rname"], use_threads=False)
    found.rname = rname = _arr(t["rname"])
    at, firsts = 0, []
    for g in groups:
        firsts.append(at)
        found.name_groups[g] = at
        at += pf.metadata.row_group(g).num_rows
    for i, h in names.hits(rname).items():
        g = groups[bisect_right(firsts, i) - 1]
        found.names[i - found.name_groups[g] + starts[g]] = h


def _match_others(pf: pq.ParquetFile, plan: _Plan, found: _Found) -> None:
    wanted = {
        "cnames": bool(plan.domains) and plan.matcher.cnames,
        "ip4": bool(plan.v4),
        "ip6": bool(plan.v6),
    }
    found.columns = [c for c, need in wanted.items() if need]
    if not found.columns:
        return
    t = found.table = pf.read(columns=found.columns, use_threads=False)
    for c in found.columns:
        rows = plan.other_rows(c, _arr(t[c]))
        if rows is not None:
            found.others.append(rows)


def _search_segment(store: HistoryStore, seg: SegmentInfo, plan: _Plan) -> pa.Table | None:
    """A segment's matching rows (see :func:`_normal`), in the order of the segment."""
    path = store.segment_path(seg)
    pf = open_segment(path, seg.bytes, dictionary=_FEW)
    if seg.index:
        try:
            idx = index.read(index.path_for(path), seg.index, seg.rows)
            return _search_indexed(pf, idx, plan, path)
        except index.IndexDamagedError as exc:  # its sections are read as they are needed
            log.warning("history: %s; searching its segment without it", exc)
        except (OSError, pa.ArrowException) as exc:
            raise SegmentError(f"{path}: damaged ({exc})") from None
    return _search_file(pf, plan, path)


def _search_file(pf: pq.ParquetFile, plan: _Plan, path: Path | str) -> pa.Table | None:
    """:func:`_search_segment` of a file without an index (``path`` names it)."""
    starts = _group_starts(pf)
    found = _Found()
    try:
        if plan.domains:
            _match_names(pf, plan.names, starts, found)
        _match_others(pf, plan, found)
    except (OSError, pa.ArrowException) as exc:
        raise SegmentError(f"{path}: damaged ({exc})") from None
    wanted = found.rows()
    if not wanted:
        return None
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    if found.table is not None:
        have = found.table.take(pa.array(wanted, pa.int64()))
        cols.update((c, have[c]) for c in found.columns)
    rname = _rname_of(found, wanted, starts)
    if rname is not None:
        cols["rname"] = rname
    rest = _take_rows(pf, wanted, starts, [c for c in _ALL if c not in cols], path)
    cols.update((c, rest[c]) for c in rest.column_names)
    return _normal(cols)


def _search_in_memory(table: pa.Table, plan: _Plan) -> pa.Table | None:
    """:func:`_search_file` of rows that are in no segment, laid out as one in memory."""
    if table.num_rows == 0:
        return None
    buf = pa.BufferOutputStream()
    pq.write_table(segment.sort_table(table), buf, row_group_size=segment.ROW_GROUP,
                   compression="none", use_dictionary=segment.DICTIONARY,
                   column_encoding=segment.ENCODING)  # fmt: skip
    pf = pq.ParquetFile(pa.BufferReader(buf.getvalue()), read_dictionary=_FEW)
    return _search_file(pf, plan, "the query log (not in the store yet)")


def _rname_of(found: _Found, wanted: list[int], starts: list[int]) -> pa.Array | None:
    """The reversed names of rows ``wanted`` (sorted) from those already read, if they were."""
    if found.rname is None:
        return None
    groups = [bisect_right(starts, i) - 1 for i in wanted]
    if not all(g in found.name_groups for g in groups):
        return None
    at = [found.name_groups[g] + i - starts[g] for g, i in zip(groups, wanted, strict=True)]
    return found.rname.take(pa.array(at, pa.int64()))


def _rows(t: pa.Table, plan: _Plan) -> list[Row]:
    """The rows of a table of :func:`_normal`'s columns as :class:`Row`, with their hits,
    listed as ``scan`` lists a line's: the query name first, then CNAME targets, IPv4
    and IPv6 answers in answer order."""
    if t.num_rows == 0:
        return []
    rname = _arr(t["rname"])
    qnames = pc.coalesce(_arr(t["qname"]), pc.utf8_reverse(rname)).to_pylist()
    names = plan.any_name_hits(rname)
    others = [
        plan.cname_hits(_arr(t["cnames"])),
        plan.ip4_hits(_arr(t["ip4"])),
        plan.ip6_hits(_arr(t["ip6"])),
    ]
    hits: list[list[Hit]] = [[] for _ in qnames]
    for i, (how, indicator) in names.items():
        hits[i].append((how, indicator, qnames[i]))
    for e in others:  # in this order: CNAME targets, then IPv4, then IPv6 answers
        for i, found in e.items():
            hits[i] += found
    ips = _addresses(_arr(t["ip4"]), _arr(t["ip6"]))
    first = _arr(t["first"])
    last = pc.add(first, _arr(t["span_us"]))
    sensor, client, qtype, rcode, cnames, count = (
        _arr(t[c]).to_pylist() for c in ("sensor", "client", "qtype", "rcode", "cnames", "count")
    )
    return list(map(Row, sensor, client, qnames, qtype, rcode, cnames, ips, count,
                    first.to_pylist(), last.to_pylist(), hits))  # fmt: skip


def _addresses(ip4: pa.Array, ip6: pa.Array) -> list[list[str]]:
    """Each row's addresses as text, its A answers then its AAAA answers, in order."""
    flat4 = pc.list_flatten(ip4)
    octets = [
        pc.cast(pc.bit_wise_and(pc.shift_right(flat4, bits), pa.scalar(255, pa.uint32())),
                pa.string())
        for bits in (24, 16, 8, 0)
    ]  # fmt: skip
    out = _split(pc.binary_join_element_wise(*octets, ".").to_pylist(), ip4)
    flat6 = pc.list_flatten(ip6)
    if len(flat6):
        text: dict[bytes, str] = {}
        six = []
        for v in flat6.to_pylist():
            t = text.get(v)
            if t is None:
                t = text[v] = socket.inet_ntop(socket.AF_INET6, v)
            six.append(t)
        for mine, more in zip(out, _split(six, ip6), strict=True):
            mine.extend(more)
    return out


def _split(flat: list[str], lists: pa.Array) -> list[list[str]]:
    """``flat`` (a list column's values flattened) cut back into the column's lists."""
    out, at = [], 0
    for n in pc.list_value_length(lists).to_pylist():
        out.append(flat[at : at + n])
        at += n
    return out


def _merged(t: pa.Table) -> pa.Table:
    """One row per (sensor, client, query name, type, rcode, CNAMEs, addresses): the first
    of them, count added up, earliest first seen and latest last seen; ordered by first
    seen, sensor, client, query name, then as they came. The hits of a row follow from
    those columns, so rows merged here have the same hits."""
    first = t["first"]
    qname = pc.coalesce(_arr(t["qname"]), pc.utf8_reverse(_arr(t["rname"])))
    keys = {
        "sensor": _arr(t["sensor"]), "client": _arr(t["client"]), "qname": qname,
        "qtype": _arr(t["qtype"]), "rcode": _arr(t["rcode"]),
        "cnames": _list_key(_arr(t["cnames"])), "ip4": _list_key(_arr(t["ip4"])),
        "ip6": _list_key(_arr(t["ip6"])),
    }  # fmt: skip
    # grouped by each key's number among its distinct values: faster than by the strings
    codes = {k: pc.dictionary_encode(v).indices for k, v in keys.items()}
    columns = {**codes, "count": t["count"], "first": first,
               "last": pc.add(first, t["span_us"]),
               "at": pa.array(range(t.num_rows), pa.int64())}  # fmt: skip
    g = (
        pa.table(columns)
        .group_by(list(codes), use_threads=False)
        .aggregate([("count", "sum"), ("first", "min"), ("last", "max"), ("at", "min")])
    )
    at = g["at_min"]
    by = pa.table({"first": g["first_min"], "sensor": keys["sensor"].take(at),
                   "client": keys["client"].take(at), "qname": qname.take(at),
                   "at": at})  # fmt: skip
    order = pc.sort_indices(by, sort_keys=[(c, "ascending") for c in by.column_names])
    g = g.take(order)
    out = t.take(g["at_min"])
    first_min = g["first_min"]
    for name, col in (("count", g["count_sum"]), ("first", first_min),
                      ("span_us", pc.subtract(g["last_max"], first_min))):  # fmt: skip
        out = out.set_column(out.schema.get_field_index(name), name, col)
    return out


def _list_key(lists: pa.Array) -> pa.Array:
    """Each row's list as one string, equal exactly where the lists are equal (grouping
    takes no list keys): the list of each value's number among the distinct values."""
    codes = pc.dictionary_encode(pc.list_flatten(lists)).indices.cast(pa.string())
    ends = pc.cumulative_sum(pc.list_value_length(lists)).cast(pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), ends])
    return pc.binary_join(pa.ListArray.from_arrays(offsets, codes), ",")


def _group_starts(pf: pq.ParquetFile) -> list[int]:
    starts = []
    at = 0
    for g in range(pf.metadata.num_row_groups):
        starts.append(at)
        at += pf.metadata.row_group(g).num_rows
    return starts


_FEW = ["qtype", "rcode", "sensor", "client"]
"""Columns of few distinct values, read as dictionaries (each distinct string made once)."""

_ALL = ["rname", "qname", "qtype", "rcode", "sensor", "client", "cnames", "ip4", "ip6", "count",
        "first", "span_us"]  # fmt: skip


def _take_rows(
    pf: pq.ParquetFile, rows: list[int], starts: list[int], columns: list[str], path: object
) -> pa.Table:
    """``columns`` of ``rows`` (sorted) as a table, reading only the row groups that hold them."""
    at = pa.array(rows, pa.int64())
    # each row's group (rows are sorted: so are their groups)
    of = pc.subtract(pc.search_sorted(pa.array(starts, pa.int64()), at, side="right"), 1)
    groups = pc.unique(of).to_pylist()
    try:
        t = pf.read_row_groups(groups, columns=columns, use_threads=False)
    except (OSError, pa.ArrowException) as exc:
        raise SegmentError(f"{path}: damaged ({exc})") from None
    # row of the file -> position in the groups read: minus the rows of the groups skipped
    base, read = [0] * len(starts), 0
    for g in groups:
        base[g] = read - starts[g]
        read += pf.metadata.row_group(g).num_rows
    return t.take(pc.add(at, pc.take(pa.array(base, pa.int64()), of)))


def _in_ranges(sec: index.Section, lo_: list[bytes], hi_: list[bytes]) -> list[pa.Array]:
    """The rows of the index entries whose keys fall in any of the ranges [lo, hi]."""
    if not lo_ or len(sec.keys) == 0:
        return []
    lo = pc.search_sorted(sec.keys, pa.array(lo_, pa.binary()), side="left")
    hi = pc.search_sorted(sec.keys, pa.array(hi_, pa.binary()), side="right")
    some = pc.indices_nonzero(pc.not_equal(lo, hi))
    starts, ends = lo.take(some).to_pylist(), hi.take(some).to_pylist()
    return [sec.rows.slice(a, b - a) for a, b in zip(starts, ends, strict=True)]


def _addresses_in(idx: index.Index, name: str, nets: _Nets) -> list[pa.Array]:
    """The rows of section ``name`` (ip4 or ip6) with an address in a network of ``nets``
    the index may hold, reading only the parts of the section those can be in."""
    pick = nets.wanted(idx)
    if not pick:
        return []
    lo, hi = [nets.lo[k] for k in pick], [nets.hi[k] for k in pick]
    return _in_ranges(idx.section_in(name, lo, hi), lo, hi)


def _candidates(
    pf: pq.ParquetFile, idx: index.Index, plan: _Plan, starts: list[int], found: _Found
) -> list[int]:
    """Every row that holds a name, CNAME target or address an indicator may match, the
    name hits into ``found.names``. Only the indicators among the index's ``seen`` keys
    are looked for, and only the parts of the index and segment they need are read."""
    parts: list[pa.Array] = []
    if plan.domains:
        names = plan.names.only(idx.which(plan.seen_names))
        if names.domains:
            _match_names(pf, names, starts, found)
        if plan.matcher.cnames:
            targets = plan.names.only(idx.which(plan.seen_cnames))
            if targets.domains:
                lo = [r.encode() for r in targets.rev]  # each one, and everything under it
                cnames = idx.section_in("cnames", lo, [r + b"/" for r in lo])
                pos = list(targets.hits(cnames.keys))
                if pos:
                    parts.append(cnames.rows.take(pa.array(pos, pa.int64())))
    parts += _addresses_in(idx, "ip4", plan.nets4)
    parts += _addresses_in(idx, "ip6", plan.nets6)
    rows = set(found.names)
    for p in parts:
        rows.update(p.to_pylist())
    return sorted(rows)


def _search_indexed(
    pf: pq.ParquetFile, idx: index.Index, plan: _Plan, path: object
) -> pa.Table | None:
    """A segment's matching rows, reading only the row groups that hold candidates."""
    found = _Found()
    starts = _group_starts(pf)
    wanted = _candidates(pf, idx, plan, starts, found)
    if not wanted:
        return None
    rname = _rname_of(found, wanted, starts)  # the names read to match them, if they were
    t = _take_rows(pf, wanted, starts, [c for c in _ALL if c != "rname" or rname is None], path)
    if rname is not None:
        t = t.append_column("rname", rname)
    # the same matching as without an index, on the candidates
    hit: list[pa.Array] = []
    if found.names:
        names = pa.array(sorted(found.names), pa.int64())
        hit.append(pc.indices_nonzero(pc.is_in(pa.array(wanted, pa.int64()), value_set=names)))
    for col in ("cnames", "ip4", "ip6"):
        rows = plan.other_rows(col, _arr(t[col]))
        if rows is not None:
            hit.append(rows)
    if not hit:
        return None
    keep = pc.unique(pa.concat_arrays([h.cast(pa.int64()) for h in hit]))
    t = t.take(pc.take(keep, pc.sort_indices(keep)))
    return _normal({c: t[c] for c in _ALL})
