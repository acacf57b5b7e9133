# SPDX-License-Identifier: Apache-2.0
"""A segment's companion index: sorted keys -> row numbers, read without decoding rows.

A search that reads every row of every segment costs as much per row as
Parquet's decoding of the columns it matches on; the index lets ``retro`` and
``hunt`` look up only the keys they need. Beside ``seg-00000042.parquet`` lies
``seg-00000042.idx``, written with the segment (when it is written or merged)
and listed with it in the manifest (``SegmentInfo.index``: its size; 0 for a
segment without one, which is searched as before).

Four sections, each a list of (key, row) sorted by key (binary order), row
numbers those of the segment:

* ``names``: each distinct reversed query name (the segment's sort key) and
  the first row of its run; the run ends where the next name's begins;
* ``cnames``: each CNAME target, canonical (lower case, trailing dots off)
  and reversed like a query name, and a row it is in;
* ``ip4``: each A answer as 4 bytes, big-endian (binary order is numeric
  order), and its row;
* ``ip6``: each AAAA answer as its 16 bytes, and its row.

The file is a Parquet file of (key, row), the four sections one after the
other (their lengths in the file's metadata), keys plain (zstd takes most of
what sorted keys share, and plain keys decode at half the cost of
prefix-coded ones), rows delta-coded, zstd-compressed, every page with a CRC
checked when it is read, as a segment's are. The index only narrows which
rows are read: every candidate row then goes through the same matching as a
search without an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..fsutil import atomic_writer
from . import segment
from .segment import SegmentError

WRITE = True
"""Write an index beside new segments (tests turn it off to make stores without)."""


def wanted(rows: int) -> bool:
    """Whether a segment of ``rows`` rows gets an index: only one of more than one row
    group. A search reads whole row groups, so with one there is nothing to skip (a
    segment of one hour's commit, a quiet day) and the index would only add bytes."""
    return WRITE and rows > segment.ROW_GROUP


SUFFIX = ".idx"
SECTIONS = ("names", "cnames", "ip4", "ip6")
FORMAT = "pdnssoc-history-index/1"
SCHEMA = pa.schema(
    [pa.field("key", pa.binary(), nullable=False), pa.field("row", pa.uint32(), nullable=False)],
    metadata={"format": FORMAT},
)
ZSTD_LEVEL = 6


def path_for(segment_path: Path) -> Path:
    return segment_path.with_suffix(SUFFIX)


def _sorted(keys: pa.Array, rows: pa.Array) -> pa.RecordBatch:
    keys = keys.cast(pa.binary())
    by = [("k", "ascending"), ("r", "ascending")]
    order = pc.sort_indices(pa.table({"k": keys, "r": rows}), sort_keys=by)
    return pa.record_batch([keys.take(order), rows.take(order).cast(pa.uint32())], schema=SCHEMA)


def _be4(v: pa.Array) -> pa.Array:
    """IPv4 addresses (uint32) as 4 bytes each, big-endian: binary order is numeric order."""
    if len(v) == 0:
        return pa.array([], pa.binary())
    b = [pc.bit_wise_and(pc.shift_right(v, s), pa.scalar(255, pa.uint32())) for s in (0, 8, 16)]
    swapped = pc.bit_wise_or(
        pc.bit_wise_or(pc.shift_left(b[0], 24), pc.shift_left(b[1], 16)),
        pc.bit_wise_or(pc.shift_left(b[2], 8), pc.shift_right(v, 24)),
    )
    swapped = pa.concat_arrays([swapped.cast(pa.uint32())])  # its own buffer, from offset 0
    # the swapped numbers' little-endian bytes are the addresses' big-endian ones
    raw = pa.Array.from_buffers(pa.binary(4), len(swapped), [None, swapped.buffers()[1]])
    return raw.cast(pa.binary())


def build(table: pa.Table) -> list[pa.RecordBatch]:
    """The four sections for the rows of ``table`` (sorted as a segment)."""
    rname = table["rname"].combine_chunks()
    n = len(rname)
    if n:
        changed = pc.not_equal(rname.slice(1), rname.slice(0, n - 1))
        starts = pa.concat_arrays(
            [pa.array([0], pa.int64()), pc.add(pc.indices_nonzero(changed).cast(pa.int64()), 1)]
        )
    else:
        starts = pa.array([], pa.int64())
    names = pa.record_batch(
        [rname.take(starts).cast(pa.binary()), starts.cast(pa.uint32())], schema=SCHEMA
    )
    cn = table["cnames"].combine_chunks()
    flat = pc.list_flatten(cn)
    canon = pc.utf8_reverse(pc.utf8_rtrim(pc.utf8_lower(flat), characters="."))
    cnames = _sorted(canon, pc.list_parent_indices(cn))
    ip4 = table["ip4"].combine_chunks()
    ips4_keys = _be4(pc.list_flatten(ip4))
    ips4 = _sorted(ips4_keys, pc.list_parent_indices(ip4))
    ip6 = table["ip6"].combine_chunks()
    ips6 = _sorted(pc.list_flatten(ip6).cast(pa.binary()), pc.list_parent_indices(ip6))
    return [names, cnames, ips4, ips6]


def write(table: pa.Table, segment_path: Path) -> int:
    """Write the index of ``table`` beside ``segment_path`` durably; returns its size."""
    sections = build(table)
    t = pa.Table.from_batches(sections, SCHEMA)
    counts = ",".join(str(b.num_rows) for b in sections)
    t = t.replace_schema_metadata({**(SCHEMA.metadata or {}), b"sections": counts.encode()})
    path = path_for(segment_path)
    with atomic_writer(path, 0o640, binary=True) as fh:
        pq.write_table(
            t,
            fh,
            row_group_size=max(1, t.num_rows),
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=False,
            column_encoding={"key": "PLAIN", "row": "DELTA_BINARY_PACKED"},
            write_page_checksum=True,
        )
    return path.stat().st_size


@dataclass
class Section:
    keys: pa.Array
    rows: pa.Array


@dataclass
class Index:
    names: Section
    cnames: Section
    ip4: Section
    ip6: Section
    rows: int
    """Rows of the segment (where the last name's run ends)."""


def read(path: Path, size: int, rows: int) -> Index:
    """The index at ``path`` (``size`` bytes as the manifest says) of a segment of ``rows``
    rows; SegmentError if it is missing, cut short or damaged (every page's CRC is
    checked as it is read)."""
    present(path, size)
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        meta = pf.schema_arrow.metadata or {}
        if meta.get(b"format") != FORMAT.encode() or b"sections" not in meta:
            raise SegmentError(f"{path}: not a history index ({FORMAT})")
        counts = [int(n) for n in meta[b"sections"].split(b",")]
        t = pf.read(use_threads=False)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise SegmentError(f"{path}: damaged ({exc})") from None
    if len(counts) != len(SECTIONS) or sum(counts) != t.num_rows:
        raise SegmentError(f"{path}: its sections do not add up to its {t.num_rows} entries")
    key, row = t["key"].combine_chunks(), t["row"].combine_chunks()
    secs, at = [], 0
    for name, n in zip(SECTIONS, counts, strict=True):
        keys = key.slice(at, n)
        if name in ("names", "cnames"):  # UTF-8 as written: the same bytes, as strings
            keys = keys.view(pa.string())
        secs.append(Section(keys, row.slice(at, n)))
        at += n
    names, cnames, ip4, ip6 = secs
    return Index(names, cnames, ip4, ip6, rows=rows)


def check(path: Path, size: int, rows: int) -> None:
    """Read the index in full and check it against its segment's row count."""
    idx = read(path, size, rows)
    for name in SECTIONS:
        sec: Section = getattr(idx, name)
        try:
            sec.keys.validate(full=True)
        except pa.ArrowException as exc:
            raise SegmentError(f"{path}: damaged {name} section ({exc})") from None
        if len(sec.rows) and pc.max(sec.rows).as_py() >= rows:
            raise SegmentError(f"{path}: {name} section names a row past the segment's {rows}")


def present(path: Path, size: int) -> None:
    """The cheap check (``status``): the index is there with the size the manifest says."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise SegmentError(f"{path}: missing") from None
    except OSError as exc:
        raise SegmentError(f"{path}: unreadable ({exc.strerror})") from None
    if actual != size:
        raise SegmentError(f"{path}: {actual} bytes, the manifest says {size}")
