# SPDX-License-Identifier: Apache-2.0
"""What retention must never remove, whatever the age or the free space.

* the live query log and its rotated copies still beside it, and the alerts
  file (they are written to);
* an archive file ``correlate`` may still have to read: rotated after
  ``correlation.last`` (less the rotation slack ``correlate`` allows itself),
  unless its content is recorded as read to its end (all of the archive while
  correlate has never run on the query log);
* an archive file inside retro's look-back that retro has not searched yet
  (written after ``retro.last``; all of the look-back while retro never ran);
* an archive file the history store does not hold to its end yet, when
  correlate fills the store (:mod:`.store_hold`);
* a day of the history store inside retro's look-back that retro has not
  searched yet (its end after ``retro.last``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..config import Config
from ..correlate.inputs import ROTATION_SLACK, rotated_query_logs
from ..correlate.output import load_state
from ..errors import StateError
from ..state import read_pointer
from .store_hold import StoreHold, store_hold
from .store_target import NAME as HISTORY
from .targets import Candidate

log = logging.getLogger(__name__)


@dataclass
class Protection:
    """Why a file may not go (``reason``), or None when it may."""

    never: set[Path] = field(default_factory=set)
    archive: Path | None = None
    correlate_from: float | None = None
    """Archive files modified at or after this (epoch s) may be unread by correlate."""
    correlate_read: set[str] = field(default_factory=set)
    """Paths correlate recorded as read to their end, with their stat key."""
    retro_from: float | None = None
    """Archive files modified at or after this (epoch s) are not searched by retro yet."""
    store: StoreHold | None = None
    """What the history store does not hold yet (None: correlate does not fill it)."""

    def reason(self, c: Candidate) -> str | None:
        if c.path in self.never:
            return "written to"
        if c.target == HISTORY:
            if self.retro_from is not None and c.mtime > self.retro_from:
                return "not searched by retro yet"
            return None
        if self.archive is None or not c.path.is_relative_to(self.archive):
            return None
        if (
            self.correlate_from is not None
            and c.mtime >= self.correlate_from
            and _stat_key(c.path) not in self.correlate_read
        ):
            return "not read by correlate yet"
        if self.retro_from is not None and c.mtime >= self.retro_from:
            return "not searched by retro yet"
        if self.store is not None:
            return self.store.reason(c.path, c.mtime, c.size)
        return None


def _stat_key(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return ""
    return f"{path}|{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _pointer(path: Path) -> datetime | None:
    try:
        return read_pointer(path)
    except ValueError as exc:
        log.warning("%s; treating it as never run", exc)
        return None


def protection(config: Config, now: datetime) -> Protection:
    """What may not be removed now."""
    corr = config.correlation
    out = Protection(archive=corr.archive_dir)
    out.never = {corr.queries_file, corr.output_dir / "matches.json"}
    out.never.update(rotated_query_logs(corr.queries_file))
    if corr.live_input == "query_log":
        last = _pointer(corr.last_correlation_pointer_file)
        out.correlate_from = 0.0 if last is None else (last - ROTATION_SLACK).timestamp()
        try:
            state = load_state(corr.state_dir / "correlate.state.json")
        except StateError as exc:
            log.warning("%s", exc)
        else:
            out.correlate_read = {f"{m.path}|{m.stat}" for m in state.files if m.stat}
    retro_last = _pointer(corr.last_retro_pointer_file)
    lookback_start = (now - corr.retro_lookback).timestamp()
    out.retro_from = max(lookback_start, retro_last.timestamp() if retro_last else 0.0)
    out.store = store_hold(config, now)
    return out
