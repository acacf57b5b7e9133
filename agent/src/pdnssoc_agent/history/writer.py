# SPDX-License-Identifier: Apache-2.0
"""Filling the store: batches of decoded records, tied to the log bytes they came from.

The caller (correlate, ``history import``) reads the query log once and hands
each chunk's records here with the chunk's place in the log: the file's
fingerprint (as correlate computes it from the content's first bytes) and the
byte range of the (decompressed) content. :meth:`Writer.commit` writes the
rows and records those ranges in one manifest replacement, so:

* bytes already held are skipped (``add`` returns False): reading the same
  file again, or importing it twice, counts it once;
* a crash before the manifest is replaced loses the new segment files (they
  are removed on the next open), never the log lines, which are read again.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from . import compact, index, manifest, retention, segment
from .aggregate import Batch
from .manifest import Manifest, SegmentInfo, StoreError
from .records import Record
from .schema import BUCKET_SECONDS
from .store import HistoryStore

log = logging.getLogger(__name__)


class Source(NamedTuple):
    """Where a batch of records was read: fingerprint, content byte range, file name."""

    fp: str
    start: int
    end: int
    path: str = ""


@dataclass
class CommitResult:
    rows: int = 0
    replies: int = 0
    segments: list[SegmentInfo] = field(default_factory=list)
    skipped: int = 0
    """Sources left out because the store already held them."""


@dataclass
class Pending:
    """A writer's batch that is not committed yet: the folded rows and the query-log
    byte ranges they were read from. The daemon carries it from one correlate run's
    writer to the next (:meth:`BatchWriter.take_pending`, :meth:`BatchWriter.adopt`)."""

    batch: Batch
    sources: list[Source]


class BatchWriter(ABC):
    """What both engines' writers share: folding records into a batch, tied to the
    log bytes they came from, so that no byte range is added twice."""

    what = "the history store"

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.batch = Batch(bucket)
        self.pending: list[Source] = []
        self._pending_ranges: dict[str, list[list[int]]] = {}
        self.skipped = 0

    @abstractmethod
    def held(self, fp: str) -> list[list[int]]:
        """Byte ranges of the file with fingerprint ``fp`` held (committed)."""

    def holding(self, fp: str) -> list[list[int]]:
        """:meth:`held`, and the ranges of the batch not committed yet."""
        ranges = self._pending_ranges.get(fp)
        return [list(r) for r in ranges] if ranges is not None else self.held(fp)

    def _partly_held(self, source: Source, ranges: list[list[int]]) -> str:
        return (
            f"{source.path or source.fp}: bytes {source.start}-{source.end} are partly in "
            f"{self.what} already (held: {ranges})"
        )

    def add(self, records: Iterable[Record], source: Source) -> bool:
        """Fold in the records read from ``source``; False (and nothing added) when the
        store already holds that range. A range partly held is an error: the caller
        must cut its reading where the held range ends."""
        if source.end < source.start:
            raise ValueError(f"{source.path}: range {source.start}-{source.end} is backwards")
        ranges = self._pending_ranges.get(source.fp)
        if ranges is None:
            ranges = self._pending_ranges[source.fp] = self.held(source.fp)
        whole, part = manifest.overlap(ranges, source.start, source.end)
        if source.end == source.start or whole:
            self.skipped += 1
            return False
        if part:
            raise StoreError(self._partly_held(source, ranges))
        self.batch.add(records, source.path)
        self.pending.append(source)
        self._pending_ranges[source.fp] = manifest.add_range(ranges, source.start, source.end)
        return True

    def _reset(self) -> None:
        self.batch = Batch(self.bucket)
        self.pending = []
        self._pending_ranges = {}

    def take_pending(self) -> Pending | None:
        """The batch not committed (None if empty), handed over: this writer is left empty."""
        if not self.pending:
            return None
        taken = Pending(self.batch, self.pending)
        self._reset()
        return taken

    def adopt(self, taken: Pending) -> bool:
        """Take over a batch another writer of this store left uncommitted. False (and
        nothing taken) when the store meanwhile holds any of its byte ranges (another
        process added them): those rows would be counted twice."""
        if self.pending:
            raise StoreError("adopt a batch into an empty writer only")
        ranges: dict[str, list[list[int]]] = {}
        for s in taken.sources:
            held = self.held(s.fp)
            whole, part = manifest.overlap(held, s.start, s.end)
            if whole or part:
                return False
            ranges[s.fp] = manifest.add_range(ranges.get(s.fp, held), s.start, s.end)
        self.batch, self.pending, self._pending_ranges = taken.batch, list(taken.sources), ranges
        return True


class Writer(BatchWriter):
    """Adds batches to the store; obtained from :meth:`HistoryStore.writer`."""

    def __init__(self, store: HistoryStore, m: Manifest) -> None:
        super().__init__(store.bucket)
        self.store = store
        self.manifest = m

    # ------------------------------------------------------------ positions

    def held(self, fp: str) -> list[list[int]]:
        """Byte ranges of the file with fingerprint ``fp`` the store holds (committed)."""
        info = self.manifest.sources.get(fp)
        return [list(r) for r in info.ranges] if info is not None else []

    def resume_at(self, fp: str, offset: int = 0) -> int:
        """Where to read ``fp`` from so as to add nothing twice: the end of the held
        range that contains ``offset``, else ``offset`` itself."""
        end = manifest.covered_end(self.held(fp), offset)
        return offset if end is None else end

    def _partly_held(self, source: Source, ranges: list[list[int]]) -> str:
        return (
            f"{super()._partly_held(source, ranges)}; read from "
            f"{self.resume_at(source.fp, source.start)}"
        )

    def rename_source(self, old_fp: str, new_fp: str) -> None:
        """Carry what is held of a file over to its new fingerprint, durably.

        correlate lengthens the fingerprint of a file first seen shorter than
        its fingerprint length; the store must follow, or it would take the
        grown file for a new one and add its first bytes again.
        """
        if self.pending:
            raise StoreError("commit the batch before renaming a source")
        m = self.manifest
        info = m.sources.get(old_fp)
        if info is None or old_fp == new_fp:
            return
        if new_fp in m.sources:
            raise StoreError(f"{info.path}: fingerprint {new_fp} is already another file's")
        sources = {(new_fp if k == old_fp else k): v for k, v in m.sources.items()}
        new = manifest.Manifest(
            version=m.version, bucket=m.bucket, next_seq=m.next_seq,
            segments=m.segments, sources=sources,
        )  # fmt: skip
        manifest.save(self.store.manifest_path, new)
        self.manifest = new

    # ------------------------------------------------------------ ingest

    def commit(self) -> CommitResult:
        """Write what was added as one segment per day, then the manifest; durable on return."""
        result = CommitResult(skipped=self.skipped)
        self.skipped = 0
        if not self.pending:
            return result
        table = self.batch.table()
        result.replies = self.batch.replies
        day_no = pc.divide(pc.cast(table["first"], pa.int64()), 86_400_000_000)
        by_day = {
            datetime.fromtimestamp(d * 86400, UTC).strftime("%Y-%m-%d"): d
            for d in pc.unique(day_no).to_pylist()
        }
        m = self.manifest
        new = manifest.Manifest(
            version=m.version, bucket=m.bucket, next_seq=m.next_seq,
            segments=list(m.segments),
            sources={k: manifest.SourceInfo(list(v.ranges), v.path, v.last_day)
                     for k, v in m.sources.items()},
        )  # fmt: skip
        written: list[SegmentInfo] = []
        try:
            for day in sorted(by_day):
                part = table if len(by_day) == 1 else table.filter(pc.equal(day_no, by_day[day]))
                replies = pc.sum(part["count"]).as_py() or 0
                written.append(self._write(new, day, segment.sort_table(part), replies))
            newest = max(by_day) if by_day else ""
            for s in self.pending:
                src = new.sources.get(s.fp)
                if src is None:
                    src = new.sources[s.fp] = manifest.SourceInfo([], s.path)
                src.ranges = manifest.add_range(src.ranges, s.start, s.end)
                src.path = s.path or src.path
                src.last_day = max(src.last_day, newest)
            new.segments.extend(written)
            manifest.save(self.store.manifest_path, new)
        except BaseException:
            for info in written:  # never listed: take them away now rather than on next open
                self._unlink(info)
            raise
        self.manifest = new
        self._reset()
        result.rows = sum(s.rows for s in written)
        result.segments = written
        return result

    def _write(self, m: Manifest, day: str, table: pa.Table, replies: int) -> SegmentInfo:
        rel = f"day={day}/seg-{m.next_seq:08d}.parquet"
        m.next_seq += 1
        size = segment.write(table, self.store.root / rel)
        try:
            idx = index.write(table, self.store.root / rel) if index.wanted(table.num_rows) else 0
        except BaseException:
            with contextlib.suppress(OSError):
                (self.store.root / rel).unlink()
            raise
        first = table["first"].cast(pa.int64())
        last = pc.add(first, table["span_us"])
        return SegmentInfo(
            path=rel, day=day, rows=table.num_rows, replies=replies, bytes=size,
            first_us=pc.min(first).as_py(), last_us=pc.max(last).as_py(), index=idx,
        )  # fmt: skip

    def _unlink(self, info: SegmentInfo) -> None:
        """Remove a segment file and its index (either may be gone already)."""
        seg = self.store.segment_path(info)
        for p in (seg, index.path_for(seg)):
            with contextlib.suppress(OSError):
                p.unlink()

    # ------------------------------------------------------------ upkeep

    def compact(self, *, full_before: str | None = None) -> int:
        """Merge segments; returns how many were merged away.

        Days before ``full_before`` (a ``YYYY-MM-DD`` date: the days that are
        over) become one segment each. A day still being written is left as
        its commits wrote it unless it has more than :data:`compact.MAX_OPEN`
        segments, when they are merged size-tiered (see :mod:`.compact`).
        """
        m = self.manifest
        days: dict[str, list[SegmentInfo]] = {}
        for s in m.segments:
            days.setdefault(s.day, []).append(s)
        merged = 0
        for day, listed in sorted(days.items()):
            full = full_before is not None and day < full_before
            if not full and len(listed) <= compact.MAX_OPEN:
                continue
            segs = listed
            while True:
                group = compact.pick(segs, full=full)
                if not group:
                    break
                info = self._merge(day, group)
                segs = [s for s in segs if s not in group] + [info]
                merged += len(group) - 1
                if full:
                    break
        return merged

    def _merge(self, day: str, group: list[SegmentInfo]) -> SegmentInfo:
        tables = [segment.read(self.store.segment_path(s), s.bytes) for s in group]
        table = compact.merge_rows(pa.concat_tables(tables), BUCKET_SECONDS[self.store.bucket])
        m = self.manifest
        new = manifest.Manifest(
            version=m.version, bucket=m.bucket, next_seq=m.next_seq,
            segments=[s for s in m.segments if s not in group], sources=m.sources,
        )  # fmt: skip
        info = self._write(new, day, table, sum(s.replies for s in group))
        new.segments.append(info)
        try:
            manifest.save(self.store.manifest_path, new)
        except BaseException:
            self._unlink(info)
            raise
        self.manifest = new
        for s in group:
            self._unlink(s)
        return info

    def expire(self, keep: timedelta, *, now: datetime | None = None,
               dry_run: bool = False) -> retention.Plan:  # fmt: skip
        """Remove the days older than ``keep`` (whole partitions); ``dry_run`` only lists them."""
        plan = retention.plan(self.manifest, keep, now or datetime.now(UTC))
        if dry_run or not plan.segments:
            return plan
        m = self.manifest
        gone = {s.path for s in plan.segments}
        new = manifest.Manifest(
            version=m.version, bucket=m.bucket, next_seq=m.next_seq,
            segments=[s for s in m.segments if s.path not in gone],
            sources={k: v for k, v in m.sources.items() if k not in plan.sources},
        )  # fmt: skip
        manifest.save(self.store.manifest_path, new)  # the commit point: files go after
        self.manifest = new
        for s in plan.segments:
            self._unlink(s)
        for day in {s.day for s in plan.segments}:
            with contextlib.suppress(OSError):
                (self.store.root / f"day={day}").rmdir()
        return plan
