# SPDX-License-Identifier: Apache-2.0
"""Retro runs in a lane of its own: live alerts keep their latency while it runs.

The measurement is the benchmark's (``benchmarks/bench_live_latency.py``), run
here smaller as a pass/fail; the daemon is the real process, stopped with a
SIGTERM to its whole process group (as supervisord's ``stopasgroup`` does).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pdnssoc_agent.config import load_config
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


@pytest.mark.slow
def test_sigterm_to_the_group_lets_retro_finish_then_exits_0(tmp_path: Path) -> None:
    from benchmarks.bench_live_latency import EVIL, LINE, _archive, _ts

    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(yaml.safe_dump({"data_dir": str(tmp_path)}))
    cfg = load_config(cfg_path)
    corr = cfg.correlation
    corr.malicious_domains_file.parent.mkdir(parents=True)
    corr.malicious_domains_file.write_text(EVIL + "\n")
    corr.malicious_ips_file.write_text("")
    archive = corr.archive_dir / "queries-1.json.gz"
    _archive(archive, 400_000, utcnow().replace(microsecond=0))
    # one matching line at the end of the archive: retro's alert
    with gzip.open(archive, "at", encoding="ascii") as fh:
        fh.write(LINE.format(c=9, q=EVIL, ts=_ts(utcnow())))
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
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "SIGTERM: finishing step retro, then exiting" in err
    assert "daemonize: stopped" in err
    records = read_steps(state_path(cfg))
    assert records["retro"]["outcome"] == "ok", err
    assert records["correlate"]["outcome"] == "ok", err
    retro = [a for a in read_alerts(cfg) if a["kind"] == "retro"]
    assert [a["query"]["name"] for a in retro] == [EVIL]
    assert corr.last_retro_pointer_file.exists()
