# SPDX-License-Identifier: Apache-2.0
"""``rpz``: response-policy zones built from the indicators (off by default; docs/rpz.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ._schema import Problem

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def zone_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a zone's name (None: it can)."""
    text = name.rstrip(".")
    if not text or len(text) > 200 or text != text.lower():
        return "expected a lower-case domain name of at most 200 characters"
    if not all(_LABEL.fullmatch(label) for label in text.split(".")):
        return "not a domain name (letters, digits, '-', '_' between dots)"
    if "." not in text:
        return "one label would shadow a top-level domain; use a name such as rpz.example.org"
    return None


@dataclass(frozen=True)
class RpzZone:
    """One zone: the indicators minus what this zone's institution exempts."""

    name: str = field(metadata={"doc": "the zone's name, e.g. univ-a.rpz.example.org"})
    institution: str | None = None
    """The sensor identity whose suppression rules (``institution:``) also apply;
    unset: only the rules that apply everywhere."""
    exemptions: list[str] = field(default_factory=list)
    """Names (and every name below them) and addresses or networks that this
    zone never blocks, whatever an indicator says."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        from ..rpz.exempt import exemption_problem  # noqa: PLC0415 - avoids an import cycle

        if isinstance(self.name, str):
            problem = zone_name_problem(self.name)
            if problem:
                problems.append(Problem(f"{path}.name", problem))
        for i, item in enumerate(self.exemptions):
            if isinstance(item, str):
                problem = exemption_problem(item)
                if problem:
                    problems.append(Problem(f"{path}.exemptions[{i}]", problem))


@dataclass(frozen=True)
class Rpz:
    """Where the zones are written, how they are checked, how the DNS server is told."""

    enabled: bool = False
    """Build the zones after every fetch-iocs run (``rpz build`` builds them by hand)."""
    zone_dir: Path = Path("rpz")
    """Where the zone files are written, one ``<zone name>.zone`` each (relative
    paths: under data_dir). The DNS server must be able to read them."""
    zones: list[RpzZone] = field(default_factory=list)
    ttl: int = field(default=300, metadata={"min": 30, "max": 86400, "doc": "seconds"})
    """TTL of the zone's records (how long a resolver may cache a rewritten answer)."""
    checkzone_command: Path = Path("/usr/bin/named-checkzone")
    """named-checkzone; every zone is checked with it before it replaces the
    previous one. When the file does not exist the zone is installed unchecked,
    with a warning in the log and in ``status``."""
    reload_command: list[str] = field(default_factory=lambda: ["/usr/sbin/rndc", "reload"])
    """Run (without a shell) with the zone's name appended after a zone changed;
    an empty list: the DNS server is not told."""
    command_timeout: int = field(default=120, metadata={"min": 1, "max": 3600, "doc": "seconds"})
    """Longest a check or reload command may run."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        if not self.checkzone_command.is_absolute():
            problems.append(Problem(f"{prefix}checkzone_command", "must be an absolute path"))
        if self.reload_command and not Path(self.reload_command[0]).is_absolute():
            problems.append(
                Problem(f"{prefix}reload_command[0]", "must be an absolute path (no shell runs it)")
            )
        seen: dict[str, int] = {}
        for i, zone in enumerate(self.zones):
            key = zone.name.rstrip(".") if isinstance(zone.name, str) else ""
            if key in seen:
                problems.append(
                    Problem(f"{prefix}zones[{i}].name", f"same zone as zones[{seen[key]}]")
                )
            seen.setdefault(key, i)
        zones_failed = any(p.path.startswith(f"{prefix}zones") for p in problems)
        if self.enabled and not self.zones and not zones_failed:
            problems.append(Problem(f"{prefix}zones", "enabled but no zone is listed"))
