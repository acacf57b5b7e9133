# SPDX-License-Identifier: Apache-2.0
"""Exit codes and the exceptions that map to them."""

from __future__ import annotations

import errno
import sqlite3
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README "Exit codes")."""

    OK = 0
    """The step did its work (finding alerts is not an error)."""
    FAILURE = 1
    """An unexpected internal error."""
    USAGE = 2
    """Bad command line."""
    CONFIG = 3
    """The configuration file is missing or invalid."""
    UPSTREAM = 4
    """A MISP server, SMTP server or webhook failed; the step kept what it had."""
    STALE = 5
    """``status``: a step has not succeeded for more than twice its interval."""
    BUSY = 6
    """Another agent holds the lock for this step."""
    STORAGE = 7
    """A file could not be written (disk full, read-only file system, quota).

    Nothing was lost: every file is replaced atomically or appended with a
    recorded position, so the next run redoes what this one could not write."""
    NO_INPUT = 8
    """``correlate``/``retro``: the configured input does not exist, so nothing was searched."""


class AgentError(Exception):
    """An error the operator can act on; its message says what and where."""

    exit_code = ExitCode.FAILURE


class UpstreamError(AgentError):
    """A remote service (MISP, SMTP, webhook) failed or answered garbage."""

    exit_code = ExitCode.UPSTREAM


class BusyError(AgentError):
    """Another process holds the lock."""

    exit_code = ExitCode.BUSY


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
_SQLITE_STORAGE = ("disk is full", "readonly database", "disk i/o error", "unable to open database")


def storage_failure(exc: BaseException) -> str | None:
    """One line saying which write failed for want of room or write access; None if not that.

    Looks through the exception's causes, so a wrapped ``OSError`` is found too.
    """
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        if isinstance(cur, OSError) and cur.errno in _STORAGE_ERRNOS:
            where = f" {cur.filename}" if cur.filename else ""
            return f"cannot write{where}: {cur.strerror}"
        if isinstance(cur, sqlite3.OperationalError) and any(
            m in str(cur).lower() for m in _SQLITE_STORAGE
        ):
            return f"cannot write the delivery ledger: {cur}"
        cur = cur.__cause__ or cur.__context__
    return None


STORAGE_ADVICE = (
    "nothing was lost: what this run could not write is done again on the next run "
    "once there is room (exit code 7)"
)
