# SPDX-License-Identifier: Apache-2.0
"""The scheduler: due steps, failures, locks, the state file, and real signals."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdnssoc_agent.alerts import Ledger, alerts_file, ledger_dir
from pdnssoc_agent.config import Config, load_config, parse_config
from pdnssoc_agent.errors import ExitCode
from pdnssoc_agent.scheduler import STEPS, Scheduler, Step, read_steps, select_steps, state_path
from pdnssoc_agent.state import step_lock
from tests.support.alerts import alert_line, append_alerts, start_receiver
from tests.support.scheduler import LogFollower, start_daemon, wait_for

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def config(tmp_path: Path, **extra: Any) -> Config:
    return parse_config({"data_dir": str(tmp_path), **extra})


def test_default_steps_resolve_to_the_real_entry_points() -> None:
    from pdnssoc_agent.alerts import run_alert
    from pdnssoc_agent.correlate import run_correlate, run_retro
    from pdnssoc_agent.iocs.fetch import fetch_iocs
    from pdnssoc_agent.retention import run_retention

    functions = {s.name: s.function() for s in STEPS}
    assert functions == {
        "fetch-iocs": fetch_iocs,
        "correlate": run_correlate,
        "retro": run_retro,
        "alert": run_alert,
        "retention": run_retention,
    }
    with pytest.raises(ValueError, match="unknown step"):
        select_steps(["alert", "nope"])


def test_due_steps_failures_and_retry(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def good(_cfg: Config) -> None:
        calls.append("good")

    def bad(_cfg: Config) -> None:
        calls.append("bad")
        raise RuntimeError("disk on fire")

    cfg = config(tmp_path, schedules={"correlation": {"interval": 1}, "retro": {"interval": 10}})
    steps = [Step("correlate", "correlation", good), Step("retro", "retro", bad)]
    sched = Scheduler(cfg, None, steps)
    assert sched.run_due(T0) == {"correlate": "ok", "retro": "failed"}
    assert "step retro crashed" in caplog.text
    assert "disk on fire" in caplog.text
    records = read_steps(state_path(cfg))
    assert records["correlate"]["outcome"] == "ok"
    assert records["correlate"]["last_success"] == "2026-11-27T12:00:00Z"
    assert records["retro"]["outcome"] == "failed"
    assert "RuntimeError: disk on fire" in records["retro"]["error"]
    assert "last_success" not in records["retro"]

    # One minute later only correlate is due; the failed step waits for its interval.
    assert sched.run_due(T0 + timedelta(minutes=1)) == {"correlate": "ok"}
    assert sched.run_due(T0 + timedelta(minutes=10)) == {"correlate": "ok", "retro": "failed"}
    assert calls == ["good", "bad", "good", "good", "bad"]

    # A new process picks up the schedule from the state file.
    fresh = Scheduler(cfg, None, sched.steps)
    assert [s.name for s in fresh.due(T0 + timedelta(minutes=10, seconds=30))] == []
    assert [s.name for s in fresh.due(T0 + timedelta(minutes=11))] == ["correlate"]


def test_step_held_by_another_agent_is_skipped(tmp_path: Path) -> None:
    rec = start_receiver()
    try:
        cfg = config(tmp_path, alerting={"webhook": {"webhook_url": rec.url()}})
        append_alerts(alerts_file(cfg), alert_line())
        sched = Scheduler(cfg, None, select_steps(["alert"]))
        with step_lock(cfg.correlation.state_dir, "alert"):
            assert sched.run_due(T0) == {"alert": "busy"}
        assert rec.requests == []
        record = read_steps(state_path(cfg))["alert"]
        assert record["outcome"] == "busy"
        assert "another agent" in record["error"]
        assert sched.run_due(T0 + timedelta(minutes=5)) == {"alert": "ok"}
        assert len(rec.requests) == 1
    finally:
        rec.stop()


def test_partial_failure_is_recorded(tmp_path: Path) -> None:
    rec = start_receiver(status=500)
    try:
        cfg = config(tmp_path, alerting={"slack": {"webhook_url": rec.url()}})
        append_alerts(alerts_file(cfg), alert_line())
        sched = Scheduler(cfg, None, select_steps(["alert"]))
        assert sched.run_due(T0) == {"alert": "failed"}
        record = read_steps(state_path(cfg))["alert"]
        assert "slack: slack webhook: HTTP 500" in record["error"]
        assert "T0KEN" not in json.dumps(record)
    finally:
        rec.stop()


# -- the real process --------------------------------------------------------


def write_config(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data))


@pytest.mark.slow
def test_sigterm_finishes_the_step_then_exits_0(tmp_path: Path) -> None:
    rec = start_receiver(delay=2.0)
    try:
        cfg_path = tmp_path / "agent.yml"
        write_config(
            cfg_path,
            {"data_dir": str(tmp_path), "alerting": {"webhook": {"webhook_url": rec.url()}}},
        )
        cfg = load_config(cfg_path)
        append_alerts(alerts_file(cfg), alert_line())
        proc = start_daemon(cfg_path, "--steps", "alert")
        wait_for(lambda: rec.arrivals == 1)  # the step is in the middle of a delivery
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "SIGTERM: letting step alert end, then exiting" in err
        assert "daemonize: stopped" in err
        assert len(rec.requests) == 1
        with Ledger(ledger_dir(cfg)) as ledger:
            assert ledger.pending("webhook") == []
        record = read_steps(state_path(cfg))["alert"]
        assert record["outcome"] == "ok"
        assert record["duration_s"] >= 1.5
    finally:
        rec.stop()


@pytest.mark.slow
def test_sighup_reloads_or_keeps_the_config(tmp_path: Path) -> None:
    cfg_path = tmp_path / "agent.yml"
    good = {"data_dir": str(tmp_path), "schedules": {"alerting": {"interval": 5}}}
    write_config(cfg_path, good)
    cfg = load_config(cfg_path)
    proc = start_daemon(cfg_path, "--steps", "alert")
    assert proc.stderr is not None
    log = LogFollower(proc.stderr)
    try:
        wait_for(lambda: state_path(cfg).exists())
        # An invalid file: logged, the running configuration is kept.
        write_config(cfg_path, {**good, "schedules": {"alerting": {"interval": 0}}})
        proc.send_signal(signal.SIGHUP)
        log.wait_for("keeping the previous configuration")
        assert proc.poll() is None
        # A valid one: reloaded.
        write_config(cfg_path, {**good, "logging_level": "DEBUG"})
        proc.send_signal(signal.SIGHUP)
        log.wait_for("SIGHUP: configuration reloaded")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        err = log.close()
    assert proc.returncode == 0, err
    assert "schedules.alerting.interval: must be at least 1 (allowed: 1 to 525600 minutes)" in err
    assert "keeping the previous configuration" in err
    assert "SIGHUP: configuration reloaded" in err
    assert err.index("keeping the previous") < err.index("configuration reloaded")


def test_once_runs_every_real_step(tmp_path: Path) -> None:
    cfg_path = tmp_path / "agent.yml"
    write_config(
        cfg_path, {"data_dir": str(tmp_path), "schedules": {"correlation": {"interval": 30}}}
    )
    cfg = load_config(cfg_path)
    proc = start_daemon(cfg_path, "--once")
    _out, err = proc.communicate(timeout=120)
    records = read_steps(state_path(cfg))
    assert set(records) == {"fetch-iocs", "correlate", "retro", "alert", "retention"}, err
    assert records["alert"]["outcome"] == "ok"
    # Without MISP servers fetch-iocs cannot succeed: that failure is recorded,
    # logged, and the other steps still ran.
    if records["fetch-iocs"]["outcome"] == "failed":
        assert proc.returncode == ExitCode.FAILURE
        assert "step fetch-iocs: FAILED" in err
    # A second --once within the intervals runs nothing.
    proc = start_daemon(cfg_path, "--once")
    _out, err2 = proc.communicate(timeout=60)
    assert proc.returncode == 0, err2
    assert "step " not in err2


@pytest.mark.slow
def test_two_agents_on_one_data_root_never_run_a_step_twice(tmp_path: Path) -> None:
    # The receiver answers only when the test says so: agent 1 stays inside its
    # alert step for as long as agent 2 takes to start, however loaded the machine.
    rec = start_receiver(hold=True)
    try:
        cfg_path = tmp_path / "agent.yml"
        write_config(
            cfg_path,
            {
                "data_dir": str(tmp_path),
                "alerting": {"webhook": {"webhook_url": rec.url(), "timeout": 120}},
            },
        )
        cfg = load_config(cfg_path)
        append_alerts(alerts_file(cfg), alert_line())
        first = start_daemon(cfg_path, "--steps", "alert")
        try:
            wait_for(lambda: rec.arrivals == 1)  # agent 1 is inside the alert step
            second = start_daemon(cfg_path, "--steps", "alert", "--once")
            _out, err = second.communicate(timeout=60)
            assert second.returncode == ExitCode.BUSY, err
            assert "step alert: skipped, alert: another agent is running this step" in err
            rec.release.set()
            wait_for(lambda: len(rec.requests) == 1)
        finally:
            rec.release.set()
            first.send_signal(signal.SIGTERM)
            _out, err1 = first.communicate(timeout=30)
        assert first.returncode == 0, err1
        assert rec.arrivals == 1
        assert read_steps(state_path(cfg))["alert"]["outcome"] == "ok"
    finally:
        rec.stop()
