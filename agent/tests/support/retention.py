# SPDX-License-Identifier: Apache-2.0
"""Aged files and a simulated disk for the retention tests.

A full disk is simulated at the guard's seam (its ``disk`` probe): the free
space it reports grows by the size of every file that is really gone.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from pdnssoc_agent.config import Config
from pdnssoc_agent.retention import Disk
from pdnssoc_agent.state import utcnow, write_pointer

DAY = 86400.0
TOTAL = 1_000_000
SIZE = 30_000


def put(path: Path, age_days: float, size: int = SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = time.time() - age_days * DAY
    os.utime(path, (t, t))
    return path


class FakeDisk:
    """Free space that starts at ``free`` and grows with every watched file removed."""

    def __init__(self, free: int, watched: list[Path]) -> None:
        self.free = free
        self.watched = {p: p.stat().st_size for p in watched}

    def __call__(self, _path: Path) -> Disk:
        gone = sum(size for p, size in self.watched.items() if not p.exists())
        return Disk(TOTAL, self.free + gone)


def read_both(cfg: Config) -> None:
    """Pointers as after correlate and retro ran an hour ago."""
    hour_ago = utcnow() - timedelta(hours=1)
    write_pointer(cfg.correlation.last_correlation_pointer_file, hour_ago)
    write_pointer(cfg.correlation.last_retro_pointer_file, hour_ago)
