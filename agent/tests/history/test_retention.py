# SPDX-License-Identifier: Apache-2.0
"""Retention of the history store: whole days go, a dry run only lists them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.history import HistoryStore, search
from tests.support.correlate import dns_line
from tests.support.history import add_lines, store_at


def _three_days(tmp_path: Path) -> HistoryStore:
    store = store_at(tmp_path)
    with store.writer() as w:
        for day in (5, 6, 7):  # one log file a day
            data = dns_line("evil.example", ts=f"2026-01-{day:02d}T12:00:00Z") * 3
            add_lines(w, data, fp=f"file-{day}")
            w.commit()
    return store


def test_a_dry_run_lists_what_would_go_and_removes_nothing(tmp_path: Path) -> None:
    store = _three_days(tmp_path)
    files = sorted(store.root.glob("day=*/*.parquet"))
    now = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
    with store.writer() as w:
        plan = w.expire(timedelta(days=2), now=now, dry_run=True)
    assert plan.cutoff == "2026-01-06"
    assert plan.days == ["2026-01-05"]
    assert plan.sources == ["file-5"]
    (line,) = plan.lines()
    assert line.startswith("day=2026-01-05: 1 file(s), ") and line.endswith(" 1 rows, 3 replies")
    assert sorted(store.root.glob("day=*/*.parquet")) == files
    assert sum(r.count for r in search(store, Matcher(["evil.example"])).rows) == 9


def test_expiry_removes_whole_days_and_forgets_their_files(tmp_path: Path) -> None:
    store = _three_days(tmp_path)
    now = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
    with store.writer() as w:
        plan = w.expire(timedelta(days=2), now=now)
    assert plan.bytes > 0
    assert not (store.root / "day=2026-01-05").exists()
    assert {s.day for s in store.manifest().segments} == {"2026-01-06", "2026-01-07"}
    assert set(store.manifest().sources) == {"file-6", "file-7"}
    rows = search(store, Matcher(["evil.example"])).rows
    assert sum(r.count for r in rows) == 6
    with store.writer() as w:  # nothing more to do
        assert w.expire(timedelta(days=2), now=now).segments == []


def test_retention_must_be_positive(tmp_path: Path) -> None:
    store = _three_days(tmp_path)
    with store.writer() as w, pytest.raises(ValueError, match="positive"):
        w.expire(timedelta(0))
