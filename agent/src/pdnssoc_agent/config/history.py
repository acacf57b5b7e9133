# SPDX-License-Identifier: Apache-2.0
"""``history``: the passive-DNS history store that correlate fills and retro and hunt read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from ._schema import Problem


@dataclass(frozen=True)
class ClickHouse:
    """The history store on a ClickHouse cluster (``history.engine: clickhouse``)."""

    url: str = ""
    """The HTTP interface of the node this server writes to (its shard), e.g.
    ``https://ch1.example.org:8443/``; searches go through that node's
    Distributed tables to every shard."""
    user: str = "pdnssoc"
    password_file: Path | None = None
    """The user's password, first line of this file (mode 0600 or 0640 with the
    agent's group); sent in the X-ClickHouse-Key header, never in the URL."""
    database: str = "pdnssoc"
    timeout: float = field(default=60.0, metadata={"min": 1, "max": 3600, "doc": "seconds"})
    """Seconds one HTTP request may take in all."""
    verify_ssl: bool = True
    ca_file: Path | None = None

    def check_used(self, path: str, problems: list[Problem]) -> None:
        """What is wrong, when the cluster is used (not checked otherwise)."""
        prefix = f"{path}." if path else ""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                Problem(
                    f"{prefix}url", "expected an http(s) URL such as https://ch1.example.org:8443/"
                )
            )
        elif parts.username or parts.password or parts.query:
            problems.append(
                Problem(
                    f"{prefix}url",
                    "must carry no user name, password or query; give them in user and "
                    "password_file",
                )
            )
        if self.password_file is None:
            problems.append(Problem(f"{prefix}password_file", "is required"))
        if not self.database.replace("_", "").isalnum():
            problems.append(Problem(f"{prefix}database", "letters, digits and _ only"))


@dataclass(frozen=True)
class History:
    """Paths are relative to ``data_dir`` unless absolute."""

    enabled: bool = True
    """correlate folds every reply it reads into the store; retro searches it
    for the part of its look-back it covers; ``hunt`` reads it."""
    dir: Path = Path("history")
    """The store's directory (Parquet day partitions and a manifest)."""
    commit_every: timedelta = field(
        default=timedelta(hours=1), metadata={"min": timedelta(minutes=1), "max": timedelta(days=1)}
    )
    """How often the daemon writes what correlate folded into the store. Between
    commits the rows wait in the daemon's memory, and the query log keeps their
    lines (retention removes no file the store does not hold); ``hunt`` and
    ``retro`` read the lines not committed yet from the query log, and a daemon
    that is killed reads them again when it starts. Each commit writes a file
    per day it covers, so committing every correlate run (1 minute) costs several
    times the CPU (docs/history-store.md, "When the store commits")."""
    engine: Literal["embedded", "clickhouse"] = "embedded"
    """``embedded``: the Parquet store in ``dir``. ``clickhouse``: a ClickHouse
    cluster (``clickhouse``), for deployments one server cannot carry."""
    clickhouse: ClickHouse = field(default_factory=ClickHouse)

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        if self.dir == Path() or str(self.dir).strip() == "":
            problems.append(Problem(f"{prefix}dir", "must name a directory"))
        if self.engine == "clickhouse":
            self.clickhouse.check_used(f"{prefix}clickhouse", problems)
