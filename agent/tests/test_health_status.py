# SPDX-License-Identifier: Apache-2.0
"""``status``: step ages and staleness, delivery lag, IOC counts, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from pdnssoc_agent.alerts import alerts_file as alerts_path
from pdnssoc_agent.alerts import deliver
from pdnssoc_agent.config import Config, load_config
from pdnssoc_agent.errors import ExitCode
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.iocs.index import IndexHeader, IndicatorEntry, write_index
from pdnssoc_agent.scheduler import STEP_NAMES, record_step, state_path
from pdnssoc_agent.timefmt import format_rfc3339
from tests.support.alerts import alert_line, append_alerts, start_receiver

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def write_config(tmp_path: Path, **extra: object) -> tuple[Path, Config]:
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), **extra}))
    return path, load_config(path)


def mark_all_ok(cfg: Config, when: datetime) -> None:
    for name in STEP_NAMES:
        record_step(
            state_path(cfg),
            name,
            {
                "last_start": format_rfc3339(when, seconds=True),
                "last_end": format_rfc3339(when, seconds=True),
                "last_success": format_rfc3339(when, seconds=True),
                "outcome": "ok",
                "duration_s": 0.1,
                "error": None,
            },
        )


def test_never_run_is_stale(tmp_path: Path) -> None:
    _path, cfg = write_config(tmp_path)
    status = collect(cfg, T0)
    assert status.stale == list(STEP_NAMES)
    text = render(status)
    assert "never" in text
    assert "STALE: fetch-iocs, correlate, retro, alert, retention" in text


def test_staleness_is_twice_the_interval(tmp_path: Path) -> None:
    _path, cfg = write_config(tmp_path, schedules={"alerting": {"interval": 5}})
    mark_all_ok(cfg, T0)
    assert collect(cfg, T0 + timedelta(minutes=2)).stale == []
    # correlate runs every minute: stale after two.
    assert collect(cfg, T0 + timedelta(minutes=3)).stale == ["correlate"]
    later = collect(cfg, T0 + timedelta(minutes=11))
    assert later.stale == ["correlate", "alert"]
    # A failure does not refresh the last success.
    record_step(
        state_path(cfg),
        "alert",
        {
            "last_start": format_rfc3339(T0 + timedelta(minutes=10), seconds=True),
            "outcome": "failed",
            "error": "x",
        },
    )
    status = collect(cfg, T0 + timedelta(minutes=11))
    alert = next(s for s in status.steps if s.name == "alert")
    assert alert.stale
    assert alert.outcome == "failed"
    assert alert.age_s == 60
    assert alert.success_age_s == 660


def test_delivery_lag_and_ioc_counts(tmp_path: Path) -> None:
    rec = start_receiver(status=500)
    try:
        _path, cfg = write_config(tmp_path, alerting={"slack": {"webhook_url": rec.url()}})
        src = alerts_path(cfg)
        append_alerts(src, alert_line(), alert_line(name="two.example"))
        deliver(cfg, T0)
        append_alerts(src, alert_line(name="three.example"))
        corr = cfg.correlation
        corr.malicious_domains_file.parent.mkdir(parents=True, exist_ok=True)
        corr.malicious_domains_file.write_text("a.example\nb.example\nc.example\n")
        corr.malicious_ips_file.write_text("192.0.2.1\n")
        write_index(
            corr.ioc_index_file,
            IndexHeader(
                format="pdnssoc-ioc-index",
                version=1,
                generated=int(T0.timestamp()),
                servers={"misp1": "https://misp.example.org"},
            ),
            [IndicatorEntry("a.example", "domain", 1, 1)],
        )
        status = collect(cfg, T0 + timedelta(minutes=10))
        (slack,) = status.channels
        assert slack.channel == "slack"
        assert slack.pending == 2
        assert slack.oldest_pending_age_s == 600
        assert slack.failures == 1
        assert slack.last_error == "slack webhook: HTTP 500"
        assert status.alert_lines_not_taken_in == 1
        assert status.iocs["domains"] == 3
        assert status.iocs["ips"] == 1
        assert status.iocs["index"]["servers"] == ["misp1"]
        assert status.iocs["index"]["age_s"] == 600
        assert status.pointers["alert"]["age_s"] == 600
        text = render(status)
        assert "slack" in text
        assert "pending      2" in text
        assert "1 alert line(s) not read yet" in text
        assert "domains 3, IPs 1" in text
        assert "T0KEN" not in text
    finally:
        rec.stop()


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    path, cfg = write_config(tmp_path)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pdnssoc_agent", "-c", str(path), "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
            check=False,
        )

    stale = run()
    assert stale.returncode == ExitCode.STALE, stale.stderr
    data = json.loads(stale.stdout)
    assert data["stale"] == list(STEP_NAMES)
    mark_all_ok(cfg, datetime.now(UTC))
    fresh = run()
    assert fresh.returncode == 0, fresh.stderr
    data = json.loads(fresh.stdout)
    assert data["stale"] == []
    assert [s["outcome"] for s in data["steps"]] == ["ok"] * len(STEP_NAMES)
    # status changes nothing on disk.
    assert not (cfg.correlation.state_dir / "alert-ledger.sqlite3").exists()


def test_text_status_prints_a_sensor_name_utf8_cannot_carry(tmp_path: Path) -> None:
    """A lone surrogate in a sensor's identity (a JSON escape in the query log) is shown
    escaped: `status` still prints, instead of failing with UnicodeEncodeError."""
    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(f"data_dir: {tmp_path}\n")
    cfg = load_config(cfg_path)
    book = cfg.correlation.state_dir / "sensors.json"
    book.parent.mkdir(parents=True, exist_ok=True)
    last = int(datetime.now(UTC).timestamp())
    book.write_text(
        json.dumps({"version": 1, "sensors": {"inst-\udc80": {"first": last, "last": last}}})
    )
    out = subprocess.run(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(cfg_path), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert out.returncode == ExitCode.STALE, out.stderr  # no step has run yet
    assert "inst-\\udc80" in out.stdout
    assert "Traceback" not in out.stderr
