# SPDX-License-Identifier: Apache-2.0
"""fetch-iocs end to end: the real PyMISP against the MISP stand-in over HTTP(S).

Each test builds its own small events; times are relative to now so the age
limits apply as they would in production.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from misp_standin import MispStandin
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.errors import ExitCode, FetchConfigError
from pdnssoc_agent.iocs import lists
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from pdnssoc_agent.iocs.index import read_header
from pdnssoc_agent.reload import Outcome
from tests.support.collector import TOKEN, FakeCollector
from tests.support.iocs import DAY, KEY, KEY2, attr, domains, event, index, ips, lines, snapshot


def server(standin: MispStandin, name: str = "misp1", key: str = KEY, **kw: Any) -> dict[str, Any]:
    return {"domain": standin.url, "name": name, "api_key": key} | kw


def make_config(tmp: Path, servers: list[dict[str, Any]], **fetch: Any) -> Config:
    section: dict[str, Any] = {"reload_collector": False} | fetch
    return parse_config({"data_dir": str(tmp), "misp_servers": servers, "fetch_iocs": section})


@pytest.fixture
def standin() -> Iterator[MispStandin]:
    with MispStandin(api_keys={KEY: "CERT-Example"}, timeout_delay=5) as s:
        yield s


# -- the basics ------------------------------------------------------------------------


def test_fetch_writes_lists_and_index_with_context(standin: MispStandin, tmp_path: Path) -> None:
    a_dom = attr("domain", "Evil.Example.COM.", comment="C2 panel", tags=("apt",))
    a_ip = attr("ip-dst", "192.0.2.10")
    ids = standin.add_event(
        event(
            "Phishing wave",
            [
                a_dom,
                a_ip,
                attr("hostname", "login.evil.example"),
                attr("domain|ip", "drop.evil.example|198.51.100.7"),
                attr("hostname|port", "c2.evil.example|8443"),
                attr("ip-dst|port", "2001:db8::66|443"),
                attr("ip-src", "203.0.113.0/24"),
                attr("domain", "bücher-evil.example"),
            ],
            tags=("tlp:amber",),
            org="CERT-Example",
        )
    )
    cfg = make_config(tmp_path, [server(standin)])
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.OK and result.written
    assert domains(cfg) == [
        "c2.evil.example",
        "drop.evil.example",
        "evil.example.com",
        "login.evil.example",
        "xn--bcher-evil-9db.example",
    ]
    assert ips(cfg) == ["192.0.2.10", "198.51.100.7", "2001:db8::66", "203.0.113.0/24"]
    (report,) = result.servers
    assert (report.seen, report.kept, report.values) == (8, 8, 9)

    header = read_header(cfg.correlation.ioc_index_file)
    assert header.servers == {"misp1": standin.url}
    idx = index(cfg)
    assert set(idx) == set(domains(cfg)) | set(ips(cfg))
    entry = idx["evil.example.com"]
    assert entry.kind == "domain" and entry.added >= int(time.time()) - 60
    assert entry.updated == int(a_dom["timestamp"])
    (ctx,) = entry.contexts
    assert ctx.server == "misp1"
    assert ctx.event_id == ids["id"] and ctx.event_uuid == ids["uuid"]
    assert ctx.event_info == "Phishing wave"
    assert ctx.event_url == f"{standin.url}/events/view/{ids['id']}"
    assert ctx.org == "CERT-Example"
    assert set(ctx.tags) == {"apt", "tlp:amber"} and ctx.tlp == "tlp:amber"
    assert ctx.attribute_uuid == a_dom["uuid"]
    assert (ctx.attribute_type, ctx.category) == ("domain", "Network activity")
    assert ctx.comment == "C2 panel" and ctx.timestamp == int(a_dom["timestamp"])
    assert idx["203.0.113.0/24"].kind == "cidr" and idx["192.0.2.10"].kind == "ip"
    # Attribute tags only where the attribute has them; event tags everywhere.
    assert idx["192.0.2.10"].contexts[0].tags == ("tlp:amber",)


def test_a_misp_attributes_first_seen_is_kept_in_the_index(
    standin: MispStandin, tmp_path: Path
) -> None:
    seen = attr("domain", "first.example.org")
    seen["first_seen"] = "2026-11-02T08:00:00.000000+00:00"
    standin.add_event(event("First seen", [seen, attr("domain", "unsaid.example.org")]))
    cfg = make_config(tmp_path, [server(standin)])
    fetch_iocs(cfg)
    idx = index(cfg)
    assert idx["first.example.org"].contexts[0].first_seen == seen["first_seen"]
    assert idx["unsaid.example.org"].contexts[0].first_seen == ""


def test_search_asks_for_what_the_agent_needs(
    standin: MispStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standin.add_event(event("e", [attr("domain", "a.evil.example")]))
    cfg = make_config(
        tmp_path,
        [server(standin, args={"excludeDecayed": True, "decayingModel": [1]}, debug=True)],
        types=["domain", "ip-dst"],
    )
    caplog.set_level(logging.DEBUG)
    fetch_iocs(cfg)
    # pdnssoc-cli's "debug" would make PyMISP log request headers: it is ignored.
    assert "'debug' is ignored" in caplog.text
    assert logging.getLogger("pymisp").getEffectiveLevel() >= logging.INFO
    assert KEY not in caplog.text
    searches = [body for path, body in standin.requests if path.endswith("restSearch")]
    (body,) = searches
    assert body["type"] == ["domain", "ip-dst"]
    assert body["to_ids"] == 1 and body["enforceWarninglist"] in (1, True)
    assert body["includeEventTags"] in (1, True)
    assert body["page"] == 1 and body["limit"] == 5000
    assert abs(int(body["timestamp"]) - (time.time() - 30 * DAY)) < 120
    assert body["excludeDecayed"] == 1 and body["decayingModel"] == [1]
    assert "returnFormat" in body and body["returnFormat"] == "json"


def test_to_ids_filter(standin: MispStandin, tmp_path: Path) -> None:
    standin.add_event(
        event(
            "ids",
            [
                attr("domain", "ids.evil.example", to_ids=True),
                attr("domain", "noids.evil.example", to_ids=False),
            ],
        )
    )
    cfg = make_config(tmp_path, [server(standin)])
    fetch_iocs(cfg)
    assert domains(cfg) == ["ids.evil.example"]
    cfg_all = make_config(tmp_path / "all", [server(standin)], to_ids_only=False)
    fetch_iocs(cfg_all)
    assert domains(cfg_all) == ["ids.evil.example", "noids.evil.example"]


def test_age_limits_and_tag_periods(standin: MispStandin, tmp_path: Path) -> None:
    standin.add_event(
        event(
            "plain",
            [
                attr("domain", "recent.example", age_days=10),
                attr("domain", "old.example", age_days=40),
            ],
        )
    )
    standin.add_event(
        event(
            "apt event",
            [
                attr("domain", "apt-recent.example", age_days=1),
                attr("domain", "apt-100d.example", age_days=100),
                attr("domain", "apt-200d.example", age_days=200),
            ],
            tags=("apt",),
        )
    )
    standin.add_event(
        event(
            "attribute-tagged",
            [
                attr("domain", "attr-apt-100d.example", age_days=100, tags=("APT",)),
                attr("domain", "untagged-100d.example", age_days=100),
            ],
        )
    )
    standin.add_event(
        event(
            "short period",
            [
                attr("domain", "white-3d.example", age_days=3),
                attr("domain", "white-10d.example", age_days=10),
            ],
            tags=("tlp:white",),
        )
    )
    periods = {
        "generic": {"delta": {"days": 30}},
        "tags": [
            {"names": ["apt", "tlp:amber"], "delta": {"days": 150}},
            {"names": ["tlp:white"], "delta": {"days": 7}},
        ],
    }
    cfg = make_config(tmp_path, [server(standin, periods=periods)])
    result = fetch_iocs(cfg)
    assert domains(cfg) == [
        "apt-100d.example",
        "apt-recent.example",
        "attr-apt-100d.example",
        "recent.example",
        "white-3d.example",
    ]
    (report,) = result.servers
    assert report.too_old == 1  # white-10d: returned by the 30-day query, dropped here
    # The recent apt attribute is returned by both queries but counted and listed once.
    assert len(index(cfg)["apt-recent.example"].contexts) == 1
    searches = [body for path, body in standin.requests if path.endswith("restSearch")]
    assert len(searches) == 2 and searches[1]["tags"] == ["apt", "tlp:amber"]

    # Default: 30 days, no tag periods.
    cfg_default = make_config(tmp_path / "d", [server(standin)])
    fetch_iocs(cfg_default)
    assert domains(cfg_default) == [
        "apt-recent.example",
        "recent.example",
        "white-10d.example",
        "white-3d.example",
    ]


def test_pagination(standin: MispStandin, tmp_path: Path) -> None:
    values = [f"host{i:02d}.evil.example" for i in range(7)]
    standin.add_event(event("many", [attr("domain", v) for v in values]))
    cfg = make_config(tmp_path, [server(standin, page_size=2)])
    result = fetch_iocs(cfg)
    assert domains(cfg) == values
    pages = [body["page"] for path, body in standin.requests if path.endswith("restSearch")]
    assert pages == [1, 2, 3, 4]
    assert all(body["limit"] == 2 for path, body in standin.requests if path.endswith("restSearch"))
    assert result.servers[0].seen == 7
    # Exactly a multiple of the page size: one more (empty) page ends it.
    standin.requests.clear()
    cfg6 = make_config(tmp_path / "six", [server(standin, page_size=7)])
    fetch_iocs(cfg6)
    pages = [body["page"] for path, body in standin.requests if path.endswith("restSearch")]
    assert pages == [1, 2]


def _write_warninglist(folder: Path) -> Path:
    folder.mkdir()
    (folder / "benign.json").write_text(
        json.dumps(
            {
                "name": "Test benign domains",
                "version": 1,
                "description": "test",
                "matching_attributes": ["domain", "hostname", "domain|ip"],
                "type": "hostname",
                "list": ["benign.example"],
            }
        )
    )
    (folder / "nets.json").write_text(
        json.dumps(
            {
                "name": "Test benign networks",
                "version": 1,
                "description": "test",
                "matching_attributes": ["ip-src", "ip-dst", "domain|ip"],
                "type": "cidr",
                "list": ["192.0.2.0/24"],
            }
        )
    )
    return folder


def test_warninglists_enforced_by_default(tmp_path: Path) -> None:
    wl = _write_warninglist(tmp_path / "wl")
    ev = event(
        "wl",
        [
            attr("domain", "www.benign.example"),
            attr("domain", "evil.example"),
            attr("ip-dst", "192.0.2.1"),
            attr("ip-dst", "198.51.100.1"),
        ],
    )
    with MispStandin(api_keys={KEY: "O"}, events=[ev], warninglists_dir=wl) as s:
        cfg = make_config(tmp_path / "on", [server(s)])
        fetch_iocs(cfg)
        assert domains(cfg) == ["evil.example"]
        assert ips(cfg) == ["198.51.100.1"]
        off = make_config(tmp_path / "off", [server(s, args={"enforce_warninglist": False})])
        fetch_iocs(off)
        assert domains(off) == ["evil.example", "www.benign.example"]
        assert ips(off) == ["192.0.2.1", "198.51.100.1"]


def test_short_page_after_warninglist_filtering_is_not_the_last(tmp_path: Path) -> None:
    """MISP cuts a page, then drops warninglisted attributes: a short page is not the end."""
    wl = _write_warninglist(tmp_path / "wl")
    ev = event(
        "wl first",
        [
            attr("domain", "www.benign.example"),
            attr("domain", "a-evil.example"),
            attr("domain", "mail.benign.example"),
            attr("domain", "ftp.benign.example"),
            attr("domain", "b-evil.example"),
            attr("domain", "c-evil.example"),
        ],
    )
    with MispStandin(api_keys={KEY: "O"}, events=[ev], warninglists_dir=wl) as s:
        cfg = make_config(tmp_path / "on", [server(s, page_size=2)])
        fetch_iocs(cfg)
        assert domains(cfg) == ["a-evil.example", "b-evil.example", "c-evil.example"]


def test_real_warninglist_and_fixture_event(shared_dir: Path, tmp_path: Path) -> None:
    """The PyMISP fixture event (2017) with MISP's rfc1918 warninglist."""
    ref = shared_dir / "reference" / "misp"
    wl = tmp_path / "wl"
    wl.mkdir()
    (wl / "rfc1918.json").write_bytes((ref / "warninglists" / "rfc1918.json").read_bytes())
    fixture = json.loads((ref / "pymisp-fixtures" / "existing_event.json").read_text())
    extra = event(
        "private",
        [attr("ip-dst", "10.1.2.3"), attr("ip-dst", "172.20.0.9"), attr("ip-dst", "8.8.4.4")],
    )
    with MispStandin(api_keys={KEY: "O"}, events=[fixture, extra], warninglists_dir=wl) as s:
        cfg = make_config(
            tmp_path / "d", [server(s, periods={"generic": {"delta": {"days": 20000}}})]
        )
        result = fetch_iocs(cfg)
    listed_ips = ips(cfg)
    assert "10.1.2.3" not in listed_ips and "172.20.0.9" not in listed_ips
    assert "8.8.4.4" in listed_ips
    idx = index(cfg)
    sednit = [e for e in idx.values() if any("Sednit" in c.event_info for c in e.contexts)]
    assert len(sednit) >= 20  # the fixture's to_ids domains and IPs
    assert all(c.org for e in sednit for c in e.contexts)
    assert result.exit_code is ExitCode.OK


def test_rejections_counted_and_logged_with_event(
    standin: MispStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [
        ("domain", "com"),
        ("domain", "evil.example\nother.example"),
        ("domain", "a" * 64 + ".example"),
        ("domain", ".".join(["a" * 60] * 5)),
        ("domain", "evil..example"),
        ("ip-dst", "999.1.1.1"),
        ("ip-dst", "10.0.0.0/8"),
        ("ip-dst", "127.0.0.1"),
        ("ip-dst|port", "192.0.2.1"),
    ]
    ids = standin.add_event(
        event("poisoned", [attr("domain", "good.example")] + [attr(t, v) for t, v in bad])
    )
    cfg = make_config(tmp_path, [server(standin)])
    caplog.set_level(logging.INFO)
    result = fetch_iocs(cfg)
    (report,) = result.servers
    assert dict(report.rejected) == {
        "public_suffix": 1,
        "control_character": 1,
        "label_too_long": 1,
        "name_too_long": 1,
        "invalid_domain": 1,
        "invalid_ip": 1,
        "cidr_too_broad": 1,
        "reserved_ip": 1,
        "invalid_composite": 1,
    }
    assert domains(cfg) == ["good.example"]
    assert lines(cfg.correlation.malicious_ips_file) == [lists.IP_PLACEHOLDER]
    rejected_logs = [r.getMessage() for r in caplog.records if ": rejected " in r.getMessage()]
    assert len(rejected_logs) == len(bad)
    assert all(f"from event {ids['id']}," in m for m in rejected_logs)
    assert all("\n" not in m for m in rejected_logs)
    assert "9 values rejected" in caplog.text


def test_never_empty(standin: MispStandin, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, [server(standin)])
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.OK and result.written
    assert lines(cfg.correlation.malicious_domains_file) == [lists.DOMAIN_PLACEHOLDER]
    assert lines(cfg.correlation.malicious_ips_file) == [lists.IP_PLACEHOLDER]
    assert index(cfg) == {}
    # Only IPs: the domain list still has its placeholder, and vice versa.
    standin.add_event(event("ip only", [attr("ip-dst", "198.51.100.9")]))
    fetch_iocs(cfg)
    assert lines(cfg.correlation.malicious_domains_file) == [lists.DOMAIN_PLACEHOLDER]
    assert ips(cfg) == ["198.51.100.9"]


def test_added_carried_over_between_runs(standin: MispStandin, tmp_path: Path) -> None:
    standin.add_event(event("one", [attr("domain", "first.example")]))
    cfg = make_config(tmp_path, [server(standin)])
    t1 = time.time() - 7200
    fetch_iocs(cfg, options=FetchOptions(now=t1))
    standin.add_event(event("two", [attr("domain", "second.example")]))
    t2 = time.time()
    fetch_iocs(cfg, options=FetchOptions(now=t2))
    idx = index(cfg)
    assert idx["first.example"].added == int(t1)
    assert idx["second.example"].added == int(t2)


# -- several servers -------------------------------------------------------------------


@pytest.fixture
def two() -> Iterator[tuple[MispStandin, MispStandin]]:
    with (
        MispStandin(api_keys={KEY: "CERT-A"}, timeout_delay=5) as a,
        MispStandin(api_keys={KEY2: "CERT-B"}, timeout_delay=5) as b,
    ):
        yield a, b


def test_servers_merged(two: tuple[MispStandin, MispStandin], tmp_path: Path) -> None:
    a, b = two
    a.add_event(event("from A", [attr("domain", "shared.example"), attr("domain", "a.example")]))
    b.add_event(
        event("from B", [attr("domain", "SHARED.example."), attr("ip-dst", "198.51.100.2")])
    )
    cfg = make_config(tmp_path, [server(a, "misp-a"), server(b, "misp-b", key=KEY2)])
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.OK
    assert domains(cfg) == ["a.example", "shared.example"]
    assert ips(cfg) == ["198.51.100.2"]
    shared = index(cfg)["shared.example"]
    assert sorted((c.server, c.event_info) for c in shared.contexts) == [
        ("misp-a", "from A"),
        ("misp-b", "from B"),
    ]
    assert read_header(cfg.correlation.ioc_index_file).servers == {
        "misp-a": a.url,
        "misp-b": b.url,
    }


def test_failing_server_keeps_its_previous_indicators(
    two: tuple[MispStandin, MispStandin], tmp_path: Path
) -> None:
    a, b = two
    a.add_event(event("A1", [attr("domain", "a-old.example"), attr("domain", "both.example")]))
    b.add_event(event("B1", [attr("domain", "b-old.example"), attr("domain", "both.example")]))
    cfg = make_config(tmp_path, [server(a, "misp-a"), server(b, "misp-b", key=KEY2)])
    fetch_iocs(cfg)
    added_b = index(cfg)["b-old.example"].added
    # A changes; B fails.
    a.add_event(event("A2", [attr("domain", "a-new.example")]))
    b.add_event(event("B2", [attr("domain", "b-new.example")]))
    b.set_fault("500")
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM
    assert [r.label for r in result.failed] == ["misp-b"]
    assert "HTTP 500" in (result.failed[0].error or "")
    assert result.written
    assert domains(cfg) == ["a-new.example", "a-old.example", "b-old.example", "both.example"]
    idx = index(cfg)
    assert idx["b-old.example"].added == added_b
    assert [c.server for c in idx["b-old.example"].contexts] == ["misp-b"]
    assert sorted(c.server for c in idx["both.example"].contexts) == ["misp-a", "misp-b"]
    assert result.servers[1].carried == 2
    # B back: its new indicator arrives, its carried ones are refreshed.
    b.set_fault(None)
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    assert "b-new.example" in domains(cfg)


def test_only_one_server_selected(two: tuple[MispStandin, MispStandin], tmp_path: Path) -> None:
    a, b = two
    a.add_event(event("A1", [attr("domain", "a.example")]))
    b.add_event(event("B1", [attr("domain", "b.example")]))
    cfg = make_config(tmp_path, [server(a, "misp-a"), server(b, "misp-b", key=KEY2)])
    fetch_iocs(cfg)
    a.add_event(event("A2", [attr("domain", "a2.example")]))
    b.add_event(event("B2", [attr("domain", "b2.example")]))
    b.requests.clear()
    result = fetch_iocs(cfg, sources_from_config(cfg, only=["misp-a"]))
    assert result.exit_code is ExitCode.OK
    assert domains(cfg) == ["a.example", "a2.example", "b.example"]
    assert b.requests == []
    with pytest.raises(FetchConfigError, match="--server nope: no such server"):
        sources_from_config(cfg, only=["nope"])


def test_all_servers_failing_writes_nothing(
    two: tuple[MispStandin, MispStandin], tmp_path: Path
) -> None:
    a, b = two
    a.add_event(event("A1", [attr("domain", "a.example")]))
    cfg = make_config(tmp_path, [server(a, "misp-a"), server(b, "misp-b", key=KEY2)])
    fetch_iocs(cfg)
    before = snapshot(cfg)
    a.set_fault("403")
    b.set_fault("garbage")
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM and not result.written
    assert len(result.failed) == 2
    assert snapshot(cfg) == before


# -- failures keep the last good lists ---------------------------------------------------

FAULTS = [
    ("down", None, "connection closed by the server without an answer"),
    ("403", None, "HTTP 403: Authentication failed"),
    ("500", None, "HTTP 500: An Internal Error Has Occurred."),
    ("timeout", None, "timed out after 1 s"),
    ("garbage", None, "garbled response"),
    ("truncated", None, "response cut short: IncompleteRead("),
    ("403", "restSearch", "HTTP 403: Authentication failed"),
    ("500", "restSearch", "HTTP 500: An Internal Error Has Occurred."),
    ("garbage", "restSearch", "garbled response to restSearch page 1"),
    ("truncated", "restSearch", "response cut short: IncompleteRead("),
    ("down", "restSearch", "connection closed by the server without an answer"),
    ("timeout", "restSearch", "timed out after 1 s"),
]


@pytest.mark.parametrize("case", FAULTS, ids=[f"{f}-{p or 'all'}" for f, p, _ in FAULTS])
def test_failure_keeps_previous_files(
    standin: MispStandin,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, str | None, str],
) -> None:
    fault, path, expect = case
    standin.add_event(event("e", [attr("domain", "kept.example"), attr("ip-dst", "192.0.2.77")]))
    cfg = make_config(tmp_path, [server(standin, timeout=1)])
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    before = snapshot(cfg)
    assert set(before) == {"iocs.json", "misp_domains.txt", "misp_ips.txt"}
    standin.add_event(event("new", [attr("domain", "new.example")]))
    standin.set_fault(fault, path=path)
    caplog.set_level(logging.DEBUG)
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM and not result.written
    (failed,) = result.failed
    assert failed.error and expect in failed.error
    assert "\n" not in failed.error
    assert snapshot(cfg) == before  # untouched, and no temp file left
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(m.startswith(f"misp1 ({standin.url}): ") for m in errors)
    assert KEY not in caplog.text


def test_failure_in_the_middle_of_paging(standin: MispStandin, tmp_path: Path) -> None:
    """Pages already read are dropped when a later page fails: no partial list."""
    standin.add_event(event("e", [attr("domain", f"p{i:02d}.example") for i in range(30)]))
    cfg = make_config(tmp_path, [server(standin, page_size=1)])
    fetch_iocs(cfg)
    before = snapshot(cfg)
    standin.add_event(event("more", [attr("domain", "more.example")]))
    standin.requests.clear()
    stop = threading.Event()

    def break_after_first_page() -> None:
        while not stop.is_set():
            if any(path.endswith("restSearch") for path, _ in list(standin.requests)):
                standin.set_fault("500", path="restSearch")
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=break_after_first_page)
    watcher.start()
    try:
        result = fetch_iocs(cfg)
    finally:
        stop.set()
        watcher.join()
    assert result.exit_code is ExitCode.UPSTREAM
    assert 0 < result.servers[0].seen < 31
    assert snapshot(cfg) == before


def test_stopped_server(standin: MispStandin, tmp_path: Path) -> None:
    standin.add_event(event("e", [attr("domain", "kept.example")]))
    cfg = make_config(tmp_path, [server(standin)])
    fetch_iocs(cfg)
    before = snapshot(cfg)
    standin.stop()
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM
    assert "Connection refused" in (result.failed[0].error or "")
    assert snapshot(cfg) == before


def test_first_run_failure_writes_nothing(standin: MispStandin, tmp_path: Path) -> None:
    standin.set_fault("403")
    cfg = make_config(tmp_path, [server(standin)])
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM
    assert not cfg.correlation.malicious_domains_file.exists()


def test_unattributable_old_lists_are_kept(
    two: tuple[MispStandin, MispStandin], tmp_path: Path
) -> None:
    """Lists from pdnssoc-cli (no index): with a server failing, nothing is replaced."""
    a, b = two
    a.add_event(event("A", [attr("domain", "a.example")]))
    cfg = make_config(tmp_path, [server(a, "misp-a"), server(b, "misp-b", key=KEY2)])
    folder = cfg.correlation.malicious_domains_file.parent
    folder.mkdir(parents=True)
    cfg.correlation.malicious_domains_file.write_text("legacy.example\n")
    cfg.correlation.malicious_ips_file.write_text("192.0.2.200\n")
    before = snapshot(cfg)
    b.set_fault("403")
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM and not result.written
    assert snapshot(cfg) == before


def test_bad_previous_index_is_rebuilt(standin: MispStandin, tmp_path: Path) -> None:
    standin.add_event(event("A", [attr("domain", "a.example")]))
    cfg = make_config(tmp_path, [server(standin)])
    cfg.correlation.ioc_index_file.parent.mkdir(parents=True)
    cfg.correlation.ioc_index_file.write_text("not an index\n")
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    assert list(index(cfg)) == ["a.example"]


# -- HTTPS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "misp.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def https(self_signed: tuple[Path, Path]) -> Iterator[MispStandin]:
    ev = event("tls", [attr("domain", "over-tls.example")])
    with MispStandin(api_keys={KEY: "O"}, events=[ev], tls=self_signed) as s:
        assert s.url.startswith("https://")
        yield s


def test_https_with_ca_file(
    https: MispStandin, self_signed: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, [server(https, ca_file=str(self_signed[0]))])
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    assert domains(cfg) == ["over-tls.example"]


def test_https_without_verification(
    https: MispStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path, [server(https, verify_ssl=False)])
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    assert domains(cfg) == ["over-tls.example"]
    assert "TLS certificate verification is disabled" in caplog.text


def test_https_untrusted_certificate_fails(https: MispStandin, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, [server(https, verify_ssl=False)])
    fetch_iocs(cfg)
    before = snapshot(cfg)
    strict = make_config(tmp_path, [server(https)])
    result = fetch_iocs(strict)
    assert result.exit_code is ExitCode.UPSTREAM
    assert "TLS error: certificate verify failed" in (result.failed[0].error or "")
    assert snapshot(cfg) == before


# -- secrets ---------------------------------------------------------------------------


def test_api_key_from_file_and_env(
    standin: MispStandin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    standin.add_event(event("e", [attr("domain", "secret.example")]))
    key_file = tmp_path / "misp.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    base = {"domain": standin.url, "name": "misp1"}
    caplog.set_level(logging.DEBUG)
    cfg = make_config(tmp_path / "f", [base | {"api_key_file": str(key_file)}])
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    monkeypatch.setenv("PDNSSOC_TEST_MISP_KEY", KEY)
    cfg = make_config(tmp_path / "e", [base | {"api_key_env": "PDNSSOC_TEST_MISP_KEY"}])
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    assert domains(cfg) == ["secret.example"]
    monkeypatch.delenv("PDNSSOC_TEST_MISP_KEY")
    with pytest.raises(FetchConfigError, match="PDNSSOC_TEST_MISP_KEY is not set"):
        fetch_iocs(cfg)
    assert KEY not in caplog.text


def test_wrong_key_is_403(standin: MispStandin, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, [server(standin, key="wrong-key-00000000000")])
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM
    assert "HTTP 403" in (result.failed[0].error or "")
    assert "wrong-key" not in (result.failed[0].error or "")


# -- collector reload ------------------------------------------------------------------


def test_collector_reloaded_only_when_lists_change(standin: MispStandin, tmp_path: Path) -> None:
    collector = FakeCollector(tmp_path)
    try:
        standin.add_event(event("e", [attr("domain", "hup.example")]))
        cfg = make_config(
            tmp_path / "data",
            [server(standin)],
            reload_collector=True,
            collector_pid_file=str(collector.pid_file),
            collector_process_match=TOKEN,
        )
        result = fetch_iocs(cfg)
        assert result.reload is not None and result.reload.outcome is Outcome.SIGNALLED
        assert collector.hups(expect=1) == 1
        # Nothing changed: no signal.
        result = fetch_iocs(cfg)
        assert result.written and not result.lists_changed and result.reload is None
        # A change but --no-reload.
        standin.add_event(event("e2", [attr("domain", "hup2.example")]))
        result = fetch_iocs(cfg, options=FetchOptions(reload=False))
        assert result.lists_changed and result.reload is None
        # Another change: signalled.
        standin.add_event(event("e3", [attr("ip-dst", "198.51.100.3")]))
        fetch_iocs(cfg)
        assert collector.hups(expect=2) == 2
    finally:
        collector.stop()
    # Collector gone: the fetch still succeeds, with a warning.
    standin.add_event(event("e4", [attr("ip-dst", "198.51.100.4")]))
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.OK
    assert result.reload is not None and result.reload.outcome is Outcome.NOT_RUNNING


# -- the command line ------------------------------------------------------------------


def _cli(cfg_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PDNSSOC_TEST_KEY": KEY}
    return subprocess.run(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(cfg_path), "fetch-iocs", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_exit_codes(standin: MispStandin, tmp_path: Path) -> None:
    standin.add_event(event("e", [attr("domain", "cli.example")]))
    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "misp_servers:\n"
        f"  - domain: {standin.url}\n"
        "    name: misp1\n"
        "    api_key_env: PDNSSOC_TEST_KEY\n"
        "    timeout: 5\n"
        "fetch_iocs:\n"
        "  reload_collector: false\n"
    )
    ok = _cli(cfg_path)
    assert ok.returncode == 0, ok.stderr
    assert "1 domains, 0 IPs/networks" in ok.stdout
    assert "summary: misp1: 1 attributes seen, 1 kept" in ok.stderr
    assert (tmp_path / "data" / "misp" / "misp_domains.txt").read_text() == "cli.example\n"

    standin.set_fault("403")
    failed = _cli(cfg_path, "--no-reload")
    assert failed.returncode == 4
    assert f"misp1 ({standin.url}) FAILED: HTTP 403" in failed.stdout
    assert KEY not in failed.stdout + failed.stderr

    unknown = _cli(cfg_path, "--server", "other")
    assert unknown.returncode == 3 and "no such server" in unknown.stderr

    cfg_path.write_text(cfg_path.read_text().replace("PDNSSOC_TEST_KEY", "PDNSSOC_UNSET_KEY_VAR"))
    nokey = _cli(cfg_path)
    assert nokey.returncode == 3 and "PDNSSOC_UNSET_KEY_VAR is not set" in nokey.stderr
