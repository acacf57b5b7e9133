# SPDX-License-Identifier: Apache-2.0
"""Exit codes and the exceptions that map to them."""

from __future__ import annotations

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
    NO_INPUT = 7
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
