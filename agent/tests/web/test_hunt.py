# SPDX-License-Identifier: Apache-2.0
"""The hunt form: the history store's answer on the page, newest first, inert HTML."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pdnssoc_agent.config import Config
from pdnssoc_agent.history import HistoryStore
from tests.support.correlate import dns_line
from tests.support.history import add_lines
from tests.support.web import Client, make_config


def _fill(cfg: Config) -> None:
    lines = []
    for hour, sensor in ((8, "inst-a"), (12, "inst-b")):
        kw = {"ts": f"2026-11-27T{hour:02d}:05:00Z", "sensor": sensor, "client": "10.9.0.0"}
        lines += [
            dns_line("login.phish.example", [("login.phish.example", "A", "192.0.2.10")], **kw),
            dns_line("quiet.example.net", [("quiet.example.net", "A", "192.0.2.99")], **kw),
        ]
    with HistoryStore(cfg.history.dir).writer() as w:
        add_lines(w, b"".join(lines))
        w.commit()


def test_the_hunt_form_finds_who_resolved_a_domain(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    _fill(cfg)
    status, _, body = Client(cfg).request("/hunt?values=phish.example")
    table = body[body.index('<table id="hunt">') :]
    assert status == 200 and "2 distinct replies" in body
    assert table.index("inst-b") < table.index("inst-a")  # newest first
    assert "quiet.example.net" not in table
    _, _, body = Client(cfg).request("/hunt?values=phish.example&institution=inst-a")
    assert "1 distinct reply" in body


def test_the_hunt_form_without_values_searches_nothing_and_bad_values_are_a_400(
    tmp_path: Path,
) -> None:
    cfg = make_config(tmp_path)
    status, _, body = Client(cfg).request("/hunt")
    assert status == 200 and '<table id="hunt">' not in body
    status, _, body = Client(cfg).request("/hunt?values=192.0.2.0/99")
    assert status == 400 and "values: not a domain, IP address or network" in body
    status, _, body = Client(cfg).request("/hunt?values=%3Cscript%3E&institution=%3Cb%3E")
    assert "<script>" not in body and 'value="&lt;script&gt;"' in body
    assert 'value="&lt;b&gt;"' in body


def test_no_store_yet_is_said_on_the_page(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    cfg = replace(cfg, history=replace(cfg.history, enabled=False))
    status, _, body = Client(cfg).request("/hunt?values=phish.example")
    assert status == 200 and "no history store at" in body


def test_replies_not_committed_yet_are_found_in_the_query_log(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    cfg.correlation.queries_file.parent.mkdir(parents=True, exist_ok=True)
    line = dns_line("login.phish.example", [("login.phish.example", "A", "192.0.2.10")],
                    ts="2025-11-27T08:05:00Z", sensor="inst-a", client="10.9.0.0")  # fmt: skip
    cfg.correlation.queries_file.write_bytes(line)
    status, _, body = Client(cfg).request("/hunt?values=phish.example")
    assert status == 200 and "no history store at" not in body
    assert "login.phish.example" in body and "inst-a" in body
    assert "skipped part of the query log" not in body
    cfg.correlation.queries_file.write_bytes(line + b"not json\n")
    status, _, body = Client(cfg).request("/hunt?values=phish.example")
    assert status == 200 and "login.phish.example" in body
    assert "skipped part of the query log the store does not hold yet: 1 malformed" in body
