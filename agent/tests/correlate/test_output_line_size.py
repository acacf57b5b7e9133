# SPDX-License-Identifier: Apache-2.0
"""A well-documented indicator: correlate bounds its alert line, alert delivers it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pdnssoc_agent.alertfile import alert_object, decode_alert, encode_alert
from pdnssoc_agent.alerts import deliver
from pdnssoc_agent.config import parse_config
from pdnssoc_agent.correlate import run_correlate
from pdnssoc_agent.correlate.output import LINE_BUDGET, MAX_MISP
from pdnssoc_agent.iocs.index import (
    FORMAT,
    VERSION,
    IndexHeader,
    IndicatorEntry,
    IocContext,
    write_index,
)
from tests.support.alerts import Receiver, SmtpServer
from tests.support.correlate import dns_line, read_alerts, write_lists

NOW = datetime(2025, 11, 27, 12, 0, tzinfo=UTC)


def contexts(n: int) -> list[IocContext]:
    return [
        IocContext(
            server="misp-a",
            event_id=str(100 + i),
            event_uuid=f"5f0c1a2b-0000-4000-8000-{i:012d}",
            event_info=f"Campaign report {i}: " + "details " * 300,
            event_url=f"https://misp-a.example/events/view/{100 + i}",
            org="CERT-X",
            tags=("tlp:green", *[f"misp-galaxy:threat-actor=actor-{i}-{k}" for k in range(40)]),
            attribute_uuid=f"6a0c1a2b-0000-4000-8000-{i:012d}",
            attribute_type="domain",
            category="Network activity",
            comment="observed in a phishing wave " + "x" * 3000,
            timestamp=1764000000 + i,
        )
        for i in range(n)
    ]


def test_an_indicator_of_70_attributes_gives_a_bounded_line_that_is_delivered(
    tmp_path: Path, smtp_plain: SmtpServer, receiver: Receiver
) -> None:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "alerting": {
                "email": {
                    "from": "pdnssoc@csirt.example",
                    "summary_to": "soc@csirt.example",
                    "server": "127.0.0.1",
                    "port": smtp_plain.port,
                },
                "webhook": {"webhook_url": receiver.url()},
            },
        }
    )
    write_lists(cfg, ["evil.example.com"], [])
    write_index(
        cfg.correlation.ioc_index_file,
        IndexHeader(FORMAT, VERSION, 1764000000, {"misp-a": "https://misp-a.example"}),
        [IndicatorEntry("evil.example.com", "domain", 1764100000, 1764000000, contexts(70))],
    )
    cfg.correlation.queries_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.correlation.queries_file.write_bytes(
        dns_line("www.evil.example.com", [("www.evil.example.com", "A", "203.0.113.9")] * 40)
    )
    run_correlate(cfg)

    (line,) = (cfg.correlation.output_dir / "matches.json").read_bytes().splitlines()
    assert len(line) <= LINE_BUDGET < cfg.correlation.max_line_bytes
    # the reader's Alert is the writer's: decoding and encoding again gives the line
    assert encode_alert(decode_alert(line)) == line
    assert alert_object(decode_alert(line)) == json.loads(line)  # what the generic webhook sends
    (alert,) = read_alerts(cfg)  # valid against the alert schema
    assert alert["match"]["indicator"] == "evil.example.com"
    assert alert["query"]["name"] == "www.evil.example.com"
    listed = len(alert["misp"])
    assert 1 <= listed <= MAX_MISP
    assert alert["misp_more"] == 70 - listed
    assert alert["answers_more"] == 8
    assert all(m["tags"][0] == "tlp:green" for m in alert["misp"])

    report = deliver(cfg, NOW)
    assert report.failed == {}
    assert report.bad == 0
    assert report.sent == {"email-summary": 1, "webhook": 1}
    (body,) = receiver.bodies()
    assert body["alerts"][0]["misp_more"] == 70 - listed
    (mail,) = smtp_plain.messages
    text = mail.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    # The reader sees how much context there is beyond what is listed.
    assert f"and {70 - 5} more record(s) with this indicator" in content
    assert "www.evil.example.com" in content
