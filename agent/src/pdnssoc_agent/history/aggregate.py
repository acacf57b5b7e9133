# SPDX-License-Identifier: Apache-2.0
"""Fold decoded query-log records into one row per distinct reply per time bucket.

A row is (bucket, sensor, client, query name, type, rcode, answer section)
with how many replies it stands for and when the first and last of them were
seen. The bucket is the hour (or day) of the sensor's timestamp, taken from
the RFC 3339 text itself (``2026-01-05T08`` is the 08:00 UTC hour), so the hot
loop parses no dates; first and last seen are compared as text in the loop.
Everything else (times, names, addresses) is converted once per row, in bulk
by Arrow, when the batch becomes a table.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from ..dnslog import ReadStats
from ..timefmt import parse_rfc3339_or_none as parse_time
from .records import RecAnswer, Record
from .schema import SCHEMA, TIME

BUCKETS = {"hour": 13, "day": 10}
"""Bucket name -> length of the RFC 3339 prefix that names it."""

# (bucket text, sensor, client, qname, qtype, rcode)
_Key = tuple[str, str, str, str, str, str]


def reverse_name(name: str) -> str:
    """The sort key of a query name: lower case, trailing dots off, characters reversed.

    ``WWW.Example.COM.`` -> ``moc.elpmaxe.www``: a domain and its subdomains
    share a prefix (``moc.elpmaxe`` and everything from ``moc.elpmaxe.``), so
    they are found by range in a column sorted by it.
    """
    return name.lower().rstrip(".")[::-1]


def epoch_us(text: str) -> int | None:
    """Microseconds since 1970 of a timestamp :func:`~pdnssoc_agent.timefmt.parse_rfc3339_or_none`
    reads (None if it reads none)."""
    when = parse_time(text)
    if when is None:
        return None
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class Batch:
    """Records folded per bucket, kept as columns; :meth:`table` makes them a table.

    ``add`` is the hot path: one dict lookup per record, and for a new row a
    few list appends (its key, its count and times, and its answers' types and
    data flattened): no per-row objects are built, so that :meth:`table` only
    hands whole lists to Arrow. A key seen again with a different answer section
    (round-robin addresses) gets a row of its own.
    """

    def __init__(self, bucket: str = "hour") -> None:
        if bucket not in BUCKETS:
            raise ValueError(f"history bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
        self.bucket = bucket
        self._cut = BUCKETS[bucket]
        self._rows: dict[_Key, int] = {}
        """key -> its first row (the one of the first answer section seen)."""
        self._variants: dict[tuple[_Key, tuple[tuple[str, str], ...]], int] = {}
        """(key, answer data) -> row, for the rarer second and later answer sections."""
        # one entry per row
        self._keys: list[_Key] = []
        self._count: list[int] = []
        self._first: list[str] = []
        self._last: list[str] = []
        self._an: list[list[RecAnswer] | None] = []
        # the rows' answers, flattened: row i's are [_ends[i], _ends[i + 1])
        self._rtype: list[str] = []
        self._rdata: list[str] = []
        self._ends: list[int] = [0]
        self.replies = 0
        self.stats = ReadStats()

    def __len__(self) -> int:
        return len(self._count)

    def add(self, records: Iterable[Record], where: str = "") -> None:  # noqa: PLR0915 - hot loop
        """Fold ``records`` in; those without a query name are counted and left out."""
        rows = self._rows
        cut = self._cut
        count, first, last, answers = self._count, self._first, self._last, self._an
        keys = self._keys.append
        rtype, rdata, ends = self._rtype.append, self._rdata.append, self._ends.append
        n_data = len(self._rdata)
        n = 0
        for r in records:
            d = r.dns
            if d is not None and d.qname:
                tap = r.dnstap
                net = r.network
                ts = tap.timestamp if tap is not None else ""
                rrs = d.rrs
                an = rrs.an if rrs is not None else None
                key = (
                    ts[:cut],
                    tap.identity if tap is not None else "",
                    net.query_ip if net is not None else "",
                    d.qname,
                    d.qtype,
                    d.rcode,
                )
            elif r.query:
                ts = r.timestamp
                an = r.answers
                key = (ts[:cut], r.client_id, r.client, r.query, "", "")
            else:
                self.stats.note("missing_fields", where)
                continue
            n += 1
            if ts[-1:] == "Z":
                # compared as text without the Z: "...:00" < "...:00.5" < "...:00.50001"
                ts = ts[:-1]
            if not an:
                an = None
            i = rows.get(key)
            if i is None:  # a new row: _new_row, inlined (most lines start one)
                rows[key] = len(count)
                keys(key)
                count.append(1)
                first.append(ts)
                last.append(ts)
                answers.append(an)
                if an:
                    for a in an:
                        rtype(a.rdatatype)
                        rdata(a.rdata)
                    n_data += len(an)
                ends(n_data)
            elif answers[i] == an:
                count[i] += 1
                if ts > last[i]:
                    last[i] = ts
                elif ts < first[i]:
                    first[i] = ts
            else:
                self._add_variant(key, ts, an)
                n_data = len(self._rdata)
        self.replies += n

    def _new_row(self, key: _Key, ts: str, an: list[RecAnswer] | None) -> int:
        i = len(self._count)
        self._keys.append(key)
        self._count.append(1)
        self._first.append(ts)
        self._last.append(ts)
        self._an.append(an)
        if an:
            rtype, rdata = self._rtype, self._rdata
            for a in an:
                rtype.append(a.rdatatype)
                rdata.append(a.rdata)
        self._ends.append(len(self._rdata))
        return i

    def _add_variant(self, key: _Key, ts: str, an: list[RecAnswer] | None) -> None:
        vkey = (key, tuple((a.rdatatype, a.rdata) for a in an or ()))
        i = self._variants.get(vkey)
        if i is None:
            self._variants[vkey] = self._new_row(key, ts, an)
            return
        self._count[i] += 1
        if ts > self._last[i]:
            self._last[i] = ts
        elif ts < self._first[i]:
            self._first[i] = ts

    def table(self) -> pa.Table:
        """The rows as a table of :data:`.schema.SCHEMA`, unsorted.

        A row whose first or last time cannot be read is counted in ``stats``
        and left out.
        """
        if not self._count:
            return SCHEMA.empty_table()
        first = _times(self._first)
        last = _times(self._last)
        _, sensor, client, qnames, qtype, rcode = zip(*self._keys, strict=True)
        qname = pa.array(qnames, pa.string())
        canon = pc.utf8_rtrim(pc.utf8_lower(qname), characters=".")
        cnames, ip4, ip6 = _answers(self._rtype, self._rdata, self._ends)
        t = pa.table(
            {
                "rname": pc.utf8_reverse(canon),
                "qname": pc.if_else(pc.equal(qname, canon), pa.scalar(None, pa.string()), qname),
                "qtype": pa.array(qtype, pa.string()),
                "rcode": pa.array(rcode, pa.string()),
                "sensor": pa.array(sensor, pa.string()),
                "client": pa.array(client, pa.string()),
                "cnames": cnames,
                "ip4": ip4,
                "ip6": ip6,
                "count": pa.array(self._count, pa.uint32()),
                "first": pc.min_element_wise(first, last).cast(TIME),
                "span_us": pc.abs(pc.subtract(last, first)),
            },
            schema=SCHEMA,
        )
        bad = pc.or_(pc.is_null(first), pc.is_null(last))
        n_bad = pc.sum(bad).as_py() or 0
        if n_bad:
            for i in pc.indices_nonzero(bad).to_pylist()[:10]:
                self.stats.note("wrong_type", f"timestamp {self._first[i]!r}")
            self.stats.wrong_type += n_bad - min(n_bad, 10)
            t = t.filter(pc.invert(bad))
        return t


def _answers(
    rtypes: list[str], rdata: list[str], ends: list[int]
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Per row: CNAME targets, IPv4 addresses (integers), IPv6 addresses (16 bytes), in order.

    ``rtypes`` and ``rdata`` are every row's answers one after another, row
    ``i``'s from ``ends[i]`` to ``ends[i + 1]``. Other record types, and
    address data that ``inet_pton`` would not read, are not kept: nothing else
    is ever matched.
    """
    n = len(ends) - 1
    offsets = pa.array(ends, pa.int32())
    types = pa.array(rtypes, pa.string())
    data = pa.array(rdata, pa.string())
    parents = pc.list_parent_indices(pa.ListArray.from_arrays(offsets, data))
    rows = pa.array(range(n + 1), pa.int64())

    def lists(rtype: str, convert: Callable[[pa.Array], pa.Array], item: pa.DataType) -> pa.Array:
        where = pc.indices_nonzero(pc.equal(types, rtype))
        values = convert(data.take(where))
        owner = parents.take(where)
        ok = pc.is_valid(values)
        if pc.sum(pc.invert(ok)).as_py():
            values, owner = values.filter(ok), owner.filter(ok)
        offs = pc.search_sorted(owner, rows, side="left").cast(pa.int32())
        return pa.ListArray.from_arrays(offs, values.cast(item))

    return (
        lists("CNAME", lambda v: v, pa.string()),
        lists("A", _ip4_numbers, pa.uint32()),
        lists("AAAA", _ip6_bytes, pa.binary(16)),
    )


def _ip4_numbers(texts: pa.Array) -> pa.Array:
    """Dotted quads as integers (null where one is not what inet_pton reads), parsed
    once each: an address answers many queries, so the distinct ones are far fewer."""
    distinct = pc.unique(texts)
    numbers: list[int | None] = []
    pton, family, from_bytes = socket.inet_pton, socket.AF_INET, int.from_bytes
    for t in distinct.to_pylist():
        try:
            numbers.append(from_bytes(pton(family, t), "big"))
        except OSError:
            numbers.append(None)
    return pa.array(numbers, pa.uint32()).take(pc.index_in(texts, distinct))


def _ip6_bytes(texts: pa.Array) -> pa.Array:
    """IPv6 texts as 16 bytes (null where inet_pton does not read one), parsed once each."""
    distinct = pc.unique(texts)
    packed: list[bytes | None] = []
    for t in distinct.to_pylist():
        try:
            packed.append(socket.inet_pton(socket.AF_INET6, t.split("%", 1)[0]))
        except OSError:
            packed.append(None)
    return pa.array(packed, pa.binary(16)).take(pc.index_in(texts, distinct))


def _times(stored: list[str]) -> pa.Array:
    """Microseconds since 1970 (int64) of times as :meth:`Batch.add` kept them (UTC
    without its ``Z``); null where one is not a time.

    Parsed in bulk by Arrow; a batch holding any other layout (an offset, a
    space for the ``T``) is parsed one time at a time instead.
    """
    try:
        ns = pa.array(stored, pa.string()).cast(pa.timestamp("ns"))
        return pc.divide(ns.cast(pa.int64()), 1000)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_epoch_us_kept(t) for t in stored], pa.int64())


def _epoch_us_kept(text: str) -> int | None:
    if not text:
        return None
    if text[-1:] != "Z" and not (len(text) > 6 and text[-6] in "+-" and text[-3] == ":"):
        text += "Z"  # the Z add() took off (or none at all: read as UTC)
    return epoch_us(text)
