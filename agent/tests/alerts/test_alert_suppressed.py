# SPDX-License-Identifier: Apache-2.0
"""Suppression rules in the alert step: written and counted, never notified.

Real channels on loopback: an SMTP server, a webhook receiver and the MISP
stand-in for sightings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from misp_standin import MispStandin
from pdnssoc_agent.alerts import alerts_file, deliver
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.suppress.store import add_rule, rules_path
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
KEY = "suppress-test-key-0123456789"


class Channels:
    """Every kind of channel, each a real server on loopback."""

    def __init__(self) -> None:
        self.smtp: SmtpServer = start_smtp("none")
        self.hook: Receiver = start_receiver()
        self.misp = MispStandin(
            api_keys={KEY: "PDNSSOC-ORG"},
            events=[event("1", "bad.example.com"), event("2", "sink.inst-a.example")],
        )
        self.misp.start()

    def config(self, tmp_path: Path, suppressions: list[dict[str, Any]] | None = None) -> Config:
        return parse_config(
            {
                "data_dir": str(tmp_path),
                "misp_servers": [
                    {
                        "domain": self.misp.url,
                        "name": "misp1",
                        "api_key": KEY,
                        "timeout": 2,
                        "sightings": {"enabled": True, "source": "pdnssoc-test"},
                    }
                ],
                "alerting": {
                    "email": {
                        "from": "pdnssoc@csirt.example",
                        "summary_to": "soc@csirt.example",
                        "server": "127.0.0.1",
                        "port": self.smtp.port,
                        "timeout": 5,
                        "mappings": [
                            {"client_id": "inst-a", "contact": "sec@inst-a.example"},
                            {"client_id": "inst-b", "contact": "sec@inst-b.example"},
                        ],
                    },
                    "webhook": {"webhook_url": self.hook.url()},
                },
                "suppressions": suppressions or [],
            }
        )

    def names_notified(self) -> list[str]:
        """Query names every channel was told about (mail bodies, webhook alerts, sightings)."""
        names = [a["query"]["name"] for b in self.hook.bodies() for a in b["alerts"]]
        names += [s["value"] for s in self.misp.sightings]
        for message in self.smtp.messages:
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            text = body.get_content()
            names += [n for n in ("bad.example.com", "sink.inst-a.example") if n in text]
        return names

    def stop(self) -> None:
        self.smtp.stop()
        self.hook.stop()
        self.misp.stop()


@pytest.fixture
def channels() -> Iterator[Channels]:
    c = Channels()
    yield c
    c.stop()


SINKHOLE = {
    "id": "inst-a-sinkhole",
    "reason": "inst-a's own sinkhole resolves seized domains",
    "author": "alice",
    "qname_suffix": "sink.inst-a.example",
    "institution": "inst-a",
}


def test_a_suppressed_hit_is_written_and_counted_but_never_notified(
    tmp_path: Path, channels: Channels
) -> None:
    cfg = channels.config(tmp_path, [SINKHOLE])
    src = alerts_file(cfg)
    muted = alert_line(name="sink.inst-a.example", seen="2026-11-27T10:07:00Z")
    real = alert_line(name="bad.example.com")
    append_alerts(src, muted, real)
    before = hashlib.sha256(src.read_bytes()).hexdigest()

    report = deliver(cfg, NOW)
    assert report.ok, report.failed
    assert report.muted == {"inst-a-sinkhole": 1}
    # every channel got the real alert, none the suppressed one
    assert set(report.sent) == {"email-summary", "email:inst-a", "webhook", "sightings:misp1"}
    assert all(n == 1 for n in report.sent.values())
    notified = channels.names_notified()
    assert "sink.inst-a.example" not in notified
    assert notified.count("bad.example.com") == 4
    # the alert file is untouched: the suppressed line stays for history and forensics
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before

    # a new revision of the suppressed alert is not notified and not counted twice
    append_alerts(src, {**muted, "revision": 2, "count": 3, "last_seen": "2026-11-27T11:00:00Z"})
    assert deliver(cfg, NOW + timedelta(hours=1)).sent == {}
    status = collect(cfg, NOW + timedelta(hours=1))
    (rule,) = status.suppressions
    assert (rule["id"], rule["hits"], rule["last_hit"]) == (
        "inst-a-sinkhole",
        1,
        "2026-11-27T11:00:00Z",
    )
    assert json.loads(json.dumps(status.to_dict()))["suppressions"][0]["hits"] == 1
    assert "inst-a-sinkhole  config       1 hit(s), last 2026-11-27T11:00:00Z" in render(status)


def test_institution_scoping(tmp_path: Path, channels: Channels) -> None:
    cfg = channels.config(tmp_path, [SINKHOLE])
    append_alerts(
        alerts_file(cfg),
        alert_line(name="sink.inst-a.example", sensor="inst-a"),
        alert_line(name="sink.inst-a.example", sensor="inst-b"),
    )
    report = deliver(cfg, NOW)
    assert report.muted == {"inst-a-sinkhole": 1}
    assert report.sent["email:inst-b"] == 1
    assert "email:inst-a" not in report.sent
    assert [a["sensor"] for b in channels.hook.bodies() for a in b["alerts"]] == ["inst-b"]


def test_an_expired_rule_stops_applying_by_itself(tmp_path: Path, channels: Channels) -> None:
    rule = {**SINKHOLE, "expires": "2026-11-27T13:00:00Z"}
    cfg = channels.config(tmp_path, [rule])
    src = alerts_file(cfg)
    append_alerts(src, alert_line(name="sink.inst-a.example"))
    assert deliver(cfg, NOW).muted == {"inst-a-sinkhole": 1}
    assert channels.names_notified() == []
    # an hour after the expiry, with nothing changed, the next hit is announced
    append_alerts(src, alert_line(name="sink.inst-a.example", client="192.0.2.77"))
    report = deliver(cfg, NOW + timedelta(hours=2))
    assert report.muted == {}
    assert report.sent["webhook"] == 1
    status = collect(cfg, NOW + timedelta(hours=2))
    assert status.suppressions[0]["expired"] is True
    assert status.suppressions[0]["hits"] == 1


def test_a_rule_added_on_the_server_applies_without_restart_even_to_waiting_alerts(
    tmp_path: Path, channels: Channels
) -> None:
    cfg = channels.config(tmp_path)
    src = alerts_file(cfg)
    channels.hook.status = 503  # the webhook is down: the alert waits for it
    append_alerts(src, alert_line(name="sink.inst-a.example"))
    first = deliver(cfg, NOW)
    assert "webhook" in first.failed

    fields = {k: v for k, v in SINKHOLE.items() if k != "id"}
    rule = add_rule(cfg, fields, who="alice", now=NOW + timedelta(minutes=1))
    channels.hook.status = 200
    report = deliver(cfg, NOW + timedelta(hours=1))
    assert report.muted == {rule.id: 1}
    assert report.sent == {}
    # the webhook, up again, never got it (its one attempt was refused with 503)
    assert [p.endswith("#refused") for p, _body in channels.hook.requests] == [True]


def test_an_unusable_rules_file_loses_no_alert(
    tmp_path: Path, channels: Channels, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = channels.config(tmp_path)
    path = rules_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"version": 1, "next_id": 2, "rules": [{"id": "1", "colour": "red"}]}')
    append_alerts(alerts_file(cfg), alert_line(name="sink.inst-a.example"))
    with caplog.at_level(logging.ERROR):
        report = deliver(cfg, NOW)
    assert report.sent["webhook"] == 1
    assert "unknown field(s) colour" in caplog.text
    assert any("unknown field(s) colour" in p for p in collect(cfg, NOW).problems)
