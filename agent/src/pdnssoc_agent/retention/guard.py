# SPDX-License-Identifier: Apache-2.0
"""The free-space guard's measure and its memory between runs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text

log = logging.getLogger(__name__)

STATE_FILE = "retention.json"


@dataclass(frozen=True)
class Disk:
    """Size of a file system and the bytes still available to the agent (``f_bavail``)."""

    total: int
    free: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free / self.total if self.total else 100.0


def disk_usage(path: Path) -> Disk:
    st = os.statvfs(path)
    return Disk(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


DiskProbe = Callable[[Path], Disk]


@dataclass
class GuardState:
    """What the guard did in the current low-space episode (persisted)."""

    low: bool = False
    since: str | None = None
    free_percent: float | None = None
    watermark: int | None = None
    told_before: bool = False
    told_after: bool = False
    removed_files: int = 0
    removed_bytes: int = 0
    protected_files: int = 0
    notices: dict[str, str] = field(default_factory=dict)
    alerts_rotated_at: str | None = None
    last_action: str | None = None
    """When the guard last removed files, and what it achieved (kept after the episode)."""

    @classmethod
    def load(cls, path: Path) -> GuardState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); starting afresh", path, exc)
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError:
            return cls()

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
