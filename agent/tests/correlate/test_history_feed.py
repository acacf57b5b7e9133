# SPDX-License-Identifier: Apache-2.0
"""correlate fills the history store in the pass that reads the query log."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.correlate import history_feed, run_correlate
from pdnssoc_agent.correlate.history_feed import (
    StoreFeed,
    carry_between_runs,
    flush_carried,
    held_note,
)
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.history import HistoryStore
from pdnssoc_agent.scheduler import read_steps, state_path
from tests.support.correlate import SAMPLE, dns_line, make_config, read_alerts, write_lists
from tests.support.scheduler import start_daemon, wait_for

SAMPLE_LINES = SAMPLE.read_bytes().count(b"\n")


def _held(config: Config) -> int:
    """Replies the store holds (committed)."""
    return sum(s.replies for s in HistoryStore(config.history.dir).manifest().segments)


def _lines(n: int, *, minute: int = 0) -> bytes:
    return b"".join(
        dns_line(
            f"host{i}.example.net",
            [("x", "A", f"203.0.113.{i % 200}")],
            ts=f"2025-11-27T10:{minute + i % 10:02d}:00Z",
        )
        for i in range(n)
    )


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    c = make_config(tmp_path / "data")
    write_lists(c, ["evil.example.com", "bad-cdn.net"], ["2001:db8:bad::/48", "198.51.100.99"])
    return c


def test_correlate_fills_the_store_once_per_line(cfg: Config) -> None:
    log_file = cfg.correlation.queries_file
    log_file.write_bytes(SAMPLE.read_bytes())
    first = run_correlate(cfg)
    assert first.alerts > 0
    assert _held(cfg) == SAMPLE_LINES
    again = run_correlate(cfg)  # nothing new: nothing read, nothing added
    assert (again.stats.lines, _held(cfg)) == (0, SAMPLE_LINES)
    with log_file.open("ab") as fh:
        fh.write(_lines(30))
    run_correlate(cfg)
    assert _held(cfg) == SAMPLE_LINES + 30
    m = HistoryStore(cfg.history.dir).manifest()
    assert len(m.sources) == 1  # one file, one fingerprint, ranges merged
    assert next(iter(m.sources.values())).ranges == [[0, log_file.stat().st_size]]


def test_the_store_can_be_switched_off(tmp_path: Path) -> None:
    c = parse_config({"data_dir": str(tmp_path / "data"), "history": {"enabled": False}})
    write_lists(c, ["evil.example.com"], [])
    c.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    assert run_correlate(c).alerts > 0
    assert not c.history.dir.exists()


def test_a_kill_between_the_two_checkpoints_catches_up_without_matching_twice(
    cfg: Config,
) -> None:
    log_file = cfg.correlation.queries_file
    log_file.write_bytes(SAMPLE.read_bytes())
    clean = make_config(cfg.data_dir.parent / "clean")
    write_lists(clean, ["evil.example.com", "bad-cdn.net"], ["2001:db8:bad::/48", "198.51.100.99"])
    clean.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    run_correlate(clean)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies at the crash point
        # The fault is injected from outside: the child dies where the store's
        # commit would start, after correlate's own checkpoint.
        def die(self: StoreFeed) -> None:
            if self.writer is not None and self.writer.pending:
                os._exit(77)

        StoreFeed.commit = die  # type: ignore[method-assign]
        try:
            run_correlate(cfg)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 77
    # correlate's checkpoint and alerts are in, the store holds nothing yet
    assert len(read_alerts(cfg)) == len(read_alerts(clean)) > 0
    assert _held(cfg) == 0

    rerun = run_correlate(cfg)
    assert (rerun.stats.lines, rerun.alerts) == (0, 0)  # nothing matched a second time
    assert _held(cfg) == SAMPLE_LINES  # the store caught up
    alerts = read_alerts(cfg)
    assert Counter((a["id"], a["revision"]) for a in alerts).most_common(1)[0][1] == 1
    assert [a["id"] for a in alerts] == [a["id"] for a in read_alerts(clean)]
    run_correlate(cfg)
    assert _held(cfg) == SAMPLE_LINES  # and nothing twice


def test_a_busy_store_does_not_stop_correlate_and_is_caught_up_later(
    cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    log_file = cfg.correlation.queries_file
    log_file.write_bytes(SAMPLE.read_bytes())
    with HistoryStore(cfg.history.dir).writer(), caplog.at_level(logging.WARNING):
        result = run_correlate(cfg)  # an import holds the store
    assert result.alerts > 0
    assert "another process is writing the history store" in caplog.text
    assert _held(cfg) == 0
    # the log rotated meanwhile: the rotated copy is caught up from correlate's marks
    rotated = log_file.with_name("queries-1764237600000000000.json")
    log_file.rename(rotated)
    log_file.write_bytes(_lines(5))
    again = run_correlate(cfg)
    assert again.stats.lines == 5
    assert _held(cfg) == SAMPLE_LINES + 5


def test_a_damaged_store_does_not_stop_correlate(
    cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    cfg.history.dir.mkdir(parents=True)
    (cfg.history.dir / "MANIFEST.json").write_text("{not json")
    cfg.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    with caplog.at_level(logging.WARNING):
        assert run_correlate(cfg).alerts > 0
    assert "damaged manifest" in caplog.text


def test_a_small_live_log_waits_for_its_final_fingerprint(cfg: Config) -> None:
    log_file = cfg.correlation.queries_file
    line = dns_line("evil.example.com", ts="2025-11-27T10:00:00Z")
    log_file.write_bytes(line)  # under 1 KiB: its fingerprint will still change
    assert run_correlate(cfg).alerts == 1
    assert _held(cfg) == 0
    with log_file.open("ab") as fh:
        fh.write(_lines(4))
    run_correlate(cfg)
    assert _held(cfg) == 5


def test_status_shows_the_store_lag(cfg: Config) -> None:
    log_file = cfg.correlation.queries_file
    log_file.write_bytes(SAMPLE.read_bytes())
    with HistoryStore(cfg.history.dir).writer():
        run_correlate(cfg)
    lag = collect(cfg).history
    assert (lag["bytes_behind"], lag["files_behind"]) == (log_file.stat().st_size, 1)
    assert "1 query-log file(s) behind correlate" in render(collect(cfg))
    run_correlate(cfg)
    lag = collect(cfg).history
    assert (lag["bytes_behind"], lag["replies"]) == (0, SAMPLE_LINES)
    assert lag["newest"].startswith("2025-11-27T")
    assert "up to date with correlate" in render(collect(cfg))


def test_check_config_validates_the_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(f"data_dir: {tmp_path}\nhistory:\n  enabled: maybe\n  dri: x\n")
    assert main(["-c", str(path), "check-config"]) == 3
    out = capsys.readouterr().out
    assert "history.enabled: expected true or false" in out
    assert "history.dri: unknown key; did you mean 'dir'?" in out
    path.write_text(f"data_dir: {tmp_path}\nhistory:\n  dir: /srv/pdns-history\n")
    assert main(["-c", str(path), "check-config"]) == 0
    assert "history store: /srv/pdns-history" in capsys.readouterr().out


def test_only_scheduled_runs_over_the_query_log_fill_the_store(cfg: Config, tmp_path: Path) -> None:
    # given paths may be anything (a copy, matches): retro would count them twice
    assert run_correlate(cfg, [SAMPLE]).alerts > 0
    assert not (cfg.history.dir / "MANIFEST.json").exists()
    matches = parse_config(
        {"data_dir": str(tmp_path / "m"), "correlation": {"live_input": "matches"}}
    )
    write_lists(matches, ["evil.example.com"], [])
    matches.correlation.input_dir.mkdir(parents=True)
    (matches.correlation.input_dir / "m.json").write_bytes(SAMPLE.read_bytes())
    assert run_correlate(matches).alerts > 0
    assert not (matches.history.dir / "MANIFEST.json").exists()
    assert collect(matches).history["enabled"] is False


@pytest.fixture
def carried(cfg: Config) -> Iterator[Config]:
    """This process carries the store's batch between correlate runs, as the daemon does."""
    carry_between_runs(timedelta(hours=1), held_note(cfg))
    try:
        yield cfg
    finally:
        carry_between_runs(None)


def test_the_daemon_commits_the_store_every_commit_every_not_every_run(
    carried: Config, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = carried
    log_file = cfg.correlation.queries_file
    log_file.write_bytes(SAMPLE.read_bytes())
    assert run_correlate(cfg).alerts > 0
    with log_file.open("ab") as fh:
        fh.write(_lines(30))
    run_correlate(cfg)
    assert _held(cfg) == 0  # carried in memory, the store unlocked meanwhile
    with HistoryStore(cfg.history.dir).writer():
        pass  # (another process could write it)
    status = collect(cfg).history
    assert status["bytes_behind"] == log_file.stat().st_size
    # status says what the daemon holds, and by when it commits it
    held = status["held"]
    assert (held["pid"], held["replies"]) == (os.getpid(), SAMPLE_LINES + 30)
    since = datetime.fromisoformat(held["since"])
    assert datetime.fromisoformat(held["due"]) - since == timedelta(hours=1)
    assert abs(since - datetime.now(UTC)) < timedelta(minutes=1)
    assert (
        f"holds {SAMPLE_LINES + 30:,} of their replies in memory since {held['since']} and "
        f"commits them by {held['due']} (every 1:00:00)"
    ) in render(collect(cfg))
    with caplog.at_level(logging.INFO):
        flush_carried(cfg)  # the daemon stops
    assert _held(cfg) == SAMPLE_LINES + 30
    assert not held_note(cfg).exists() and "held" not in collect(cfg).history
    assert f"committed the {SAMPLE_LINES + 30} repl(ies) kept in memory" in caplog.text
    assert len(HistoryStore(cfg.history.dir).manifest().segments) == 1  # one commit, one file
    run_correlate(cfg)
    flush_carried(cfg)
    assert _held(cfg) == SAMPLE_LINES + 30


def test_a_batch_is_committed_once_commit_every_has_passed(
    carried: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = carried
    cfg.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    run_correlate(cfg)
    run_correlate(cfg)
    assert _held(cfg) == 0
    real = time.monotonic
    monkeypatch.setattr(
        history_feed, "time", SimpleNamespace(monotonic=lambda: real() + 3600, time=time.time)
    )
    run_correlate(cfg)  # an hour after the first line: committed, though nothing is new
    assert _held(cfg) == SAMPLE_LINES


def test_a_carried_batch_another_writer_added_meanwhile_is_not_counted_twice(
    carried: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = carried
    log_file = cfg.correlation.queries_file
    log_file.write_bytes(SAMPLE.read_bytes())
    run_correlate(cfg)
    # an operator imports the same log while the daemon holds its batch
    conf = cfg.data_dir / "agent.yml"
    conf.write_text(f"data_dir: {cfg.data_dir}\n")
    assert main(["-c", str(conf), "history", "import", str(log_file)]) == 0
    assert _held(cfg) == SAMPLE_LINES
    run_correlate(cfg)  # (the import set up logging to stderr)
    flush_carried(cfg)
    assert "kept since an earlier run were dropped" in capsys.readouterr().err
    assert _held(cfg) == SAMPLE_LINES


def test_a_daemon_killed_before_its_commit_reads_the_lines_again(carried: Config) -> None:
    cfg = carried
    cfg.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    first = run_correlate(cfg)
    assert first.alerts > 0 and _held(cfg) == 0
    carry_between_runs(None)  # the process dies: its memory with it
    again = run_correlate(cfg)  # a new process, committing every run
    assert (again.stats.lines, again.alerts) == (0, 0)  # nothing matched twice
    assert _held(cfg) == SAMPLE_LINES  # the store caught up from the query log


def test_status_believes_no_note_of_a_dead_daemon_or_long_past_its_commit(cfg: Config) -> None:
    cfg.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    carry_between_runs(timedelta(hours=1), held_note(cfg))
    try:
        run_correlate(cfg)
        assert collect(cfg).history["held"]["replies"] == SAMPLE_LINES
        note = json.loads(held_note(cfg).read_text())
        for changed in (
            {"pid": _gone_pid()},
            {"due": "2000-01-01T00:00:00Z"},
            {"pid": "x"},
            {"due": "2000-01-01T00:00:00"},
            {"due": "soon"},
            {"rows": None},
        ):
            held_note(cfg).write_text(json.dumps({**note, **changed}))
            assert "held" not in collect(cfg).history, changed
            assert "holds" not in render(collect(cfg))
    finally:
        carry_between_runs(None)


def _gone_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_the_daemon_commits_its_batch_when_it_is_stopped(cfg: Config) -> None:
    """The real daemon: correlate's runs leave the store's batch in memory, and SIGTERM
    commits it before the process exits."""
    cfg.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    conf = cfg.data_dir / "agent.yml"
    conf.write_text(f"data_dir: {cfg.data_dir}\n")
    proc = start_daemon(conf, "--steps", "correlate")
    try:
        wait_for(lambda: read_steps(state_path(cfg)).get("correlate", {}).get("outcome") == "ok")
        assert _held(cfg) == 0  # one run, nothing due: held in the daemon's memory
        held = collect(cfg).history["held"]
        assert (held["pid"], held["replies"]) == (proc.pid, SAMPLE_LINES)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"committed the {SAMPLE_LINES} repl(ies) kept in memory" in err
    assert _held(cfg) == SAMPLE_LINES
    assert not held_note(cfg).exists()
