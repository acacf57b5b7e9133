# SPDX-License-Identifier: Apache-2.0
"""What ``correlate`` and ``retro`` read, and how far they have read it.

The input layer both steps share: which files there are (discovery, the
collector's rotated copies, the files a run reads without PATH), how a file is
known again across renames, rotation and compression (a fingerprint of its
first bytes) and how far its content was read (:class:`FileMark`).

A configured input that does not exist means that nothing is detected, so it
is never silent: the run logs a WARNING and exits with
:attr:`~pdnssoc_agent.errors.ExitCode.NO_INPUT`, ``status`` shows a problem
line and ``check-config`` a warning. The checks only look (``stat`` and, for a
directory, its first file), so ``status`` can run them as often as it likes.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from ..config import Config
from ..dnslog import head_bytes, is_gzip
from ..errors import UsageError

FP_LEN = 1024
"""Bytes of content that identify a file across renames, rotation and compression."""
ROTATION_SLACK = timedelta(minutes=10)
"""Archive files modified this long before the previous correlate run are still read."""
BEING_COMPRESSED = 120.0
"""Seconds: a rotated ``.gz`` this fresh beside the query log may still be written."""


@dataclass(frozen=True)
class InputProblem:
    """One input of a step that is not there."""

    step: str
    """``correlate`` or ``retro``."""
    message: str
    no_input: bool
    """True when the step has nothing at all to read (its run exits NO_INPUT)."""

    def __str__(self) -> str:
        return f"{self.step}: {self.message}"


def has_file(directory: Path) -> bool:
    """True when ``directory`` holds a regular file (searched recursively, hidden names skipped)."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(not f.startswith(".") and (Path(root) / f).is_file() for f in files):
            return True
    return False


def correlate_problems(config: Config) -> list[InputProblem]:
    """Why ``correlate`` without PATH would have nothing to read (empty when it has)."""
    corr = config.correlation
    if corr.live_input == "matches":
        if not corr.input_dir.is_dir():
            what = "does not exist"
        elif not has_file(corr.input_dir):
            what = "holds no file"
        else:
            return []
        return [
            InputProblem(
                "correlate",
                f"correlation.input_dir {corr.input_dir} {what}, so nothing is correlated "
                "(correlation.live_input: matches); point it at the collector's matches "
                f"directory, or set live_input: query_log to read {corr.queries_file}",
                no_input=True,
            )
        ]
    if corr.queries_file.is_file():
        return []
    hint = ""
    if corr.input_dir.is_dir() and has_file(corr.input_dir):
        hint = (
            f"; {corr.input_dir} holds files: set correlation.live_input: matches to "
            "read correlation.input_dir, as pdnssoc-cli did"
        )
    return [
        InputProblem(
            "correlate",
            f"correlation.queries_file {corr.queries_file} does not exist, so nothing is "
            "correlated (correlation.live_input: query_log); point it at the collector's "
            f"query log{hint}",
            no_input=True,
        )
    ]


def retro_problems(config: Config) -> list[InputProblem]:
    """Why ``retro`` without PATH would read less than configured, or nothing."""
    corr = config.correlation
    archive, log = corr.archive_dir.is_dir(), corr.queries_file.is_file()
    if archive:
        return []
    if log:
        return [
            InputProblem(
                "retro",
                f"correlation.archive_dir {corr.archive_dir} does not exist, so only the "
                f"query log {corr.queries_file} is searched",
                no_input=False,
            )
        ]
    return [
        InputProblem(
            "retro",
            f"neither correlation.archive_dir {corr.archive_dir} nor correlation.queries_file "
            f"{corr.queries_file} exists, so no DNS log is searched (retro reads its store "
            "only, if there is one)",
            no_input=True,
        )
    ]


def input_problems(config: Config) -> list[InputProblem]:
    """Both steps' problems, for ``status`` and ``check-config``."""
    return correlate_problems(config) + retro_problems(config)


# ---------------------------------------------------------------- files


def discover(paths: Iterable[Path]) -> list[Path]:
    """Regular files under ``paths`` (recursively), sorted; hidden names skipped."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
        elif p.is_file():
            out.append(p)
    return out


def check_paths(paths: Iterable[Path]) -> list[Path]:
    """``paths`` as given, or a :class:`UsageError` naming those that do not exist."""
    given = list(paths)
    bad = [p for p in given if not p.exists()]
    if bad:
        raise UsageError("no such file or directory: " + ", ".join(str(p) for p in bad))
    return given


def rotated_query_logs(queries_file: Path, *, now: float | None = None) -> list[Path]:
    """The collector's rotated copies of ``queries_file`` still beside it.

    go-dnscollector renames ``queries.json`` to ``queries-<ns>.json`` and later
    compresses it to ``queries-<ns>.json.gz``, which the role's post-command moves
    into the archive directory. A ``.gz`` that is still being written is left for
    the next run; its plain original is still there while it is.
    """
    stem, suffix = queries_file.stem, queries_file.suffix
    pattern = re.compile(re.escape(stem) + r"-\d+" + re.escape(suffix) + r"(\.gz)?")
    t = time.time() if now is None else now
    out = []
    try:
        entries = sorted(queries_file.parent.iterdir())
    except OSError:
        return []
    for p in entries:
        if not pattern.fullmatch(p.name) or not p.is_file():
            continue
        if p.name.endswith(".gz") and t - mtime(p) < BEING_COMPRESSED:
            continue
        out.append(p)
    return out


def live_files(config: Config, previous_run: datetime | None) -> list[Path]:
    """What ``correlate`` reads without paths (``correlation.live_input``).

    ``matches``: everything under ``correlation.input_dir``. ``query_log``: the
    archive files and rotated copies written since the previous run (they hold
    the lines the collector wrote after that run read the log, up to rotation),
    oldest first, then the query log itself. A first run starts at the live log
    and leaves the history to ``retro``. Files read to their end before are
    recognised by content and skipped.
    """
    corr = config.correlation
    if corr.live_input == "matches":
        return discover([corr.input_dir])
    rotated: list[Path] = []
    if previous_run is not None:
        since = (previous_run - ROTATION_SLACK).timestamp()
        candidates = discover([corr.archive_dir]) + rotated_query_logs(corr.queries_file)
        rotated = sorted((p for p in candidates if mtime(p) >= since), key=mtime)
    return rotated + ([corr.queries_file] if corr.queries_file.is_file() else [])


def retro_files(config: Config, since: datetime) -> list[Path]:
    """What ``retro`` reads without paths: the archive, the rotated copies and the
    query log, each modified at ``since`` or later."""
    corr = config.correlation
    files = discover([corr.archive_dir])
    files += rotated_query_logs(corr.queries_file)
    files += [corr.queries_file] if corr.queries_file.is_file() else []
    return [f for f in files if mtime(f) >= since.timestamp()]


def mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ---------------------------------------------------------------- fingerprints


class FileMark(msgspec.Struct):
    """How far a file's content has been read; found again by its first bytes."""

    fp_len: int
    fp: str
    offset: int
    path: str
    seen: int
    stat: str = ""
    """device:inode:size:mtime when last read to its end; unchanged means nothing new."""


def fingerprint(head: bytes) -> str:
    """What identifies a file by its first bytes (at most :data:`FP_LEN` of its content)."""
    return hashlib.sha256(head).hexdigest()[:32]


def find_mark(marks: Iterable[FileMark], head: bytes) -> FileMark | None:
    """The mark of the file whose content starts with ``head``, if one is known."""
    digests: dict[int, str] = {}  # one hash per fingerprint length, not per mark
    for m in marks:
        if len(head) < m.fp_len:
            continue
        digest = digests.get(m.fp_len)
        if digest is None:
            digest = digests[m.fp_len] = fingerprint(head[: m.fp_len])
        if digest == m.fp:
            return m
    return None


def refresh_fingerprint(mark: FileMark, path: Path, head: bytes) -> None:
    """Lengthen a short fingerprint once the file has grown past it."""
    if mark.fp_len >= FP_LEN:
        return
    new_head = head_bytes(path, FP_LEN)
    if len(new_head) > mark.fp_len and new_head[: mark.fp_len] == head[: mark.fp_len]:
        mark.fp_len, mark.fp = len(new_head), fingerprint(new_head)


def content_ends_at(path: Path, offset: int, size: int) -> bool:
    """Whether the file's content (decompressed) ends at ``offset``: a plain file's
    size; a gzip file's ISIZE trailer (the length modulo 2**32 of its last member)."""
    if offset == 0:
        return size == 0
    if not is_gzip(path):
        return offset >= size
    try:
        with path.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little") == offset % (1 << 32)
    except OSError:
        return False
