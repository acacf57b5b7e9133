# SPDX-License-Identifier: Apache-2.0
"""Fold decoded query-log records into one row per distinct reply per time bucket.

A row is (bucket, sensor, client, query name, type, rcode, answer section)
with how many replies it stands for and when the first and last of them were
seen. The bucket is the hour (or day) of the sensor's timestamp, taken from
the RFC 3339 text itself (``2026-01-05T08`` is the 08:00 UTC hour), so the hot
loop parses no dates; first and last seen are compared as text in the loop
and parsed once per row when the batch is turned into columns.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from ..correlate.alerts import parse_time
from ..dnslog import ReadStats
from .records import RecAnswer, Record
from .schema import SCHEMA, TIME

BUCKETS = {"hour": 13, "day": 10}
"""Bucket name -> length of the RFC 3339 prefix that names it."""

# (bucket text, sensor, client, qname, qtype, rcode)
_Key = tuple[str, str, str, str, str, str]


def reverse_name(name: str) -> str:
    """The lower-case name with its labels in reverse order, without the trailing dot.

    ``WWW.Example.COM.`` -> ``com.example.www``: a domain and its subdomains
    sort together, so they are found by range in a sorted column.
    """
    return ".".join(reversed(name.lower().rstrip(".").split(".")))


def unreverse_name(rname: str) -> str:
    return ".".join(reversed(rname.split(".")))


def split_answers(
    answers: Iterable[RecAnswer],
) -> tuple[list[str], list[int], list[bytes]]:
    """CNAME targets, IPv4 addresses (as integers) and IPv6 addresses (16 bytes), in order.

    Other record types and address data that does not parse are not kept:
    nothing else is ever matched.
    """
    cnames: list[str] = []
    ip4: list[int] = []
    ip6: list[bytes] = []
    for a in answers:
        t = a.rdatatype
        if t == "A":
            try:
                ip4.append(int.from_bytes(socket.inet_pton(socket.AF_INET, a.rdata)))
            except OSError:
                continue
        elif t == "AAAA":
            try:
                ip6.append(socket.inet_pton(socket.AF_INET6, a.rdata.split("%", 1)[0]))
            except OSError:
                continue
        elif t == "CNAME":
            cnames.append(a.rdata)
    return cnames, ip4, ip6


def epoch_us(text: str) -> int | None:
    """Microseconds since 1970 of a timestamp :func:`~pdnssoc_agent.correlate.alerts.parse_time`
    reads (None if it reads none)."""
    when = parse_time(text)
    if when is None:
        return None
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class Batch:
    """Records folded per bucket; :meth:`columns` turns them into rows.

    ``add`` is the hot path: one dict lookup per record. A key seen again with
    a different answer section (round-robin addresses) gets a row of its own.
    """

    def __init__(self, bucket: str = "hour") -> None:
        if bucket not in BUCKETS:
            raise ValueError(f"history bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
        self.bucket = bucket
        self._cut = BUCKETS[bucket]
        # key -> [count, first text, last text, answers]
        self._rows: dict[_Key, list[object]] = {}
        # (key, answer data) -> [count, first, last, answers], for the rarer second variant
        self._variants: dict[tuple[_Key, tuple[tuple[str, str], ...]], list[object]] = {}
        self.replies = 0
        self.stats = ReadStats()

    def __len__(self) -> int:
        return len(self._rows) + len(self._variants)

    def add(self, records: Iterable[Record], where: str = "") -> None:  # noqa: PLR0912
        """Fold ``records`` in; those without a query name are counted and left out."""
        rows = self._rows
        cut = self._cut
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
            g = rows.get(key)
            if g is None:
                rows[key] = [1, ts, ts, an]
            elif g[3] == an:
                g[0] += 1  # type: ignore[operator]
                if ts > g[2]:  # type: ignore[operator]
                    g[2] = ts
                elif ts < g[1]:  # type: ignore[operator]
                    g[1] = ts
            else:
                self._add_variant(key, ts, an)
        self.replies += n

    def _add_variant(self, key: _Key, ts: str, an: list[RecAnswer] | None) -> None:
        vkey = (key, tuple((a.rdatatype, a.rdata) for a in an or ()))
        g = self._variants.get(vkey)
        if g is None:
            self._variants[vkey] = [1, ts, ts, an]
            return
        g[0] += 1  # type: ignore[operator]
        if ts > g[2]:  # type: ignore[operator]
            g[2] = ts
        elif ts < g[1]:  # type: ignore[operator]
            g[1] = ts

    def table(self) -> pa.Table:
        """The rows as a table of :data:`.segment.SCHEMA`, unsorted.

        Times are parsed in bulk; a row whose first or last time cannot be read
        is counted in ``stats`` and left out.
        """
        items = list(self._rows.items())
        items += [(k[0], v) for k, v in self._variants.items()]
        if not items:
            return SCHEMA.empty_table()
        keys = [k for k, _ in items]
        vals = [v for _, v in items]
        first = _times([v[1] for v in vals])  # type: ignore[misc]
        last = _times([v[2] for v in vals])  # type: ignore[misc]
        names: dict[str, tuple[str, str | None]] = {}
        for q in {k[3] for k in keys}:
            r = reverse_name(q)
            names[q] = (r, None if unreverse_name(r) == q else q)
        split: dict[str, tuple[object, tuple[list[str], list[int], list[bytes]]]] = {}
        cn: list[list[str]] = []
        v4: list[list[int]] = []
        v6: list[list[bytes]] = []
        for k, v in items:
            an = v[3]
            have = split.get(k[3])
            if have is not None and have[0] == an:
                parts = have[1]
            else:
                parts = split_answers(an or ())  # type: ignore[arg-type]
                split[k[3]] = (an, parts)
            cn.append(parts[0])
            v4.append(parts[1])
            v6.append(parts[2])
        t = pa.table(
            {
                "rname": pa.array([names[k[3]][0] for k in keys], pa.string()),
                "qname": pa.array([names[k[3]][1] for k in keys], pa.string()),
                "qtype": pa.array([k[4] for k in keys], pa.string()),
                "rcode": pa.array([k[5] for k in keys], pa.string()),
                "sensor": pa.array([k[1] for k in keys], pa.string()),
                "client": pa.array([k[2] for k in keys], pa.string()),
                "cnames": pa.array(cn, pa.list_(pa.string())),
                "ip4": pa.array(v4, pa.list_(pa.uint32())),
                "ip6": pa.array(v6, pa.list_(pa.binary(16))),
                "count": pa.array([v[0] for v in vals], pa.uint32()),
                "first": pc.min_element_wise(first, last).cast(TIME),
                "last": pc.max_element_wise(first, last).cast(TIME),
            },
            schema=SCHEMA,
        )
        bad = pc.or_(pc.is_null(first), pc.is_null(last))
        n_bad = pc.sum(bad).as_py() or 0
        if n_bad:
            for i in pc.indices_nonzero(bad).to_pylist()[:10]:
                self.stats.note("wrong_type", f"timestamp {vals[i][1]!r}")
            self.stats.wrong_type += n_bad - min(n_bad, 10)
            t = t.filter(pc.invert(bad))
        return t


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
