# SPDX-License-Identifier: Apache-2.0
"""``fetch_iocs``: how indicators are filtered and how the collector is told."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TYPES = (
    "domain",
    "hostname",
    "domain|ip",
    "hostname|port",
    "ip-src",
    "ip-dst",
    "ip-src|port",
    "ip-dst|port",
)


@dataclass(frozen=True)
class FetchIocs:
    """Options of the fetch-iocs step."""

    types: list[str] = field(default_factory=lambda: list(DEFAULT_TYPES))
    to_ids_only: bool = True
    max_prefix_v4: int = field(default=16, metadata={"min": 0, "max": 32})
    """Broadest IPv4 CIDR accepted (a /8 indicator would flag a tenth of the internet)."""
    max_prefix_v6: int = field(default=32, metadata={"min": 0, "max": 128})
    collector_pid_file: Path | None = Path("/run/dnscollector/dnscollector.pid")
    """The collector is sent SIGHUP after the lists change; null disables it."""
