# SPDX-License-Identifier: Apache-2.0
"""Packaged templates, operator overrides and the examples in templates/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pdnssoc_agent.alertfile import parse_alert
from pdnssoc_agent.alerts import alerts_file, deliver
from pdnssoc_agent.alerts.render import Templates, common_context
from pdnssoc_agent.config import parse_config
from tests.support.alerts import alert_line, append_alerts, start_receiver, start_smtp
from tests.support.paths import REPO_ROOT

REPO_TEMPLATES = REPO_ROOT / "templates"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PACKAGED = [
    ("html", "email_institution.html.j2"),
    ("text", "email_institution.txt.j2"),
    ("html", "email_summary.html.j2"),
    ("text", "email_summary.txt.j2"),
    ("slack", "chat.j2"),
    ("mattermost", "chat.j2"),
    ("teams", "chat.j2"),
]


def context() -> dict[str, object]:
    alerts = [parse_alert(alert_line(name=f"h{i}.bad.example")) for i in range(3)]
    ctx = common_context(alerts, 2, NOW)
    ctx.update(sensor="inst-a", unmapped=["inst-z"])
    return ctx


@pytest.mark.parametrize(("flavor", "name"), PACKAGED)
def test_packaged_templates_render(flavor: str, name: str) -> None:
    text = Templates(None).render(flavor, name, **context())
    assert "h0.bad.example" in text.replace("\\", "")
    assert "1 more" in text


def test_examples_render() -> None:
    examples = sorted((REPO_TEMPLATES / "examples").glob("*.j2"))
    assert examples, f"no examples in {REPO_TEMPLATES}/examples"
    for path in examples:
        flavor = "html" if path.name.endswith(".html.j2") else "text"
        text = Templates(None).render(flavor, path.name, path, **context())
        assert "h0.bad.example" in text


def test_templates_dir_overrides_file_by_file(tmp_path: Path) -> None:
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "chat.j2").write_text("CUSTOM {{ total }} from {{ sensor }}")
    (tdir / "email_institution.txt.j2").write_text(
        (REPO_TEMPLATES / "examples" / "email_institution.txt.j2").read_text()
    )
    rec = start_receiver()
    smtp = start_smtp("none")
    try:
        cfg = parse_config(
            {
                "data_dir": str(tmp_path),
                "alerting": {
                    "templates_dir": str(tdir),
                    "mattermost": {"webhook_url": rec.url()},
                    "email": {
                        "from": "p@csirt.example",
                        "server": "127.0.0.1",
                        "port": smtp.port,
                        "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                    },
                },
            }
        )
        append_alerts(alerts_file(cfg), alert_line())
        report = deliver(cfg, NOW)
        assert report.ok, report.failed
        assert rec.bodies()[0]["text"] == "CUSTOM 1 from inst\\-a"
        (msg,) = smtp.messages
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert plain is not None
        assert html is not None
        assert "Estimado equipo" in plain.get_content()
        assert "pDNSSOC saw 1 DNS resolution" in html.get_content()  # packaged default
    finally:
        rec.stop()
        smtp.stop()


def test_missing_override_file_fails_the_channel(tmp_path: Path) -> None:
    smtp = start_smtp("none")
    try:
        cfg = parse_config(
            {
                "data_dir": str(tmp_path),
                "alerting": {
                    "email": {
                        "from": "p@csirt.example",
                        "summary_to": "soc@csirt.example",
                        "server": "127.0.0.1",
                        "port": smtp.port,
                        "summary_template": str(tmp_path / "missing.html.j2"),
                    }
                },
            }
        )
        append_alerts(alerts_file(cfg), alert_line())
        report = deliver(cfg, NOW)
        assert "missing.html.j2" in report.failed["email-summary"]
        assert smtp.messages == []
    finally:
        smtp.stop()
