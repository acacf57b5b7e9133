# SPDX-License-Identifier: Apache-2.0
"""A killed ``alert`` run loses nothing; the message in flight is the only possible duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from pdnssoc_agent.alerts import Ledger, alerts_file, ledger_dir
from pdnssoc_agent.config import load_config
from pdnssoc_agent.errors import ExitCode
from pdnssoc_agent.state import step_lock
from tests.support.alerts import alert_line, append_alerts, start_receiver


def run_cli(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_kill_during_delivery_then_restart(tmp_path: Path) -> None:
    rec = start_receiver()
    rec.hang_after = 1  # accept the first message, leave the second unanswered
    try:
        config = tmp_path / "agent.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(tmp_path),
                    "alerting": {"webhook": {"webhook_url": rec.url(), "timeout": 60}},
                }
            )
        )
        cfg = load_config(config)
        lines = [alert_line(sensor=s, name=f"{s}.bad.example") for s in ("a", "b", "c")]
        append_alerts(alerts_file(cfg), *lines)

        proc = run_cli(config, "alert")
        wait_for(lambda: len(rec.requests) == 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first_sensor = rec.requests[0][1]["sensor"]
        in_flight = rec.requests[1][1]["sensor"]
        with Ledger(ledger_dir(cfg)) as ledger:
            pending = {a.sensor for a in ledger.pending("webhook")}
        assert pending == {"a", "b", "c"} - {first_sensor}

        rec.hang_after = None
        rec.release.set()
        proc = run_cli(config, "alert")
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        answered = [b["sensor"] for p, b in rec.requests if not p.endswith("#unanswered")]
        # Every alert delivered; the accepted-and-recorded one never again.
        assert sorted(answered) == ["a", "b", "c"]
        assert answered.count(first_sensor) == 1
        # The only repeat is the message that was in flight at the kill.
        all_sent = [b["sensor"] for _p, b in rec.requests]
        assert all_sent.count(in_flight) == 2
        with Ledger(ledger_dir(cfg)) as ledger:
            assert ledger.pending("webhook") == []
    finally:
        rec.stop()


def test_cli_exit_codes(tmp_path: Path) -> None:
    rec = start_receiver(status=500)
    try:
        config = tmp_path / "agent.yml"
        config.write_text(
            yaml.safe_dump(
                {"data_dir": str(tmp_path), "alerting": {"slack": {"webhook_url": rec.url()}}}
            )
        )
        cfg = load_config(config)
        append_alerts(alerts_file(cfg), alert_line())
        proc = run_cli(config, "alert")
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitCode.UPSTREAM, err
        assert "slack: FAILED (slack webhook: HTTP 500)" in out
        assert "T0KEN" not in out + err

        # Another agent holds the step: exit BUSY, nothing sent.
        with step_lock(cfg.correlation.state_dir, "alert"):
            proc = run_cli(config, "alert")
            _out, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitCode.BUSY, err
        assert "another agent is running this step" in err
        assert len(rec.requests) == 1
    finally:
        rec.stop()
