# SPDX-License-Identifier: Apache-2.0
"""RFC 3339 timestamps: the one parser and the one formatter of the agent.

Every time the agent writes (alert lines, pointer files, step records,
``status``) is UTC with a ``Z``; every time it reads may carry an offset or
none (taken as UTC), and up to nanoseconds (go-dnscollector writes them;
the digits after the sixth are dropped).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"\.(\d{6})\d+")


def parse_rfc3339(text: str) -> datetime:
    """``text`` as an aware UTC datetime; ValueError when it is not an RFC 3339 time."""
    t = _FRACTION.sub(r".\1", text.strip())
    try:
        value = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except OverflowError:  # outside years 1..9999 once in UTC
        raise ValueError(f"time out of range: {text[:40]!r}") from None


def parse_rfc3339_or_none(text: str) -> datetime | None:
    """Like :func:`parse_rfc3339`, but None for an empty, ``-`` or unparsable value."""
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def format_rfc3339(when: datetime, *, seconds: bool = False) -> str:
    """``when`` in UTC with a ``Z``: to the second with ``seconds``, else with
    microseconds when there are some."""
    v = when.astimezone(UTC)
    spec = "seconds" if seconds or not v.microsecond else "microseconds"
    return v.isoformat(timespec=spec).replace("+00:00", "Z")
