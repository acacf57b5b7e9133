# SPDX-License-Identifier: Apache-2.0
"""Migrating a pdnssoc-cli deployment (docs/migration.md), and inputs that are not there.

The data root is built as pdnssoc-cli 0.0.5 and the pDNSSOC collector
configuration leave it: pdnssoc-cli's YAML file, its pointer files, the
collector's matches files, the post-rotate script's minified archive
(``*.gz_minified``), the indicator lists at pdnssoc-cli's paths and the
alerts pdnssoc-cli already wrote to ``alerts/matches.json``.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdnssoc_agent._cli import main
from pdnssoc_agent.alerts import Ledger, deliver, ledger_dir
from pdnssoc_agent.config import Config, load_config
from pdnssoc_agent.correlate import run_correlate, run_retro
from pdnssoc_agent.errors import ExitCode, NoInputError
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.iocs.index import FORMAT, VERSION, IndexHeader, IndicatorEntry, write_index
from tests.support.alerts import Receiver, start_receiver
from tests.support.correlate import dns_line, make_config, read_alerts, validator, write_lists

NOW = datetime(2025, 11, 27, 12, 0, tzinfo=UTC)
CUTOFF = "2025-11-27T10:40:02.001500Z"  # pdnssoc-cli: the newest match it reported


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = start_receiver()
    yield rec
    rec.stop()


def cli(*args: str) -> int:
    """``pdnssoc-agent ARGS``, in process; the test's log handlers are kept."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def _minified(ts: str, query: str, client: str, answers: list[dict[str, Any]]) -> bytes:
    """One record as pDNSSOC's postrotate_query.sh writes it (jq -c)."""
    rec = {
        "timestamp": ts,
        "query": query,
        "client": client,
        "server": "192.0.2.1",
        "client_id": "univ-a",
        "answers": answers,
    }
    return json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def _line(qname: str, answers: list[tuple[str, str, str]], client: str, ts: str) -> bytes:
    return dns_line(qname, answers, client=client, sensor="univ-a", ts=ts)


def pdnssoc_cli_root(root: Path, hook: str) -> Path:
    """A data root as pdnssoc-cli leaves it; returns its configuration file."""
    (root / "matches").mkdir(parents=True)
    (root / "alerts").mkdir()
    day = root / "archive" / "2025-11-26"
    day.mkdir(parents=True)
    (root / "misp_domains.txt").write_text("evil.example.com\nbad-cdn.net\n")
    (root / "misp_ips.txt").write_text("198.51.100.99\n")
    (root / "correlation.last").write_text(CUTOFF + "\n")
    (root / "retro.last").write_text("2025-11-27T09:00:00\n")  # its local time, no zone
    (root / "alert.last").write_text("2025-11-27T10:45:00\n")
    (root / "alerts_db.txt").write_text("0f1e2d\n")
    (root / "matches" / "matches_domains.json").write_bytes(
        _line("evil.example.com", [("evil.example.com", "A", "203.0.113.7")], "192.0.2.11",
              "2025-11-27T10:30:00Z")
        + _line("evil.example.com", [("evil.example.com", "A", "203.0.113.7")], "192.0.2.12",
                CUTOFF)
        + _line("evil.example.com", [("evil.example.com", "A", "203.0.113.7")], "192.0.2.13",
                "2025-11-27T11:10:00Z")
    )  # fmt: skip
    (root / "matches" / "matches_ips.json").write_bytes(
        # pdnssoc-cli reported the address; the CNAME into bad-cdn.net it could not see
        _line("cdn.shop.test", [("cdn.shop.test", "CNAME", "edge.bad-cdn.net"),
                                ("edge.bad-cdn.net", "A", "198.51.100.99")], "192.0.2.14",
              "2025-11-27T10:20:00Z")
        + _line("mail.example.org", [("mail.example.org", "A", "198.51.100.99")], "192.0.2.15",
                "2025-11-27T11:20:00Z")
    )  # fmt: skip
    with gzip.open(day / "queries-1764100000000000000.json.gz_minified", "wb") as fh:
        fh.write(
            _minified("2025-11-26T08:00:00.5Z", "evil.example.com", "192.0.2.21",
                      [{"name": "evil.example.com", "rdatatype": "A", "rdata": "203.0.113.7",
                        "ttl": 60}])
            + _minified("2025-11-26T08:05:00Z", "login.evil.example.com", "192.0.2.22", [])
            + _minified("2025-11-26T08:06:00Z", "www.benign.test", "192.0.2.23", [])
        )  # fmt: skip
    # what pdnssoc-cli itself appended: the matching records, enriched
    old = json.loads(_line("evil.example.com", [], "192.0.2.11", "2025-11-27T10:30:00Z").decode())
    old["misp"] = [{"event_id": "42", "info": "Phishing"}]
    (root / "alerts" / "matches.json").write_text(json.dumps(old) + "\n")
    config = {
        "data_dir": str(root),  # the one line added: this data root is not /var/dnscollector
        "logging_level": "INFO",
        "misp_servers": [
            {
                "domain": "https://misp.example.org/",
                "api_key": "not-used-here",
                "verify_ssl": True,
                "debug": False,
                "args": {"enforce_warninglist": True},
                "periods": {"generic": {"delta": {"days": 7}}},
            }
        ],
        "correlation": {
            "input_dir": str(root / "matches"),
            "output_dir": str(root / "alerts"),
            "archive_dir": str(root / "archive"),
            "alerts_database": str(root / "alerts_db.txt"),
            "alerts_database_max_size": 300,
            "malicious_domains_file": str(root / "misp_domains.txt"),
            "malicious_ips_file": str(root / "misp_ips.txt"),
            "last_correlation_pointer_file": str(root / "correlation.last"),
            "last_retro_pointer_file": str(root / "retro.last"),
        },
        "alerting": {
            "last_alerting_pointer_file": str(root / "alert.last"),
            "slack": {"slack_hook": hook},
        },
        "schedules": {
            "fetch_iocs": {"interval": 60},
            "correlation": {"interval": 1},
            "retro": {"interval": 1440},
            "alerting": {"interval": 7},
        },
    }
    path = root / "pdnssoccli.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def agent_alerts(config: Config) -> list[dict[str, Any]]:
    """The agent's lines of matches.json (validated), after pdnssoc-cli's own."""
    lines = (config.correlation.output_dir / "matches.json").read_text().splitlines()
    alerts = [json.loads(line) for line in lines]
    ours = [a for a in alerts if "schema_version" in a]
    for a in ours:
        validator().validate(a)
    return ours


def _seen(config: Config) -> list[tuple[str, str, str, str]]:
    return sorted(
        (a["kind"], a["client"], a["match"]["how"], a["match"]["indicator"])
        for a in agent_alerts(config)
    )


def test_a_pdnssoc_cli_data_root_is_taken_over(
    tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pdnssoc_cli_root(tmp_path / "dnscollector", receiver.url())
    root = path.parent
    assert cli("-c", str(path), "check-config") == 0
    out = capsys.readouterr().out
    assert f"correlate reads {root / 'matches'} (live_input: matches)" in out
    assert "warning: correlate" not in out and "warning: retro" not in out
    config = load_config(path)

    run_correlate(config, now=NOW)
    live = [
        ("live", "192.0.2.13", "exact", "evil.example.com"),  # after correlation.last
        ("live", "192.0.2.14", "cname", "bad-cdn.net"),  # a kind pdnssoc-cli did not make
        ("live", "192.0.2.15", "ip", "198.51.100.99"),
    ]
    assert _seen(config) == live
    run_retro(config, now=NOW)
    retro = [("retro", "192.0.2.22", "subdomain", "evil.example.com")]
    assert _seen(config) == sorted(live + retro)
    # later runs: nothing again, and what the collector appends is alerted
    assert run_correlate(config, now=NOW + timedelta(minutes=1)).alerts == 0
    with (root / "matches" / "matches_domains.json").open("ab") as fh:
        fh.write(
            _line("evil.example.com", [], "192.0.2.11", "2025-11-27T10:30:00Z")  # late, old
            + _line("evil.example.com", [], "192.0.2.16", "2025-11-27T12:01:00Z")
        )
    run_correlate(config, now=NOW + timedelta(minutes=2))
    late = [
        ("live", "192.0.2.11", "exact", "evil.example.com"),
        ("live", "192.0.2.16", "exact", "evil.example.com"),
    ]
    assert _seen(config) == sorted(live + retro + late)
    # the agent's own pointers continue pdnssoc-cli's files
    assert (root / "correlation.last").read_text().startswith("2025-11-27T12:02:00")
    assert (root / "retro.last").read_text().startswith("2025-11-27T12:00:00")

    # delivery: pdnssoc-cli's own line in matches.json is not sent again
    report = deliver(config, NOW + timedelta(minutes=3))
    assert report.bad == 1
    text = "\n".join(json.dumps(b) for b in receiver.bodies())
    assert "6 alert(s)" in text, text
    # every one of the agent's alerts went out on the channel (a chat message
    # groups an incident's clients, so the ledger is where each one is told)
    with Ledger(ledger_dir(config)) as ledger:
        assert all(ledger.was_sent("slack", a["id"]) for a in agent_alerts(config))
    assert "192.0.2.12" not in text and "192.0.2.21" not in text
    assert (root / "alert.last").read_text().startswith("2025-11-27T12:03:00")


def test_a_newer_indicator_is_alerted_in_old_data(tmp_path: Path, receiver: Receiver) -> None:
    """An indicator whose MISP attribute is newer than the pointer was unknown to pdnssoc-cli."""
    config = load_config(pdnssoc_cli_root(tmp_path / "dnscollector", receiver.url()))
    updated = int(datetime(2025, 11, 27, 11, 0, tzinfo=UTC).timestamp())
    write_index(
        config.correlation.ioc_index_file,
        IndexHeader(FORMAT, VERSION, updated, {"misp-a": "https://misp.example.org"}),
        [
            IndicatorEntry("bad-cdn.net", "domain", updated, updated - 86400 * 30, []),
            IndicatorEntry("evil.example.com", "domain", updated, updated, []),
        ],
    )
    run_correlate(config, now=NOW)
    clients = {a["client"] for a in agent_alerts(config)}
    assert {"192.0.2.11", "192.0.2.12", "192.0.2.13"} <= clients  # evil.example.com is new
    assert "192.0.2.14" in clients  # the CNAME (bad-cdn.net is old, but pdnssoc-cli saw no CNAMEs)


def test_an_agent_without_a_predecessor_holds_nothing_back(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, live_input="matches")
    write_lists(cfg, ["evil.example.com"], [])
    cfg.correlation.input_dir.mkdir(parents=True)
    (cfg.correlation.input_dir / "m.json").write_bytes(
        _line("evil.example.com", [], "192.0.2.1", "2025-11-27T10:00:00Z")
    )
    run_correlate(cfg, now=NOW)
    # the pointer now exists; new lines dated before it are still alerted
    (cfg.correlation.input_dir / "m.json").open("ab").write(
        _line("evil.example.com", [], "192.0.2.2", "2025-11-27T09:00:00Z")
    )
    run_correlate(cfg, now=NOW + timedelta(minutes=1))
    assert sorted(a["client"] for a in read_alerts(cfg)) == ["192.0.2.1", "192.0.2.2"]
    handover = json.loads((cfg.correlation.state_dir / "handover.json").read_text())
    assert handover == {"correlation_last": None, "retro_last": None}


# ---------------------------------------------------------------------- missing inputs


def _yaml(tmp_path: Path, correlation: dict[str, Any]) -> Path:
    path = tmp_path / "agent.yml"
    path.write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "data"), "correlation": correlation})
    )
    return path


def test_pdnssoc_cli_keys_choose_what_correlate_reads(tmp_path: Path) -> None:
    cfg = load_config(_yaml(tmp_path, {"input_dir": "/srv/matches"}))
    assert cfg.correlation.live_input == "matches"
    for explicit in ({"live_input": "query_log"}, {"queries_file": "/srv/q.json"}):
        cfg = load_config(_yaml(tmp_path, {"input_dir": "/srv/matches", **explicit}))
        assert cfg.correlation.live_input == "query_log"
    assert load_config(_yaml(tmp_path, {})).correlation.live_input == "query_log"


@pytest.mark.parametrize(
    ("correlation", "missing"),
    [
        ({}, "correlation.queries_file"),  # the default input: the query log
        ({"input_dir": "matches"}, "correlation.input_dir"),  # pdnssoc-cli's: a directory
    ],
)
def test_a_missing_input_is_loud(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    correlation: dict[str, Any],
    missing: str,
) -> None:
    path = _yaml(tmp_path, correlation)
    cfg = load_config(path)
    write_lists(cfg, ["evil.example.com"], [])
    assert cli("-c", str(path), "check-config") == 0
    out = capsys.readouterr().out
    assert f"warning: correlate: {missing}" in out
    with caplog.at_level(logging.WARNING), pytest.raises(NoInputError, match=missing):
        run_correlate(cfg, now=NOW)
    assert any(r.levelno == logging.WARNING and missing in r.message for r in caplog.records)
    assert cli("-c", str(path), "correlate") == ExitCode.NO_INPUT
    text = render(collect(cfg, NOW))
    assert f"PROBLEM: correlate: {missing}" in text
    # given PATHs are what the run reads: no complaint about the configured input
    given = tmp_path / "q.json"
    given.write_bytes(_line("evil.example.com", [], "192.0.2.1", "2025-11-27T10:00:00Z"))
    assert cli("-c", str(path), "correlate", str(given)) == 0


def test_an_empty_matches_directory_is_no_input(tmp_path: Path) -> None:
    cfg = load_config(_yaml(tmp_path, {"live_input": "matches"}))
    write_lists(cfg, ["evil.example.com"], [])
    cfg.correlation.input_dir.mkdir(parents=True)
    with pytest.raises(NoInputError, match="holds no file"):
        run_correlate(cfg, now=NOW)
    (cfg.correlation.input_dir / "matches_domains.json").write_bytes(b"")
    assert run_correlate(cfg, now=NOW).alerts == 0
    assert not [p for p in collect(cfg, NOW).problems if p.startswith("correlate")]


def test_retro_without_archive_or_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _yaml(tmp_path, {})
    cfg = load_config(path)
    write_lists(cfg, ["evil.example.com"], [])
    with pytest.raises(NoInputError, match=r"neither correlation\.archive_dir"):
        run_retro(cfg, now=NOW)
    assert cli("-c", str(path), "retro") == ExitCode.NO_INPUT
    cfg.correlation.queries_file.write_bytes(b"")  # a log, but no archive: a warning only
    with caplog.at_level(logging.WARNING):
        run_retro(cfg, now=NOW)
    assert any("archive_dir" in r.message for r in caplog.records)
    assert cli("-c", str(path), "correlate") == 0
    cfg.correlation.archive_dir.mkdir()
    assert collect(cfg, NOW).problems == []


def test_a_catch_up_run_over_old_files_alerts_only_what_was_not_handled(
    tmp_path: Path, receiver: Receiver
) -> None:
    """After the switch to the query log, pdnssoc-cli's matches/ can be read once by hand."""
    config = load_config(pdnssoc_cli_root(tmp_path / "dnscollector", receiver.url()))
    root = config.data_dir
    config = dataclasses.replace(
        config, correlation=dataclasses.replace(config.correlation, live_input="query_log")
    )
    config.correlation.queries_file.write_bytes(b"")
    run_correlate(config, now=NOW)  # the scheduled run: the new query log
    run_correlate(config, [root / "matches"], now=NOW + timedelta(minutes=1))
    assert [a["client"] for a in agent_alerts(config) if a["match"]["how"] == "exact"] == [
        "192.0.2.13"
    ]
