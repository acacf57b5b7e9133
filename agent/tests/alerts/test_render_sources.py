# SPDX-License-Identifier: Apache-2.0
"""Alerts name the source of each indicator: fetched, correlated and e-mailed.

A ThreatFox source and a plain list are served on loopback, fetch-iocs builds
the index from them, correlation matches recorded-format DNS replies, and the
alert step sends the e-mails to the SMTP stand-in. A ThreatFox indicator is
named by its configured source name and kind and linked to its IOC page; a
list indicator is named without a link; neither message says MISP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from pdnssoc_agent.alertfile import parse_alert
from pdnssoc_agent.alerts import deliver
from pdnssoc_agent.alerts.render import Templates, common_context
from pdnssoc_agent.config import parse_config
from pdnssoc_agent.correlate import run_correlate
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from tests.support.alerts import SmtpServer, alert_line
from tests.support.correlate import dns_line
from tests.support.sources import serving

ASSETS = Path(__file__).parent.parent / "assets" / "sources"
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    content = part.get_content().replace("\r\n", "\n")
    assert isinstance(content, str)
    return content


def test_threatfox_and_list_indicators_name_their_source(
    tmp_path: Path, smtp_plain: SmtpServer
) -> None:
    with serving() as api:
        api.put("/api/v1/", (ASSETS / "threatfox-get_iocs.json").read_bytes())
        api.post = lambda seen: api.files["/api/v1/"]
        api.put("/block.txt", "listed.example.org\n")
        key = tmp_path / "tf.key"
        key.write_text("threatfox-key\n")
        key.chmod(0o600)
        cfg = parse_config(
            {
                "data_dir": str(tmp_path / "data"),
                "sources": [
                    {
                        "type": "threatfox",
                        "name": "abusech",
                        "url": api.url("/api/v1/"),
                        "api_key_file": str(key),
                        "tlp": "clear",
                    },
                    {
                        "type": "list",
                        "name": "blocklist",
                        "url": api.url("/block.txt"),
                        "indicator_type": "domain",
                    },
                ],
                "fetch_iocs": {"reload_collector": False},
                "correlation": {"live_input": "matches"},
                "alerting": {
                    "email": {
                        "from": "pdnssoc@csirt.example",
                        "summary_to": "soc@csirt.example",
                        "server": "127.0.0.1",
                        "port": smtp_plain.port,
                        "timeout": 5,
                        "mappings": [{"client_id": "sensor-t", "contact": "sec@inst.example"}],
                    }
                },
            }
        )
        result = fetch_iocs(
            cfg, sources_from_config(cfg), FetchOptions(reload=False, now=NOW.timestamp())
        )
        assert [s.error for s in result.servers] == [None, None]

    cfg.correlation.input_dir.mkdir(parents=True)
    (cfg.correlation.input_dir / "matches_domains.json").write_bytes(
        dns_line("c2-panel.example.com", [("c2-panel.example.com", "A", "203.0.113.5")])
        + dns_line("listed.example.org", [("listed.example.org", "A", "203.0.113.6")])
    )
    run_correlate(cfg)
    report = deliver(cfg, NOW)
    assert report.ok, report.failed

    (mail,) = smtp_plain.to("sec@inst.example")
    text, html = _body(mail, "plain"), _body(mail, "html")
    assert "abusech (ThreatFox) IOC 1200001: ExampleRAT" in text
    assert "[TLP:CLEAR]" in text
    assert api.url("/ioc/1200001/") in text
    assert f'href="{api.url("/ioc/1200001/")}"' in html
    assert "abusech (ThreatFox) IOC 1200001</a>" in html
    assert "source:    blocklist (list) [TLP:AMBER (no TLP tag)]\n" in text
    assert api.url("/block.txt") not in text + html  # a list has no page to link to
    assert "The indicators come\nfrom abusech (ThreatFox), blocklist (list);" in text
    for body in (text, html, _body(smtp_plain.to("soc@csirt.example")[0], "plain")):
        assert "MISP" not in body


def test_chat_names_the_source_kind_and_older_lines_read_as_misp() -> None:
    older = parse_alert(alert_line(misp_server="circl"))  # before other sources: no source_type
    line = alert_line(name="other.example.net")
    line["misp"][0] |= {"server": "urlhaus", "source_type": "taxii", "event_id": "indicator--1"}
    taxii = parse_alert(line)
    ctx = common_context([older, taxii], 5, NOW)
    text = Templates(None).render("slack", "chat.j2", sensor="inst-a", **ctx)
    assert "circl (MISP) event 42>" in text
    assert "urlhaus (TAXII) indicator indicator--1>" in text
    assert ctx["source_names"] == ["circl (MISP)", "urlhaus (TAXII)"]
