# SPDX-License-Identifier: Apache-2.0
"""An embedded store moved into the cluster: how a server that grows into a
cluster keeps the history its raw archive no longer has.

The store's history outlives the raw archive (400 days against 30 by
default), so the archive alone cannot refill a cluster. ``history import``
of a store's directory (the one holding ``MANIFEST.json``) inserts its rows
into this server's shard as one batch, and the commit point is as for
correlate's batches: rows first (uncounted until committed), then one insert
into ``batches_local`` holding the byte ranges of the query-log files the
store holds (so that importing those files again, or correlate reading them,
adds nothing) and one range per segment, ``segment:<SHA-256 of its file>``,
by which importing the same store again is known and adds nothing. A crash
before the commit leaves rows that are never counted; the next import
inserts them again under a new batch.

A store that overlaps what the cluster already holds (some of its query-log
files are in the cluster already, or some but not all of its segments) is
refused, naming the first overlap: counting a reply twice would falsify
hunt's counts and retro's alerts.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import manifest, segment
from ..manifest import StoreError
from .client import Client
from .schema import batch_rows, history_rows
from .writer import held_ranges

SEGMENT_KEY = "segment:"


@dataclass
class StoreImport:
    """What one import of a store did."""

    segments: int = 0
    rows: int = 0
    replies: int = 0
    files: int = 0
    """Query-log files whose ranges the cluster now holds."""
    held: bool = False
    """The cluster held the whole store already: nothing was added."""


def is_store(path: Path) -> bool:
    """Whether ``path`` is an embedded store's directory."""
    return (path / manifest.NAME).is_file()


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_store(root: Path, client: Client) -> StoreImport:
    """Insert the store at ``root`` into ``client``'s shard (see the module docstring)."""
    m = manifest.load(root / manifest.NAME)
    if m is None:
        raise StoreError(f"{root}: no {manifest.NAME}: not a history store")
    result = StoreImport()
    keys = [SEGMENT_KEY + _digest(root / seg.path) for seg in m.segments]
    held = held_ranges(client, local=False)
    present = [k in held for k in keys]
    if keys and all(present):
        result.held = True
        return result
    if any(present):
        seg = m.segments[present.index(True)]
        raise StoreError(
            f"{root}: the cluster holds some of this store's segments already "
            f"({seg.path}) but not all: an earlier import of it was interrupted after "
            "its commit, or another store shares them; nothing imported"
        )
    for fp, info in m.sources.items():
        for lo, hi in info.ranges:
            whole, part = manifest.overlap(held.get(fp, []), lo, hi)
            if whole or part:
                raise StoreError(
                    f"{root}: the cluster holds bytes {lo}-{hi} of {info.path or fp} already "
                    "(correlate or an import put that query-log file in the cluster): "
                    "importing the store would count those replies twice; nothing imported"
                )
    batch = uuid.uuid4().hex
    db = client.database
    for seg in m.segments:
        try:
            table = segment.read(root / seg.path, seg.bytes)
        except segment.SegmentError as exc:  # nothing is counted before the commit below
            raise StoreError(f"{exc}; nothing imported") from None
        if table.num_rows:
            client.execute(
                f"INSERT INTO {db}.history_local FORMAT RowBinary",
                b"".join(history_rows(table, batch)),
            )
        result.segments += 1
        result.rows += table.num_rows
        result.replies += seg.replies
    ranges = [(fp, lo, hi, info.path) for fp, info in m.sources.items() for lo, hi in info.ranges]
    ranges += [(key, 0, seg.bytes, seg.path) for key, seg in zip(keys, m.segments, strict=True)]
    client.execute(
        f"INSERT INTO {db}.batches_local FORMAT RowBinary",
        batch_rows(batch, ranges, int(time.time())),
    )
    result.files = len(m.sources)
    return result
