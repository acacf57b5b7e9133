# SPDX-License-Identifier: Apache-2.0
"""retro: new indicators x archived answers, with both times; look-back; progress; crashes."""

from __future__ import annotations

import gzip
import os
import pty
import select
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pdnssoc_agent.commands.retro import Progress
from pdnssoc_agent.config import Config
from pdnssoc_agent.correlate import run_retro
from pdnssoc_agent.iocs.index import FORMAT, VERSION, IndexHeader, IndicatorEntry, write_index
from pdnssoc_agent.state import read_pointer
from tests.support.correlate import (
    SAMPLE,
    SAMPLE_DAY,
    SAMPLE_GZ,
    SAMPLE_MINIFIED,
    agent_dying_at,
    dns_line,
    make_config,
    read_alerts,
    write_lists,
)

ANSWER = datetime.fromisoformat("2025-11-27T10:40:00+00:00")  # first answer in the samples


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def _index(config: Config, added: dict[str, datetime]) -> None:
    entries = [
        IndicatorEntry(v, "domain" if not v[0].isdigit() and ":" not in v else "ip", _epoch(t), 0)
        for v, t in added.items()
    ]
    write_index(config.correlation.ioc_index_file, IndexHeader(FORMAT, VERSION, 0, {}), entries)
    write_lists(
        config,
        [v for v in added if not v[0].isdigit() and ":" not in v],
        [v for v in added if v[0].isdigit() or ":" in v],
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = make_config(tmp_path / "data")
    archive = cfg.correlation.archive_dir / "2025-11-27"
    archive.mkdir(parents=True)
    shutil.copy(SAMPLE_GZ, archive / "queries-1764240000000000000.json.gz")
    return cfg


def test_a_search_of_given_paths_leaves_the_scheduled_run_its_work(
    config: Config, tmp_path: Path
) -> None:
    _index(config, {"evil.example.com": ANSWER + timedelta(hours=5)})
    now = SAMPLE_DAY + timedelta(days=2)
    elsewhere = tmp_path / "other-archive.json.gz"
    elsewhere.write_bytes(gzip.compress(dns_line("unrelated.example")))
    run_retro(config, [elsewhere], now=now)
    assert read_pointer(config.correlation.last_retro_pointer_file) is None
    # the scheduled run still treats the indicator as new and finds it in the archive
    scheduled = run_retro(config, now=now + timedelta(minutes=5))
    assert scheduled.indicators == 1
    alerts = read_alerts(config)
    assert scheduled.alerts == len(alerts) == 2  # the exact name and a subdomain of it
    assert {a["match"]["indicator"] for a in alerts} == {"evil.example.com"}


def test_indicator_added_after_the_answer_reveals_it(config: Config) -> None:
    _index(
        config,
        {
            "evil.example.com": ANSWER + timedelta(hours=5),  # published after the answer
            "bad-cdn.net": ANSWER - timedelta(days=2),  # known before: live correlate's job
            "2001:db8:bad::/48": ANSWER + timedelta(days=1),
        },
    )
    now = SAMPLE_DAY + timedelta(days=2)
    result = run_retro(config, now=now)
    alerts = read_alerts(config)
    assert result.alerts == len(alerts) == 3
    assert {a["kind"] for a in alerts} == {"retro"}
    assert Counter(a["match"]["how"] for a in alerts) == {"exact": 1, "subdomain": 1, "cidr": 1}
    exact = next(a for a in alerts if a["match"]["how"] == "exact")
    assert exact["ioc_added"] == "2025-11-27T15:40:00Z"
    assert exact["first_seen"] == "2025-11-27T10:40:02Z"
    assert exact["source"]["file"].endswith(".json.gz")
    assert read_pointer(config.correlation.last_retro_pointer_file) == now
    # nothing was added since: a second run finds nothing
    assert run_retro(config, now=now + timedelta(hours=1)).alerts == 0
    # a value added after retro.last is searched on the next run
    _index(
        config,
        {
            "evil.example.com": ANSWER + timedelta(hours=5),
            "bad-cdn.net": ANSWER - timedelta(days=2),
            "2001:db8:bad::/48": ANSWER + timedelta(days=1),
            "198.51.100.99": now + timedelta(hours=2),
        },
    )
    third = run_retro(config, now=now + timedelta(hours=3))
    assert third.indicators == 1
    new = read_alerts(config)[3:]
    assert [(a["match"]["how"], a["match"]["indicator"]) for a in new] == [("ip", "198.51.100.99")]


def test_plain_lists_first_run_treats_every_indicator_as_new(config: Config) -> None:
    write_lists(config, ["evil.example.com"], ["198.51.100.99"])
    now = SAMPLE_DAY + timedelta(days=1)
    assert run_retro(config, now=now).alerts == 3
    assert all(a["ioc_added"] == "2025-11-28T12:00:00Z" for a in read_alerts(config))
    assert run_retro(config, now=now + timedelta(hours=1)).alerts == 0
    write_lists(config, ["evil.example.com", "bad-cdn.net"], ["198.51.100.99"])
    r = run_retro(config, now=now + timedelta(hours=2))
    assert (r.indicators, r.alerts) == (1, 1)
    assert read_alerts(config)[-1]["match"]["indicator"] == "bad-cdn.net"
    # one snapshot of the searched values is kept
    assert len(list(config.correlation.state_dir.glob("retro.indicators.*"))) == 1


def test_lookback_bounds_the_search(config: Config, tmp_path: Path) -> None:
    write_lists(config, ["evil.example.com"], [])
    lookback = config.correlation.retro_lookback
    assert run_retro(config, now=ANSWER + lookback + timedelta(days=1)).alerts == 0
    # without explicit paths, archive files older than the look-back are not even opened
    cfg = make_config(tmp_path / "d2")
    write_lists(cfg, ["evil.example.com"], [])
    cfg.correlation.archive_dir.mkdir(parents=True)
    old = cfg.correlation.archive_dir / "old.json.gz"
    shutil.copy(SAMPLE_GZ, old)
    t = _epoch(SAMPLE_DAY - lookback - timedelta(days=5))
    os.utime(old, (t, t))
    fresh = cfg.correlation.queries_file
    fresh.write_bytes(SAMPLE.read_bytes())
    result = run_retro(cfg, now=SAMPLE_DAY)
    assert result.stats.files == 1
    assert {a["source"]["file"] for a in read_alerts(cfg)} == {str(fresh)}


def test_archives_of_every_shape_and_damage(config: Config) -> None:
    write_lists(config, ["evil.example.com"], [])
    archive = config.correlation.archive_dir
    shutil.copy(SAMPLE_MINIFIED, archive / "queries-old.json.gz_minified")
    body = b"".join(
        dns_line(f"h{i}.evil.example.com", ts="2025-11-27T09:00:00Z") for i in range(2000)
    )
    packed = gzip.compress(body)
    (archive / "cut.json.gz").write_bytes(packed[: len(packed) // 2])
    (archive / "junk.json").write_bytes(b"garbage\n\xff\xfe\n" + SAMPLE.read_bytes())
    result = run_retro(config, now=SAMPLE_DAY)
    assert result.stats.truncated_gzip == 1
    assert result.stats.malformed + result.stats.invalid_utf8 == 2
    alerts = read_alerts(config)
    # the same DNS messages in three archives (gzip, minified, plain with junk) fold
    # into the same two alerts: 2 messages (query, response) x 3 files each
    sample = [a for a in alerts if a["client"] == "192.0.2.11" or a["client"] == "192.0.2.13"]
    assert sorted(a["count"] for a in sample) == [6, 6]
    cut = [a for a in alerts if Path(a["source"]["file"]).name == "cut.json.gz"]
    assert 0 < len(cut) < 2000


def test_progress_on_a_terminal() -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        progress = Progress(total_bytes=1000, total_files=2, stream=tty)
        progress.update(0, 5000, 500, final=False)
        progress.update(1, 10000, 1000, final=True)
    # A pty hands over what was written in pieces: read until the final line is in.
    out = ""
    while "done" not in out and select.select([master], [], [], 5)[0]:
        out += os.read(master, 4096).decode()
    os.close(master)
    assert "retro: file 1/2, 5,000 lines" in out
    assert "50%" in out and "ETA" in out
    assert "file 2/2, 10,000 lines" in out and "done" in out


def test_no_progress_when_not_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    with path.open("w") as fh:
        Progress(total_bytes=10, total_files=1, stream=fh).update(0, 1, 5, final=True)
    assert path.read_text() == ""


def test_crash_after_alerts_before_pointer_repeats_nothing(config: Config, tmp_path: Path) -> None:
    write_lists(config, ["evil.example.com"], ["198.51.100.99"])
    cfg_file = tmp_path / "agent.yml"
    cfg_file.write_text(
        f"data_dir: {config.data_dir}\ncorrelation:\n  retro_lookback: {{days: 36500}}\n"
    )
    cmd = [sys.executable, "-m", "pdnssoc_agent", "-c", str(cfg_file), "retro"]
    crashing = [*agent_dying_at("after-append"), *cmd[3:]]
    assert subprocess.run(crashing, capture_output=True, check=False).returncode == 77
    assert read_pointer(config.correlation.last_retro_pointer_file) is None
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "0 of 2 indicator(s) are new" in done.stderr
    alerts = read_alerts(config)
    assert len(alerts) == 3
    assert len({a["id"] for a in alerts}) == 3
