# SPDX-License-Identifier: Apache-2.0
"""The history store on a ClickHouse cluster as a retention target: this
server's shard, one day at a time.

Every server of a cluster runs its own retention and drops the days of its
own shard (the ``history_local`` table, partitioned by day) once the whole day
is older than ``retention.history``: ``ALTER TABLE ... DROP PARTITION ID``
removes a day at once, so a search through the Distributed table sees a
shard's day whole or not at all. The candidates' paths
(``clickhouse/<database>/history_local/day=YYYY-MM-DD``) name the day in
messages; nothing on the local disk is touched. This target takes part in the
expiry by age only: the free-space guard measures the agent's data root, and
dropping the cluster's days would not free it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AgentError
from ..history.clickhouse.client import Client, quote
from .store_target import NAME, day_end
from .targets import Candidate

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

TABLE = "history_local"
_PARTITION_ID = re.compile(r"\d{8}")


@dataclass(frozen=True)
class ClusterTarget:
    """The day partitions of this node's shard of the cluster's history."""

    max_age: timedelta
    client: Client
    name: str = NAME

    @classmethod
    def from_config(cls, config: Config) -> ClusterTarget:
        return cls(config.retention.history, Client.from_config(config))

    @property
    def root(self) -> Path:
        return Path("clickhouse") / self.client.database / TABLE

    def candidates(self) -> list[Candidate]:
        # Both names are literals quoted for ClickHouse; the database name is
        # letters, digits and _ only (the configuration checks it).
        where = f"database = {quote(self.client.database)} AND table = {quote(TABLE)}"
        sql = (
            "SELECT partition_id, sum(bytes_on_disk) AS bytes FROM system.parts "  # noqa: S608
            f"WHERE {where} AND active GROUP BY partition_id ORDER BY partition_id"
        )
        try:
            rows = self.client.rows(sql)
        except AgentError as exc:
            log.warning("retention: the history on the cluster is left alone: %s", exc)
            return []
        out = []
        for row in rows:
            pid = str(row.get("partition_id", ""))
            if not _PARTITION_ID.fullmatch(pid):
                log.warning("retention: %s: partition %r is not a day; left alone", TABLE, pid)
                continue
            day = f"{pid[:4]}-{pid[4:6]}-{pid[6:]}"
            size = row.get("bytes", 0)
            out.append(
                Candidate(
                    self.name,
                    self.root / f"day={day}",
                    day_end(day).timestamp(),
                    size if isinstance(size, int) else 0,
                )
            )
        return out

    def remove(self, candidate: Candidate) -> None:
        """Drop the candidate's day from this node's shard (ClusterError if refused)."""
        pid = candidate.path.name.removeprefix("day=").replace("-", "")
        if not _PARTITION_ID.fullmatch(pid):
            raise ValueError(f"not a day partition: {candidate.path}")
        self.client.execute(
            f"ALTER TABLE {self.client.database}.{TABLE} DROP PARTITION ID {quote(pid)}"
        )


def cluster_targets(config: Config) -> list[ClusterTarget]:
    """The cluster's days, when the history store is on a cluster; else none."""
    if not config.history.enabled or config.history.engine != "clickhouse":
        return []
    try:
        return [ClusterTarget.from_config(config)]
    except (ValueError, OSError) as exc:  # the password file cannot be read
        log.warning("retention: the history on the cluster is left alone: %s", exc)
        return []
