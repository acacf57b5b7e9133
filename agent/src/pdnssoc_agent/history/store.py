# SPDX-License-Identifier: Apache-2.0
"""The history store on disk: a directory of day partitions and a manifest.

Layout (Hive-style partitions, readable as one data set by DuckDB or Spark)::

    <root>/MANIFEST.json
    <root>/day=2026-01-05/seg-00000042.parquet
    <root>/.writer.lock

One process writes at a time (:meth:`HistoryStore.writer`); readers need no
lock: they read the manifest once and only the files it lists, which are never
changed once written (compaction and expiry write new files, switch the
manifest, then delete the old ones).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BusyError
from .manifest import NAME, Manifest, SegmentInfo, StoreError, load

if TYPE_CHECKING:
    from .writer import Writer

log = logging.getLogger(__name__)

LOCK = ".writer.lock"


class HistoryStore:
    """A history store at ``root``; rows are bucketed by ``bucket`` ("hour" or "day")."""

    def __init__(self, root: Path, *, bucket: str = "hour") -> None:
        self.root = root
        self.bucket = bucket
        self.manifest_path = root / NAME

    def manifest(self) -> Manifest:
        """The committed manifest (an empty one for a new store)."""
        m = load(self.manifest_path)
        if m is None:
            return Manifest(bucket=self.bucket)
        if m.bucket != self.bucket:
            raise StoreError(
                f"{self.manifest_path}: the store holds {m.bucket} buckets, "
                f"the configuration asks for {self.bucket}"
            )
        return m

    def segment_path(self, seg: SegmentInfo) -> Path:
        return self.root / seg.path

    def size_on_disk(self) -> int:
        """Bytes of every file the manifest lists, plus the manifest."""
        m = self.manifest()
        total = sum(s.bytes + s.index for s in m.segments)
        with contextlib.suppress(OSError):
            total += self.manifest_path.stat().st_size
        return total

    def verify(self) -> list[str]:
        """Read every listed segment in full (every page's checksum); the problems found."""
        return [p for seg in self.manifest().segments if (p := self.check(seg)) is not None]

    def check(self, seg: SegmentInfo, *, full: bool = True) -> str | None:
        """What is wrong with one segment (None: nothing). ``full``: read every page
        (its checksum); else only its size, footer and format (cheap)."""
        from . import index  # noqa: PLC0415
        from .segment import SegmentError, open_segment, read  # noqa: PLC0415

        path = self.segment_path(seg)
        try:
            if full:
                read(path, seg.bytes)
            else:
                open_segment(path, seg.bytes)
            if seg.index and full:
                index.check(index.path_for(path), seg.index, seg.rows)
            elif seg.index:
                index.present(index.path_for(path), seg.index)
        except SegmentError as exc:
            return str(exc)
        return None

    @contextlib.contextmanager
    def writer(self) -> Iterator[Writer]:
        """Exclusive write access (BusyError if another process has it).

        Files a crashed writer left behind (segments never listed in the
        manifest, temporary files) are removed first: the query-log bytes they
        were built from are not marked as held, so they are read again.
        """
        from .writer import Writer  # noqa: PLC0415 - writer imports this module

        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BusyError(
                    f"{self.root}: another process is writing the history store"
                ) from None
            m = self.manifest()
            self.remove_strays(m)
            yield Writer(self, m)
        finally:
            os.close(fd)

    def remove_strays(self, m: Manifest) -> list[Path]:
        """Delete segment and temporary files the manifest does not list."""
        listed = {s.path for s in m.segments}
        listed |= {s.path.removesuffix(".parquet") + ".idx" for s in m.segments if s.index}
        removed: list[Path] = []
        for d in sorted(self.root.glob("day=*")):
            if not d.is_dir():
                continue
            for f in sorted(d.iterdir()):
                rel = f"{d.name}/{f.name}"
                ours = f.suffix in (".parquet", ".idx")
                stray = f.name.endswith(".tmp") or (ours and rel not in listed)
                if stray and f.is_file():
                    f.unlink()
                    removed.append(f)
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty
        for f in self.root.glob(f".{NAME}.*.tmp"):
            f.unlink()
            removed.append(f)
        if removed:
            log.info(
                "history: removed %d file(s) an interrupted write left (their log lines "
                "will be read again)",
                len(removed),
            )
        return removed


__all__ = ["HistoryStore", "StoreError"]
