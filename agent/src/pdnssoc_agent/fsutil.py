# SPDX-License-Identifier: Apache-2.0
"""Durable file writes: temp file in the same directory, fsync, rename, fsync dir.

A reader (the collector, another agent step) sees either the old or the new
file, never a partial one, and a crash leaves at worst a stray ``.tmp`` file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: Path,
    mode: int = 0o640,
    *,
    binary: bool = False,
    check: Callable[[Path], object] | None = None,
) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path`` atomically.

    ``check``, when given, is called with the written and synced temp file
    before the replace: an exception from it keeps ``path`` as it was. On any
    exception the temp file is removed and ``path`` is left untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        fh: IO[Any]
        fh = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if check is not None:
            check(tmp)
        tmp.replace(path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(
    path: Path, text: str, mode: int = 0o640, *, check: Callable[[Path], object] | None = None
) -> None:
    """Replace ``path`` with ``text`` atomically (after ``check`` of the new file)."""
    with atomic_writer(path, mode, check=check) as fh:
        fh.write(text)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_writer(path, mode, binary=True) as fh:
        fh.write(data)


def append_durably(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Append ``data`` to ``path`` and fsync before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``path`` (created 0640, with its directory).

    Yields the lock file's descriptor. With ``wait=False`` a lock held
    elsewhere raises BlockingIOError at once. The kernel releases the lock if
    the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield fd
    finally:
        os.close(fd)
