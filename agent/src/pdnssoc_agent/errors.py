# SPDX-License-Identifier: Apache-2.0
"""Exit codes and the errors that map to them.

Every error an operator can act on is an :class:`AgentError` subclass defined
here, and carries its exit code; its message says what is wrong and where.
The command line turns one into a single log line and that exit code. Any
other exception is a bug: it stops the command with its traceback (exit 1).
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config._schema import Problem


class ExitCode(IntEnum):
    """Documented process exit codes (README "Exit codes")."""

    OK = 0
    """The step did its work (finding alerts is not an error)."""
    FAILURE = 1
    """A state, pointer or index file is unreadable (one line), or a bug (with its traceback)."""
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


class UsageError(AgentError):
    """A path or option on the command line is wrong."""

    exit_code = ExitCode.USAGE


class ConfigError(AgentError):
    """The configuration cannot be used; ``problems`` says why, key by key."""

    exit_code = ExitCode.CONFIG

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


class FetchConfigError(AgentError):
    """An indicator source cannot be used as configured (secret unreadable, unknown name)."""

    exit_code = ExitCode.CONFIG


class StateError(AgentError):
    """A state or pointer file the step needs is unreadable; the message names it."""


class IndexFormatError(AgentError):
    """The IOC index file is not one this version reads; the message names it."""


class NoInputError(AgentError):
    """The step's configured input does not exist: it read nothing there."""

    exit_code = ExitCode.NO_INPUT


class DeliveryError(UpstreamError):
    """A channel did not accept a message. The text never contains a secret."""


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
