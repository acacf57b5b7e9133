# SPDX-License-Identifier: Apache-2.0
"""The sensor's spool bound (roles/dnscollector/files/dnscollector-spool-prune), run for
real on spool files with chosen sizes and ages.

Its messages are read the way the journal gets them from a systemd unit: stderr is a
file whose device and inode are in JOURNAL_STREAM.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "roles" / "dnscollector" / "files" / "dnscollector-spool-prune"
MIB = 1024 * 1024
HOUR = 3600


@dataclass
class Run:
    returncode: int
    log: str


def dnstap_file(path: Path, frames: int, frame_size: int, age_s: float) -> Path:
    """A frame-stream file of ``frames`` data frames, last written ``age_s`` ago."""
    ctype = b"protobuf:dnstap.Dnstap"
    fields = struct.pack(">II", 1, len(ctype)) + ctype
    with path.open("wb") as out:
        out.write(struct.pack(">III", 0, 4 + len(fields), 2) + fields)
        for _ in range(frames):
            out.write(struct.pack(">I", frame_size) + b"\x0a" * frame_size)
        out.write(struct.pack(">III", 0, 4, 3))
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


def mib_file(path: Path, mib: int, age_h: float) -> Path:
    """About ``mib`` MiB in 4 frames per MiB (the replies the report counts)."""
    return dnstap_file(path, 4 * mib, MIB // 4 - 8, age_h * HOUR)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    (tmp_path / "spool" / "outgoing").mkdir(parents=True)
    return tmp_path / "spool"


def prune(spool: Path, limit_mb: int, hours: int, warn: int = 75, *extra: str) -> Run:
    log_file = spool.parent / "journal.txt"
    with log_file.open("a+b") as err:
        st = os.fstat(err.fileno())
        start = err.seek(0, os.SEEK_END)
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        args = [*extra, str(spool), str(limit_mb), str(hours), str(warn)]
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *args], stderr=err, env=env, check=False, timeout=60
        )
        err.seek(start)
        return Run(done.returncode, err.read().decode())


def report(spool: Path) -> dict[str, object]:
    data = json.loads((spool / "spool-report.json").read_text())
    assert isinstance(data, dict)
    return data


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.fstrm"))


def test_size_bound_drops_oldest_waiting_files_never_the_one_being_written(spool: Path) -> None:
    out = spool / "outgoing"
    mib_file(spool / "s.fstrm", 2, age_h=0)  # being written: counted, never dropped
    mib_file(out / "s-1.fstrm", 2, age_h=5)
    mib_file(out / "s-2.fstrm", 2, age_h=4)
    mib_file(out / "s-3.fstrm", 2, age_h=3)
    mib_file(out / "s-4.fstrm", 2, age_h=2)

    run = prune(spool, 7, 72)

    assert run.returncode == 0, run.log
    # 10 MiB held, 7 allowed: the two oldest waiting files go.
    assert names(out) == ["s-3.fstrm", "s-4.fstrm"]
    assert names(spool) == ["s.fstrm"]
    rep = report(spool)
    dropped = rep["dropped"]
    assert isinstance(dropped, dict)
    assert (dropped["files"], dropped["replies"]) == (2, 16)
    assert dropped["bytes"] == 2 * (spool / "s.fstrm").stat().st_size
    assert rep["spool_files"] == 3
    assert rep["spool_bytes"] == 3 * (spool / "s.fstrm").stat().st_size
    lines = [line for line in run.log.splitlines() if "dropped s-" in line]
    assert len(lines) == 2
    assert lines[0].startswith("<3>dnscollector-spool: dropped s-1.fstrm unshipped (")
    assert "8 replies" in lines[0]
    assert "spool over its bound of 7.0 MiB" in lines[0]
    size = (spool / "s.fstrm").stat().st_size
    assert lines[1].endswith(f"2 file(s), {2 * size} bytes, 16 replies")


def test_age_bound_drops_files_older_than_the_bound_even_under_the_size(spool: Path) -> None:
    out = spool / "outgoing"
    dnstap_file(out / "old.fstrm", 3, 100, 73 * HOUR)
    dnstap_file(out / "young.fstrm", 3, 100, 71 * HOUR)

    run = prune(spool, 2048, 72)

    assert run.returncode == 0, run.log
    assert names(out) == ["young.fstrm"]
    assert "dropped old.fstrm unshipped" in run.log
    assert "older than the bound of 72.0 h" in run.log
    dropped = report(spool)["dropped"]
    assert isinstance(dropped, dict)
    assert (dropped["files"], dropped["replies"]) == (1, 3)


def test_counts_accumulate_across_runs(spool: Path) -> None:
    out = spool / "outgoing"
    mib_file(out / "a.fstrm", 2, age_h=2)
    mib_file(out / "b.fstrm", 2, age_h=1)
    prune(spool, 3, 72)
    mib_file(out / "c.fstrm", 2, age_h=0)
    prune(spool, 3, 72)

    assert names(out) == ["c.fstrm"]
    dropped = report(spool)["dropped"]
    assert isinstance(dropped, dict)
    assert (dropped["files"], dropped["replies"]) == (2, 16)
    assert isinstance(dropped["first"], int)
    assert isinstance(dropped["last"], int)


def test_warns_once_at_the_watermark_before_dropping_and_when_back_below(spool: Path) -> None:
    out = spool / "outgoing"
    mib_file(out / "a.fstrm", 4, age_h=1)
    mib_file(out / "b.fstrm", 4, age_h=0)

    first = prune(spool, 10, 72)  # 80% of the size bound: nothing dropped yet
    again = prune(spool, 10, 72)

    assert names(out) == ["a.fstrm", "b.fstrm"]
    assert first.log.count("<4>dnscollector-spool: spool at 80% of its bounds") == 1
    assert "files will be dropped, oldest first" in first.log
    assert "dropped" not in first.log.replace("will be dropped", "")
    assert again.log == ""  # once per crossing, not at every run
    assert report(spool)["warned"] is True

    (out / "a.fstrm").unlink()  # shipped
    back = prune(spool, 10, 72)
    assert "<5>dnscollector-spool: spool back below 75% of its bounds" in back.log
    assert report(spool)["warned"] is False


def test_age_watermark(spool: Path) -> None:
    dnstap_file(spool / "outgoing" / "a.fstrm", 1, 10, 60 * HOUR)
    run = prune(spool, 2048, 72)
    assert "spool at 83% of its bounds" in run.log
    assert "oldest unshipped file 60.0 h old of 72.0 h" in run.log


def test_a_shipping_run_holds_the_spool(spool: Path) -> None:
    out = spool / "outgoing"
    mib_file(out / "a.fstrm", 2, age_h=1)
    fd = os.open(spool / ".ship.lock", os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        run = prune(spool, 1, 72, 75, "--if-free")
        assert run.returncode == 0
        assert names(out) == ["a.fstrm"]  # may be on its way to the server
    finally:
        os.close(fd)
    prune(spool, 1, 72, 75, "--if-free")
    assert names(out) == []


def test_an_interrupted_drop_is_finished_and_not_counted_twice(spool: Path) -> None:
    out = spool / "outgoing"
    mib_file(out / "a.fstrm", 1, age_h=1)
    (spool / "spool-report.json").write_text(
        json.dumps(
            {
                "dropped": {"files": 1, "bytes": 5, "replies": 4, "first": 1, "last": 1},
                "pending": ["a.fstrm"],
            }
        )
    )
    run = prune(spool, 2048, 72)
    assert names(out) == []
    assert "dropped a.fstrm unshipped (counted by an interrupted run)" in run.log
    assert report(spool)["dropped"] == {
        "files": 1,
        "bytes": 5,
        "replies": 4,
        "first": 1,
        "last": 1,
    }
    assert "pending" not in report(spool)


def test_a_damaged_report_is_kept_aside(spool: Path) -> None:
    (spool / "spool-report.json").write_text("{not json")
    run = prune(spool, 2048, 72)
    assert run.returncode == 0
    assert "counts start again" in run.log
    assert (spool / "spool-report.json.damaged").read_text() == "{not json"
    assert report(spool)["dropped"] == {"files": 0, "bytes": 0, "replies": 0}


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["2048", "72"], "Usage"),
        (["2GiB", "72", "75"], "integers"),
        (["2048", "0", "75"], "LIMIT_HOURS >= 1"),
        (["2048", "72", "100"], "WARN_PERCENT 1-99"),
    ],
)
def test_bad_arguments_are_refused(spool: Path, args: list[str], what: str) -> None:
    mib_file(spool / "outgoing" / "a.fstrm", 1, age_h=1)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(spool), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert what in done.stderr
    assert names(spool / "outgoing") == ["a.fstrm"]
