# SPDX-License-Identifier: Apache-2.0
"""A full disk or a read-only state directory (a small tmpfs, really mounted):
steps say so in one line with exit code 7 and lose nothing; ``status`` still reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from misp_standin import MispStandin
from pdnssoc_agent.alerts import alerts_file, deliver
from pdnssoc_agent.config import load_config
from pdnssoc_agent.errors import ExitCode
from tests.support.alerts import alert_line, append_alerts, start_receiver
from tests.support.correlate import dns_line
from tests.support.iocs import KEY, attr, event


def _mount(path: Path, size: str) -> None:
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not permitted'})")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards (skips where mounting is not permitted)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tmp_path / "fs"
    _mount(path, "1m")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def agent(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(cfg), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
        timeout=120,
    )


def fill(directory: Path) -> Path:
    """Write a file until the file system has no room left; return it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_status_reads_a_read_only_state_directory(tmp_path: Path, small_fs: Path) -> None:
    rec = start_receiver(status=500)
    try:
        cfg_path = tmp_path / "agent.yml"
        cfg_path.write_text(
            yaml.safe_dump(
                {"data_dir": str(small_fs), "alerting": {"webhook": {"webhook_url": rec.url()}}}
            )
        )
        cfg = load_config(cfg_path)
        cfg.correlation.queries_file.write_text("")  # the collector's query log, empty so far
        cfg.correlation.archive_dir.mkdir()  # as the dnscollector role creates it
        append_alerts(alerts_file(cfg), alert_line())
        assert deliver(cfg).failed  # one alert pending on a failing channel
    finally:
        rec.stop()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    proc = agent(cfg_path, "status", "--json")
    status = json.loads(proc.stdout)
    assert status["problems"] == [], status["problems"]
    (channel,) = status["channels"]
    assert channel["channel"] == "webhook"
    assert channel["pending"] == 1
    assert channel["failures"] == 1


def _correlate_config(tmp_path: Path, data: Path) -> Path:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "domains.txt").write_text("evil.example.com\n")
    (inputs / "ips.txt").write_text("198.51.100.99\n")
    (inputs / "queries.json").write_bytes(
        dns_line("evil.example.com", client="192.0.2.11", sensor="sensor-1")
    )
    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(data),
                "correlation": {
                    "queries_file": str(inputs / "queries.json"),
                    "malicious_domains_file": str(inputs / "domains.txt"),
                    "malicious_ips_file": str(inputs / "ips.txt"),
                },
            }
        )
    )
    return cfg_path


def test_full_disk_ends_correlate_in_one_line_and_loses_nothing(
    tmp_path: Path, small_fs: Path
) -> None:
    cfg_path = _correlate_config(tmp_path, small_fs)
    filler = fill(small_fs)
    proc = agent(cfg_path, "correlate")
    assert proc.returncode == ExitCode.STORAGE == 7, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr
    assert "No space left on device" in errors[0]
    assert "nothing was lost" in errors[0]
    # Room again: the next run writes the alert, once.
    filler.unlink()
    assert agent(cfg_path, "correlate").returncode == 0
    assert agent(cfg_path, "correlate").returncode == 0
    written = (small_fs / "alerts" / "matches.json").read_text().splitlines()
    assert [json.loads(line)["query"]["name"] for line in written] == ["evil.example.com"]


def test_full_disk_ends_alert_in_one_line_and_loses_nothing(tmp_path: Path, small_fs: Path) -> None:
    rec = start_receiver()
    try:
        cfg_path = tmp_path / "agent.yml"
        cfg_path.write_text(
            yaml.safe_dump(
                {"data_dir": str(small_fs), "alerting": {"webhook": {"webhook_url": rec.url()}}}
            )
        )
        cfg = load_config(cfg_path)
        append_alerts(alerts_file(cfg), alert_line())
        filler = fill(small_fs)
        proc = agent(cfg_path, "alert")
        assert proc.returncode == ExitCode.STORAGE, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "nothing was lost" in proc.stderr
        filler.unlink()
        proc = agent(cfg_path, "alert")
        assert proc.returncode == 0, proc.stderr
        assert len(rec.requests) >= 1
        assert {r[1]["alerts"][0]["id"] for r in rec.requests} == {alert_line()["id"]}
    finally:
        rec.stop()


def test_full_disk_in_the_daemon_is_one_line_per_step(tmp_path: Path, small_fs: Path) -> None:
    cfg_path = _correlate_config(tmp_path, small_fs)
    (small_fs / "state").mkdir()
    (small_fs / "state" / "steps.json").write_text('{"version": 1, "steps": {}}\n')
    fill(small_fs)
    proc = agent(cfg_path, "daemonize", "--once", "--steps", "correlate")
    assert proc.returncode == ExitCode.FAILURE, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "step correlate: FAILED" in proc.stderr
    assert "No space left on device" in proc.stderr and "nothing was lost" in proc.stderr


def test_full_disk_ends_fetch_iocs_in_one_line_and_keeps_the_lists(
    tmp_path: Path, small_fs: Path
) -> None:
    with MispStandin(api_keys={KEY: "CERT-Example"}) as misp:
        misp.add_event(event("e", [attr("domain", "old.example")]))
        cfg_path = tmp_path / "agent.yml"
        cfg_path.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(small_fs),
                    "misp_servers": [{"domain": misp.url, "name": "m", "api_key": KEY}],
                    "fetch_iocs": {"reload_collector": False},
                }
            )
        )
        assert agent(cfg_path, "fetch-iocs").returncode == 0
        lists = small_fs / "misp" / "misp_domains.txt"
        assert lists.read_text() == "old.example\n"
        misp.add_event(event("f", [attr("domain", f"new{i}.example") for i in range(500)]))
        filler = fill(small_fs)
        proc = agent(cfg_path, "fetch-iocs")
        assert proc.returncode == ExitCode.STORAGE, proc.stderr
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
        assert len(errors) == 1 and "nothing was lost" in errors[0], proc.stderr
        assert lists.read_text() == "old.example\n"
        filler.unlink()
        assert agent(cfg_path, "fetch-iocs").returncode == 0
        assert "new499.example" in lists.read_text()
