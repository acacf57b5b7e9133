# SPDX-License-Identifier: Apache-2.0
"""Plain lists (one value a line, a CSV column, a hosts file) over loopback HTTP.

Each test runs fetch-iocs itself, so the lists go through the same guards as
MISP's attributes; the samples in tests/assets/sources follow the published
layouts of URLhaus's hostfile and Spamhaus DROP.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from tests.support.iocs import domains, index, ips
from tests.support.sources import FileServer, serving

ASSETS = Path(__file__).parent.parent / "assets" / "sources"
KEY = "list-key-0123456789abcdefghij"


@pytest.fixture
def web() -> Iterator[FileServer]:
    with serving() as server:
        yield server


def config(tmp: Path, *sources: dict[str, Any], **fetch: Any) -> Config:
    return parse_config(
        {
            "data_dir": str(tmp),
            "sources": list(sources),
            "fetch_iocs": {"reload_collector": False} | fetch,
        }
    )


def fetch(cfg: Config) -> Any:
    return fetch_iocs(cfg, sources_from_config(cfg), FetchOptions(reload=False))


def test_one_value_a_line_with_comments_reaches_lists_and_index(
    web: FileServer, tmp_path: Path
) -> None:
    web.put(
        "/bad.txt",
        "# bad names\n\nEvil.Example.COM.\nphish.example.net # seen in mail\n; old\ncom\n",
    )
    cfg = config(
        tmp_path,
        {
            "type": "list",
            "name": "bad-names",
            "url": web.url("/bad.txt"),
            "indicator_type": "domain",
            "tlp": "green",
        },
    )
    result = fetch(cfg)
    assert result.written and not result.servers[0].error
    assert domains(cfg) == ["evil.example.com", "phish.example.net"]
    assert result.servers[0].rejected == {"public_suffix": 1}  # "com" would match everyone
    ctx = index(cfg)["phish.example.net"].contexts[0]
    assert (ctx.server, ctx.event_url, ctx.comment, ctx.tlp) == (
        "bad-names",
        web.url("/bad.txt"),
        "line 4",
        "tlp:green",
    )


def test_hosts_file_sample_gives_every_name_and_no_address(web: FileServer, tmp_path: Path) -> None:
    web.put("/hostfile/", (ASSETS / "hostfile.txt").read_bytes())
    cfg = config(
        tmp_path,
        {
            "type": "list",
            "name": "urlhaus",
            "url": web.url("/hostfile/"),
            "format": "hosts",
            "indicator_type": "domain",
        },
    )
    result = fetch(cfg)
    assert result.servers[0].rejected == {}  # localhost & co. are skipped, not rejected
    assert domains(cfg) == [
        "c2.example.com",
        "malware-drop.example.net",
        "other-c2.example.com",
        "payload.test-cdn.example.org",
    ]
    assert not {"127.0.0.1", "0.0.0.0"} & set(ips(cfg))  # noqa: S104 (text, not a bind)


def test_network_list_sample_with_trailing_ids(web: FileServer, tmp_path: Path) -> None:
    web.put("/drop.txt", (ASSETS / "drop.txt").read_bytes())
    cfg = config(
        tmp_path,
        {"type": "list", "url": web.url("/drop.txt"), "indicator_type": "ip-dst"},
    )
    fetch(cfg)
    assert ips(cfg) == ["198.51.100.0/24", "203.0.113.0/25"]


def test_csv_column_after_header_with_quoted_fields(web: FileServer, tmp_path: Path) -> None:
    web.put(
        "/iocs.csv",
        "# exported\nid;first_seen;host\n"
        '1;2026-11-01;"a.example.org"\n2;2026-11-02;b.example.org\n',
    )
    cfg = config(
        tmp_path,
        {
            "type": "list",
            "url": web.url("/iocs.csv"),
            "format": "csv",
            "delimiter": ";",
            "column": 3,
            "skip_lines": 2,
            "indicator_type": "hostname",
        },
    )
    fetch(cfg)
    assert domains(cfg) == ["a.example.org", "b.example.org"]


def test_a_short_csv_row_fails_the_source_naming_the_line(web: FileServer, tmp_path: Path) -> None:
    web.put("/iocs.csv", "a,b,x.example.org\na,b\n")
    cfg = config(
        tmp_path,
        {
            "type": "list",
            "name": "csv",
            "url": web.url("/iocs.csv"),
            "format": "csv",
            "column": 3,
            "indicator_type": "domain",
        },
    )
    result = fetch(cfg)
    assert result.servers[0].error == "line 2 has 2 column(s), the value is in column 3"
    assert not result.written


def test_an_html_page_or_empty_answer_keeps_the_last_good_values(
    web: FileServer, tmp_path: Path
) -> None:
    web.put("/bad.txt", "evil.example.com\n")
    web.put("/other.txt", "other.example.org\n")
    cfg = config(
        tmp_path,
        {"type": "list", "name": "one", "url": web.url("/bad.txt"), "indicator_type": "domain"},
        {"type": "list", "name": "two", "url": web.url("/other.txt"), "indicator_type": "domain"},
    )
    fetch(cfg)
    assert domains(cfg) == ["evil.example.com", "other.example.org"]
    for body in ("<!DOCTYPE html>\n<html><body>Please log in</body></html>\n", "", " \n"):
        web.put("/bad.txt", body)
        web.put("/other.txt", "other.example.org\nnew.example.org\n")
        result = fetch(cfg)
        assert result.servers[0].error in ("an HTML page, not a list", "empty answer: no list")
        assert result.servers[0].carried == 1
        assert domains(cfg) == ["evil.example.com", "new.example.org", "other.example.org"]
        web.put("/other.txt", "other.example.org\n")


def test_the_key_travels_in_its_header_and_never_into_messages(
    web: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    web.put("/bad.txt", f"denied for key {KEY}", status=403)
    cfg = config(
        tmp_path,
        {
            "type": "list",
            "name": "private",
            "url": web.url("/bad.txt"),
            "indicator_type": "domain",
            "api_key_file": str(key_file),
            "auth_header": "X-Api-Key",
        },
    )
    with caplog.at_level(logging.DEBUG):
        result = fetch(cfg)
    assert web.seen[0].headers["X-Api-Key"] == KEY
    error = result.servers[0].error or ""
    assert error.startswith(f"{web.url('/bad.txt')}: HTTP 403: denied for key ")
    assert KEY not in error and KEY not in caplog.text


def test_types_not_wanted_are_left_out_and_answers_are_bounded(
    web: FileServer, tmp_path: Path
) -> None:
    web.put("/ips.txt", "192.0.2.1\n")
    web.put("/big.txt", "x.example.org\n" * 200)
    cfg = config(
        tmp_path,
        {"type": "list", "name": "ips", "url": web.url("/ips.txt"), "indicator_type": "ip-src"},
        {
            "type": "list",
            "name": "big",
            "url": web.url("/big.txt"),
            "indicator_type": "domain",
            "max_bytes": 1000,
        },
        types=["domain", "ip-dst"],
    )
    result = fetch(cfg)
    assert (result.servers[0].seen, result.servers[0].error) == (0, None)
    assert result.servers[1].error == (
        f"{web.url('/big.txt')}: answer larger than max_bytes (1000): 2800 bytes announced"
    )
    web.get = lambda seen: (200, b"x.example.org\n" * 200, {"X-Test-No-Length": "1"})
    result = fetch(cfg)
    assert result.servers[1].error == (
        f"{web.url('/big.txt')}: answer larger than max_bytes (1000): more than 1000 bytes read"
    )
