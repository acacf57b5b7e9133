# SPDX-License-Identifier: Apache-2.0
"""The cluster's tables, and the rows of a batch in ClickHouse's RowBinary format.

Per node (shard), plain MergeTree tables (ClickHouse 18.16, the version
Debian 12 ships, has no DateTime64 and no Parquet input: times are Int64
microseconds, rows travel as RowBinary):

* ``history_local``: the embedded store's columns (query name reversed as the
  sort key, as the sensor sent it, type, rcode, sensor, client, CNAME chain,
  IPv4 as UInt32, IPv6 as 16 bytes, count, first and last seen), the day of
  ``first`` (the partition: retention drops whole days) and the batch id;
* ``batches_local``: one row per query-log byte range a committed batch holds.

``history`` and ``batches`` are Distributed tables over the cluster.
Rows are aggregated per bucket before they are inserted (the embedded store's
:class:`~pdnssoc_agent.history.aggregate.Batch`), not by a SummingMergeTree:
merging rows of different batches would lose the batch id, and with it the
guarantee that a batch replayed after a crash is counted once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pyarrow as pa

CLUSTER = "pdnssoc"

_HISTORY_COLUMNS = """(
    day Date,
    rname String,
    qname String,
    qtype String,
    rcode String,
    sensor String,
    client String,
    cnames Array(String),
    ip4 Array(UInt32),
    ip6 Array(FixedString(16)),
    count UInt32,
    first_us Int64,
    last_us Int64,
    batch String
)"""

_BATCH_COLUMNS = """(
    batch String,
    fp String,
    lo UInt64,
    hi UInt64,
    path String,
    committed DateTime
)"""


def statements(db: str, cluster: str = CLUSTER) -> list[str]:
    """The statements that create the tables on one node (each does nothing if done)."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"CREATE TABLE IF NOT EXISTS {db}.history_local {_HISTORY_COLUMNS} "
        "ENGINE = MergeTree() PARTITION BY day ORDER BY (rname, sensor, client, first_us)",
        f"CREATE TABLE IF NOT EXISTS {db}.batches_local {_BATCH_COLUMNS} "
        "ENGINE = MergeTree() PARTITION BY toYYYYMM(committed) ORDER BY (fp, lo)",
        f"CREATE TABLE IF NOT EXISTS {db}.history AS {db}.history_local "
        f"ENGINE = Distributed({cluster}, {db}, history_local, rand())",
        f"CREATE TABLE IF NOT EXISTS {db}.batches AS {db}.batches_local "
        f"ENGINE = Distributed({cluster}, {db}, batches_local, rand())",
    ]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return _varint(len(raw)) + raw


_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_DATE = struct.Struct("<H")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000


def day_text(us: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of a time in microseconds since 1970."""
    return datetime.fromtimestamp(us // DAY_US * 86400, UTC).strftime("%Y-%m-%d")


def history_rows(table: pa.Table, batch: str) -> Iterator[bytes]:
    """The rows of a store table (:data:`..schema.SCHEMA`) as ``history_local`` rows."""
    first = table["first"].cast(pa.int64()).to_pylist()
    cols = {c: table[c].to_pylist() for c in ("rname", "qname", "qtype", "rcode", "sensor",
                                                "client", "cnames", "ip4", "ip6", "count",
                                                "span_us")}  # fmt: skip
    tag = _string(batch)
    for i, f in enumerate(first):
        rname = cols["rname"][i]
        qname = cols["qname"][i]
        parts = [
            _DATE.pack(f // DAY_US),
            _string(rname),
            _string(qname if qname is not None else rname[::-1]),
            _string(cols["qtype"][i]),
            _string(cols["rcode"][i]),
            _string(cols["sensor"][i]),
            _string(cols["client"][i]),
            _varint(len(cols["cnames"][i])),
            *(_string(c) for c in cols["cnames"][i]),
            _varint(len(cols["ip4"][i])),
            *(_U32.pack(v) for v in cols["ip4"][i]),
            _varint(len(cols["ip6"][i])),
            *cols["ip6"][i],
            _U32.pack(cols["count"][i]),
            _I64.pack(f),
            _I64.pack(f + cols["span_us"][i]),
            tag,
        ]
        yield b"".join(parts)


def batch_rows(batch: str, sources: Iterable[tuple[str, int, int, str]], at: int) -> bytes:
    """``batches_local`` rows: (fingerprint, start, end, path) of each source, committed at
    ``at`` (seconds since 1970)."""
    return b"".join(
        _string(batch) + _string(fp) + _U64.pack(lo) + _U64.pack(hi) + _string(path)
        + _U32.pack(at)
        for fp, lo, hi, path in sources
    )  # fmt: skip
