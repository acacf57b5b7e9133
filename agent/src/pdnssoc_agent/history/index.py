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

The file is an Arrow IPC file (four record batches of one schema, buffers
compressed with zstd: reading it is decompression, not decoding) followed by
an 8-byte trailer: ``PDXC`` and the CRC-32 of what precedes it, checked on
every read. The index only narrows which rows are read: every candidate row
then goes through the same matching as a search without an index.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..fsutil import atomic_writer
from .segment import SegmentError

WRITE = True
"""Write an index beside each new segment (tests turn it off to make stores without)."""

SUFFIX = ".idx"
SECTIONS = ("names", "cnames", "ip4", "ip6")
SCHEMA = pa.schema(
    [pa.field("key", pa.binary(), nullable=False), pa.field("row", pa.uint32(), nullable=False)],
    metadata={"format": "pdnssoc-history-index/1"},
)
_TRAILER = struct.Struct("<4sI")
_MAGIC = b"PDXC"


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
    sink = pa.BufferOutputStream()
    opts = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, SCHEMA, options=opts) as w:
        for batch in build(table):
            w.write_batch(batch)
    body = sink.getvalue().to_pybytes()
    data = body + _TRAILER.pack(_MAGIC, zlib.crc32(body))
    path = path_for(segment_path)
    with atomic_writer(path, 0o640, binary=True) as fh:
        fh.write(data)
    return len(data)


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


def _read_bytes(path: Path, size: int) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SegmentError(f"{path}: missing") from None
    except OSError as exc:
        raise SegmentError(f"{path}: unreadable ({exc.strerror})") from None
    if len(data) != size:
        raise SegmentError(f"{path}: {len(data)} bytes, the manifest says {size}")
    if len(data) < _TRAILER.size:
        raise SegmentError(f"{path}: not a history index")
    magic, crc = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    if magic != _MAGIC:
        raise SegmentError(f"{path}: not a history index")
    if zlib.crc32(memoryview(data)[: -_TRAILER.size]) != crc:
        raise SegmentError(f"{path}: damaged (CRC mismatch)")
    return data


def read(path: Path, size: int, rows: int) -> Index:
    """The index at ``path`` (``size`` bytes as the manifest says) of a segment of ``rows``
    rows; SegmentError if it is missing, cut short or damaged."""
    data = _read_bytes(path, size)
    try:
        r = pa.ipc.open_file(pa.py_buffer(data).slice(0, len(data) - _TRAILER.size))
        if r.schema != SCHEMA or r.num_record_batches != len(SECTIONS):
            raise SegmentError(f"{path}: not a history index of this format")
        secs = []
        for i, name in enumerate(SECTIONS):
            b = r.get_batch(i)
            keys = b.column(0)
            if name in ("names", "cnames"):  # UTF-8 as written; the same bytes as strings
                keys = pa.Array.from_buffers(pa.string(), len(keys), keys.buffers())
            secs.append(Section(keys, b.column(1)))
    except pa.ArrowException as exc:
        raise SegmentError(f"{path}: damaged ({exc})") from None
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
