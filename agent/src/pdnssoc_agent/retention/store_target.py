# SPDX-License-Identifier: Apache-2.0
"""The history store as a retention target: its day partitions, removed whole.

A candidate is one day (``<history.dir>/day=YYYY-MM-DD``) with the bytes of the
segments the manifest lists for it; its age is that of the day's end, so a day
goes when all of it is older than ``retention.history`` (as
:func:`..history.retention.plan` decides). Removal goes through the store's
own writer (:meth:`..history.Writer.expire`): the manifest is replaced first,
the files go after, so a reader never sees a partial day and a crash leaves at
worst files the next writer removes. A store another process is writing
(correlate, an import) raises :class:`..errors.BusyError`: the day is tried
again on the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..errors import AgentError
from .targets import Candidate

log = logging.getLogger(__name__)

NAME = "history"


def day_end(day: str) -> datetime:
    """The first instant after the ``YYYY-MM-DD`` day ``day`` (UTC)."""
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)


@dataclass(frozen=True)
class StoreTarget:
    """The day partitions of the history store at ``root``."""

    max_age: timedelta
    root: Path
    name: str = NAME

    def candidates(self) -> list[Candidate]:
        from ..history import HistoryStore  # noqa: PLC0415 - pyarrow only when used

        if not (self.root / "MANIFEST.json").is_file():
            return []
        try:
            m = HistoryStore(self.root).manifest()
        except AgentError as exc:
            log.warning("retention: history store left alone: %s", exc)
            return []
        days: dict[str, int] = {}
        for s in m.segments:
            days[s.day] = days.get(s.day, 0) + s.bytes + s.index
        return [
            Candidate(self.name, self.root / f"day={day}", day_end(day).timestamp(), size)
            for day, size in sorted(days.items())
        ]

    def remove(self, candidate: Candidate) -> None:
        """Expire the candidate's day (and any older one) through the store's writer."""
        from ..history import HistoryStore  # noqa: PLC0415

        day = candidate.path.name.removeprefix("day=")
        # the plan keeps the days from (now - keep) on: one day kept from the day after
        now = day_end(day) + timedelta(days=1)
        with HistoryStore(self.root).writer() as w:
            plan = w.expire(timedelta(days=1), now=now)
        if not plan.segments:
            raise FileNotFoundError(candidate.path)
