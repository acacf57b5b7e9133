# SPDX-License-Identifier: Apache-2.0
"""Rotate the alerts file once ``alert`` has taken in every line of it.

``correlate`` and ``retro`` append to ``matches.json`` for ever; rotation
gives its old lines an age at which retention may expire them. It happens
only when the ledger's read position is at the end of the file (every line
is queued or delivered, the file is not needed for delivery any more),
with the ``alert`` step's lock held (no take-in meanwhile) and the alerts
file's lock held (no append meanwhile). The new, empty file's position is
recorded in the ledger in the same breath, so ``alert`` goes on from its start.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from ..alerts import alerts_file, ledger_dir
from ..alerts.ledger import Ledger, SourcePosition
from ..config import Config
from ..correlate.output import alerts_lock
from ..errors import BusyError
from ..fsutil import fsync_dir
from ..state import step_lock

log = logging.getLogger(__name__)


def _rotated_name(path: Path, now: datetime) -> Path:
    stem = f"matches-{now.strftime('%Y%m%dT%H%M%SZ')}"
    candidate, n = path.with_name(f"{stem}.json"), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{stem}-{n}.json"), n + 1
    return candidate


def rotate_alerts(config: Config, now: datetime) -> Path | None:
    """Rotate the alerts file if every line was taken in; the rotated file's path."""
    path = alerts_file(config)
    state_dir = ledger_dir(config)
    try:
        with (
            step_lock(config.correlation.state_dir, "alert"),
            Ledger(state_dir) as ledger,
            alerts_lock(path.parent),
        ):
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            pos = ledger.position(path)
            if st.st_size == 0 or pos != SourcePosition(st.st_dev, st.st_ino, st.st_size):
                return None  # empty, or lines not taken in yet
            target = _rotated_name(path, now)
            path.rename(target)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                os.fsync(fd)
                new = os.fstat(fd)
            finally:
                os.close(fd)
            fsync_dir(path.parent)
            position = SourcePosition(new.st_dev, new.st_ino, 0)
            ledger.take_in(path, position, [], config.alerting.renotify_after, now)
    except BusyError:
        log.info("retention: alert is running; the alerts file is rotated at a later run")
        return None
    log.info("retention: rotated %s to %s", path, target.name)
    return target
