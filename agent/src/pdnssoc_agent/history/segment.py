# SPDX-License-Identifier: Apache-2.0
"""Segment files: the rows of one day from one commit, as a Parquet file.

Rows are sorted by reversed query name (see :func:`.aggregate.reverse_name`),
then sensor, client and first-seen time, so a domain and its subdomains are
one range of the file, in row groups of :data:`ROW_GROUP` rows compressed
with zstd; every page carries a CRC that is checked when it is read. A file
is written beside its final name, fsynced and renamed, so a reader never
sees half of one.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..fsutil import atomic_writer
from .schema import FORMAT, SCHEMA, SORT_KEYS

ROW_GROUP = 32 * 1024
ZSTD_LEVEL = 6
# Sorted names are kept plain: zstd takes most of what prefix coding
# (DELTA_BYTE_ARRAY, which segments written before used) would, at a third of
# its cost to decode, and every search decodes the whole column; times as
# split bytes; the rest (few distinct values, or repeated along a name's rows)
# by dictionary.
ENCODING = {"rname": "PLAIN", "first": "BYTE_STREAM_SPLIT"}
DICTIONARY = [f.name for f in SCHEMA if f.name not in ENCODING]


class SegmentError(Exception):
    """A segment file is missing, cut short or damaged; the message names it."""


def sort_table(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=SORT_KEYS))


def write(table: pa.Table, path: Path) -> int:
    """Write ``table`` (sorted) to ``path`` durably and atomically; returns its size."""
    with atomic_writer(path, 0o640, binary=True) as fh:
        pq.write_table(
            table,
            fh,
            row_group_size=ROW_GROUP,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=DICTIONARY,
            column_encoding=ENCODING,
            write_page_checksum=True,
            sorting_columns=pq.SortingColumn.from_ordering(SCHEMA, SORT_KEYS),
        )
    return path.stat().st_size


def open_segment(path: Path, size: int, dictionary: list[str] | None = None) -> pq.ParquetFile:
    """Open a segment for reading, checking that it is whole and ours; the string
    columns named in ``dictionary`` are read as dictionary arrays."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise SegmentError(f"{path}: missing") from None
    except OSError as exc:
        raise SegmentError(f"{path}: unreadable ({exc.strerror})") from None
    if actual != size:
        raise SegmentError(f"{path}: {actual} bytes, the manifest says {size}")
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True, read_dictionary=dictionary)
    except (OSError, pa.ArrowException) as exc:
        raise SegmentError(f"{path}: not a readable Parquet file ({exc})") from None
    meta = pf.schema_arrow.metadata or {}
    if meta.get(b"format") != FORMAT.encode():
        raise SegmentError(f"{path}: not a history segment ({FORMAT})")
    return pf


def read(path: Path, size: int, columns: list[str] | None = None) -> pa.Table:
    """The rows of a segment (``columns`` only), raising SegmentError if it is damaged."""
    pf = open_segment(path, size)
    try:
        return pf.read(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise SegmentError(f"{path}: damaged ({exc})") from None
