# SPDX-License-Identifier: Apache-2.0
"""Retention: expiry by age, the free-space guard, alert-file rotation, what never goes.

A full disk is simulated at the guard's seam (its ``disk`` probe): the free
space it reports grows by the size of every file that is really gone from
the data root. Everything else is real: files, pointers, correlate, retro,
the alert step and a chat webhook receiver on loopback for the operators.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.alerts import alerts_file, run_alert
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.correlate import run_correlate, run_retro
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.retention import Disk, run_retention
from pdnssoc_agent.state import utcnow, write_pointer
from tests.support.alerts import Receiver, alert_line, append_alerts, start_receiver, start_smtp
from tests.support.correlate import dns_line, read_alerts, write_lists
from tests.support.retention import TOTAL, FakeDisk, put, read_both


def config(tmp_path: Path, hook: Receiver | None = None, **retention: Any) -> Config:
    data: dict[str, Any] = {"data_dir": str(tmp_path), "retention": retention}
    if hook is not None:
        data["alerting"] = {"slack": {"webhook_url": hook.url()}}
    return parse_config(data)


def test_expiry_by_age_per_kind(tmp_path: Path) -> None:
    cfg = config(tmp_path, archive={"days": 30}, alerts={"days": 365})
    read_both(cfg)
    corr = cfg.correlation
    old_raw = put(corr.archive_dir / "2026" / "queries-1.json.gz", 31)
    young_raw = put(corr.archive_dir / "2026" / "queries-2.json.gz", 29)
    old_alerts = put(corr.output_dir / "matches-20250101T000000Z.json", 366)
    young_alerts = put(corr.output_dir / "matches-20250601T000000Z.json", 200)
    other = put(corr.output_dir / "notes.json", 400)  # not a rotated alert file
    live_alerts = put(alerts_file(cfg), 400)
    report = run_retention(cfg, disk=lambda _p: Disk(TOTAL, TOTAL))
    assert sorted(report.expired) == sorted([old_raw, old_alerts])
    assert not old_raw.exists() and not old_alerts.exists()
    assert young_raw.exists() and young_alerts.exists() and other.exists()
    assert live_alerts.exists()
    assert report.exit_code == 0


def test_expired_but_unread_is_kept(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    corr = cfg.correlation
    now = utcnow()
    # correlate last ran 40 days ago; retro never: nothing past that is read
    write_pointer(corr.last_correlation_pointer_file, now - timedelta(days=40))
    unread = put(corr.archive_dir / "queries-1.json.gz", 35)
    read = put(corr.archive_dir / "queries-0.json.gz", 45)
    report = run_retention(cfg, disk=lambda _p: Disk(TOTAL, TOTAL))
    assert report.expired == [read]
    assert unread.exists()
    assert report.held == {"not read by correlate yet": 1}


def test_full_disk_guard_removes_oldest_first_and_tells_operators_once(tmp_path: Path) -> None:
    hook = start_receiver()
    try:
        cfg = config(tmp_path, hook, min_free_percent=10)
        corr = cfg.correlation
        read_both(cfg)
        a20 = put(corr.archive_dir / "q-20.json.gz", 20)
        a15 = put(corr.archive_dir / "q-15.json.gz", 15)
        a10 = put(corr.archive_dir / "q-10.json.gz", 10)
        fresh = put(corr.archive_dir / "q-new.json.gz", 0)  # rotated after both ran
        alerts_old = put(corr.output_dir / "matches-20260101T000000Z.json", 100)
        live = put(corr.queries_file, 60)
        disk = FakeDisk(40_000, [a20, a15, a10, fresh, alerts_old, live])  # 4% free

        report = run_retention(cfg, disk=disk)
        # 4% + 2 x 3% reaches 10%: the two oldest raw files go, nothing else
        assert report.guard_removed == [a20, a15]
        assert a10.exists() and fresh.exists() and alerts_old.exists() and live.exists()
        assert report.exit_code == 0
        texts = [b["text"] for b in hook.bodies()]
        assert len(texts) == 2
        assert "free space low" in texts[0] and "4.0%" in texts[0]
        assert "2 file(s) removed" in texts[1] and "10.0%" in texts[1]

        assert "free-space guard last acted" in render(collect(cfg))
        assert "min_free_percent" not in render(collect(cfg))  # the shortage is over

        # Space is short again: a new shortage, told once more; the guard removes
        # all it may, oldest first (raw archive before alert files), but not enough.
        disk.free = -100_000
        report = run_retention(cfg, disk=disk)
        assert report.guard_removed == [a10, alerts_old]
        assert fresh.exists() and live.exists()
        assert report.exit_code != 0
        assert len(hook.bodies()) == 4
        # Still short, nothing removable: no more messages, a failing step, a warning.
        for _ in range(3):
            report = run_retention(cfg, disk=disk)
            assert report.guard_removed == []
        assert len(hook.bodies()) == 4
        assert "below retention.min_free_percent 10%" in report.failed["free space"]
        text = render(collect(cfg))
        assert "below retention.min_free_percent (10%)" in text
        assert "1 may not be removed yet" in text
        assert fresh.exists() and live.exists()

        # Space back: the shortage ends (no message), status is quiet again.
        disk.free = TOTAL // 2
        run_retention(cfg, disk=disk)
        assert len(hook.bodies()) == 4
        assert "min_free_percent" not in render(collect(cfg))
    finally:
        hook.stop()


def test_disabled_retention_only_warns(tmp_path: Path) -> None:
    hook = start_receiver()
    try:
        cfg = config(tmp_path, hook, enabled=False)
        read_both(cfg)
        old = put(cfg.correlation.archive_dir / "q.json.gz", 400)
        report = run_retention(cfg, disk=lambda _p: Disk(TOTAL, 0))
        assert old.exists()
        assert report.expired == [] and report.guard_removed == []
        texts = [b["text"] for b in hook.bodies()]
        assert len(texts) == 1 and "retention is disabled" in texts[0]
    finally:
        hook.stop()


def test_real_run_never_removes_what_correlate_or_retro_have_not_read(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    corr = cfg.correlation
    write_lists(cfg, ["evil.example"], [])
    ts = utcnow().strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    corr.queries_file.write_bytes(dns_line("benign.example", ts=ts))
    run_correlate(cfg)
    run_retro(cfg)
    # The collector rotates the log into the archive after both ran: a line with
    # an indicator neither has seen.
    time.sleep(0.05)
    rotated = corr.archive_dir / "queries-1.json"
    rotated.parent.mkdir(parents=True)
    rotated.write_bytes(dns_line("www.evil.example", ts=ts))
    corr.queries_file.write_bytes(b"")
    starving = FakeDisk(0, [rotated])  # no space at all, for ever
    report = run_retention(cfg, disk=starving)
    assert rotated.exists(), report
    assert report.guard_removed == []

    run_correlate(cfg)  # reads it: the live alert is out
    assert [a["kind"] for a in read_alerts(cfg)] == ["live"]
    report = run_retention(cfg, disk=starving)
    assert rotated.exists()  # retro has not searched it yet

    time.sleep(1.1)  # retro.last has one-second steps in what it compares
    run_retro(cfg)
    report = run_retention(cfg, disk=starving)
    assert report.guard_removed == [rotated]
    assert not rotated.exists()


def test_alerts_file_rotates_only_when_taken_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path, alerts_rotate={"hours": 1})
    path = alerts_file(cfg)
    append_alerts(path, alert_line())
    now = utcnow()
    disk = lambda _p: Disk(TOTAL, TOTAL)  # noqa: E731
    run_retention(cfg, now, disk=disk)  # starts the rotation clock
    later = now + timedelta(hours=2)
    assert run_retention(cfg, later, disk=disk).rotated is None  # not taken in yet
    run_alert(cfg)
    report = run_retention(cfg, later, disk=disk)
    assert report.rotated is not None and report.rotated.name.startswith("matches-")
    assert path.stat().st_size == 0
    assert report.rotated.read_text().count("\n") == 1
    # the next line is read from the new file's start, without a "replaced" warning
    append_alerts(path, alert_line(name="other.evil.example"))
    assert run_alert(cfg).read == 1
    assert "replaced or truncated" not in caplog.text


@pytest.mark.parametrize("key", ["archive", "history", "alerts"])
def test_ages_below_a_day_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(Exception, match=f"retention.{key}: must be at least {{days: 1}}"):
        config(tmp_path, **{key: {"hours": 2}})


def test_an_archive_shorter_than_the_lookback_is_warned_about(tmp_path: Path) -> None:
    cfg = config(tmp_path, archive={"days": 7})
    assert [str(w) for w in cfg.warnings] == [
        "retention.archive: 7 days is shorter than correlation.retro_lookback (30 days): "
        "retro cannot look back further than the archive is kept"
    ]
    assert config(tmp_path).warnings == ()


def test_an_unmeasurable_data_root_fails_the_step(tmp_path: Path) -> None:
    def broken(path: Path) -> Disk:
        raise OSError(errno.EIO, "Input/output error", str(path))

    cfg = config(tmp_path)
    read_both(cfg)
    put(cfg.correlation.archive_dir / "q.json.gz", 1)
    report = run_retention(cfg, disk=broken)
    assert "cannot measure the free space of" in report.failed["free space"]
    assert report.guard_removed == []


def test_operators_get_it_by_summary_mail_not_institutions(tmp_path: Path) -> None:
    smtp = start_smtp("none")
    try:
        cfg = parse_config(
            {
                "data_dir": str(tmp_path),
                "alerting": {
                    "email": {
                        "from": "pdnssoc@csirt.example",
                        "summary_to": "soc@csirt.example",
                        "server": "127.0.0.1",
                        "port": smtp.port,
                        "timeout": 5,
                        "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                    }
                },
            }
        )
        read_both(cfg)
        old = put(cfg.correlation.archive_dir / "q.json.gz", 3)
        disk = FakeDisk(0, [old])
        run_retention(cfg, disk=disk)
        run_retention(cfg, disk=disk)
        assert [rcpt for _f, rcpt in smtp.envelopes] == [["soc@csirt.example"]] * 2
        subjects = [m["Subject"] for m in smtp.messages]
        assert "free space low" in subjects[0]
        assert "1 file(s) removed" in subjects[1]
        assert smtp.messages[0]["Auto-Submitted"] == "auto-generated"
    finally:
        smtp.stop()


def test_the_retention_command(tmp_path: Path) -> None:
    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(f"data_dir: {tmp_path}\n")
    cfg = config(tmp_path)
    read_both(cfg)
    old = put(cfg.correlation.archive_dir / "q.json.gz", 31)
    out = subprocess.run(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(cfg_path), "retention"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "1 expired file(s) removed" in out.stdout
    assert not old.exists()
