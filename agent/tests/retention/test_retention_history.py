# SPDX-License-Identifier: Apache-2.0
"""Retention and the history store: the store's days expire whole through its
own writer, the free-space guard falls back on them after the raw archive
(never on a day retro has not searched yet), no archive file goes before the
store holds its lines, and ``status`` shows the store's size and damage.

As in test_retention.py, a full disk is simulated at the guard's seam (its
``disk`` probe); files, pointers, correlate, retro and the store are real.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.correlate import run_correlate, run_retro
from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.history import HistoryStore, search
from pdnssoc_agent.retention import Disk, run_retention
from pdnssoc_agent.state import utcnow
from tests.support.correlate import dns_line, write_lists
from tests.support.history import add_lines, flip_in_column, fp_of
from tests.support.retention import SIZE, TOTAL, put, read_both


def config(tmp_path: Path, **retention: Any) -> Config:
    return parse_config({"data_dir": str(tmp_path), "retention": retention})


def ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


def fill_days(store: HistoryStore, days_ago: list[int]) -> dict[int, Path]:
    """One log file a day, ``days_ago`` days back at noon; the day directories."""
    out = {}
    now = datetime.now(UTC)
    with store.writer() as w:
        for n in days_ago:
            day = (now - timedelta(days=n)).replace(hour=12, minute=0, second=0)
            add_lines(w, dns_line("evil.example", ts=ts(day)) * 2, fp=f"file-{n}")
            w.commit()
            out[n] = store.root / f"day={day:%Y-%m-%d}"
    return out


class SizedDisk:
    """Free space that starts at ``free`` and grows by the given size of each path gone."""

    def __init__(self, free: int, watched: dict[Path, int]) -> None:
        self.free, self.watched = free, watched

    def __call__(self, _path: Path) -> Disk:
        gone = sum(size for p, size in self.watched.items() if not p.exists())
        return Disk(TOTAL, self.free + gone)


def test_the_store_keeps_400_days_by_default(tmp_path: Path) -> None:
    assert config(tmp_path).retention.history == timedelta(days=400)


def test_store_days_expire_whole_through_its_writer(tmp_path: Path) -> None:
    cfg = config(tmp_path, history={"days": 100})
    store = HistoryStore(cfg.history.dir)
    days = fill_days(store, [300, 101, 99, 1])
    report = run_retention(cfg, disk=lambda _p: Disk(TOTAL, TOTAL))
    assert report.expired == [days[300], days[101]], report
    assert not days[300].exists() and not days[101].exists()
    assert days[99].is_dir() and days[1].is_dir()
    m = store.manifest()  # the store's own commit: segments and their files forgotten
    assert {f"day={s.day}" for s in m.segments} == {days[99].name, days[1].name}
    assert set(m.sources) == {"file-99", "file-1"}
    assert sum(r.count for r in search(store, Matcher(["evil.example"])).rows) == 4
    assert store.verify() == []
    assert report.exit_code == 0


def test_a_store_being_written_is_left_for_the_next_run(tmp_path: Path) -> None:
    cfg = config(tmp_path, history={"days": 100})
    store = HistoryStore(cfg.history.dir)
    days = fill_days(store, [300, 1])
    with store.writer():  # correlate or an import is writing it
        report = run_retention(cfg, disk=lambda _p: Disk(TOTAL, TOTAL))
    assert days[300].is_dir() and report.expired == []
    assert report.held == {"history busy, tried again next run": 1}
    assert report.exit_code == 0
    report = run_retention(cfg, disk=lambda _p: Disk(TOTAL, TOTAL))
    assert report.expired == [days[300]]


def test_the_guard_falls_back_on_the_store_after_the_archive(tmp_path: Path) -> None:
    cfg = config(tmp_path, min_free_percent=10)
    corr = cfg.correlation
    read_both(cfg)
    store = HistoryStore(cfg.history.dir)
    days = fill_days(store, [60, 40, 0])  # today's is after retro.last: not searched yet
    sizes = {s.day: s.bytes for s in store.manifest().segments}
    a20 = put(corr.archive_dir / "q-20.json", 20)
    alerts_old = put(corr.output_dir / "matches-20260101T000000Z.json", 100)
    watched = {a20: SIZE, alerts_old: SIZE}
    watched |= {d: sizes[d.name.removeprefix("day=")] for d in days.values()}
    need = 100_000 - SIZE - sizes[days[60].name.removeprefix("day=")]
    disk = SizedDisk(need - 1, watched)  # the archive file and one day are not enough

    report = run_retention(cfg, disk=disk)
    assert report.guard_removed == [a20, days[60], days[40]], report
    assert days[0].is_dir() and alerts_old.exists()
    assert report.exit_code == 0
    assert {f"day={s.day}" for s in store.manifest().segments} == {days[0].name}


def test_an_archive_file_stays_until_the_store_holds_its_lines(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    corr = cfg.correlation
    write_lists(cfg, ["evil.example"], [])
    now = ts(utcnow())
    corr.queries_file.write_bytes(dns_line("benign.example", ts=now))
    run_correlate(cfg)
    run_retro(cfg)
    time.sleep(0.05)
    rotated = corr.archive_dir / "queries-1.json"
    rotated.parent.mkdir(parents=True)
    rotated.write_bytes(dns_line("www.evil.example", ts=now) * 3)
    corr.queries_file.write_bytes(b"")
    store = HistoryStore(cfg.history.dir)
    with store.writer():  # busy while correlate reads the file: the store falls behind
        run_correlate(cfg)
    time.sleep(1.1)  # retro.last has one-second steps in what it compares
    run_retro(cfg)
    starving = SizedDisk(0, {rotated: SIZE})  # no space at all, for ever

    report = run_retention(cfg, disk=starving)
    assert rotated.exists(), report  # read by correlate and retro, not in the store
    assert report.guard_removed == []

    run_correlate(cfg)  # the store catches up from the file
    assert sum(r.count for r in search(store, Matcher(["evil.example"])).rows) == 3
    report = run_retention(cfg, disk=starving)
    assert report.guard_removed == [rotated]


def test_an_archive_file_the_store_holds_in_part_stays(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    read_both(cfg)
    old = datetime.now(UTC) - timedelta(days=40)
    lines = dns_line("a.example", ts=ts(old)) + dns_line("b.example", ts=ts(old))
    other = dns_line("c.example", ts=ts(old)) * 3
    part = put(cfg.correlation.archive_dir / "queries-1.json", 40, 0)
    whole = put(cfg.correlation.archive_dir / "queries-2.json", 40, 0)
    for path, data in ((part, lines), (whole, other)):
        t = path.stat().st_mtime
        path.write_bytes(data)
        os.utime(path, (t, t))
    store = HistoryStore(cfg.history.dir)
    with store.writer() as w:  # an import cut short: the first line of one file only
        add_lines(w, lines.split(b"\n", 1)[0] + b"\n", fp=fp_of(lines))
        add_lines(w, other)
        w.commit()
    report = run_retention(cfg, disk=lambda _p: Disk(TOTAL, TOTAL))
    assert report.expired == [whole], report
    assert part.exists()
    assert report.held == {"not in the history store yet": 1}


def test_check_config_validates_and_names_the_stores_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(f"data_dir: {tmp_path}\nretention:\n  history: {{hours: 5}}\n")
    assert main(["-c", str(path), "check-config"]) == 3
    assert "retention.history: must be at least {days: 1}" in capsys.readouterr().out
    path.write_text(f"data_dir: {tmp_path}\nretention:\n  history: {{days: 500}}\n")
    assert main(["-c", str(path), "check-config"]) == 0
    assert "history store 500 days" in capsys.readouterr().out


def test_status_shows_the_stores_size_and_its_damaged_files(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = HistoryStore(cfg.history.dir)
    fill_days(store, [3, 2, 1])
    segs = store.manifest().segments
    status = collect(cfg)
    assert status.history["rows"] == 3 and status.history["damaged"] == []
    assert status.history["size_bytes"] == store.size_on_disk() > sum(s.bytes for s in segs) > 0
    assert " replies in 3 rows, " in render(status)
    assert not [p for p in status.problems if "history" in p]

    flipped, cut = store.segment_path(segs[0]), store.segment_path(segs[1])
    flip_in_column(flipped, "client")  # only a full read finds it
    cut.write_bytes(cut.read_bytes()[:-100])
    status = collect(cfg)  # the cheap check finds the cut file at once
    assert [p.split(":")[0] for p in status.history["damaged"]] == [str(cut)]

    run_retention(cfg, disk=lambda _p: Disk(TOTAL, TOTAL))  # reads new segments in full
    status = collect(cfg)
    assert sorted(p.split(":")[0] for p in status.history["damaged"]) == sorted(
        [str(cut), str(flipped)]
    )
    text = render(status)
    assert f"PROBLEM: history store: {flipped}: damaged" in text
    assert f"PROBLEM: history store: {cut}: " in text
