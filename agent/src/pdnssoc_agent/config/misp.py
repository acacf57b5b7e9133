# SPDX-License-Identifier: Apache-2.0
"""``misp_servers``: where indicators come from (pdnssoc-cli compatible)."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._schema import Problem, Secret, key_text, kind

# restSearch filters the agent sets itself (both PyMISP's and MISP's spelling):
# a value in ``args`` would replace the agent's and change what is fetched.
ARGS_SET_BY_AGENT = {
    "controller": "the agent always searches attributes",
    "pythonify": "the agent decodes the raw JSON itself",
    "return_format": "the agent reads MISP's JSON export",
    "returnFormat": "the agent reads MISP's JSON export",
    "limit": "paging is set by page_size",
    "page": "paging is set by the agent",
    "type_attribute": "types are set by fetch_iocs.types",
    "type": "types are set by fetch_iocs.types",
    "to_ids": "set by fetch_iocs.to_ids_only",
    "timestamp": "age limits are set by periods",
    "tags": "tag periods are set by periods.tags",
    "include_event_tags": "the agent always includes event tags",
    "includeEventTags": "the agent always includes event tags",
}
# Filters that change the shape of the answer or drop the agent's own filters.
ARGS_CHANGING_THE_ANSWER = {
    "metadata": "would leave the attributes out",
    "requested_attributes": "CSV export only",
    "headerless": "CSV export only",
    "quick_filter": "makes MISP ignore every other filter (types, IDS flag, age)",
    "quickFilter": "makes MISP ignore every other filter (types, IDS flag, age)",
    "object_name": "objects search only",
    "with_attachments": "adds base64 file contents to the answer",
    "withAttachments": "adds base64 file contents to the answer",
}
# Every other filter of MISP's attribute restSearch (OpenAPI
# AttributeRestSearchFilter) and PyMISP's search() names for them.
ARGS_KNOWN = frozenset(
    {
        "value",
        "value1",
        "value2",
        "category",
        "org",
        "from",
        "to",
        "date_from",
        "date_to",
        "last",
        "eventid",
        "uuid",
        "publish_timestamp",
        "published",
        "attribute_timestamp",
        "enforceWarninglist",
        "enforce_warninglist",
        "deleted",
        "event_timestamp",
        "threat_level_id",
        "eventinfo",
        "sharinggroup",
        "decayingModel",
        "score",
        "first_seen",
        "last_seen",
        "includeEventUuid",
        "include_event_uuid",
        "includeProposals",
        "includeContext",
        "include_context",
        "includeWarninglistHits",
        "attackGalaxy",
        "object_relation",
        "includeSightings",
        "include_sightings",
        "includeCorrelations",
        "include_correlations",
        "modelOverrides",
        "includeDecayScore",
        "include_decay_score",
        "includeFullModel",
        "excludeDecayed",
        "exclude_decayed",
        "event_tags",
        "sg_reference_only",
        "sgReferenceOnly",
        "searchall",
    }
)
_ARG_SHAPE = (
    "a value, a list of values, or a mapping of values or lists (such as {OR: [a, b], NOT: [c]})"
)


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
    timeout: float = field(default=60.0, metadata={"min": 1, "max": 3600, "doc": "seconds"})
    """Seconds one HTTP request may take in all, from connecting to the last byte."""
    page_size: int = field(default=5000, metadata={"min": 1, "max": 100000})
    """Attributes per restSearch page."""
    max_attributes: int = field(default=5_000_000, metadata={"min": 1, "max": 100_000_000})
    """Most attributes one restSearch may return over all its pages: a server that
    pages on without end fails with a message naming this key."""
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
                got = f"scheme {parts.scheme!r}" if parts.scheme.isalpha() else "no scheme"
                problems.append(
                    Problem(
                        prefix + "domain",
                        f"expected an http(s) URL such as https://misp.example.org/, got {got}",
                    )
                )
            elif parts.username or parts.password:
                problems.append(
                    Problem(
                        prefix + "domain",
                        "must not carry a user name or password; give the API key in "
                        "api_key_file, api_key_env or api_key",
                    )
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
        if isinstance(self.args, dict):
            problems.extend(_args_problems(self.args, f"{prefix}args"))

    def warnings(self, path: str) -> list[Problem]:
        """Accepted, but worth telling: plain http, restSearch filters the agent does not know."""
        out: list[Problem] = []
        if isinstance(self.domain, str) and urlsplit(self.domain).scheme == "http":
            out.append(
                Problem(
                    f"{path}.domain",
                    "plain http: the API key and the indicators cross the network "
                    "unencrypted; use https",
                )
            )
        for key in self.args:
            if key in ARGS_KNOWN or key in ARGS_SET_BY_AGENT or key in ARGS_CHANGING_THE_ANSWER:
                continue
            close = difflib.get_close_matches(key, sorted(ARGS_KNOWN), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(
                Problem(
                    f"{path}.args.{key_text(key)}",
                    f"not a restSearch filter the agent knows; passed to MISP as given{hint}",
                )
            )
        return out


def _scalar_ok(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def _list_ok(value: Any) -> bool:
    return isinstance(value, list) and all(_scalar_ok(v) for v in value)


def _args_problems(args: dict[str, Any], path: str) -> list[Problem]:
    """restSearch filters the agent cannot pass on as they are."""
    problems: list[Problem] = []
    for key, value in args.items():
        where = f"{path}.{key_text(key)}"
        if key in ARGS_SET_BY_AGENT:
            problems.append(Problem(where, f"set by the agent itself ({ARGS_SET_BY_AGENT[key]})"))
            continue
        if key in ARGS_CHANGING_THE_ANSWER:
            problems.append(Problem(where, f"not supported: {ARGS_CHANGING_THE_ANSWER[key]}"))
            continue
        ok = _scalar_ok(value) or _list_ok(value)
        if isinstance(value, dict):
            ok = all(
                isinstance(k, str) and (_scalar_ok(v) or _list_ok(v)) for k, v in value.items()
            )
        if not ok:
            problems.append(Problem(where, f"expected {_ARG_SHAPE}, got {kind(value)}"))
    return problems
