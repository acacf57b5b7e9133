# SPDX-License-Identifier: Apache-2.0
"""The replies of the query log the store does not hold yet, for ``hunt``.

The daemon commits what correlate folds every ``history.commit_every``; until
then the newest replies are only in the query log (as are those of a store
that fell behind: busy with an import, or on a full disk). ``hunt`` reads the
bytes of the recent query-log files that the store does not hold, keeps the
lines its values match and folds them as the store would, so that its answer
reaches up to now. Files older than ``commit_every`` plus :data:`BEHIND` are
left out: what the store misses of those is for ``history import`` to load.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..correlate.inputs import FP_LEN, content_ends_at, file_size, fingerprint, retro_files
from ..correlate.retro_store import plan
from ..correlate.scan import Hit, scan_file
from ..dnslog import ReadStats
from .aggregate import Batch

if TYPE_CHECKING:
    from ..config import Config
    from ..correlate.indicators import Matcher

BEHIND = timedelta(days=1)
"""How far behind correlate the store may have fallen and still be made up for here."""


def applies(config: Config) -> bool:
    """Whether correlate fills the store from the query log (then its tail is read)."""
    return config.history.enabled and config.correlation.live_input == "query_log"


def unheld(
    config: Config, matcher: Matcher, *, since_us: int | None = None, now: datetime | None = None
) -> tuple[pa.Table, ReadStats]:
    """Rows (the store's schema, unsorted) of the matching query-log lines the store
    does not hold, and what reading them counted."""
    now = now or datetime.now(UTC)
    since = now - config.history.commit_every - BEHIND
    if since_us is not None:
        since = max(since, datetime.fromtimestamp(since_us / 1e6, UTC))
    files = retro_files(config, since)
    part = plan(config, files, FP_LEN, fingerprint)
    batch = Batch()
    stats = ReadStats()

    def on_hit(rec: Any, _hits: list[Hit]) -> None:
        batch.add((rec,))

    corr = config.correlation
    for path in files:
        size = file_size(path)
        for lo, hi in part.gaps.get(path, [(0, None)]):
            if hi is None and content_ends_at(path, lo, size):
                continue  # the store holds all of it
            scan_file(
                path,
                matcher,
                stats,
                on_hit,
                offset=lo,
                end=hi,
                limit=size,
                complete=path != corr.queries_file,  # the live log may still grow
                max_line_bytes=corr.max_line_bytes,
                gzip_backend="zlib",
            )
    return batch.table(), stats


UNREAD = tuple(k for k in ReadStats.SKIP_KINDS if k != "missing_fields")
"""What :func:`problems` reports: lines that could not be read. A reply without a
query name (``missing_fields``) was read: there is nothing in it to hunt for."""


def problems(stats: ReadStats) -> list[str]:
    """What :func:`unheld` could not read, for the user: a line counting each kind of
    skipped line, then the first few places; empty when it read everything."""
    kinds = stats.counts(UNREAD)
    if not kinds:
        return []
    head = "skipped part of the query log the store does not hold yet: " + ", ".join(kinds)
    return [head, *stats.examples_of(UNREAD)[:5]]
