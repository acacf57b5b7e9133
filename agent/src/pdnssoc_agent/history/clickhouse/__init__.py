# SPDX-License-Identifier: Apache-2.0
"""The history store on a ClickHouse cluster (``history.engine: clickhouse``).

Each pDNSSOC server writes the rows it folds (the embedded store's rows, from
the same :class:`~pdnssoc_agent.history.aggregate.Batch`) into the local
tables of its own node (its shard); ``hunt`` reads every shard through the
Distributed tables, ``retro`` its own shard (the replies of the sensors it
receives: each retro alert is raised once, by one server). A batch counts
once its commit row is in the ``batches`` table: rows of a batch that was
never committed (a crash between the two inserts) are ignored by every search,
and the bytes they came from are read again. See docs/design.md, "History at scale".
"""

from __future__ import annotations

from .client import Client, ClusterError
from .store import ClusterStore

__all__ = ["Client", "ClusterError", "ClusterStore"]
