# SPDX-License-Identifier: Apache-2.0
"""What retention may remove: one :class:`Target` per kind of data.

A target lists its files (:class:`Candidate`) with their age and size and
removes one when asked. :func:`targets` gives them in the order the
free-space guard falls back on them (after every expired file):

1. the raw query-log archive (the largest, personal data line by line, and
   once the history store holds its lines and correlate and retro have read
   them, nothing else needs it: :mod:`.protect`);
2. the history store's days (:mod:`.store_target`): aggregated, several times
   smaller per reply than the archive, and the only history analysts can hunt
   in once the archive is gone;
3. rotated alert files last: what was found, small, and evidence an incident
   may still need.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from ..config import Config

log = logging.getLogger(__name__)

ROTATED_ALERTS = re.compile(r"matches-\d{8}T\d{6}Z(-\d+)?\.json")
"""Names of rotated alert files (the alerts file itself is ``matches.json``)."""


@dataclass(frozen=True)
class Candidate:
    """One removable file."""

    target: str
    path: Path
    mtime: float
    size: int


class Target(Protocol):
    """A kind of data with its own retention age."""

    @property
    def name(self) -> str:
        """What the data is (``archive``, ``alerts``), in messages."""
        ...  # pragma: no cover

    @property
    def max_age(self) -> timedelta:
        """Files older than this are removed."""
        ...  # pragma: no cover

    def candidates(self) -> list[Candidate]:
        """Every file of this kind, oldest first."""
        ...  # pragma: no cover

    def remove(self, candidate: Candidate) -> None:
        """Remove one file (FileNotFoundError if it is gone already)."""
        ...  # pragma: no cover


def _files(root: Path, name: re.Pattern[str] | None = None) -> Iterator[Path]:
    if not root.is_dir():
        return
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if f.startswith(".") or (name is not None and not name.fullmatch(f)):
                continue
            yield Path(dirpath) / f


def _stat_all(target: str, paths: Iterator[Path]) -> list[Candidate]:
    out = []
    for p in paths:
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if p.is_symlink() or not p.is_file():
            continue
        out.append(Candidate(target, p, st.st_mtime, st.st_size))
    return sorted(out, key=lambda c: (c.mtime, str(c.path)))


@dataclass(frozen=True)
class FileTarget:
    """Files under one directory, optionally only those whose name matches."""

    name: str
    max_age: timedelta
    root: Path
    pattern: re.Pattern[str] | None = None

    def candidates(self) -> list[Candidate]:
        return _stat_all(self.name, _files(self.root, self.pattern))

    def remove(self, candidate: Candidate) -> None:
        candidate.path.unlink()


def targets(config: Config) -> list[Target]:
    """The retention targets of ``config``, in the guard's order."""
    from .store_target import StoreTarget  # noqa: PLC0415 - it imports Candidate from here

    r, corr = config.retention, config.correlation
    return [
        FileTarget("archive", r.archive, corr.archive_dir),
        StoreTarget(r.history, config.history.dir),
        FileTarget("alerts", r.alerts, corr.output_dir, ROTATED_ALERTS),
    ]
