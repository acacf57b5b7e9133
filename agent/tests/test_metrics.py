# SPDX-License-Identifier: Apache-2.0
"""The metrics: what the steps, the ledger, the sources and the sensors did, in the
exposition format, following Prometheus' conventions and carrying no query name,
client or indicator value.

The steps run for real through the scheduler: fetch-iocs over two sources behind the
IndicatorSource interface (one fails), correlate over a query log, alert to two
webhook receivers on loopback (one refuses).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdnssoc_agent.config import Config, Periods, load_config
from pdnssoc_agent.errors import ExitCode
from pdnssoc_agent.health import collect
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from pdnssoc_agent.iocs.source import Attribute, EventRef, IndicatorSource, Query, SourceError
from pdnssoc_agent.metrics import Exposition, escape_label_value, exposition
from pdnssoc_agent.scheduler import Scheduler, Step
from pdnssoc_agent.timefmt import format_rfc3339
from tests.support.exposition import Family, parse

# Values that must never reach a label or a sample: a query name, an indicator, a client.
INDICATOR = "zq7-indicator-marker.example.com"
QUERY = f"www.{INDICATOR}"
CLIENT = "198.18.77.201"
HOSTILE_SENSOR = 'inst-"a\\b} 1\npdnssoc_forged 1'
LABELS = {"step", "outcome", "channel", "source", "kind", "sensor", "rule"}


class Source(IndicatorSource):
    """An indicator source handing over its attributes in one page, or failing."""

    def __init__(self, label: str, values: list[str]) -> None:
        self.label, self.url = label, f"fake://{label}"
        self.periods = Periods()
        self.values = values
        self.fail = False

    def pages(self, query: Query) -> Iterator[list[Attribute]]:
        if self.fail:
            raise SourceError(self.label, self.url, "gone away")
        now = int(datetime.now(UTC).timestamp())
        yield [
            Attribute(
                value=v,
                type="domain",
                id=i,
                timestamp=now - 3600,
                event_id=7,
                Event=EventRef(id=7, info="wave"),
            )
            for i, v in enumerate(self.values, start=1)
        ]

    def event_url(self, event_id: str) -> str:
        return f"{self.url}/event/{event_id}"


class Receiver:
    """A webhook endpoint on loopback answering every POST with ``status``."""

    def __init__(self, status: int) -> None:
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posts += 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(tmp_path: Path, **extra: Any) -> tuple[Path, Config]:
    data = {
        "data_dir": str(tmp_path),
        "history": {"enabled": False},
        "misp_servers": [
            {"name": "misp1", "domain": "https://misp1.example.org", "api_key": "k" * 40},
            {"name": "misp2", "domain": "https://misp2.example.org", "api_key": "k" * 40},
        ],
        **extra,
    }
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(data))
    return path, load_config(path)


def dns_line(qname: str, sensor: str, when: datetime) -> bytes:
    """One go-dnscollector 0.38 JSON reply."""
    rec = {
        "network": {
            "family": "IPv4",
            "protocol": "UDP",
            "query-ip": CLIENT,
            "query-port": "40000",
            "response-ip": "192.0.2.1",
            "response-port": "53",
        },
        "dns": {
            "length": 64,
            "opcode": 0,
            "rcode": "NOERROR",
            "qname": qname,
            "qtype": "A",
            "resource-records": {"an": [], "ns": [], "ar": []},
        },
        "dnstap": {
            "operation": "CLIENT_RESPONSE",
            "identity": sensor,
            "timestamp-rfc3339ns": format_rfc3339(when),
        },
    }
    return json.dumps(rec).encode() + b"\n"


def conventions(families: dict[str, Family]) -> None:
    """Prometheus' naming rules, and no label but the known few."""
    for name, fam in families.items():
        assert name.startswith("pdnssoc_"), name
        assert fam.help, name
        assert (fam.type == "counter") == name.endswith("_total"), name
        if "timestamp" in name:
            assert name.endswith("_timestamp_seconds"), name
        for unit_word in ("duration", "interval", "threshold", "age"):
            if unit_word in name:
                assert name.endswith("_seconds"), name
        for labels, value in fam.samples:
            assert set(labels) <= LABELS, (name, labels)
            if fam.type == "counter":
                assert value >= 0, (name, labels)


def run_steps(cfg: Config, sources: list[Source]) -> Scheduler:
    steps = [
        Step(
            "fetch-iocs", "fetch_iocs", lambda c: fetch_iocs(c, sources, FetchOptions(reload=False))
        ),
        Step("correlate", "correlation", "pdnssoc_agent.correlate:run_correlate"),
        Step("alert", "alerting", "pdnssoc_agent.alerts:run_alert"),
    ]
    scheduler = Scheduler(cfg, steps=steps, lanes=False)
    for step in steps:
        scheduler.run_step(step)
    return scheduler


@dataclass
class Scenario:
    now: datetime
    text: str
    families: dict[str, Family]
    hook: str


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Two rounds of fetch-iocs, correlate and alert; misp2 fails in the second."""
    good, bad = Receiver(200), Receiver(500)
    _path, cfg = write_config(
        tmp_path_factory.mktemp("metrics"),
        alerting={"slack": {"webhook_url": good.url()}, "mattermost": {"webhook_url": bad.url()}},
    )
    misp1 = Source("misp1", [INDICATOR, "other.example.net"])
    misp2 = Source("misp2", ["third.example.org"])
    now = datetime.now(UTC)
    q = cfg.correlation.queries_file
    q.parent.mkdir(parents=True, exist_ok=True)
    q.write_bytes(
        dns_line(INDICATOR, HOSTILE_SENSOR, now - timedelta(minutes=3))
        + dns_line(QUERY, "inst-b", now - timedelta(minutes=2))
        + dns_line("harmless.example.org", "inst-b", now - timedelta(minutes=1))
    )
    run_steps(cfg, [misp1, misp2])  # both sources answer
    misp2.fail = True
    with q.open("ab") as fh:
        fh.write(dns_line("harmless.example.org", "inst-b", now))
    run_steps(cfg, [misp1, misp2])  # misp2 fails: it keeps its indicator and last success
    text = exposition(collect(cfg))
    yield Scenario(now, text, parse(text), good.url())
    good.stop()
    bad.stop()


def test_conventions_and_no_query_client_or_indicator(scenario: Scenario) -> None:
    conventions(scenario.families)
    for secret in (INDICATOR, QUERY, CLIENT, "harmless.example.org", "k" * 40, scenario.hook):
        assert secret not in scenario.text


def test_per_step(scenario: Scenario) -> None:
    families, now = scenario.families, scenario.now
    # Per step: runs by outcome, lines and alerts (totals and last run), times.
    runs = families["pdnssoc_step_runs_total"]
    assert runs.value(step="correlate", outcome="ok") == 2
    assert runs.value(step="fetch-iocs", outcome="ok") == 1
    assert runs.value(step="fetch-iocs", outcome="failed") == 1
    assert families["pdnssoc_step_lines_total"].value(step="correlate") == 4
    assert families["pdnssoc_step_last_lines"].value(step="correlate") == 1
    assert families["pdnssoc_step_alerts_total"].value(step="correlate") == 2
    assert families["pdnssoc_step_alerts_total"].value(step="alert") == 2
    assert families["pdnssoc_step_last_run_succeeded"].value(step="fetch-iocs") == 0
    assert families["pdnssoc_step_stale"].value(step="correlate") == 0
    assert families["pdnssoc_step_stale"].value(step="retro") == 1  # never ran
    assert not families["pdnssoc_step_last_success_timestamp_seconds"].has(step="retro")
    success = families["pdnssoc_step_last_success_timestamp_seconds"].value(step="correlate")
    assert abs(success - now.timestamp()) < 120
    assert families["pdnssoc_step_last_duration_seconds"].value(step="correlate") >= 0
    assert families["pdnssoc_step_interval_seconds"].value(step="correlate") == 60


def test_per_channel(scenario: Scenario) -> None:
    """Delivered, failed attempts, pending."""
    families = scenario.families
    assert families["pdnssoc_channel_alerts_delivered_total"].value(channel="slack") == 2
    assert families["pdnssoc_channel_alerts_delivered_total"].value(channel="mattermost") == 0
    assert families["pdnssoc_channel_delivery_failures_total"].value(channel="mattermost") >= 1
    assert families["pdnssoc_channel_pending_alerts"].value(channel="mattermost") == 2
    assert families["pdnssoc_channel_pending_alerts"].value(channel="slack") == 0
    assert families["pdnssoc_channel_oldest_pending_timestamp_seconds"].has(channel="mattermost")
    assert families["pdnssoc_channel_last_success_timestamp_seconds"].has(channel="slack")


def test_per_source(scenario: Scenario) -> None:
    """Up, indicators (a failed one keeps its previous ones), last success."""
    families = scenario.families
    assert families["pdnssoc_source_up"].value(source="misp1") == 1
    assert families["pdnssoc_source_up"].value(source="misp2") == 0
    assert families["pdnssoc_source_indicators"].value(source="misp1") == 2
    assert families["pdnssoc_source_indicators"].value(source="misp2") == 1
    last = families["pdnssoc_source_last_success_timestamp_seconds"]
    assert last.value(source="misp2") <= last.value(source="misp1")
    assert families["pdnssoc_indicators"].value(kind="domain") == 3


def test_per_sensor(scenario: Scenario) -> None:
    """Last seen and replies; the hostile identity escaped, forging no line."""
    families, now = scenario.families, scenario.now
    seen = families["pdnssoc_sensor_last_seen_timestamp_seconds"]
    assert seen.has(sensor=HOSTILE_SENSOR)
    assert abs(seen.value(sensor="inst-b") - int(now.timestamp())) <= 1
    assert families["pdnssoc_sensor_replies_last_hour"].value(sensor="inst-b") >= 1
    assert "pdnssoc_forged" not in families
    assert "\npdnssoc_forged" not in scenario.text


def test_status_format_prometheus(tmp_path: Path) -> None:
    path, _cfg = write_config(tmp_path)

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pdnssoc_agent", "-c", str(path), "status", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
            check=False,
        )

    out = status("--format", "prometheus")
    assert out.returncode == 0, out.stderr  # every step stale: said in the metrics
    families = parse(out.stdout)
    conventions(families)
    assert families["pdnssoc_step_stale"].value(step="alert") == 1
    assert families["pdnssoc_source_up"].samples == []  # not fetched yet: no sample
    assert status("--format", "json").returncode == ExitCode.STALE
    clash = status("--json", "--format", "prometheus")
    assert clash.returncode == ExitCode.USAGE
    assert "--json and --format prometheus" in clash.stderr
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; apt-packages.txt)")
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=out.stdout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_escaping_and_misuse_are_refused() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert escape_label_value("inst-\udc80") == "inst-?"  # a lone surrogate cannot be sent
    out = Exposition()
    with pytest.raises(ValueError, match="only counters end in _total"):
        out.family("events", "counter", "x")
    with pytest.raises(ValueError, match="only counters end in _total"):
        out.family("events_total", "gauge", "x")
    out.family("events_total", "counter", "Events.\nSecond line \\ here.")
    with pytest.raises(ValueError, match="bad or repeated name"):
        out.family("events_total", "counter", "again")
    with pytest.raises(ValueError, match="label name"):
        out.sample(1, **{"bad-name": "x"})
    out.sample(1.5, step='a"b')
    out.sample(None, step="unknown")  # nothing known: nothing written
    out.sample(2, step='a"b')  # the same series again: a scrape would refuse the whole text
    fam = parse(out.text())["pdnssoc_events_total"]
    assert fam.help == "Events.\\nSecond line \\\\ here."
    assert fam.samples == [({"step": 'a"b'}, 1.5)]


def test_a_sensor_identity_utf8_cannot_carry(tmp_path: Path) -> None:
    """A lone surrogate (a JSON escape in the query log) must not make the text unsendable."""
    _path, cfg = write_config(tmp_path)
    book = cfg.correlation.state_dir / "sensors.json"
    book.parent.mkdir(parents=True, exist_ok=True)
    last = int(datetime.now(UTC).timestamp())
    book.write_text(
        json.dumps({"version": 1, "sensors": {"inst-\udc80": {"first": last, "last": last}}})
    )
    text = exposition(collect(cfg))
    families = parse(text.encode("utf-8").decode("utf-8"))
    assert families["pdnssoc_sensor_last_seen_timestamp_seconds"].value(sensor="inst-?") == last


def test_spools_and_suppressions() -> None:
    """Spooling sensors' reports and suppression rules' counts, labelled by sensor and rule id."""
    from dataclasses import asdict

    from pdnssoc_agent.health import Status
    from pdnssoc_agent.sensors.spool import SpoolReport
    from pdnssoc_agent.suppress.stats import RuleStats

    report = SpoolReport(
        sensor="univ-b",
        updated=1_790_000_000,
        spool_bytes=3_000_000,
        spool_files=3,
        oldest_waiting=1_789_990_000,
        limit_bytes=2048 << 20,
        limit_seconds=72 * 3600,
        warn_percent=75,
        warned=False,
        dropped_files=2,
        dropped_bytes=2_000_000,
        dropped_replies=5_321,
        first_drop=1_789_000_000,
        last_drop=1_789_100_000,
    )
    rules = [
        RuleStats(
            id=rid,
            origin="config",
            matches=f"qname_suffix {INDICATOR}",
            reason="the institution's sinkhole",
            author="alice",
            created="2026-11-01T00:00:00Z",
            expires=None,
            expired=expired,
            hits=hits,
            last_hit=None,
        )
        for rid, expired, hits in (("univ-a-sinkhole", False, 7), ("12", True, 0))
    ]
    status = Status(
        generated_at="2026-11-30T12:00:00Z",
        spools=[report.as_dict()],
        suppressions=[asdict(r) for r in rules],
    )
    text = exposition(status)
    families = parse(text)
    conventions(families)
    assert INDICATOR not in text
    assert families["pdnssoc_sensor_spool_dropped_replies_total"].value(sensor="univ-b") == 5321
    assert families["pdnssoc_sensor_spool_dropped_files_total"].value(sensor="univ-b") == 2
    assert families["pdnssoc_sensor_spool_bytes"].value(sensor="univ-b") == 3_000_000
    assert families["pdnssoc_sensor_spool_limit_bytes"].value(sensor="univ-b") == 2048 << 20
    assert families["pdnssoc_suppression_hits_total"].value(rule="univ-a-sinkhole") == 7
    assert families["pdnssoc_suppression_expired"].value(rule="12") == 1
    assert families["pdnssoc_suppression_expired"].value(rule="univ-a-sinkhole") == 0
