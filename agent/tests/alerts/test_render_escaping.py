# SPDX-License-Identifier: Apache-2.0
"""Values from DNS data and MISP arrive as inert text on every channel."""

from __future__ import annotations

import html as htmllib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.alerts import alerts_file, deliver
from pdnssoc_agent.alerts.render import (
    ZWSP,
    escape_mattermost,
    escape_slack,
    escape_teams,
    safe_url,
)
from pdnssoc_agent.config import parse_config
from tests.support.alerts import SmtpServer, alert_line, append_alerts, start_receiver, start_smtp

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

EVIL_NAME = '<img src=x onerror="alert(1)">.<!channel>.@here.evil.example'
EVIL_COMMENT = "<script>steal()</script> [click me](https://phish.example/) <@U024BE7LH> @all"
EVIL_INFO = "Event <b>bold</b> & <!here|here> *boom*"
EVIL_SENSOR = "inst-a\r\nBcc: victim@example.org"
EVIL_URL = "javascript:alert(1)"


def evil_alerts() -> list[dict[str, Any]]:
    return [
        alert_line(
            sensor="inst-a",
            name=EVIL_NAME,
            comment=EVIL_COMMENT,
            event_info=EVIL_INFO,
            event_url=EVIL_URL,
        ),
        alert_line(sensor=EVIL_SENSOR, name="x.evil.example", comment=EVIL_COMMENT),
    ]


def test_unit_escapes() -> None:
    assert escape_slack("<!channel> & @here") == f"&lt;!channel&gt; &amp; @{ZWSP}here"
    assert escape_mattermost("[a](http://x) <!all> @all") == (
        f"\\[a\\]\\(http://x\\) &lt;\\!all&gt; @{ZWSP}all"
    )
    assert escape_teams("**x** <at>me</at>") == "\\*\\*x\\*\\* &lt;at&gt;me&lt;/at&gt;"
    assert escape_slack("a\nb\x1b[31m") == "a b[31m"
    assert safe_url("https://misp.example.org/events/view/1") is not None
    assert safe_url(EVIL_URL) is None
    assert safe_url("https://x.example/a|<!channel>") is None


def test_email_html_and_text_are_inert(tmp_path: Path) -> None:
    smtp: SmtpServer = start_smtp("none")
    try:
        cfg = parse_config(
            {
                "data_dir": str(tmp_path),
                "alerting": {
                    "email": {
                        "from": "pdnssoc@csirt.example",
                        "summary_to": "soc@csirt.example",
                        "server": "127.0.0.1",
                        "port": smtp.port,
                        "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                    }
                },
            }
        )
        append_alerts(alerts_file(cfg), *evil_alerts())
        report = deliver(cfg, NOW)
        assert report.ok, report.failed
        # No header injection: each message went to its recipients only.
        assert all("victim@example.org" not in rcpt for _f, rcpt in smtp.envelopes)
        for msg in smtp.messages:
            assert "victim" not in str(msg.get("Bcc", ""))
            html_part = msg.get_body(("html",))
            assert html_part is not None
            body = html_part.get_content()
            assert "<script>" not in body
            assert "<img" not in body
            assert "<b>bold</b>" not in body
            assert 'href="javascript' not in body
            assert "&lt;script&gt;" in body
            # What the reader sees is the original text.
            assert htmllib.escape(EVIL_NAME, quote=False) in body.replace("&#34;", '"')
        summary = smtp.to("soc@csirt.example")[0].get_body(("plain",))
        assert summary is not None
        text = summary.get_content()
        assert EVIL_NAME in text  # plain text keeps the value, it renders nothing
        assert "\r\nBcc" not in text
    finally:
        smtp.stop()


@pytest.mark.parametrize("kind", ["slack", "mattermost", "teams"])
def test_chat_text_is_inert(tmp_path: Path, kind: str) -> None:
    rec = start_receiver()
    try:
        cfg = parse_config(
            {"data_dir": str(tmp_path), "alerting": {kind: {"webhook_url": rec.url()}}}
        )
        append_alerts(alerts_file(cfg), *evil_alerts())
        report = deliver(cfg, NOW)
        assert report.ok, report.failed
        bodies = rec.bodies()
        assert len(bodies) == 2
        texts = []
        for body in bodies:
            if kind == "teams":
                blocks = body["attachments"][0]["content"]["body"]
                text = "\n".join(b["text"] for b in blocks)
            else:
                text = body["text"]
                assert "link_names" not in body
                assert "parse" not in body
            for dangerous in ("<!channel>", "<!here", "<@U024", "<script>", "<img", "<b>"):
                assert dangerous not in text, dangerous
            for mention in ("@here", "@all", "@channel"):
                assert mention not in text, mention
            assert "javascript:" not in text.replace("\\", "")
            assert "\r" not in text
            if kind != "slack":
                # Markdown links from data are escaped, not rendered.
                assert "[click me](https" not in text
            texts.append(text)
        # The reader still sees the name, as text.
        assert any("&lt;img src=x onerror=" in t for t in texts)
    finally:
        rec.stop()


def test_generic_webhook_keeps_values_as_json_data(tmp_path: Path) -> None:
    rec = start_receiver()
    try:
        cfg = parse_config(
            {"data_dir": str(tmp_path), "alerting": {"webhook": {"webhook_url": rec.url()}}}
        )
        append_alerts(alerts_file(cfg), *evil_alerts())
        deliver(cfg, NOW)
        names = {a["query"]["name"] for b in rec.bodies() for a in b["alerts"]}
        assert EVIL_NAME in names  # exact data, JSON-encoded: the receiver decides
    finally:
        rec.stop()


LINE_BREAKERS = "\x85\u2028\u2029\x1c\x1d\x1e\x0b\x0c\x9b\x80\x9f"
NEL_NAME = "a\x85b\u2028c\u2029d\x9be.evil.example"
NEL_COMMENT = "harmless\x85Injected-Header: forged\u2028line"


def test_c1_controls_and_line_separators_never_break_a_line(tmp_path: Path) -> None:
    smtp: SmtpServer = start_smtp("none")
    receivers = {k: start_receiver() for k in ("slack", "mattermost", "teams", "webhook")}
    try:
        cfg = parse_config(
            {
                "data_dir": str(tmp_path),
                "alerting": {
                    "email": {
                        "from": "pdnssoc@csirt.example",
                        "summary_to": "soc@csirt.example",
                        "server": "127.0.0.1",
                        "port": smtp.port,
                        "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                    },
                    **{k: {"webhook_url": r.url()} for k, r in receivers.items()},
                },
            }
        )
        alert = alert_line(
            name=NEL_NAME, comment=NEL_COMMENT, event_info="Event\x85title", client="192.0.2.1"
        )
        alert["misp"][0]["tags"] = ["tlp:green"]
        alert["misp"][0]["tlp"] = "tlp:green"
        append_alerts(alerts_file(cfg), alert)
        report = deliver(cfg, NOW)
        assert report.ok, report.failed
        assert len(smtp.messages) == 2
        rendered: list[str] = []
        for msg in smtp.messages:
            for subtype in ("plain", "html"):
                part = msg.get_body((subtype,))
                assert part is not None
                rendered.append(part.get_content())
            rendered.append(str(msg["Subject"]))
        for kind in ("slack", "mattermost", "teams"):
            (body,) = receivers[kind].bodies()
            rendered.append(json.dumps(body, ensure_ascii=False))
        for text in rendered:
            assert not any(c in text for c in LINE_BREAKERS), ascii(text[:200])
        plain = [t for t in rendered if "indicator:" in t]
        assert plain
        for text in plain:
            assert "abcde.evil.example" in text
            assert not any(line.startswith("Injected") for line in text.splitlines())
        # The generic webhook carries the exact data as exact JSON.
        (generic,) = receivers["webhook"].bodies()
        assert generic["alerts"][0]["query"]["name"] == NEL_NAME
        assert generic["alerts"][0]["misp"][0]["comment"] == NEL_COMMENT
    finally:
        smtp.stop()
        for r in receivers.values():
            r.stop()
