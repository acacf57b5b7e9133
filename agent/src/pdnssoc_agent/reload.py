# SPDX-License-Identifier: Apache-2.0
"""Tell the collector to re-read its list files: SIGHUP to the pid in its pid file.

go-dnscollector re-reads its configuration, list files included, on SIGHUP.
An absent collector is normal (the agent may run before it, or on a host
without it), so every failure here is an outcome to log, never an exception.
Before signalling, the process's command line is checked against an expected
substring, so a stale pid file whose pid was recycled by some other program
does not make the agent signal that program (SIGHUP ends most processes).
"""

from __future__ import annotations

import enum
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What happened to the reload request."""

    SIGNALLED = "signalled"
    DISABLED = "disabled"
    NO_PID_FILE = "no pid file"
    BAD_PID_FILE = "bad pid file"
    NOT_RUNNING = "not running"
    NOT_COLLECTOR = "pid is not the collector"
    NOT_PERMITTED = "not permitted"


@dataclass(frozen=True)
class ReloadResult:
    outcome: Outcome
    message: str
    pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SIGNALLED, Outcome.DISABLED)


def _cmdline(pid: int) -> str | None:
    """The process's command line with NULs as spaces; None when /proc has no answer."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return ""  # the process is gone (or a zombie without cmdline)
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def reload_collector(pid_file: Path | None, expect_in_cmdline: str | None) -> ReloadResult:
    """Send SIGHUP to the collector named by ``pid_file``; log and return the outcome.

    ``expect_in_cmdline``: a substring the process's command line must contain
    (None skips the check).
    """
    if pid_file is None:
        return ReloadResult(
            Outcome.DISABLED, "collector reload disabled (fetch_iocs.reload_collector: false)"
        )
    try:
        text = pid_file.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return _warn(Outcome.NO_PID_FILE, f"{pid_file} does not exist; is the collector running?")
    except OSError as exc:
        return _warn(Outcome.NO_PID_FILE, f"cannot read {pid_file}: {exc.strerror}")
    if not text.isdigit() or int(text) <= 1:
        return _warn(Outcome.BAD_PID_FILE, f"{pid_file} does not hold a process id: {text[:20]!r}")
    pid = int(text)
    if expect_in_cmdline:
        cmdline = _cmdline(pid)
        if cmdline == "":
            return _warn(Outcome.NOT_RUNNING, f"no process {pid} (from {pid_file})", pid)
        if cmdline is not None and expect_in_cmdline not in cmdline:
            return _warn(
                Outcome.NOT_COLLECTOR,
                f"process {pid} (from {pid_file}) is {cmdline[:80]!r}, not the collector "
                f"(expected {expect_in_cmdline!r} in its command line); not signalled",
                pid,
            )
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return _warn(Outcome.NOT_RUNNING, f"no process {pid} (from {pid_file})", pid)
    except PermissionError:
        return _warn(Outcome.NOT_PERMITTED, f"not allowed to signal process {pid}", pid)
    log.info("collector (pid %d) told to reload its lists (SIGHUP)", pid)
    return ReloadResult(Outcome.SIGNALLED, f"SIGHUP sent to pid {pid}", pid)


def _warn(outcome: Outcome, message: str, pid: int | None = None) -> ReloadResult:
    log.warning("collector not reloaded: %s", message)
    return ReloadResult(outcome, message, pid)
