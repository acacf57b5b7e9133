# SPDX-License-Identifier: Apache-2.0
"""``fetch_iocs``: how indicators are filtered and how the collector is told."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ._schema import Problem

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
"""Every MISP attribute type whose value DNS traffic can reveal."""


@dataclass(frozen=True)
class FetchIocs:
    """Options of the fetch-iocs step."""

    types: list[str] = field(default_factory=lambda: list(DEFAULT_TYPES))
    """MISP attribute types to fetch (a subset of the default list)."""
    to_ids_only: bool = True
    """Only attributes with the IDS flag set."""
    max_prefix_v4: int = field(default=16, metadata={"min": 0, "max": 32})
    """Broadest IPv4 CIDR accepted (a /8 indicator would flag a tenth of the internet)."""
    max_prefix_v6: int = field(default=32, metadata={"min": 0, "max": 128})
    warninglists_dir: Path | None = None
    """misp-warninglists lists (``lists/<name>/list.json``) checked against the
    values of sources that do not apply warninglists themselves (every source
    but a MISP server); relative paths: under data_dir."""
    reload_collector: bool = True
    """Send the collector SIGHUP after a list file changed."""
    collector_pid_file: Path = Path("/run/dnscollector/dnscollector.pid")
    """Where the collector's pid is (relative paths: under data_dir)."""
    collector_process_match: str = "dnscollector"
    """Text the pid's command line must contain before it is signalled: a stale
    pid file naming a recycled pid must not get another program signalled."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        for i, t in enumerate(self.types):
            if isinstance(t, str) and t not in DEFAULT_TYPES:
                problems.append(
                    Problem(
                        f"{prefix}types[{i}]",
                        f"{t!r} is not a type DNS can reveal; "
                        f"choose from {', '.join(DEFAULT_TYPES)}",
                    )
                )
        if not self.types:
            problems.append(Problem(f"{prefix}types", "must list at least one type"))
