# SPDX-License-Identifier: Apache-2.0
"""Telling the collector to reload: a real child process that records SIGHUP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdnssoc_agent.reload import Outcome, reload_collector
from tests.support.collector import TOKEN, FakeCollector


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[FakeCollector]:
    fake = FakeCollector(tmp_path)
    try:
        yield fake
    finally:
        fake.stop()


def test_sighup_reaches_the_collector(collector: FakeCollector) -> None:
    result = reload_collector(collector.pid_file, TOKEN)
    assert result.outcome is Outcome.SIGNALLED and result.ok
    assert result.pid == collector.proc.pid
    assert collector.hups(expect=1) == 1
    reload_collector(collector.pid_file, None)  # check disabled
    assert collector.hups(expect=2) == 2
    assert collector.proc.poll() is None  # still alive: it handled the signal


def test_pid_of_another_program_is_not_signalled(collector: FakeCollector) -> None:
    result = reload_collector(collector.pid_file, "go-dnscollector -config")
    assert result.outcome is Outcome.NOT_COLLECTOR and not result.ok
    time.sleep(0.2)
    assert collector.hups() == 0


def test_missing_pid_file_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    result = reload_collector(tmp_path / "absent.pid", "dnscollector")
    assert result.outcome is Outcome.NO_PID_FILE
    assert "collector not reloaded" in caplog.text


def test_dead_pid_is_a_warning(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    pid_file = tmp_path / "c.pid"
    pid_file.write_text(f"{proc.pid}\n")
    for expect in ("dnscollector", None):
        assert reload_collector(pid_file, expect).outcome is Outcome.NOT_RUNNING


@pytest.mark.parametrize("content", ["", "abc\n", "1\n", "-5\n", "0"])
def test_garbage_pid_file(tmp_path: Path, content: str) -> None:
    pid_file = tmp_path / "c.pid"
    pid_file.write_text(content)
    assert reload_collector(pid_file, None).outcome is Outcome.BAD_PID_FILE


def test_disabled() -> None:
    result = reload_collector(None, "dnscollector")
    assert result.outcome is Outcome.DISABLED and result.ok


def test_own_process_is_not_signalled_by_accident(tmp_path: Path) -> None:
    # Our own pid with a command line that lacks the collector's name.
    pid_file = tmp_path / "c.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert reload_collector(pid_file, "no-such-collector-name").outcome is Outcome.NOT_COLLECTOR
