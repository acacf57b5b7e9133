# SPDX-License-Identifier: Apache-2.0
"""Helpers for the history store tests: fill a store from JSON lines, read its rows back."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pdnssoc_agent.dnslog import ReadStats
from pdnssoc_agent.history import HistoryStore, Source, Writer, decode_chunk
from pdnssoc_agent.history.segment import read


def fp_of(data: bytes) -> str:
    return hashlib.sha256(data[:1024]).hexdigest()[:32]


def add_lines(w: Writer, data: bytes, *, fp: str | None = None, start: int = 0) -> bool:
    """Decode ``data`` (whole lines) and add it as the bytes [start, start + len) of a file."""
    stats = ReadStats()
    recs = decode_chunk(data, stats, "test", start)
    return w.add(recs, Source(fp or fp_of(data), start, start + len(data), "test.json"))


def rows(store: HistoryStore) -> list[dict[str, Any]]:
    """Every stored row (as dicts, times as integer microseconds, ``last`` added), in
    segment order."""
    out: list[dict[str, Any]] = []
    for seg in store.manifest().segments:
        t = read(store.segment_path(seg), seg.bytes)
        first = t["first"].cast(pa.int64())
        t = t.set_column(t.schema.get_field_index("first"), "first", first)
        t = t.append_column("last", pc.add(first, t["span_us"]))
        out.extend(t.to_pylist())
    return out


def replies_by_key(store: HistoryStore) -> Counter[tuple[Any, ...]]:
    """(sensor, client, rname, qtype, rcode, cnames, ip4, ip6) -> replies held."""
    c: Counter[tuple[Any, ...]] = Counter()
    for r in rows(store):
        key = (r["sensor"], r["client"], r["rname"], r["qtype"], r["rcode"],
               tuple(r["cnames"]), tuple(r["ip4"]), tuple(r["ip6"]))  # fmt: skip
        c[key] += r["count"]
    return c


def store_at(tmp_path: Path, bucket: str = "hour") -> HistoryStore:
    return HistoryStore(tmp_path / "history", bucket=bucket)


def flip_in_column(path: Path, column: str, group: int = 0) -> None:
    """Flip a byte inside the last data page of ``column`` (of row group ``group``) in a
    Parquet file."""
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    chunk = meta.row_group(group).column(names.index(column))
    at = chunk.data_page_offset + chunk.total_compressed_size - 2  # in the last page's data
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
