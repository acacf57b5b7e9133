# SPDX-License-Identifier: Apache-2.0
"""The history store on the cluster, as correlate's feed, retro and hunt use it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ..query import QueryResult
from .client import Client
from .schema import statements
from .search import search
from .writer import ClusterWriter, held_ranges

if TYPE_CHECKING:
    from ...config import Config
    from ...correlate.indicators import Matcher


class ClusterStore:
    """The tables of ``client``'s database on the cluster ``pdnssoc``."""

    def __init__(self, client: Client, *, bucket: str = "hour") -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_config(cls, config: Config) -> ClusterStore:
        return cls(Client.from_config(config))

    @property
    def name(self) -> str:
        """How messages and alert lines name the store (no credentials)."""
        return f"clickhouse:{self.client.url}{self.client.database}"

    def exists(self) -> bool:
        """Always true: the tables are there or a search says why not."""
        return True

    def create(self) -> None:
        """Create the node's tables if they do not exist (raises ClusterError)."""
        for sql in statements(self.client.database):
            self.client.execute(sql)

    @contextlib.contextmanager
    def writer(self) -> Iterator[ClusterWriter]:
        """A writer to this node's shard (raises ClusterError when it cannot be reached)."""
        self.create()
        yield ClusterWriter(self.client, bucket=self.bucket)

    def held(self, fps: Iterable[str] | None = None) -> dict[str, list[list[int]]]:
        """Fingerprint -> byte ranges the whole cluster holds (only ``fps`` when given)."""
        return held_ranges(self.client, local=False, fps=fps)

    def search(
        self,
        matcher: Matcher,
        *,
        since_us: int | None = None,
        until_us: int | None = None,
        sensors: Iterable[str] | None = None,
        own: bool = False,
    ) -> QueryResult:
        """Rows of every shard, or with ``own`` of this node's shard only: the
        replies this server's sensors sent (raises ClusterError)."""
        return search(self.client, matcher, since_us=since_us, until_us=until_us,
                      sensors=sensors, own=own)  # fmt: skip
