# SPDX-License-Identifier: Apache-2.0
"""Which store correlate fills and retro and hunt read: the seam between the engines.

``history.engine`` picks the embedded Parquet store (:class:`.store.HistoryStore`)
or a ClickHouse cluster (:class:`.clickhouse.ClusterStore`). Both answer the
same calls: a writer that correlate's feed fills (:class:`StoreWriter`), the
byte ranges of query-log files they hold, and a search that returns the same
:class:`.query.Row` objects, so retro's alerts and hunt's lines are built by
the same code whatever the engine. A search with ``own`` reads only the replies
this server put in the store (on a cluster its node's shard: each server's
retro alerts on its own sensors' replies, once); hunt reads every shard.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .query import QueryResult

if TYPE_CHECKING:
    from ..config import Config
    from ..correlate.indicators import Matcher
    from .aggregate import Batch
    from .writer import CommitResult, Pending, Source


class StoreWriter(Protocol):
    """What correlate's feed calls on a store's writer."""

    batch: Batch

    def held(self, fp: str) -> list[list[int]]: ...
    def holding(self, fp: str) -> list[list[int]]: ...
    def add(self, records: Iterable[Any], source: Source) -> bool: ...
    def take_pending(self) -> Pending | None: ...
    def adopt(self, taken: Pending) -> bool: ...
    def commit(self) -> CommitResult: ...
    def compact(self, *, full_before: str | None = None) -> int: ...


class Store(Protocol):
    """What feed, retro and hunt call on a store."""

    @property
    def name(self) -> str: ...
    def exists(self) -> bool: ...
    def writer(self) -> AbstractContextManager[StoreWriter]: ...
    def held(self, fps: Iterable[str] | None = None) -> dict[str, list[list[int]]]: ...
    def search(
        self,
        matcher: Matcher,
        *,
        since_us: int | None = None,
        until_us: int | None = None,
        sensors: Iterable[str] | None = None,
        own: bool = False,
    ) -> QueryResult: ...


class Embedded:
    """The embedded store at ``root``, as a :class:`Store`."""

    def __init__(self, root: Path) -> None:
        from .store import HistoryStore  # noqa: PLC0415

        self.store = HistoryStore(root)

    @property
    def name(self) -> str:
        return str(self.store.root)

    def exists(self) -> bool:
        return self.store.manifest_path.is_file()

    def writer(self) -> AbstractContextManager[StoreWriter]:
        return self.store.writer()

    def held(self, fps: Iterable[str] | None = None) -> dict[str, list[list[int]]]:
        sources = self.store.manifest().sources
        keys = sources.keys() if fps is None else [f for f in fps if f in sources]
        return {k: [list(r) for r in sources[k].ranges] for k in keys}

    def search(
        self,
        matcher: Matcher,
        *,
        since_us: int | None = None,
        until_us: int | None = None,
        sensors: Iterable[str] | None = None,
        own: bool = False,  # one server: the whole store is its own
    ) -> QueryResult:
        from .query import search  # noqa: PLC0415

        return search(self.store, matcher, since_us=since_us, until_us=until_us, sensors=sensors)


def open_store(config: Config) -> Store:
    """The store ``history.engine`` names (ValueError: the cluster's password is unreadable)."""
    if config.history.engine == "clickhouse":
        from .clickhouse import ClusterStore  # noqa: PLC0415

        return ClusterStore.from_config(config)
    return Embedded(config.history.dir)
