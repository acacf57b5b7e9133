# SPDX-License-Identifier: Apache-2.0
"""Pointer files (``correlation.last``, ``retro.last``, ``alert.last``) and step locks.

A pointer file holds one RFC 3339 timestamp, as pdnssoc-cli writes it, so an
existing deployment's files are read as they are.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import BusyError, StateError
from .fsutil import atomic_write_text, locked
from .timefmt import format_rfc3339, parse_rfc3339


def read_pointer(path: Path) -> datetime | None:
    """The timestamp in ``path``, or None when the file does not exist.

    Raises StateError naming the file when it holds something else.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise StateError(f"{path}: expected an RFC 3339 timestamp, found {text[:40]!r}") from None


def write_pointer(path: Path, when: datetime) -> None:
    """Atomically record ``when`` (UTC, RFC 3339) in ``path``."""
    atomic_write_text(path, format_rfc3339(when) + "\n")


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


@contextlib.contextmanager
def step_lock(lock_dir: Path, step: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock for ``step`` under ``lock_dir``.

    Two agents sharing a data root never run the same step at once; the lock
    is released by the kernel if the process dies.
    """
    path = lock_dir / f"{step}.lock"
    with contextlib.ExitStack() as stack:
        try:
            fd = stack.enter_context(locked(path, wait=False))
        except BlockingIOError:
            raise BusyError(f"{step}: another agent is running this step ({path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
