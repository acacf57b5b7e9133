# SPDX-License-Identifier: Apache-2.0
"""``misp_servers``: where indicators come from (pdnssoc-cli compatible)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._schema import Problem, Secret


@dataclass(frozen=True)
class TagPeriod:
    """A longer or shorter age limit for attributes carrying any of ``names``."""

    names: list[str] = field(metadata={"doc": "tag names, e.g. [apt, 'tlp:amber']"})
    delta: timedelta = field(metadata={"doc": "age limit such as {days: 150}"})


@dataclass(frozen=True)
class GenericPeriod:
    """The default age limit."""

    delta: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class Periods:
    """IOC age limits: attributes older than this (by their timestamp) are not fetched."""

    generic: GenericPeriod = field(default_factory=GenericPeriod)
    tags: list[TagPeriod] = field(default_factory=list)

    def _check(self, path: str, problems: list[Problem]) -> None:
        seen: dict[str, int] = {}
        for i, tp in enumerate(self.tags):
            for name in tp.names or []:
                if name in seen:
                    problems.append(
                        Problem(
                            f"{path}.tags[{i}].names",
                            f"tag {name!r} already has a period in tags[{seen[name]}]",
                        )
                    )
                seen[name] = i


@dataclass(frozen=True)
class Sightings:
    """Report each alert back to this MISP as a sighting."""

    enabled: bool = False
    source: str = "pdnssoc"


@dataclass(frozen=True)
class MispServer:
    """One MISP instance to pull indicators from."""

    domain: str = field(metadata={"aliases": ("url",), "doc": "base URL of the MISP"})
    name: str | None = None
    api_key: Secret | None = None
    api_key_file: Path | None = None
    api_key_env: str | None = None
    verify_ssl: bool = True
    ca_file: Path | None = None
    debug: bool = False
    """Accepted from pdnssoc-cli configs and ignored: PyMISP's debug output prints
    request headers, the API key among them (use ``--log-level DEBUG`` instead)."""
    timeout: float = field(default=60.0, metadata={"min": 1})
    """Seconds to wait for each HTTP request (connect and each read)."""
    page_size: int = field(default=5000, metadata={"min": 1, "max": 100000})
    """Attributes per restSearch page."""
    args: dict[str, Any] = field(default_factory=dict)
    """Extra restSearch filters, passed to PyMISP's ``search()`` as pdnssoc-cli does
    (``enforce_warninglist`` defaults to true; ``excludeDecayed``, ``decayingModel``...)."""
    periods: Periods = field(default_factory=Periods)
    sightings: Sightings = field(default_factory=Sightings)

    @property
    def label(self) -> str:
        """Short name used in logs, alerts and the IOC index."""
        return self.name or (urlsplit(self.domain).hostname or self.domain)

    @property
    def base_url(self) -> str:
        return self.domain.rstrip("/")

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        if isinstance(self.domain, str):
            parts = urlsplit(self.domain)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(
                    Problem(prefix + "domain", f"expected an http(s) URL, got {self.domain!r}")
                )
        given = [k for k in ("api_key", "api_key_file", "api_key_env") if getattr(self, k)]
        if not given:
            problems.append(
                Problem(
                    prefix + "api_key", "one of api_key, api_key_file or api_key_env is required"
                )
            )
        elif len(given) > 1:
            problems.append(Problem(prefix + given[1], f"give only one of {', '.join(given)}"))
        if self.ca_file is not None and not self.verify_ssl:
            problems.append(
                Problem(prefix + "ca_file", "ca_file has no effect with verify_ssl: false")
            )
        if not isinstance(self.args, dict):
            return
        for bad in ("page", "limit", "returnFormat", "to_ids", "type", "timestamp", "tags"):
            if bad in self.args:
                problems.append(
                    Problem(
                        f"{prefix}args.{bad}",
                        "set by the agent itself (types, to_ids, age periods and paging)",
                    )
                )
