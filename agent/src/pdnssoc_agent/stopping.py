# SPDX-License-Identifier: Apache-2.0
"""A stop asked of a long step, checked at its chunk and file boundaries.

``daemonize`` sets it when it is asked to stop (and the retro child sets it
when the daemon passes the stop on, :mod:`.child`); ``retro`` checks it after
each chunk it reads and raises :class:`Stopped`, then leaves a checkpoint its
next run resumes from (:mod:`.correlate.retro_resume`).
"""

from __future__ import annotations

import threading

_requested = threading.Event()


class Stopped(Exception):  # noqa: N818 - a request, not an error
    """The step was asked to stop."""


def request() -> None:
    """Ask the steps of this process to stop at their next boundary (signal-safe)."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise :class:`Stopped` when a stop was asked for."""
    if _requested.is_set():
        raise Stopped


def clear() -> None:
    """Forget a stop request (a new run in the same process, in tests)."""
    _requested.clear()
