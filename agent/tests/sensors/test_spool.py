# SPDX-License-Identifier: Apache-2.0
"""Spooling sensors' reports as the server receives them: ``status`` lists them, a bad
one is named, and the report the sensor's real pruning script writes is what the agent
reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.config import parse_config
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.sensors.spool import (
    REPORT_FILE,
    drops_begin,
    parse_report,
    read_reports,
    silent_note,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
PRUNE = REPO_ROOT / "roles" / "dnscollector" / "files" / "dnscollector-spool-prune"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MIB = 2**20


def report_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "updated": int(NOW.timestamp()) - 600,
        "spool_bytes": 1800 * MIB,
        "spool_files": 180,
        "oldest_waiting": int(NOW.timestamp()) - 50 * 3600,
        "limit_bytes": 2048 * MIB,
        "limit_seconds": 72 * 3600,
        "warn_percent": 75,
        "warned": True,
        "dropped": {
            "files": 3,
            "bytes": 30 * MIB,
            "replies": 120000,
            "first": int(NOW.timestamp()) - 7200,
            "last": int(NOW.timestamp()) - 900,
        },
    }
    doc.update(changes)
    return doc


def put(reports: Path, sensor: str, doc: Any) -> Path:
    (reports / sensor).mkdir(parents=True, exist_ok=True)
    path = reports / sensor / REPORT_FILE
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_status_lists_each_sensors_spool_and_names_a_bad_report(tmp_path: Path) -> None:
    cfg = parse_config({"data_dir": str(tmp_path), "history": {"enabled": False}})
    reports = tmp_path / "incoming" / ".sensors"
    assert cfg.sensors.spool_reports == reports  # beside the ingest directory by default
    put(reports, "univ-b", report_doc())
    put(reports, "univ-c", report_doc(warned=False, dropped={"files": 0, "bytes": 0, "replies": 0}))
    bad = put(reports, "univ-d", report_doc(spool_bytes=-1))
    put(reports, "univ-e", "{cut")
    (reports / "univ-f").mkdir()  # spools, nothing shipped yet

    status = collect(cfg, now=NOW)

    assert [s["sensor"] for s in status.spools] == ["univ-b", "univ-c"]
    assert status.spools[0]["dropped_replies"] == 120000
    spool_problems = [p for p in status.problems if "spool" in p]
    assert spool_problems == [
        f"sensor univ-d: spool report {bad} is not valid: "
        "spool_bytes: expected a non-negative integer, got -1",
        f"sensor univ-e: spool report {reports / 'univ-e' / REPORT_FILE} is not valid: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "sensor univ-b: its spool was past 75% of its bounds (1.8 GiB of 2.0 GiB) at "
        "2026-03-02T11:50:00Z: it drops its oldest unshipped files beyond them",
    ]
    text = render(status)
    assert "Sensor spools (as last shipped by each sensor):" in text
    assert (
        "  univ-b: 1.8 GiB of 2.0 GiB, oldest waiting 2 days, 2:00:00 old (bound 3 days, 0:00:00); "
        "dropped 3 file(s), 30.0 MiB, 120000 replies (last at 2026-03-02T11:45:00Z); "
        "reported 2026-03-02T11:50:00Z"
    ) in text
    assert "  univ-c: 1.8 GiB of 2.0 GiB" in text and "nothing dropped" in text
    assert json.loads(json.dumps(status.to_dict()))["spools"][1]["sensor"] == "univ-c"


def test_no_reports_directory_no_spools(tmp_path: Path) -> None:
    assert read_reports(tmp_path / "absent") == ({}, [])


def test_drops_begin_at_the_age_bound_after_the_last_reply() -> None:
    last = int(NOW.timestamp())
    shipped = parse_report("univ-b", report_doc(oldest_waiting=None))
    assert drops_begin(shipped, last) == last + 72 * 3600
    waiting = parse_report("univ-b", report_doc(oldest_waiting=last - 3600))
    assert drops_begin(waiting, last) == last + 71 * 3600
    note = silent_note(shipped, last)
    assert "drops its oldest unshipped files from 2026-03-05T12:00:00Z on" in note
    assert "(2.0 GiB) first" in note and "3 file(s) dropped so far" in note


@pytest.mark.skipif(not PRUNE.is_file(), reason="the dnscollector role is not beside the agent")
def test_the_report_the_sensor_writes_is_the_one_the_agent_reads(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    (spool / "outgoing").mkdir(parents=True)
    old = spool / "outgoing" / "univ-b-1.fstrm"
    old.write_bytes(b"")
    when = time.time() - 80 * 3600
    os.utime(old, (when, when))
    done = subprocess.run(
        [sys.executable, str(PRUNE), str(spool), "2048", "72", "75"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    reports = tmp_path / "reports"
    put(reports, "univ-b", (spool / REPORT_FILE).read_text())

    found, problems = read_reports(reports)

    assert problems == []
    report = found["univ-b"]
    assert (report.dropped_files, report.dropped_bytes, report.dropped_replies) == (1, 0, 0)
    assert report.limit_bytes == 2048 * MIB and report.limit_seconds == 72 * 3600
    assert report.oldest_waiting is None and not report.warned
