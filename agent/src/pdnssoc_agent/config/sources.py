# SPDX-License-Identifier: Apache-2.0
"""``sources``: indicator sources beside MISP servers, one entry each.

Every entry has a ``type``:

``misp_feed``  a MISP feed directory (``manifest.json`` and one
               ``<uuid>.json`` per event, as MISP's feed generator writes them)
``list``       one value a line (``format: lines``), a column of a CSV file
               (``format: csv``) or a hosts file (``format: hosts``), all of
               one declared ``indicator_type``
``threatfox``  abuse.ch ThreatFox's JSON API (an Auth-Key is required)
``taxii``      a TAXII 2.1 collection (``url`` is the API root, ``collection``
               the collection's id), read incrementally with ``added_after``

Keys that belong to another type are refused with a message naming the key
and the types it belongs to, so a misplaced key is never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from ._schema import Problem, Secret
from .alerting import TlpLevel
from .misp import Periods

SourceType = Literal["misp_feed", "list", "threatfox", "taxii"]
ListFormat = Literal["lines", "csv", "hosts"]
ListIndicatorType = Literal["domain", "hostname", "ip-dst", "ip-src"]

THREATFOX_URL = "https://threatfox-api.abuse.ch/api/v1/"
"""ThreatFox's API endpoint (the default ``url`` of a ``threatfox`` source)."""

# key -> the types it applies to (keys not named here apply to every type)
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "format": ("list",),
    "indicator_type": ("list",),
    "column": ("list",),
    "delimiter": ("list",),
    "skip_lines": ("list",),
    "days": ("threatfox",),
    "collection": ("taxii",),
    "page_size": ("taxii",),
}


@dataclass(frozen=True)
class SourceConfig:
    """One indicator source that is not a MISP server."""

    type: SourceType = field(metadata={"doc": "misp_feed, list, threatfox or taxii"})
    url: str | None = None
    """Where the source is: the feed directory, the list file, the API endpoint
    (for ``threatfox``, default :data:`THREATFOX_URL`)."""
    name: str | None = None
    """Short name in logs, alerts and the IOC index (default: the URL's host name)."""
    api_key: Secret | None = None
    api_key_file: Path | None = None
    api_key_env: str | None = None
    auth_header: str | None = None
    """HTTP header the key travels in (default ``Auth-Key`` for ThreatFox,
    ``Authorization`` otherwise)."""
    username: str | None = None
    """With a user name, the key is the password of HTTP Basic authentication."""
    tlp: TlpLevel | None = None
    """TLP of indicators the source does not mark itself (a ``tlp:`` tag is added)."""
    verify_ssl: bool = True
    ca_file: Path | None = None
    timeout: float = field(default=60.0, metadata={"min": 1, "max": 3600, "doc": "seconds"})
    """Seconds one HTTP request may take in all, from connecting to the last byte."""
    max_bytes: int = field(default=200_000_000, metadata={"min": 1_000, "max": 10_000_000_000})
    """Largest answer accepted from one request; a larger one fails the source."""
    max_indicators: int = field(default=5_000_000, metadata={"min": 1, "max": 100_000_000})
    """Most records one fetch may bring; more fails the source."""
    periods: Periods = field(default_factory=Periods)
    format: ListFormat = "lines"
    indicator_type: ListIndicatorType | None = None
    """What every value of a list is (required for ``type: list``)."""
    column: int = field(default=1, metadata={"min": 1, "max": 1000})
    """CSV column holding the value, counted from 1."""
    delimiter: str = ","
    skip_lines: int = field(default=0, metadata={"min": 0, "max": 1000})
    """Lines to skip at the top of a list (a CSV header); ``#`` lines are always skipped."""
    days: int = field(default=1, metadata={"min": 1, "max": 7})
    """ThreatFox: IOCs added in the last ``days`` days (the API allows 1 to 7)."""
    collection: str | None = None
    """TAXII: the id of the collection under the API root ``url``."""
    page_size: int = field(default=1000, metadata={"min": 1, "max": 100_000})
    """TAXII: objects asked for per request (``limit``)."""

    @property
    def label(self) -> str:
        """Short name used in logs, alerts and the IOC index."""
        return self.name or (urlsplit(self.base_url).hostname or self.base_url)

    @property
    def base_url(self) -> str:
        if self.url:
            return self.url.rstrip("/") if self.type in ("misp_feed", "taxii") else self.url
        return THREATFOX_URL if self.type == "threatfox" else ""

    @property
    def header(self) -> str:
        """The HTTP header the key goes in."""
        return self.auth_header or ("Auth-Key" if self.type == "threatfox" else "Authorization")

    @property
    def has_key(self) -> bool:
        return bool(self.api_key or self.api_key_file or self.api_key_env)

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        if self.type not in ("misp_feed", "list", "threatfox", "taxii"):
            return  # reported already
        for key, types in _ONLY_FOR.items():
            default = SourceConfig.__dataclass_fields__[key].default
            if self.type not in types and getattr(self, key) != default:
                problems.append(
                    Problem(
                        prefix + key,
                        f"only for type {' or '.join(types)}, not for type {self.type}",
                    )
                )
        if self.url is None and self.type != "threatfox":
            problems.append(Problem(prefix + "url", f"required key is missing for {self.type}"))
        elif isinstance(self.url, str):
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                got = f"scheme {parts.scheme!r}" if parts.scheme.isalpha() else "no scheme"
                problems.append(Problem(prefix + "url", f"expected an http(s) URL, got {got}"))
            elif parts.username or parts.password:
                problems.append(
                    Problem(
                        prefix + "url",
                        "must not carry a user name or password; give the key in "
                        "api_key_file, api_key_env or api_key",
                    )
                )
        given = [k for k in ("api_key", "api_key_file", "api_key_env") if getattr(self, k)]
        if len(given) > 1:
            problems.append(Problem(prefix + given[1], f"give only one of {', '.join(given)}"))
        if self.type == "threatfox" and not given:
            problems.append(
                Problem(
                    prefix + "api_key_file",
                    "ThreatFox needs an Auth-Key: one of api_key_file, api_key_env or api_key",
                )
            )
        if self.auth_header is not None and not given:
            problems.append(Problem(prefix + "auth_header", "has no effect without a key"))
        if self.username is not None and not given:
            problems.append(
                Problem(
                    prefix + "username", "needs a password: api_key_file, api_key_env or api_key"
                )
            )
        if self.username is not None and self.auth_header is not None:
            problems.append(
                Problem(prefix + "auth_header", "not with username (HTTP Basic uses Authorization)")
            )
        if self.type == "taxii" and not self.collection:
            problems.append(
                Problem(prefix + "collection", "required for type taxii: the collection's id")
            )
        if self.type == "list" and self.indicator_type is None:
            problems.append(
                Problem(
                    prefix + "indicator_type",
                    "required for type list: domain, hostname, ip-dst or ip-src",
                )
            )
        if self.format == "hosts" and self.indicator_type not in (None, "domain", "hostname"):
            problems.append(
                Problem(prefix + "indicator_type", "a hosts file lists names: domain or hostname")
            )
        if self.type == "list" and self.format != "csv":
            for key in ("column", "delimiter"):
                if getattr(self, key) != SourceConfig.__dataclass_fields__[key].default:
                    problems.append(Problem(prefix + key, "only for format csv"))
        if isinstance(self.delimiter, str) and len(self.delimiter) != 1:
            problems.append(Problem(prefix + "delimiter", "must be one character"))
        if self.ca_file is not None and not self.verify_ssl:
            problems.append(
                Problem(prefix + "ca_file", "ca_file has no effect with verify_ssl: false")
            )

    def warnings(self, path: str) -> list[Problem]:
        """Accepted, but worth telling: a key sent over plain http."""
        if self.has_key and urlsplit(self.base_url).scheme == "http":
            return [
                Problem(
                    f"{path}.url",
                    "plain http: the key and the indicators cross the network unencrypted; "
                    "use https",
                )
            ]
        return []
