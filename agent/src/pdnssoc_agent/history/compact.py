# SPDX-License-Identifier: Apache-2.0
"""Merging segments: rows with the same key in the same bucket become one.

Each commit writes its own small segments, so a busy hour is spread over
many files whose rows repeat each other's keys. Merging sums the counts and
keeps the earliest first-seen and latest last-seen time. A day that is over
is merged into one segment (each row rewritten once); a day still being
written is merged only when it has more than :data:`MAX_OPEN` segments, by a
size-tiered rule: segments are grouped by the power of four their row count
falls in, and four of one tier become one of the next.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc

from .manifest import SegmentInfo
from .schema import SCHEMA
from .segment import sort_table

TIER_FANIN = 4
MAX_OPEN = 48
"""Segments a day still being written may have before they are merged (tiered)."""

_KEYS = ["rname", "qname", "qtype", "rcode", "sensor", "client"]


def merge_rows(table: pa.Table, bucket_seconds: int) -> pa.Table:
    """``table`` with rows of equal key and bucket merged, sorted as a segment."""
    n = table.num_rows
    if n == 0:
        return table
    us = pc.cast(table["first"], pa.int64())
    work = pa.table(
        {
            **{k: table[k] for k in _KEYS},
            "_bucket": pc.divide(us, bucket_seconds * 1_000_000),
            "_cnames": pc.binary_join(table["cnames"], "\x00"),
            "_ip4": pc.binary_join(pc.cast(table["ip4"], pa.list_(pa.string())), ","),
            "_ip6": pc.binary_join(pc.cast(table["ip6"], pa.list_(pa.binary())), b""),
            "count": pc.cast(table["count"], pa.int64()),
            "first": us,
            "last": pc.add(us, table["span_us"]),
            "_i": pa.array(range(n), pa.int64()),
        }
    )
    keys = [*_KEYS, "_bucket", "_cnames", "_ip4", "_ip6"]
    g = work.group_by(keys, use_threads=False).aggregate(
        [("count", "sum"), ("first", "min"), ("last", "max"), ("_i", "min")]
    )
    g = g.set_column(g.schema.get_field_index("first_min"), "first_min",
                     pc.cast(g["first_min"], SCHEMA.field("first").type))  # fmt: skip
    if g.num_rows == n:
        return sort_table(table)
    rows = table.take(g["_i_min"])
    rows = rows.set_column(SCHEMA.get_field_index("count"), SCHEMA.field("count"),
                           pc.cast(g["count_sum"], pa.uint32()))  # fmt: skip
    rows = rows.set_column(SCHEMA.get_field_index("first"), SCHEMA.field("first"), g["first_min"])
    span = pc.subtract(g["last_max"], pc.cast(g["first_min"], pa.int64()))
    span = pc.cast(span, pa.int64())
    rows = rows.set_column(SCHEMA.get_field_index("span_us"), SCHEMA.field("span_us"), span)
    return sort_table(rows)


def tier(rows: int) -> int:
    return int(math.log(max(rows, 1), TIER_FANIN))


def pick(segments: list[SegmentInfo], *, full: bool = False) -> list[SegmentInfo]:
    """Segments of one day to merge now (empty when none need it).

    ``full``: all of them, when there are two or more (a day that is over).
    """
    if full:
        return segments if len(segments) > 1 else []
    tiers: dict[int, list[SegmentInfo]] = {}
    for s in segments:
        tiers.setdefault(tier(s.rows), []).append(s)
    for t in sorted(tiers):
        if len(tiers[t]) >= TIER_FANIN:
            return tiers[t]
    return []
