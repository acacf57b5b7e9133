# SPDX-License-Identifier: Apache-2.0
"""A segment's companion index: what is in it, and where, read without decoding rows.

A search that reads every row of every segment costs as much per row as
Parquet's decoding of the columns it matches on; the index lets ``retro`` and
``hunt`` skip a segment that cannot hold a match after reading a few hundred
kilobytes, and look up only the keys they need in one that may. Beside
``seg-00000042.parquet`` lies ``seg-00000042.idx``, written with the segment
(when it is written or merged) and listed with it in the manifest
(``SegmentInfo.index``: its size; 0 for a segment without one, which is
searched as before).

Four sections, each a list of (key, row) sorted by key and cut into parts of
:data:`PART` entries, a row group each (Parquet keeps each one's smallest and
largest key), so that a search reads only the sections it needs, and of those
only the parts its keys can be in:

* ``seen``: what the segment holds, as 32-bit keys (in ``row``, sorted; no
  ``key``): every domain a query name is in (the name itself and each parent,
  ``www.example.org``, ``example.org``, ``org``), every domain a CNAME target is
  in, every /24 an IPv4 answer is in and every /48 an IPv6 answer is in, each
  hashed (CRC-32 of the reversed domain or the network's leading bytes, one
  seed per kind). An indicator none of whose keys is here matches nothing in
  the segment: most of a retro's indicators were never resolved, and this is
  all it reads of most segments. A key here that is only a hash collision
  costs a read of the section, never a wrong answer.
* ``cnames``: each CNAME target, canonical (lower case, trailing dots off)
  and reversed like a query name, and a row it is in;
* ``ip4``: each A answer as 4 bytes, big-endian (binary order is numeric
  order), and its row;
* ``ip6``: each AAAA answer as its 16 bytes, and its row.

Query names need no section: a segment is sorted by them and its row groups'
statistics give their ranges, so the row groups a name can be in are read,
their names column only, once ``seen`` says the name is there.

The file is a Parquet file of (key, row), sections in the order above (their
lengths and the part size in the file's metadata), keys plain (zstd takes most of what sorted
keys share, and plain keys decode at half the cost of prefix-coded ones), rows
delta-coded, zstd-compressed, every page with a CRC checked when it is read,
as a segment's are. The index only narrows which rows are read: every
candidate row then goes through the same matching as a search without an
index.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..fsutil import atomic_writer
from . import segment
from .segment import SegmentError


class IndexDamagedError(SegmentError):
    """An index is missing, cut short, damaged or of another format: its segment is
    searched without it."""


WRITE = True
"""Write an index beside new segments (tests turn it off to make stores without)."""


def wanted(rows: int) -> bool:
    """Whether a segment of ``rows`` rows gets an index: only one of more than one row
    group. A search reads whole row groups, so with one there is nothing to skip (a
    segment of one hour's commit, a quiet day) and the index would only add bytes."""
    return WRITE and rows > segment.ROW_GROUP


SUFFIX = ".idx"
SECTIONS = ("seen", "cnames", "ip4", "ip6")
FORMAT = "pdnssoc-history-index/2"
SCHEMA = pa.schema(
    [pa.field("key", pa.binary(), nullable=False), pa.field("row", pa.uint32(), nullable=False)],
    metadata={"format": FORMAT},
)
ZSTD_LEVEL = 6
PART = 8192
"""Entries of a section per row group: a search that needs a few keys of a section reads
the parts whose key range (the minimum and maximum Parquet keeps per row group) can
hold them."""


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


# ---------------------------------------------------------------- the ``seen`` keys

NAME, CNAME, NET4, NET6 = 0x6E, 0x63, 0x34, 0x36
"""Seeds of the CRC-32 for each kind of key (any distinct values would do)."""


def domain_key(kind: int, reversed_name: str) -> int:
    """The key of a domain (reversed, as :func:`.aggregate.reverse_name` makes it)."""
    return zlib.crc32(reversed_name.encode(), kind)


def net4_key(slash24: int) -> int:
    """The key of an IPv4 /24, given as its leading 24 bits."""
    return zlib.crc32(slash24.to_bytes(3, "big"), NET4)


def net6_key(slash48: bytes) -> int:
    """The key of an IPv6 /48, given as its leading 6 bytes."""
    return zlib.crc32(slash48, NET6)


def _domains_in(kind: int, reversed_names: Iterable[bytes], out: set[int]) -> None:
    """Add the key of each domain every name is in: itself and each parent (in a reversed
    name, each prefix that ends before a dot)."""
    crc = zlib.crc32
    for r in reversed_names:
        i = r.find(b".")
        while i != -1:
            out.add(crc(r[:i], kind))
            i = r.find(b".", i + 1)
        out.add(crc(r, kind))


def _seen(rnames: pa.Array, cnames: pa.Array, ip4: pa.Array, ip6: pa.Array) -> pa.RecordBatch:
    """The ``seen`` section: distinct reversed names, reversed canonical CNAME targets,
    IPv4 keys (4 bytes) and IPv6 addresses, as sorted keys (in ``row``)."""
    keys: set[int] = set()
    _domains_in(NAME, rnames.cast(pa.binary()).to_pylist(), keys)
    _domains_in(CNAME, pc.unique(cnames).cast(pa.binary()).to_pylist(), keys)
    crc = zlib.crc32
    keys.update(crc(k, NET4) for k in pc.unique(pc.binary_slice(ip4, 0, 3)).to_pylist())
    keys.update(crc(k, NET6) for k in pc.unique(pc.binary_slice(ip6, 0, 6)).to_pylist())
    values = pa.array(list(keys), pa.uint32()).sort()
    return pa.record_batch([pa.nulls(len(values), pa.binary()).fill_null(b""), values],
                           schema=SCHEMA)  # fmt: skip


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
    cn = table["cnames"].combine_chunks()
    flat = pc.list_flatten(cn)
    canon = pc.utf8_reverse(pc.utf8_rtrim(pc.utf8_lower(flat), characters="."))
    cnames = _sorted(canon, pc.list_parent_indices(cn))
    ip4 = table["ip4"].combine_chunks()
    ips4 = _sorted(_be4(pc.list_flatten(ip4)), pc.list_parent_indices(ip4))
    ip6 = table["ip6"].combine_chunks()
    ips6 = _sorted(pc.list_flatten(ip6).cast(pa.binary()), pc.list_parent_indices(ip6))
    seen = _seen(rname.take(starts), cnames.column(0), ips4.column(0), ips6.column(0))
    return [seen, cnames, ips4, ips6]


def write(table: pa.Table, segment_path: Path) -> int:
    """Write the index of ``table`` beside ``segment_path`` durably; returns its size."""
    sections = build(table)
    counts = ",".join(str(b.num_rows) for b in sections)
    meta = {**(SCHEMA.metadata or {}), b"sections": counts.encode(), b"part": str(PART).encode()}
    schema = SCHEMA.with_metadata(meta)
    path = path_for(segment_path)
    with atomic_writer(path, 0o640, binary=True) as fh:
        w = pq.ParquetWriter(
            fh,
            schema,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=False,
            column_encoding={"key": "PLAIN", "row": "DELTA_BINARY_PACKED"},
            write_page_checksum=True,
        )
        for batch in sections:  # row groups of PART entries; an empty section has one
            w.write_table(pa.Table.from_batches([batch], schema), row_group_size=PART)
        w.close()
    return path.stat().st_size


@dataclass
class Section:
    keys: pa.Array
    rows: pa.Array


def _groups(count: int, part: int) -> int:
    """Row groups of a section of ``count`` entries written ``part`` to a group."""
    return max(1, -(-count // part))


@dataclass
class Index:
    """A segment's index, its sections read as they are needed."""

    path: Path
    file: pq.ParquetFile
    counts: dict[str, int]
    groups: dict[str, range]
    """Section -> its row groups."""
    rows: int
    """Rows of the segment."""
    _read: dict[str, Section] = field(default_factory=dict)

    def section(self, name: str) -> Section:
        """Section ``name``, all of it (IndexDamagedError if its pages are damaged)."""
        have = self._read.get(name)
        if have is None:
            have = self._read[name] = self._section(name, list(self.groups[name]))
            if len(have.rows) != self.counts[name]:
                raise IndexDamagedError(f"{self.path}: its {name} section is not the length "
                                        "it says")  # fmt: skip
        return have

    def section_in(self, name: str, lo: list[bytes], hi: list[bytes]) -> Section:
        """The parts of section ``name`` whose keys may fall in a range [lo, hi] of those
        given, in order: every entry in those ranges is among them."""
        if name in self._read:
            return self._read[name]
        ranges = list(zip(lo, hi, strict=True))

        def meets(first: bytes, last: bytes) -> bool:
            return any(a <= last and b >= first for a, b in ranges)

        return self._section(name, self._parts(name, 0, meets))

    def _parts(self, name: str, column: int, holds: Callable[[Any, Any], bool]) -> list[int]:
        """The row groups of section ``name`` for which ``holds(min, max)`` of ``column``
        is true, or whose statistics are missing."""
        md, out = self.file.metadata, []
        for g in self.groups[name]:
            st = md.row_group(g).column(column).statistics
            if st is None or not st.has_min_max or holds(st.min, st.max):
                out.append(g)
        return out

    def _section(self, name: str, groups: list[int]) -> Section:
        columns = ["row"] if name == "seen" else ["key", "row"]  # seen: keys all empty
        if not groups:
            return Section(pa.array([], pa.string() if name == "cnames" else pa.binary()),
                           pa.array([], pa.uint32()))  # fmt: skip
        try:
            t = self.file.read_row_groups(groups, columns=columns, use_threads=False)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise IndexDamagedError(f"{self.path}: damaged ({exc})") from None
        rows = t["row"].combine_chunks()
        keys = t["key"].combine_chunks() if "key" in columns else pa.array([], pa.binary())
        if name == "cnames":  # UTF-8 as written: the same bytes, as strings
            keys = keys.view(pa.string())
        return Section(keys, rows)

    def seen(self) -> pa.Array:
        """The ``seen`` keys, sorted."""
        return self.section("seen").rows

    def which(self, keys: pa.Array) -> list[int]:
        """The positions in ``keys`` (uint32) of those among the ``seen`` keys (reading only
        the parts that can hold them when there are fewer keys than parts: a hunt)."""
        if len(keys) == 0:
            return []
        parts = self.groups["seen"]
        if "seen" in self._read or len(keys) >= len(parts):
            seen = self.seen()
        else:
            values = keys.to_pylist()
            # the seen keys are in ``row``
            wanted = self._parts("seen", 1, lambda lo, hi: any(lo <= k <= hi for k in values))
            seen = self._section("seen", wanted).rows
        if len(seen) == 0:
            return []
        at = pc.min_element_wise(pc.search_sorted(seen, keys), len(seen) - 1)
        found: list[int] = pc.indices_nonzero(pc.equal(seen.take(at), keys)).to_pylist()
        return found


def read(path: Path, size: int, rows: int) -> Index:
    """The index at ``path`` (``size`` bytes as the manifest says) of a segment of ``rows``
    rows, its sections not read yet; IndexDamagedError if it is missing, cut short, of
    another format or damaged (every page's CRC is checked as it is read)."""
    present(path, size)
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        meta = pf.schema_arrow.metadata or {}
        if meta.get(b"format") != FORMAT.encode() or b"sections" not in meta:
            raise IndexDamagedError(f"{path}: not a history index ({FORMAT})")
        counts = [int(n) for n in meta[b"sections"].split(b",")]
        part = int(meta.get(b"part", b"0"))
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise IndexDamagedError(f"{path}: damaged ({exc})") from None
    if len(counts) != len(SECTIONS) or part < 1:
        raise IndexDamagedError(f"{path}: its sections are not what it says")
    groups, at = {}, 0
    for name, n in zip(SECTIONS, counts, strict=True):
        groups[name] = range(at, at + _groups(n, part))
        at += len(groups[name])
    md = pf.metadata
    if md.num_row_groups != at or any(
        sum(md.row_group(g).num_rows for g in groups[name]) != n
        for name, n in zip(SECTIONS, counts, strict=True)
    ):
        raise IndexDamagedError(f"{path}: its sections are not the row groups it says")
    return Index(path, pf, dict(zip(SECTIONS, counts, strict=True)), groups, rows)


def check(path: Path, size: int, rows: int) -> None:
    """Read the index in full and check it against its segment's row count."""
    idx = read(path, size, rows)
    try:
        idx.file.read(use_threads=False)  # every page, its CRC checked
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise IndexDamagedError(f"{path}: damaged ({exc})") from None
    for name in SECTIONS:
        sec = idx.section(name)
        try:
            sec.keys.validate(full=True)
        except pa.ArrowException as exc:
            raise IndexDamagedError(f"{path}: damaged {name} section ({exc})") from None
        if name != "seen" and len(sec.rows) and pc.max(sec.rows).as_py() >= rows:
            raise IndexDamagedError(f"{path}: {name} section names a row past the segment's {rows}")


def present(path: Path, size: int) -> None:
    """The cheap check (``status``): the index is there with the size the manifest says."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise IndexDamagedError(f"{path}: missing") from None
    except OSError as exc:
        raise IndexDamagedError(f"{path}: unreadable ({exc.strerror})") from None
    if actual != size:
        raise IndexDamagedError(f"{path}: {actual} bytes, the manifest says {size}")
