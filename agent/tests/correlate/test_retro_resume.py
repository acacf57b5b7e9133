# SPDX-License-Identifier: Apache-2.0
"""A retro asked to stop leaves a checkpoint; the next run resumes it.

The stop is asked for part-way through the third of six archive files (from
the progress report, the way the daemon's SIGTERM handler asks it): the run
commits the alerts of the two files it read to the end, and the next run
reads the other four, the interrupted one whole. Every alert is written
once, with the count of every DNS message behind it, also when files were
renamed between the stop and the resume.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pdnssoc_agent import stopping
from pdnssoc_agent.config import Config
from pdnssoc_agent.correlate import run_retro
from pdnssoc_agent.correlate.retro_resume import RESUME_FILE
from pdnssoc_agent.state import read_pointer
from tests.support.correlate import SAMPLE_DAY, dns_line, make_config, read_alerts, write_lists

FILES = 6
NOW = SAMPLE_DAY + timedelta(days=1)


@pytest.fixture(autouse=True)
def _no_stop_left() -> Iterator[None]:
    stopping.clear()
    yield
    stopping.clear()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = make_config(tmp_path / "data")
    write_lists(cfg, ["evil.example.com"], [])
    archive = cfg.correlation.archive_dir
    archive.mkdir(parents=True)
    benign = b"".join(
        dns_line(f"www{i}.benign.example", ts="2025-11-27T09:00:00Z") for i in range(20_000)
    )
    for k in range(FILES):
        evil = dns_line(f"h{k}.evil.example.com", ts="2025-11-27T09:00:00Z")
        # one hit in the first chunk of the file, one in its last
        (archive / f"queries-{k}.json.gz").write_bytes(
            gzip.compress(evil + benign + evil, compresslevel=1)
        )
    return cfg


class StopInThirdFile:
    """A progress report that asks for the stop once the third file is being read."""

    def __init__(self, _total_bytes: int, _total_files: int) -> None:
        self.asked_at: int | None = None

    def update(self, files_done: int, lines: int, bytes_done: int, *, final: bool = False) -> None:
        if files_done == 2 and self.asked_at is None:
            self.asked_at = files_done
            stopping.request()


def test_a_stopped_retro_resumes_where_it_stopped(config: Config) -> None:
    corr = config.correlation
    first = run_retro(config, now=NOW, progress=StopInThirdFile)
    assert first.stopped
    assert (corr.state_dir / RESUME_FILE).is_file()
    assert read_pointer(corr.last_retro_pointer_file) is None  # retro.last has not moved
    part = read_alerts(config)
    assert sorted(a["query"]["name"] for a in part) == [f"h{k}.evil.example.com" for k in (0, 1)]
    assert all(a["count"] == 2 for a in part)

    stopping.clear()  # the daemon's next start
    second = run_retro(config, now=NOW + timedelta(hours=1))
    assert not second.stopped
    alerts = read_alerts(config)
    names = Counter(a["query"]["name"] for a in alerts)
    assert names == Counter(f"h{k}.evil.example.com" for k in range(FILES))  # each once
    assert all(a["count"] == 2 and a["revision"] == 1 for a in alerts)
    assert second.alerts == FILES - 2
    # it finished the stopped run: retro.last is that run's time, the checkpoint gone
    assert read_pointer(corr.last_retro_pointer_file) == NOW
    assert not (corr.state_dir / RESUME_FILE).exists()
    assert run_retro(config, now=NOW + timedelta(hours=2)).alerts == 0


def test_files_rotated_between_stop_and_resume_are_known_by_their_content(
    config: Config,
) -> None:
    """A file read before the stop and renamed is not read again; a file left and
    renamed is read; a file the stopped run never saw is read whole."""
    archive = config.correlation.archive_dir
    assert run_retro(config, now=NOW, progress=StopInThirdFile).stopped
    (archive / "queries-0.json.gz").rename(archive / "queries-0-rotated.json.gz")  # read
    (archive / "queries-4.json.gz").rename(archive / "queries-4-rotated.json.gz")  # left
    late = dns_line("h9.evil.example.com", ts="2025-11-27T09:30:00Z")
    (archive / "queries-9.json.gz").write_bytes(gzip.compress(late))  # never seen

    stopping.clear()
    run_retro(config, now=NOW + timedelta(hours=1))
    names = Counter(a["query"]["name"] for a in read_alerts(config))
    expected = Counter(f"h{k}.evil.example.com" for k in (*range(FILES), 9))
    assert names == expected  # each once: h0 not again, h4 under its new name, h9 too
    assert all(a["revision"] == 1 for a in read_alerts(config))


def test_a_search_of_given_paths_stopped_writes_nothing(config: Config) -> None:
    stopping.request()
    result = run_retro(config, sorted(config.correlation.archive_dir.iterdir()), now=NOW)
    assert result.stopped
    assert read_alerts(config) == []
    assert not (config.correlation.state_dir / RESUME_FILE).exists()
