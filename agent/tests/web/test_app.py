# SPDX-License-Identifier: Apache-2.0
"""The web view as a WSGI application: who gets in, what the pages show, and that
nothing from an alert can become markup or a script link."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pdnssoc_agent.alerts import alerts_file
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.sensors.book import SensorBook, SensorSeen
from pdnssoc_agent.sensors.watch import book_path
from pdnssoc_agent.suppress.store import AUDIT_FILE, add_rule, read_rules_file, rules_path
from pdnssoc_agent.web.csrf import Csrf
from tests.support.alerts import alert_line, append_alerts
from tests.support.web import KEY, NOW, Client, make_config

HOSTILE = "<script>alert(1)</script>x.evil.example"


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    append_alerts(
        alerts_file(config),
        alert_line(sensor="inst-a", name="bad.example.com", seen="2026-11-27T09:00:00Z"),
        alert_line(sensor="inst-b", name="c2.example.net", kind="retro"),
        alert_line(
            sensor="inst-a",
            name=HOSTILE,
            event_info='<img src=x onerror="alert(2)">',
            event_url="javascript:alert(3)",
        ),
    )
    return config


@pytest.mark.parametrize("page", ["/alerts", "/sensors", "/indicators", "/suppressions", "/"])
def test_no_identity_is_401_and_an_unlisted_one_403_without_content(cfg: Config, page: str) -> None:
    client = Client(cfg)
    status, headers, body = client.request(page, user=None)
    assert status == 401
    assert "not authenticated" in body and "bad.example.com" not in body
    status, _, body = client.request(page, user="mallory")
    assert status == 403
    assert "bad.example.com" not in body
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_a_refusal_is_logged_with_who_was_refused(
    cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pdnssoc_agent.web")
    Client(cfg).request("/alerts", user="mallory")
    assert "web: GET /alerts refused to mallory (403)" in caplog.text


def test_a_post_without_identity_changes_nothing(cfg: Config) -> None:
    form = {"indicator": "bad.example.com", "reason": "r", "csrf": "1.x"}
    status, _, _ = Client(cfg).request("/suppressions/add", method="POST", form=form, user=None)
    assert status == 401
    assert not rules_path(cfg).exists()


def test_alerts_page_lists_alerts_newest_first_with_misp_links(cfg: Config) -> None:
    status, headers, body = Client(cfg).request("/alerts")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.index("c2.example.net") < body.index("bad.example.com")
    assert '<a href="https://misp.example.org/events/view/42">misp1 event 42</a>' in body
    assert "3 alert(s)" in body


def test_html_in_a_query_name_and_in_misp_fields_is_inert(cfg: Config) -> None:
    _, _, body = Client(cfg).request("/alerts")
    assert "<script>" not in body and "<img" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;x.evil.example" in body
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in body
    assert "javascript:" not in body  # not a link: shown as text without its URL
    assert "<script" not in body.lower()


def test_html_in_a_filter_value_is_inert(cfg: Config) -> None:
    _, _, body = Client(cfg).request("/alerts?indicator=%22%3E%3Cscript%3Ex&since=")
    assert "<script>" not in body and "&#34;&gt;&lt;script&gt;x" in body


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("institution=inst-b", ["c2.example.net"], ["bad.example.com"]),
        ("kind=live", ["bad.example.com"], ["c2.example.net"]),
        ("indicator=BAD.example.com.", ["bad.example.com"], ["c2.example.net"]),
        ("since=2026-11-27T10:00:00Z", ["c2.example.net"], ["bad.example.com"]),
        ("until=2026-11-27T10:00:00Z", ["bad.example.com"], ["c2.example.net"]),
    ],
)
def test_alert_filters(cfg: Config, query: str, shown: list[str], hidden: list[str]) -> None:
    status, _, body = Client(cfg).request("/alerts?" + query)
    table = body[body.index('<table id="alerts">') :]
    assert status == 200
    assert all(s in table for s in shown) and not any(h in table for h in hidden)


def test_a_bad_filter_is_a_400_naming_it(cfg: Config) -> None:
    status, _, body = Client(cfg).request("/alerts?since=yesterday")
    assert status == 400 and "since: expected a date" in body
    status, _, body = Client(cfg).request("/alerts?kind=%3Cb%3E")
    assert status == 400 and "kind: expected live or retro" in body


def test_an_alert_is_shown_once_at_its_newest_revision(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first = alert_line(name="rev.example.org", count=1)
    append_alerts(alerts_file(config), first, {**first, "revision": 2, "count": 7})
    append_alerts(alerts_file(config), {"id": "x"})  # not an alert: skipped
    _, _, body = Client(config).request("/alerts")
    assert "1 alert(s)" in body and "<td>7</td>" in body and "<td>1</td>" not in body
    assert "1 line(s) of the alert file are not alerts" in body


def test_only_the_newest_bytes_are_read_and_the_page_says_so(tmp_path: Path) -> None:
    config = make_config(tmp_path, scan_bytes=65536)
    lines = [alert_line(name=f"n{i}.example.org", client=f"192.0.2.{i % 250}") for i in range(60)]
    append_alerts(alerts_file(config), *lines)
    padding = alert_line(name="old.example.org", comment="x" * 70000)
    text = alerts_file(config).read_text()
    alerts_file(config).write_text(json.dumps(padding) + "\n" + text)
    _, _, body = Client(config).request("/alerts")
    assert "n59.example.org" in body and "old.example.org" not in body
    assert "Only the newest part of the alert file was read" in body


def test_suppressed_alerts_are_marked_with_their_rule(cfg: Config) -> None:
    add_rule(cfg, {"indicator": "c2.example.net", "reason": "r", "author": "a"}, who="a", now=NOW)
    _, _, body = Client(cfg).request("/alerts")
    assert "suppressed by rule 1" in body
    assert "/suppressions?indicator=bad.example.com&amp;institution=inst-a" in body


def _token(body: str, form: str) -> str:
    start = body.index(f'action="/suppressions/{form}"')
    marker = 'name="csrf" value="'
    at = body.index(marker, start) + len(marker)
    return body[at : body.index('"', at)]


def test_suppress_add_from_the_page_is_stored_and_audited_as_the_cli_does(cfg: Config) -> None:
    client = Client(cfg)
    _, _, page = client.request("/suppressions?indicator=bad.example.com&institution=inst-a")
    assert 'value="bad.example.com"' in page
    form = {
        "csrf": _token(page, "add"),
        "indicator": "bad.example.com",
        "institution": "inst-a",
        "reason": "our <sinkhole>",
        "expires": "30d",
    }
    status, headers, _ = client.request("/suppressions/add", method="POST", form=form)
    assert (status, headers["Location"]) == (303, "/suppressions?added=1")
    (rule,) = read_rules_file(rules_path(cfg)).rules
    assert (rule.indicator, rule.institution, rule.author) == ("bad.example.com", "inst-a", "alice")
    entry = json.loads((cfg.correlation.state_dir / AUDIT_FILE).read_text())
    assert (entry["who"], entry["action"], entry["rule"]["id"]) == ("alice (web)", "add", "1")
    _, _, body = client.request("/alerts")
    assert "suppressed by rule 1" in body
    _, _, listing = client.request(headers["Location"])
    assert "rule 1 added" in listing and "our &lt;sinkhole&gt;" in listing
    _, _, spoofed = client.request("/suppressions?added=<b>you+were+hacked</b>")
    assert "hacked" not in spoofed


def test_suppress_remove_from_the_page(cfg: Config) -> None:
    add_rule(cfg, {"sensor": "inst-b", "reason": "r", "author": "a"}, who="a", now=NOW)
    client = Client(cfg)
    _, _, page = client.request("/suppressions")
    form = {"csrf": _token(page, "remove"), "id": "1"}
    status, _, _ = client.request("/suppressions/remove", method="POST", form=form)
    assert status == 303
    assert read_rules_file(rules_path(cfg)).rules == []
    last = (cfg.correlation.state_dir / AUDIT_FILE).read_text().splitlines()[-1]
    assert json.loads(last)["who"] == "alice (web)" and json.loads(last)["action"] == "remove"


@pytest.mark.parametrize(
    "token",
    ["", "1.abc", "forged", "TOKEN_OF_BOB", "TOKEN_FOR_REMOVE", "STALE_TOKEN"],
)
def test_a_form_without_a_good_token_is_refused_and_changes_nothing(
    cfg: Config, token: str
) -> None:
    csrf = Csrf(KEY)
    token = {
        "TOKEN_OF_BOB": csrf.token("bob", "add"),
        "TOKEN_FOR_REMOVE": csrf.token("alice", "remove"),
        "STALE_TOKEN": csrf.token("alice", "add", now=NOW.timestamp() - 9 * 3600),
    }.get(token, token)
    form = {"csrf": token, "indicator": "bad.example.com", "reason": "r"}
    status, _, body = Client(cfg).request("/suppressions/add", method="POST", form=form)
    assert status == 403 and "reload the page" in body
    assert not rules_path(cfg).exists()


def test_a_bad_rule_is_a_400_naming_the_field_and_keeps_the_form(cfg: Config) -> None:
    client = Client(cfg)
    _, _, page = client.request("/suppressions")
    form = {"csrf": _token(page, "add"), "qname_suffix": "com", "reason": "<b>x</b>"}
    status, _, body = client.request("/suppressions/add", method="POST", form=form)
    assert status == 400 and "public suffix" in body
    assert 'value="&lt;b&gt;x&lt;/b&gt;"' in body
    assert not rules_path(cfg).exists()


def test_only_forms_may_be_posted_and_only_to_the_suppression_forms(cfg: Config) -> None:
    client = Client(cfg)
    status, _, _ = client.request("/alerts", method="POST", form={})
    assert status == 405
    status, _, _ = client.request("/alerts", method="DELETE")
    assert status == 405
    status, _, _ = client.request("/nowhere")
    assert status == 404


def test_sensors_page_has_liveness_and_a_daily_volume_chart(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    hour = int(NOW.timestamp()) // 3600 * 3600
    book = SensorBook(
        book_path(config),
        {"inst-<a>": SensorSeen(hour - 86400, hour, {hour - 86400: 40, hour: 10})},
    )
    book.changed = True
    book.save()
    status, _, body = Client(config).request("/sensors")
    assert status == 200
    assert "inst-&lt;a&gt;" in body and "<svg" in body
    assert '<a href="/alerts?institution=inst-%3Ca%3E">' in body
    assert body.count("<rect") == 7
    assert "2026-11-26: 40 replies" in body and "2026-11-27: 10 replies" in body


def test_indicators_page_lists_each_source(tmp_path: Path) -> None:
    config = parse_config(
        {
            "data_dir": str(tmp_path),
            "misp_servers": [{"domain": "https://misp.example.org", "api_key": "k" * 40}],
            "web": {"listen": "127.0.0.1:8443", "auth": "proxy-header", "analysts": ["alice"]},
        }
    )
    status, _, body = Client(config).request("/indicators")
    assert status == 200 and "not fetched yet" in body


def test_head_answers_the_headers_without_the_page(cfg: Config) -> None:
    status, headers, body = Client(cfg).request("/alerts", method="HEAD")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 1000
