# SPDX-License-Identifier: Apache-2.0
"""A storm of random subdomains of one listed domain costs a bounded number of messages."""

from __future__ import annotations

import random
import string
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
)
from tests.support.sightings import event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEY = "storm-test-key-0123456789"
DOMAIN = "storm.example"


def storm(n: int, *, sensor: str = "inst-a", clients: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(n)
    out = []
    for i in range(n):
        label = "".join(rng.choices(string.ascii_lowercase, k=12))
        out.append(
            alert_line(
                sensor=sensor,
                name=f"{label}.{DOMAIN}",
                indicator=DOMAIN,
                client=f"192.0.2.{1 + i % clients}",
                seen=f"2026-11-27T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            )
        )
    return out


@pytest.fixture
def misp() -> Iterator[MispStandin]:
    standin = MispStandin(
        api_keys={KEY: "PDNSSOC-ORG"},
        events=[event("1", DOMAIN), *[event(str(i), f"d{i}.example") for i in range(2, 7)]],
    )
    standin.start()
    yield standin
    standin.stop()


def config(tmp_path: Path, alerting: dict[str, Any], misp: MispStandin | None = None) -> Config:
    data: dict[str, Any] = {"data_dir": str(tmp_path), "alerting": alerting}
    if misp is not None:
        data["misp_servers"] = [
            {
                "domain": misp.url,
                "name": "misp1",
                "api_key": KEY,
                "timeout": 5,
                "sightings": {"enabled": True, "source": "pdnssoc-test"},
            }
        ]
    return parse_config(data)


def sighting_requests(misp: MispStandin) -> int:
    return sum("sightings/add" in path for path, _body in misp.requests)


def test_a_storm_is_one_incident_one_sighting_and_capped_posts(
    tmp_path: Path, smtp_plain: SmtpServer, receiver: Receiver, misp: MispStandin
) -> None:
    slack = start_receiver()
    try:
        cfg = config(
            tmp_path,
            {
                "max_messages_per_run": 5,
                "email": {
                    "from": "pdnssoc@csirt.example",
                    "summary_to": "soc@csirt.example",
                    "server": "127.0.0.1",
                    "port": smtp_plain.port,
                    "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                },
                "slack": {"webhook_url": slack.url()},
                "webhook": {"webhook_url": receiver.url(), "max_alerts_per_message": 20},
            },
            misp,
        )
        alerts = storm(300)
        append_alerts(alerts_file(cfg), *alerts)
        report = deliver(cfg, NOW)
        assert report.failed == {}
        assert report.sent == {
            "email-summary": 300,
            "email:inst-a": 300,
            "slack": 300,
            "sightings:misp1": 300,
            "webhook": 100,
        }
        # One sighting for the indicator, whatever the number of alerts behind it.
        assert sighting_requests(misp) == 1
        (sighting,) = misp.sightings
        assert sighting["value"] == DOMAIN
        assert int(sighting["date_sighting"]) == int(
            datetime(2026, 11, 27, 10, 4, 59, tzinfo=UTC).timestamp()
        )
        # E-mail: one row for the incident, a sample of the names and a count.
        assert len(smtp_plain.messages) == 2
        (summary,) = smtp_plain.to("soc@csirt.example")
        body = summary.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert text.count("\n* [") == 1
        assert "300 alerts for one indicator" in text
        assert "300 name(s): " in text
        assert "and 290 more" in text
        assert "3: 192.0.2.1, 192.0.2.2, 192.0.2.3" in text
        assert alerts[0]["query"]["name"] in text
        assert alerts[-1]["query"]["name"] not in text
        # Chat: one line for the incident.
        (chat,) = slack.bodies()
        lines = [line for line in chat["text"].splitlines() if line.startswith("- ")]
        assert len(lines) == 1
        assert "300 alerts, 300 names such as" in lines[0]
        # Generic webhook: raw alerts, 20 a POST, at most 5 POSTs a run, the rest pending.
        posts = receiver.bodies()
        assert len(posts) == 5
        assert {p["remaining"] for p in posts} == {200}
        assert report.capped == {"webhook": 200}
        for run in (1, 2):
            later = deliver(cfg, NOW + timedelta(minutes=5 * run))
            assert later.sent == {"webhook": 100}
        assert [p["remaining"] for p in receiver.bodies()[5:]] == [100] * 5 + [0] * 5
        delivered = [a["id"] for p in receiver.bodies() for a in p["alerts"]]
        assert sorted(delivered) == sorted(a["id"] for a in alerts)
        assert deliver(cfg, NOW + timedelta(minutes=15)).sent == {}
        assert sighting_requests(misp) == 1
    finally:
        slack.stop()


def test_chat_messages_are_capped_per_run_and_say_so(tmp_path: Path, receiver: Receiver) -> None:
    cfg = config(
        tmp_path, {"max_messages_per_run": 2, "mattermost": {"webhook_url": receiver.url()}}
    )
    append_alerts(
        alerts_file(cfg),
        *[alert_line(sensor=f"inst-{s}", name=f"{s}.bad.example") for s in "abcd"],
        alert_line(sensor="inst-d", name="d2.bad.example"),
    )
    first = deliver(cfg, NOW)
    assert first.sent == {"mattermost": 2}
    assert first.capped == {"mattermost": 3}
    texts = [b["text"] for b in receiver.bodies()]
    assert len(texts) == 2
    assert all(
        "Capped at 2 message(s) a run: 3 more alert(s) wait for the next run" in t for t in texts
    )
    with Ledger(ledger_dir(cfg)) as ledger:
        assert {a.sensor for a in ledger.pending("mattermost")} == {"inst-c", "inst-d"}
    second = deliver(cfg, NOW + timedelta(minutes=5))
    assert second.sent == {"mattermost": 3}
    assert second.capped == {}
    assert all("Capped" not in b["text"] for b in receiver.bodies()[2:])


def test_sightings_are_capped_per_run(tmp_path: Path, misp: MispStandin) -> None:
    cfg = config(tmp_path, {"max_sightings_per_run": 2}, misp)
    append_alerts(
        alerts_file(cfg),
        *[
            alert_line(name=f"d{i}.example", client=f"192.0.2.{c}")
            for i in range(2, 7)
            for c in (1, 2)
        ],
    )
    counts = []
    for run in range(4):
        report = deliver(cfg, NOW + timedelta(minutes=5 * run))
        assert report.failed == {}
        counts.append((sighting_requests(misp), report.sent.get("sightings:misp1", 0)))
    assert counts == [(2, 4), (4, 8 - 4), (5, 2), (5, 0)]
    assert sorted(s["value"] for s in misp.sightings) == [f"d{i}.example" for i in range(2, 7)]
