# SPDX-License-Identifier: Apache-2.0
"""Retro runs in a lane of its own: live alerts keep their latency while it runs.

The measurement is the benchmark's (``benchmarks/bench_live_latency.py``), run
here smaller as a pass/fail; the daemon is the real process, stopped with a
SIGTERM to its whole process group (as supervisord's ``stopasgroup`` does) or
to the daemon alone (supervisord's default), which passes it on to retro.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pdnssoc_agent.config import load_config
from pdnssoc_agent.correlate import run_retro
from pdnssoc_agent.scheduler import read_steps, state_path
from pdnssoc_agent.state import utcnow
from tests.support.correlate import read_alerts
from tests.support.paths import AGENT_DIR

SRC = AGENT_DIR / "src"
BENCH = (sys.executable, "-m", "benchmarks", "live_latency")
AGENT_CMD = (sys.executable, "-m", "pdnssoc_agent")


def bench(mode: str, lines: int) -> dict[str, object]:
    out = subprocess.run(
        [*BENCH, "--lines", str(lines), "--mode", mode, "--json"],
        cwd=AGENT_DIR,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_live_alert_arrives_while_a_long_retro_runs() -> None:
    r = bench("lane", 600_000)
    assert r["latency_s"] is not None
    assert r["retro_still_running_at_alert"] is True, r
    assert float(r["latency_s"]) < 2.0, r  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def long_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive retro takes far longer than a few seconds to read."""
    from benchmarks.bench_live_latency import EVIL, LINE, _archive, _ts

    archive = tmp_path_factory.mktemp("archive") / "queries-1.json.gz"
    _archive(archive, 1_500_000, utcnow().replace(microsecond=0))
    # one matching line at the end of the archive: retro's alert
    with gzip.open(archive, "at", encoding="ascii") as fh:
        fh.write(LINE.format(c=9, q=EVIL, ts=_ts(utcnow())))
    return archive


@pytest.mark.slow
@pytest.mark.parametrize("group", [True, False], ids=["to-the-group", "to-the-daemon"])
def test_sigterm_stops_retro_at_a_boundary_and_the_next_run_resumes(
    tmp_path: Path, long_archive: Path, group: bool
) -> None:
    """supervisord signals the group (``stopasgroup``) or the daemon alone: either way
    retro stops within seconds, and the next run finds its alert, once."""
    from benchmarks.bench_live_latency import EVIL, LINE, _ts

    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(yaml.safe_dump({"data_dir": str(tmp_path)}))
    cfg = load_config(cfg_path)
    corr = cfg.correlation
    corr.malicious_domains_file.parent.mkdir(parents=True)
    corr.malicious_domains_file.write_text(EVIL + "\n")
    corr.malicious_ips_file.write_text("")
    corr.archive_dir.mkdir(parents=True)
    shutil.copy2(long_archive, corr.archive_dir / long_archive.name)
    corr.queries_file.write_text(LINE.format(c=1, q="first.benign.example", ts=_ts(utcnow())))
    proc = subprocess.Popen(
        [*AGENT_CMD, "-c", str(cfg_path), "daemonize", "--steps", "correlate,retro"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        lock = corr.state_dir / "retro.lock"
        while not (lock.exists() and lock.read_text().strip()):
            assert time.monotonic() < deadline, "retro never started"
            time.sleep(0.02)
        assert int(lock.read_text()) != proc.pid  # retro runs in a process of its own
        time.sleep(1.0)  # into the archive
        asked = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert took < 10, (took, err)  # a whole scan of the archive takes far longer
    assert (
        "SIGTERM: letting step retro end (retro stops at its next checkpoint; "
        "the next start resumes it), then exiting"
    ) in err
    assert "retro: stopped;" in err and "file(s) left for the next run" in err
    assert "daemonize: stopped" in err
    records = read_steps(state_path(cfg))
    assert records["retro"]["outcome"] == "stopped", err
    assert records["correlate"]["outcome"] == "ok", err
    assert [a for a in read_alerts(cfg) if a["kind"] == "retro"] == []
    assert not corr.last_retro_pointer_file.exists()  # nothing marked as searched

    resumed = run_retro(cfg)
    assert not resumed.stopped
    retro = [a for a in read_alerts(cfg) if a["kind"] == "retro"]
    assert [a["query"]["name"] for a in retro] == [EVIL]
    assert corr.last_retro_pointer_file.exists()
