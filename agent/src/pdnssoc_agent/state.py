# SPDX-License-Identifier: Apache-2.0
"""Pointer files (``correlation.last``, ``retro.last``, ``alert.last``) and step locks.

A pointer file holds one RFC 3339 timestamp, as pdnssoc-cli writes it, so an
existing deployment's files are read as they are.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import BusyError
from .fsutil import atomic_write_text


def read_pointer(path: Path) -> datetime | None:
    """The timestamp in ``path``, or None when the file does not exist.

    Raises ValueError naming the file when it holds something else.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{path}: expected an RFC 3339 timestamp, found {text[:40]!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def write_pointer(path: Path, when: datetime) -> None:
    """Atomically record ``when`` (UTC, RFC 3339) in ``path``."""
    atomic_write_text(path, when.astimezone(UTC).isoformat().replace("+00:00", "Z") + "\n")


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


@contextlib.contextmanager
def step_lock(lock_dir: Path, step: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock for ``step`` under ``lock_dir``.

    Two agents sharing a data root never run the same step at once; the lock
    is released by the kernel if the process dies.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{step}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"{step}: another agent is running this step ({path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
