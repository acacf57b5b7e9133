# SPDX-License-Identifier: Apache-2.0
"""Bad and long lines in matches.json: skipped once or delivered, never a stall."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from misp_standin import MispStandin
from pdnssoc_agent.alerts import Ledger, alerts_file, deliver, ledger_dir
from pdnssoc_agent.config import Config, parse_config
from tests.support.alerts import (
    Receiver,
    SmtpServer,
    alert_line,
    append_alerts,
    start_receiver,
    start_smtp,
)
from tests.support.sightings import event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEY = "poison-test-key-0123456789"
CHANNELS = {"email-summary", "email:inst-a", "slack", "webhook", "sightings:misp1"}


@pytest.fixture
def sinks() -> Iterator[tuple[SmtpServer, Receiver, Receiver, MispStandin]]:
    smtp = start_smtp("none")
    slack, hook = start_receiver(), start_receiver()
    misp = MispStandin(api_keys={KEY: "PDNSSOC-ORG"}, events=[event("1", "bad.example.com")])
    misp.start()
    yield smtp, slack, hook, misp
    misp.stop()
    for r in (slack, hook):
        r.stop()
    smtp.stop()


def config(tmp_path: Path, smtp: SmtpServer, slack: Receiver, hook: Receiver, misp: Any) -> Config:
    return parse_config(
        {
            "data_dir": str(tmp_path),
            "misp_servers": [
                {
                    "domain": misp.url,
                    "name": "misp1",
                    "api_key": KEY,
                    "timeout": 5,
                    "sightings": {"enabled": True, "source": "pdnssoc-test"},
                }
            ],
            "alerting": {
                "email": {
                    "from": "pdnssoc@csirt.example",
                    "summary_to": "soc@csirt.example",
                    "server": "127.0.0.1",
                    "port": smtp.port,
                    "timeout": 5,
                    "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                },
                "slack": {"webhook_url": slack.url()},
                "webhook": {"webhook_url": hook.url()},
            },
        }
    )


def genuine(client: str) -> dict[str, Any]:
    return alert_line(name="bad.example.com", client=client)


HOSTILE = "\u202e\x1b[31m\r\nforged: line"


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def poison_lines() -> dict[str, str]:
    """One line of each poison kind, as bytes of text."""
    base = alert_line(name="poison.example.com", client="192.0.2.66")
    deep_inside = dict(base, answers=[{"name": "x", "type": "A", "data": _deep(900), "ttl": 1}])
    return {
        "lone-surrogate": json.dumps(dict(base, sensor="inst-a\ud800" + HOSTILE)),
        "surrogate-in-key": json.dumps(dict(base, **{"x\udfff": 1})),
        "huge-revision": json.dumps(dict(base, revision=10**30)),
        "huge-count": json.dumps(dict(base, count=10**30)),
        "deep-nesting": "[" * 200_000 + "]" * 200_000,
        "deep-inside-an-alert": json.dumps(deep_inside),
        "unparsable-last-seen": json.dumps(dict(base, last_seen="yesterday" + HOSTILE)),
        "last-seen-a-number": json.dumps(dict(base, last_seen=1764230000)),
        "wrong-type-tags": json.dumps(
            dict(base, misp=[dict(base["misp"][0], tags={"tlp": "red"})])
        ),
        "nan": json.dumps(dict(base, answers=[{"name": "x", "type": "A", "data": "y"}]))[:-1]
        + ', "ttl_x": NaN}',
        "huge-integer-text": json.dumps(base)[:-1] + ', "n": ' + "9" * 5000 + "}",
        "revision-a-bool": json.dumps(dict(base, revision=True)),
    }


@pytest.mark.parametrize("kind", sorted(poison_lines()))
def test_a_poison_line_is_skipped_once_and_the_alerts_behind_it_go_out(
    tmp_path: Path,
    sinks: tuple[SmtpServer, Receiver, Receiver, MispStandin],
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp, slack, hook, misp = sinks
    cfg = config(tmp_path, smtp, slack, hook, misp)
    src = alerts_file(cfg)
    append_alerts(src, genuine("192.0.2.1"))
    with src.open("a", encoding="utf-8") as fh:
        fh.write(poison_lines()[kind] + "\n")
    append_alerts(src, genuine("192.0.2.2"))
    with caplog.at_level(logging.WARNING):
        report = deliver(cfg, NOW)
    assert report.failed == {}
    assert report.read == 3
    assert report.bad == 1
    assert report.sent == dict.fromkeys(CHANNELS, 2)
    assert len(smtp.messages) == 2
    generic = [a["client"] for b in hook.bodies() for a in b["alerts"]]
    assert sorted(generic) == ["192.0.2.1", "192.0.2.2"]
    assert [s["value"] for s in misp.sightings] == ["bad.example.com"]  # one per indicator
    # Logged once, as a reason: no hostile bytes reach the log.
    skipped = [r for r in caplog.records if "not an alert, skipped" in r.getMessage()]
    assert len(skipped) == 1
    assert "\x1b" not in caplog.text
    assert "\u202e" not in caplog.text
    assert "\r" not in caplog.text
    # Skipped for good: the next run reads nothing and fails nothing.
    again = deliver(cfg, NOW + timedelta(minutes=5))
    assert (again.read, again.bad, again.failed, again.sent) == (0, 0, {}, {})
    with Ledger(ledger_dir(cfg)) as ledger:
        assert ledger.stats()["pending"] == 0


def test_a_bad_row_queued_by_an_older_version_is_dropped_not_retried(
    tmp_path: Path,
    sinks: tuple[SmtpServer, Receiver, Receiver, MispStandin],
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp, slack, hook, misp = sinks
    cfg = config(tmp_path, smtp, slack, hook, misp)
    append_alerts(alerts_file(cfg), genuine("192.0.2.1"))
    with Ledger(ledger_dir(cfg)):
        pass  # create the ledger as it is now
    bad = dict(genuine("192.0.2.9"), id="f" * 32, last_seen="not a time")
    db = sqlite3.connect(ledger_dir(cfg) / "alert-ledger.sqlite3")
    with db:
        db.execute(
            "INSERT INTO alerts VALUES (?, 1, ?, ?)", (bad["id"], json.dumps(bad), NOW.timestamp())
        )
        db.execute(
            "INSERT INTO outbox VALUES ('sightings:misp1', ?, 1, 'pending', ?, NULL, 'k')",
            (bad["id"], NOW.timestamp() - 60),
        )
    db.close()
    with caplog.at_level(logging.WARNING):
        report = deliver(cfg, NOW)
    assert report.failed == {}
    assert report.sent["sightings:misp1"] == 1
    assert "cannot be delivered, dropped from the queue" in caplog.text
    with Ledger(ledger_dir(cfg)) as ledger:
        assert ledger.pending("sightings:misp1") == []


# -- long lines ------------------------------------------------------------------------


def well_documented(attributes: int) -> dict[str, Any]:
    """An alert whose indicator 70 MISP attributes carry, as an older correlate wrote it."""
    line = genuine("192.0.2.7")
    ctx = line["misp"][0]
    line["misp"] = [
        dict(
            ctx,
            event_id=str(100 + i),
            event_info=f"Campaign report {i}: " + "details " * 80,
            comment="observed in phishing wave " + "x" * 300,
            tags=["tlp:green", *[f"misp-galaxy:threat-actor=actor-{i}-{k}" for k in range(8)]],
        )
        for i in range(attributes)
    ]
    return line


def test_a_long_alert_line_is_delivered(
    tmp_path: Path, sinks: tuple[SmtpServer, Receiver, Receiver, MispStandin]
) -> None:
    smtp, slack, hook, misp = sinks
    cfg = config(tmp_path, smtp, slack, hook, misp)
    long_line = well_documented(70)
    assert len(json.dumps(long_line)) > 80_000 > cfg.correlation.max_line_bytes
    append_alerts(alerts_file(cfg), long_line, genuine("192.0.2.2"))
    report = deliver(cfg, NOW)
    assert report.failed == {}
    assert report.bad == 0
    assert report.sent["webhook"] == 2
    assert report.sent["email-summary"] == 2
    ids = {a["id"] for b in hook.bodies() for a in b["alerts"]}
    assert long_line["id"] in ids
    (summary,) = smtp.to("soc@csirt.example")
    text = summary.get_body(("plain",))
    assert text is not None
    assert "192.0.2.7" in text.get_content()


def test_a_line_beyond_the_reader_limit_is_skipped_and_counted(
    tmp_path: Path, sinks: tuple[SmtpServer, Receiver, Receiver, MispStandin]
) -> None:
    smtp, slack, hook, misp = sinks
    cfg = config(tmp_path, smtp, slack, hook, misp)
    src = alerts_file(cfg)
    append_alerts(src, dict(genuine("192.0.2.1"), padding="p" * (2 << 20)), genuine("192.0.2.2"))
    report = deliver(cfg, NOW)
    assert (report.read, report.bad) == (2, 1)
    assert [a["client"] for b in hook.bodies() for a in b["alerts"]] == ["192.0.2.2"]
    # An over-long line without its end yet waits for the writer.
    with src.open("a") as fh:
        fh.write("x" * (3 << 20))
    report = deliver(cfg, NOW + timedelta(minutes=5))
    assert (report.read, report.bad) == (0, 0)
    with src.open("a") as fh:
        fh.write("\n")
    append_alerts(src, genuine("192.0.2.3"))
    report = deliver(cfg, NOW + timedelta(minutes=10))
    assert (report.read, report.bad) == (2, 1)
    assert report.sent["webhook"] == 1
