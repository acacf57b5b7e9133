# SPDX-License-Identifier: Apache-2.0
"""ThreatFox's JSON API over loopback HTTP, answered with a sample in the API's format.

tests/assets/sources/threatfox-get_iocs.json follows the answer of ThreatFox's
``get_iocs`` query as its API documentation describes it (domain, ip:port, url
and hash IOCs; ``last_seen`` and ``tags`` may be null).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, FetchResult, fetch_iocs
from tests.support.iocs import domains, index, ips
from tests.support.sources import FileServer, Seen, serving

SAMPLE = Path(__file__).parent.parent / "assets" / "sources" / "threatfox-get_iocs.json"
KEY = "threatfox-auth-key-0123456789abcdef"
NOW = datetime(2026, 11, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def api() -> Iterator[FileServer]:
    with serving() as server:
        server.put("/answer", SAMPLE.read_bytes())
        server.post = lambda seen: server.files["/answer"]
        yield server


def config(tmp: Path, api: FileServer, **entry: object) -> Config:
    key_file = tmp / "threatfox.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    source = {
        "type": "threatfox",
        "url": api.url("/api/v1/"),
        "name": "threatfox",
        "api_key_file": str(key_file),
    }
    return parse_config(
        {
            "data_dir": str(tmp),
            "sources": [source | entry],
            "fetch_iocs": {"reload_collector": False},
        }
    )


def fetch(cfg: Config) -> FetchResult:
    return fetch_iocs(cfg, sources_from_config(cfg), FetchOptions(reload=False, now=NOW))


def test_recent_iocs_become_indicators_linked_to_threatfox(api: FileServer, tmp_path: Path) -> None:
    cfg = config(tmp_path, api, days=2, tlp="clear")
    result = fetch(cfg)
    assert result.servers[0].error is None
    (request,) = api.seen
    assert (request.method, request.path, request.headers["Auth-Key"]) == (
        "POST",
        "/api/v1/",
        KEY,
    )
    assert json.loads(request.body) == {"query": "get_iocs", "days": 2}
    assert domains(cfg) == ["c2-panel.example.com"]
    assert ips(cfg) == ["198.51.100.77"]
    assert result.servers[0].seen == 2  # the URL and the hash are not wanted types
    ctx = index(cfg)["198.51.100.77"].contexts[0]
    assert (ctx.server, ctx.event_id, ctx.event_url, ctx.org, ctx.tlp) == (
        "threatfox",
        "1200002",
        api.url("/ioc/1200002/"),
        "ThreatFox (abuse_ch)",
        "tlp:clear",
    )
    assert ctx.event_info.startswith("Cobalt Strike - Indicator that identifies a botnet")
    assert ctx.comment == "first seen 2026-11-28 22:01:44 UTC, confidence 75%"
    assert ctx.first_seen == "2026-11-28T22:01:44+00:00"
    assert ctx.timestamp == int(datetime(2026, 11, 29, 23, 10, tzinfo=UTC).timestamp())
    dom = index(cfg)["c2-panel.example.com"].contexts[0]
    assert dom.tags == ("ExampleRAT", "c2", "tlp:clear")


def test_the_public_api_links_to_the_public_ioc_page() -> None:
    cfg = parse_config({"sources": [{"type": "threatfox", "api_key": "k" * 32}]})
    (source,) = sources_from_config(cfg)
    assert source.event_url("1200002") == "https://threatfox.abuse.ch/ioc/1200002/"


def test_no_result_is_an_empty_source_and_an_error_status_keeps_the_last_values(
    api: FileServer, tmp_path: Path
) -> None:
    cfg = config(tmp_path, api)
    fetch(cfg)
    assert domains(cfg) == ["c2-panel.example.com"]

    def refuse(seen: Seen) -> tuple[int, bytes]:
        return 200, b'{"query_status": "unknown_auth_key"}'

    api.post = refuse
    result = fetch(cfg)
    assert result.servers[0].error == "ThreatFox answered query_status 'unknown_auth_key'"
    assert domains(cfg) == ["c2-panel.example.com"]

    api.post = lambda seen: (200, b'{"query_status": "no_result", "data": "no results"}')
    result = fetch(cfg)
    assert result.servers[0].error is None and result.written
    assert result.domains == 0 and result.ips == 0


def test_a_record_without_a_readable_first_seen_fails_the_source(
    api: FileServer, tmp_path: Path
) -> None:
    answer = json.loads(SAMPLE.read_text())
    answer["data"][1]["first_seen"] = "yesterday"
    api.post = lambda seen: (200, json.dumps(answer).encode())
    result = fetch(config(tmp_path, api))
    assert result.servers[0].error == (
        "IOC 1 (id 1200002): first_seen is not a time like 2024-01-31 12:00:00 UTC"
    )
    api.post = lambda seen: (200, b"<html>rate limited</html>")
    result = fetch(config(tmp_path, api))
    assert (result.servers[0].error or "").startswith("not a ThreatFox answer: ")
