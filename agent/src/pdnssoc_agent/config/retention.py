# SPDX-License-Identifier: Apache-2.0
"""``retention``: how long each kind of data is kept, and the free-space guard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from ._schema import Problem


@dataclass(frozen=True)
class Retention:
    """Ages per kind of data; the ``retention`` step removes what is older.

    The alert ledger's delivered rows keep ``alerting.ledger_retention``.
    """

    enabled: bool = True
    """False: nothing is ever removed (the free-space guard only warns)."""
    archive: timedelta = field(default=timedelta(days=30), metadata={"min": timedelta(days=1)})
    """Raw query-log files under ``correlation.archive_dir`` (personal data:
    kept for retro's look-back, not longer)."""
    history: timedelta = field(default=timedelta(days=400), metadata={"min": timedelta(days=1)})
    """Days of the history store (``history.dir``), removed a whole day at a
    time. Aggregated rows, no raw lines: kept longer than the raw archive so
    that analysts can hunt an indicator published up to a year after the
    activity (docs/history-store.md, "Retention")."""
    alerts: timedelta = field(default=timedelta(days=365), metadata={"min": timedelta(days=1)})
    """Rotated alert files (``matches-<time>.json`` beside the alerts file)."""
    alerts_rotate: timedelta = field(
        default=timedelta(days=1), metadata={"min": timedelta(hours=1)}
    )
    """The alerts file is rotated when it is this old and every line of it was
    taken in by ``alert``, so that old alerts can expire."""
    min_free_percent: int = field(default=10, metadata={"min": 0, "max": 90, "doc": "percent"})
    """The free-space guard's watermark on the data root's file system: below
    it, expired data goes first, then the oldest data retention may remove."""

    def warnings(self, retro_lookback: timedelta) -> list[Problem]:
        """Settings that work but defeat one another."""
        if self.enabled and self.archive < retro_lookback:
            return [
                Problem(
                    "retention.archive",
                    f"{self.archive.days} days is shorter than correlation.retro_lookback "
                    f"({retro_lookback.days} days): retro cannot look back further than the "
                    "archive is kept",
                )
            ]
        return []
