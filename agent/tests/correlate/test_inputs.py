# SPDX-License-Identifier: Apache-2.0
"""correlate without paths: the collector's query log, through rotation and archiving."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest

from pdnssoc_agent.config import Config
from pdnssoc_agent.correlate import run_correlate
from pdnssoc_agent.correlate.inputs import BEING_COMPRESSED, live_files, rotated_query_logs
from pdnssoc_agent.state import read_pointer
from tests.support.correlate import dns_line, make_config, read_alerts, write_lists


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = make_config(tmp_path / "data")
    write_lists(cfg, ["evil.example.com", "bad-cdn.net"], ["198.51.100.99"])
    cfg.correlation.archive_dir.mkdir(parents=True)
    return cfg


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def _rotate(config: Config, ns: int) -> Path:
    """What go-dnscollector does at max-size: rename the log, start a new one."""
    q = config.correlation.queries_file
    rotated = q.with_name(f"queries-{ns}.json")
    q.rename(rotated)
    q.touch()
    return rotated


def _compress_and_archive(config: Config, rotated: Path) -> Path:
    """The collector's compression pass, then the role's post-command (a rename)."""
    gz = rotated.with_name(rotated.name + ".gz")
    gz.write_bytes(gzip.compress(rotated.read_bytes()))
    rotated.unlink()
    archived = config.correlation.archive_dir / gz.name
    gz.rename(archived)
    return archived


def _clients(config: Config) -> list[str]:
    return sorted(a["client"] for a in read_alerts(config))


def test_subdomains_and_cnames_are_found_in_the_query_log(config: Config) -> None:
    """The collector's keep filters are exact; the query log has every reply."""
    _append(
        config.correlation.queries_file,
        dns_line("login.evil.example.com", client="192.0.2.1")
        + dns_line(
            "cdn.partner.example",
            [
                ("cdn.partner.example", "CNAME", "edge.bad-cdn.net"),
                ("edge.bad-cdn.net", "A", "203.0.113.7"),
            ],
            client="192.0.2.2",
        )
        + dns_line("www.benign.example", [("www.benign.example", "A", "203.0.113.8")])
        + dns_line("ip.example", [("ip.example", "A", "198.51.100.99")], client="192.0.2.3"),
    )
    assert run_correlate(config).alerts == 3
    how = {a["client"]: a["match"]["how"] for a in read_alerts(config)}
    assert how == {"192.0.2.1": "subdomain", "192.0.2.2": "cname", "192.0.2.3": "ip"}


def test_lines_written_before_rotation_are_read_from_the_archive(config: Config) -> None:
    q = config.correlation.queries_file
    line = [dns_line("evil.example.com", client=f"192.0.2.{i}") for i in range(9)]
    _append(q, line[1] + line[2][:50])  # the collector is mid-line
    assert run_correlate(config).alerts == 1
    # the rest of the line and one more, then rotation; a new log starts
    _append(q, line[2][50:] + line[3])
    rotated = _rotate(config, 1764240000000000000)
    _append(q, line[4])
    assert run_correlate(config).alerts == 3  # 2 and 3 from the rotated copy, 4 live
    # compressed and moved to the archive: nothing is read twice
    _compress_and_archive(config, rotated)
    _append(q, line[5])
    assert run_correlate(config).alerts == 1
    # the agent was down: a whole file was written, rotated and archived meanwhile
    _append(q, line[6])
    _compress_and_archive(config, _rotate(config, 1764240100000000000))
    _append(q, line[7])
    assert run_correlate(config).alerts == 2
    assert run_correlate(config).alerts == 0
    assert _clients(config) == [f"192.0.2.{i}" for i in range(1, 8)]
    # the agent never changes its input
    assert q.read_bytes() == line[7]


def test_a_first_run_starts_at_the_live_log_not_the_history(config: Config) -> None:
    old = config.correlation.archive_dir / "queries-1700000000000000000.json.gz"
    old.write_bytes(gzip.compress(dns_line("evil.example.com", client="192.0.2.66")))
    _append(config.correlation.queries_file, dns_line("evil.example.com", client="192.0.2.1"))
    assert live_files(config, None) == [config.correlation.queries_file]
    run_correlate(config)
    assert _clients(config) == ["192.0.2.1"]  # history is retro's job


def test_archive_files_older_than_the_previous_run_are_not_reread(config: Config) -> None:
    corr = config.correlation
    _append(corr.queries_file, dns_line("evil.example.com", client="192.0.2.1"))
    run_correlate(config)
    old = corr.archive_dir / "queries-1700000000000000000.json.gz"
    old.write_bytes(gzip.compress(dns_line("evil.example.com", client="192.0.2.66")))
    a_day_ago = time.time() - 86400
    os.utime(old, (a_day_ago, a_day_ago))
    assert run_correlate(config).alerts == 0


def test_a_gzip_still_being_written_waits_for_the_next_run(config: Config) -> None:
    corr = config.correlation
    body = b"".join(dns_line("evil.example.com", client=f"192.0.2.{i}") for i in range(1, 50))
    packed = gzip.compress(body)
    partial = corr.queries_file.with_name("queries-1764240000000000000.json.gz")
    partial.write_bytes(packed[: len(packed) // 2])
    corr.queries_file.touch()
    assert rotated_query_logs(corr.queries_file) == []
    settled = time.time() - BEING_COMPRESSED - 1
    os.utime(partial, (settled, settled))
    assert rotated_query_logs(corr.queries_file) == [partial]
    plain = corr.queries_file.with_name("queries-1764240000000000001.json")
    plain.write_bytes(body)
    assert rotated_query_logs(corr.queries_file) == [partial, plain]


def test_matches_mode_reads_the_collectors_matches_files_only(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, live_input="matches")
    write_lists(cfg, ["evil.example.com"], [])
    cfg.correlation.input_dir.mkdir(parents=True)
    _append(cfg.correlation.queries_file, dns_line("evil.example.com", client="192.0.2.1"))
    _append(
        cfg.correlation.input_dir / "matches_domains.json",
        dns_line("evil.example.com", client="192.0.2.2"),
    )
    run_correlate(cfg)
    assert _clients(cfg) == ["192.0.2.2"]


def test_an_unknown_live_input_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"correlation\.live_input.*query_log"):
        make_config(tmp_path, live_input="matchez")


def test_a_run_over_given_paths_does_not_move_the_live_pointer(
    config: Config, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere.json"
    other.write_bytes(dns_line("evil.example.com", client="192.0.2.9"))
    run_correlate(config, [other])
    assert read_pointer(config.correlation.last_correlation_pointer_file) is None
    _append(config.correlation.queries_file, dns_line("evil.example.com", client="192.0.2.1"))
    run_correlate(config)
    assert read_pointer(config.correlation.last_correlation_pointer_file) is not None
