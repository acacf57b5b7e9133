# SPDX-License-Identifier: Apache-2.0
"""Archive files the history store does not hold yet: the query log stays the
source of truth until the store holds its lines durably.

The store's manifest says which byte ranges of which file (by the fingerprint
correlate computes from the content's first bytes) it holds; correlate's
checkpoint says how far it read each file. An archive file is held back when

* the store knows it but does not hold its content from the start to its end
  (a gzip file's end as its trailer gives it), or holds less than correlate
  read of it: the store is behind and catches up from this file;
* the store does not know it but correlate read it: the store was busy or
  failed and catches up from this file on correlate's next run;
* the manifest cannot be read: the remedy for a damaged manifest is to import
  the archive again, so none of it goes.

A file neither knows was written before correlate fed the store (its first
run leaves the history to retro) and nothing would ever add it on its own:
holding it would keep the archive for ever; ``history import`` loads it.
Files older than ``retention.history`` are not held either: the store would
drop their rows at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..correlate.inputs import FP_LEN, content_ends_at, fingerprint
from ..correlate.output import load_state
from ..dnslog import head_bytes
from ..errors import AgentError

if TYPE_CHECKING:
    from ..history.manifest import SourceInfo

log = logging.getLogger(__name__)

NOT_HELD = "not in the history store yet"
UNREADABLE = "history store unreadable (the archive is what it is rebuilt from)"


@dataclass
class StoreHold:
    """Why an archive file must wait for the store (``reason``), or None."""

    sources: dict[str, SourceInfo] | None
    """The manifest's sources; None when the manifest cannot be read."""
    read: dict[str, int] = field(default_factory=dict)
    """Fingerprint -> how far correlate read that file (its checkpoint)."""
    older_than: float = 0.0
    """Files last modified before this (epoch s) are past the store's age."""
    _cache: dict[tuple[Path, float, int], str | None] = field(default_factory=dict)

    def reason(self, path: Path, mtime: float, size: int) -> str | None:
        if mtime < self.older_than:
            return None
        key = (path, mtime, size)
        if key not in self._cache:
            self._cache[key] = self._reason(path, size)
        return self._cache[key]

    def _reason(self, path: Path, size: int) -> str | None:
        if self.sources is None:
            return UNREADABLE
        head = head_bytes(path, FP_LEN)
        if not head:
            return None  # empty: no line to hold
        fp = fingerprint(head)
        info = self.sources.get(fp)
        read = self.read.get(fp)
        if info is None:
            return None if read is None else NOT_HELD
        from ..history.manifest import covered_end  # noqa: PLC0415

        end = covered_end(info.ranges, 0)
        if end is None or (read is not None and end < read):
            return NOT_HELD
        if not content_ends_at(path, end, size):
            return NOT_HELD
        return None


def store_hold(config: Config, now: datetime) -> StoreHold | None:
    """What the store still needs of the archive; None when correlate does not fill it."""
    if not config.history.enabled or config.correlation.live_input != "query_log":
        return None
    older_than = (now - config.retention.history).timestamp()
    root = config.history.dir
    sources: dict[str, SourceInfo] | None = {}
    if config.history.engine == "clickhouse":
        sources = _cluster_sources(config)
    elif (root / "MANIFEST.json").exists():
        from ..history import HistoryStore  # noqa: PLC0415 - pyarrow only when used

        try:
            sources = HistoryStore(root).manifest().sources
        except AgentError as exc:
            log.warning("retention: %s; the archive is kept", exc)
            sources = None
    out = StoreHold(sources, older_than=older_than)
    try:
        state = load_state(config.correlation.state_dir / "correlate.state.json")
    except AgentError as exc:
        log.warning("%s", exc)
    else:
        out.read = {m.fp: m.offset for m in state.files}
    return out


def _cluster_sources(config: Config) -> dict[str, SourceInfo] | None:
    """What this server's shard of the ClickHouse cluster holds, as the manifest's
    sources; None (the archive is kept) when the cluster cannot be asked."""
    from ..history.clickhouse import ClusterStore  # noqa: PLC0415
    from ..history.clickhouse.writer import held_ranges  # noqa: PLC0415
    from ..history.manifest import SourceInfo  # noqa: PLC0415

    try:
        held = held_ranges(ClusterStore.from_config(config).client, local=True)
    except (AgentError, OSError, ValueError) as exc:
        log.warning("retention: %s; the archive is kept", exc)
        return None
    return {fp: SourceInfo(ranges, "") for fp, ranges in held.items()}
