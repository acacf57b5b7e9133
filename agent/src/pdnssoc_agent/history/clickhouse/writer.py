# SPDX-License-Identifier: Apache-2.0
"""Filling the cluster: the embedded store's batches, inserted into this node's shard.

The interface is that of :class:`pdnssoc_agent.history.writer.Writer` as
correlate's feed uses it (``held``, ``add``, ``commit``, ``compact``,
``batch``). A commit is two INSERTs into the node the server writes to: the
rows, tagged with a new batch id, then one row per query-log byte range in
``batches_local``. The second is the commit point: searches count only rows
of committed batches, so a crash (or an unreachable node) between the two
leaves rows that are never counted, and the bytes are read again into a new
batch. Nothing is counted twice, nothing is lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from .. import manifest
from ..writer import BatchWriter, CommitResult
from .client import Client
from .schema import batch_rows, history_rows


class ClusterWriter(BatchWriter):
    """Adds batches to this node's shard; see the module docstring."""

    what = "the history cluster"

    def __init__(self, client: Client, *, bucket: str = "hour") -> None:
        super().__init__(bucket)
        self.client = client
        self._held = held_ranges(client, local=True)

    def held(self, fp: str) -> list[list[int]]:
        """Byte ranges of the file with fingerprint ``fp`` this shard holds (committed)."""
        return [list(r) for r in self._held.get(fp, [])]

    def commit(self) -> CommitResult:
        """Insert the rows, then the commit row; durable on the node on return."""
        result = CommitResult(skipped=self.skipped)
        self.skipped = 0
        if not self.pending:
            return result
        table = self.batch.table()
        batch = uuid.uuid4().hex
        db = self.client.database
        if table.num_rows:
            self.client.execute(
                f"INSERT INTO {db}.history_local FORMAT RowBinary",
                b"".join(history_rows(table, batch)),
            )
        sources = [(s.fp, s.start, s.end, s.path) for s in self.pending]
        self.client.execute(
            f"INSERT INTO {db}.batches_local FORMAT RowBinary",
            batch_rows(batch, sources, int(time.time())),
        )
        for s in self.pending:
            self._held[s.fp] = manifest.add_range(self._held.get(s.fp, []), s.start, s.end)
        result.rows = table.num_rows
        result.replies = self.batch.replies
        self._reset()
        return result

    def compact(self, *, full_before: str | None = None) -> int:
        """Nothing to do: ClickHouse merges a table's parts on its own."""
        return 0


def held_ranges(
    client: Client, *, local: bool, fps: Iterable[str] | None = None
) -> dict[str, list[list[int]]]:
    """Fingerprint -> committed byte ranges (sorted, merged): of this node's shard
    (``local``) or of the whole cluster; only ``fps`` when given."""
    from .client import quote  # noqa: PLC0415

    table = "batches_local" if local else "batches"
    where = ""
    if fps is not None:
        wanted = sorted(set(fps))
        if not wanted:
            return {}
        where = " WHERE fp IN (" + ", ".join(quote(f) for f in wanted) + ")"
    rows = client.rows(
        # the database name is checked by the configuration, values go through quote()
        f"SELECT fp, lo, hi FROM {client.database}.{table}{where} ORDER BY fp, lo",  # noqa: S608
        settings={"max_query_size": str(1 << 24)},
    )
    out: dict[str, list[list[int]]] = {}
    for r in rows:
        fp = str(r["fp"])
        out[fp] = manifest.add_range(out.get(fp, []), int(r["lo"]), int(r["hi"]))  # type: ignore[call-overload]
    return out
