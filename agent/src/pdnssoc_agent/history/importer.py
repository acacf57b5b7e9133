# SPDX-License-Identifier: Apache-2.0
"""``history import``: load existing query-log archives into the store.

Files are go-dnscollector JSON lines (plain or gzip) or pdnssoc-cli's minified
archive (gzip). Each file is known by the fingerprint correlate uses (the
first bytes of its content), so a file imported twice, a plain file and its
gzip copy, or a file correlate has already put in the store are counted once:
only the bytes the store does not hold are read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..correlate.inputs import FP_LEN, content_ends_at, fingerprint
from ..correlate.retro import ProgressFactory, ProgressReport
from ..dnslog import LineReader, ReadStats, head_bytes
from .backend import Store, StoreWriter
from .manifest import covered_end
from .records import decode_chunk
from .store import HistoryStore
from .writer import Source

log = logging.getLogger(__name__)

COMMIT_ROWS = 200_000
"""Commit once the batch holds this many rows (memory), and at the end of each file."""


@dataclass
class ImportResult:
    files: int = 0
    held: int = 0
    """Files the store held in full already (not read)."""
    replies: int = 0
    """Replies added."""
    stats: ReadStats = field(default_factory=ReadStats)


class _Silent:
    """No progress report (the command passes a terminal display)."""

    def __init__(self, total_bytes: int, total_files: int) -> None:
        pass

    def update(self, files_done: int, lines: int, bytes_done: int, *, final: bool = False) -> None:
        return


def import_files(
    store: HistoryStore | Store,
    paths: list[Path],
    *,
    progress: ProgressFactory | None = None,
    max_line_bytes: int = 65536,
    now: datetime | None = None,
) -> ImportResult:
    """Add what the store does not hold of ``paths`` (files, in the order given)."""
    result = ImportResult()
    sizes = [_size(p) for p in paths]
    bar: ProgressReport = (progress or _Silent)(sum(sizes), len(paths))
    done = 0
    with store.writer() as w:
        for i, path in enumerate(paths):

            def tick(raw: int, i: int = i, base: int = done) -> None:
                bar.update(i, result.stats.lines, base + raw)

            _one(w, path, result, max_line_bytes, tick)
            done += sizes[i]
        w.commit()
        today = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
        w.compact(full_before=today)
    bar.update(len(paths) - 1, result.stats.lines, done, final=True)
    return result


def _one(
    w: StoreWriter,
    path: Path,
    result: ImportResult,
    max_line_bytes: int,
    tick: Callable[[int], None],
) -> None:
    head = head_bytes(path, FP_LEN)
    result.files += 1
    if not head:
        return
    fp = fingerprint(head)
    start = covered_end(w.held(fp), 0) or 0
    if start and content_ends_at(path, start, _size(path)):
        result.held += 1
        log.info("%s: already in the history store", path)
        return
    stats = ReadStats(files=1)
    reader = LineReader(path, stats, offset=start, max_line_bytes=max_line_bytes, complete=True)
    where = str(path)
    for chunk in reader.chunks():
        at = chunk.end - len(chunk.data)
        records = decode_chunk(chunk.data, stats, where, at)
        before = w.batch.replies
        w.add(records, Source(fp, at, chunk.end, where))
        result.replies += w.batch.replies - before
        if len(w.batch) >= COMMIT_ROWS:
            w.commit()
        tick(chunk.raw_position)
    w.commit()
    stats.bytes = reader.offset - start
    result.stats.merge(stats)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
