# SPDX-License-Identifier: Apache-2.0
"""``schedules``: step intervals for ``daemonize``, in minutes (pdnssoc-cli keys)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Interval:
    """How often a step runs."""

    interval: int = field(metadata={"min": 1, "max": 525600, "doc": "minutes"})


@dataclass(frozen=True)
class Schedules:
    """Defaults follow the seed deployment."""

    fetch_iocs: Interval = field(default_factory=lambda: Interval(60))
    correlation: Interval = field(default_factory=lambda: Interval(1))
    retro: Interval = field(default_factory=lambda: Interval(1440))
    alerting: Interval = field(default_factory=lambda: Interval(5))
    retention: Interval = field(default_factory=lambda: Interval(15))
