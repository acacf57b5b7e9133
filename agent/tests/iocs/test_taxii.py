# SPDX-License-Identifier: Apache-2.0
"""TAXII 2.1 collections over loopback HTTP: paging, added_after, STIX patterns, TLP.

The objects served come from tests/assets/sources/taxii-objects.json, an
envelope in TAXII 2.1's format holding STIX 2.1 objects as the specifications
define them (indicators with stix and yara patterns, TLP 1.0 and 2.0 marking
references, a revoked and an expired indicator, an identity). The server below
answers "Get Objects" as TAXII 2.1 says: ``added_after``, ``limit``, ``next``
and ``match[type]``, with ``X-TAXII-Date-Added-First``/``-Last`` headers.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, FetchResult, fetch_iocs
from pdnssoc_agent.iocs.taxii import MEDIA_TYPE, TaxiiSource, pattern_values
from tests.support.iocs import domains, index, ips
from tests.support.sources import FileServer, Seen, serving

SAMPLE = Path(__file__).parent.parent / "assets" / "sources" / "taxii-objects.json"
NOW = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
PASSWORD = "taxii-password-0123456789abcdef"
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"


class Collection:
    """One TAXII 2.1 collection: objects with the time each was added."""

    def __init__(self) -> None:
        self.added: list[tuple[str, dict[str, Any]]] = []
        self.fail_on_page: int | None = None
        for obj in json.loads(SAMPLE.read_text())["objects"]:
            self.add(obj)

    def add(self, obj: dict[str, Any]) -> None:
        self.added.append((f"2026-11-29T00:00:{len(self.added):02d}.000Z", obj))

    def get(self, seen: Seen) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(seen.path)
        if parts.path != f"/taxii2/api1/collections/{COLLECTION}/objects/":
            return 404, b"{}", {}
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        rows = [
            (added, obj)
            for added, obj in self.added
            if added > query.get("added_after", "")
            and obj["type"] == query.get("match[type]", obj["type"])
        ]
        start = int(query.get("next", "0"))
        if self.fail_on_page is not None and start // int(query["limit"]) == self.fail_on_page:
            return 503, b'{"title": "busy"}', {}
        page = rows[start : start + int(query["limit"])]
        more = start + len(page) < len(rows)
        body: dict[str, Any] = {"more": more, "objects": [obj for _, obj in page]}
        if more:
            body["next"] = str(start + len(page))
        headers = {"Content-Type": MEDIA_TYPE}
        if page:
            headers["X-TAXII-Date-Added-First"] = page[0][0]
            headers["X-TAXII-Date-Added-Last"] = page[-1][0]
        return 200, json.dumps(body).encode(), headers


@pytest.fixture
def collection() -> Collection:
    return Collection()


@pytest.fixture
def web(collection: Collection) -> Iterator[FileServer]:
    with serving() as server:
        server.get = collection.get
        yield server


def config(tmp: Path, web: FileServer, **entry: Any) -> Config:
    (tmp / "taxii.pw").write_text(PASSWORD + "\n")
    (tmp / "taxii.pw").chmod(0o600)
    source = {
        "type": "taxii",
        "name": "national-cert",
        "url": web.url("/taxii2/api1/"),
        "collection": COLLECTION,
        "username": "institution",
        "api_key_file": str(tmp / "taxii.pw"),
        "page_size": 2,
    } | entry
    return parse_config(
        {"data_dir": str(tmp), "sources": [source], "fetch_iocs": {"reload_collector": False}}
    )


def fetch(cfg: Config) -> tuple[FetchResult, TaxiiSource]:
    (source,) = sources_from_config(cfg)
    assert isinstance(source, TaxiiSource)
    return fetch_iocs(cfg, [source], FetchOptions(reload=False, now=NOW)), source


def queries(web: FileServer) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(urlsplit(s.path).query).items()} for s in web.seen]


def test_simple_patterns_become_indicators_with_their_tlp_and_link(
    web: FileServer, tmp_path: Path
) -> None:
    cfg = config(tmp_path, web)
    result, source = fetch(cfg)
    assert result.servers[0].error is None
    assert domains(cfg) == ["c2.example.net", "login-portal.example.com"]
    assert ips(cfg) == ["198.51.100.0/24", "2001:db8:5::1"]
    assert source.unused_patterns == 2  # the AND pattern and the YARA rule
    assert source.requests_made == 3  # six indicators, two a page
    first = web.seen[0]
    assert first.headers["Accept"] == MEDIA_TYPE
    expected = base64.b64encode(f"institution:{PASSWORD}".encode()).decode()
    assert first.headers["Authorization"] == f"Basic {expected}"
    assert queries(web)[0] == {
        "match[type]": "indicator",
        "limit": "2",
        "added_after": "2026-10-31T00:00:00.000Z",  # the 30-day age limit
    }
    ctx = index(cfg)["login-portal.example.com"].contexts[0]
    assert (ctx.server, ctx.event_info, ctx.tlp) == (
        "national-cert",
        "Phishing kit host",
        "tlp:amber",
    )
    assert set(ctx.tags) == {"phishing", "tlp:amber"}
    assert ctx.first_seen == "2026-11-28T10:00:00Z"  # valid_from
    assert ctx.event_url == web.url(
        f"/taxii2/api1/collections/{COLLECTION}/objects/"
        "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f/"
    )
    v6 = index(cfg)["2001:db8:5::1"].contexts[0]
    assert v6.tlp == "tlp:amber" and v6.timestamp == int(
        datetime(2026, 11, 29, 9, 30, tzinfo=UTC).timestamp()
    )


def test_later_runs_ask_only_for_what_was_added_since(
    web: FileServer, collection: Collection, tmp_path: Path
) -> None:
    cfg = config(tmp_path, web)
    fetch(cfg)
    last = collection.added[-1][0]
    web.seen.clear()
    _, source = fetch(cfg)
    assert queries(web) == [{"match[type]": "indicator", "limit": "2", "added_after": last}]
    assert domains(cfg) == ["c2.example.net", "login-portal.example.com"]

    newer = copy.deepcopy(collection.added[1][1])  # the phishing indicator, moved
    newer["modified"] = "2026-11-29T12:00:00.000Z"
    newer["pattern"] = "[domain-name:value = 'login-portal.example.org']"
    revoked = copy.deepcopy(collection.added[2][1])  # the C2 indicator, withdrawn
    revoked["modified"] = "2026-11-29T12:00:00.000Z"
    revoked["revoked"] = True
    collection.add(newer)
    collection.add(revoked)
    collection.add(
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
            "created": "2026-11-29T13:00:00.000Z",
            "modified": "2026-11-29T13:00:00.000Z",
            "pattern": "[domain-name:value = 'new.example.com']",
            "pattern_type": "stix",
            "valid_from": "2026-11-29T13:00:00Z",
        }
    )
    web.seen.clear()
    _, source = fetch(cfg)
    assert source.requests_made == 2 and queries(web)[0]["added_after"] == last
    assert domains(cfg) == ["login-portal.example.org", "new.example.com"]
    assert not {"198.51.100.0/24", "2001:db8:5::1"} & set(ips(cfg))  # revoked


def test_a_run_that_fails_part_way_keeps_values_and_asks_again_from_the_same_point(
    web: FileServer, collection: Collection, tmp_path: Path
) -> None:
    cfg = config(tmp_path, web)
    fetch(cfg)
    last = collection.added[-1][0]
    for n in range(3):
        collection.add(
            {
                "type": "indicator",
                "id": f"indicator--00000000-0000-4000-8000-00000000000{n}",
                "modified": "2026-11-29T14:00:00.000Z",
                "pattern": f"[domain-name:value = 'n{n}.example.com']",
                "pattern_type": "stix",
            }
        )
    collection.fail_on_page = 1
    result, _ = fetch(cfg)
    assert (result.servers[0].error or "").endswith('HTTP 503: {"title": "busy"}')
    assert domains(cfg) == ["c2.example.net", "login-portal.example.com"]
    collection.fail_on_page = None
    web.seen.clear()
    fetch(cfg)
    assert queries(web)[0]["added_after"] == last
    assert "n2.example.com" in domains(cfg)


def test_garbled_envelope_and_endless_paging_fail_the_source(
    web: FileServer, tmp_path: Path
) -> None:
    cfg = config(tmp_path, web)
    web.get = lambda seen: (200, b"<html>proxy error</html>", {})
    result, _ = fetch(cfg)
    assert (result.servers[0].error or "").startswith("not a TAXII 2.1 envelope: ")
    web.get = lambda seen: (200, b'{"more": true, "next": "x", "objects": []}', {})
    result, _ = fetch(cfg)
    assert result.servers[0].error == (
        "the server answers the same 'next' again: it ignores paging"
    )


@pytest.mark.parametrize(
    ("pattern", "values"),
    [
        ("[domain-name:value = 'a.example']", [("domain", "a.example")]),
        (
            "[ipv4-addr:value = '192.0.2.1' OR ipv6-addr:value = '2001:db8::1']",
            [("ip-dst", "192.0.2.1"), ("ip-dst", "2001:db8::1")],
        ),
        (
            "[domain-name:value='a.example'] OR [ domain-name:value = 'b.example' ]",
            [("domain", "a.example"), ("domain", "b.example")],
        ),
        ("[domain-name:value = 'it\\'s.example']", [("domain", "it's.example")]),
        ("[domain-name:value = 'a.example' AND ipv4-addr:value = '192.0.2.1']", None),
        ("[domain-name:value = 'a.example'] FOLLOWEDBY [domain-name:value = 'b']", None),
        ("[domain-name:value = 'a.example'] WITHIN 300 SECONDS", None),
        ("[domain-name:value LIKE '%.example']", None),
        ("[url:value = 'http://a.example/']", None),
        ("[domain-name:resolves_to_refs[*].value = '192.0.2.1']", None),
    ],
)
def test_which_stix_patterns_are_used(pattern: str, values: list[tuple[str, str]] | None) -> None:
    assert pattern_values(pattern) == values


def test_a_longer_age_limit_reads_again_from_the_new_limit(
    web: FileServer, collection: Collection, tmp_path: Path
) -> None:
    fetch(config(tmp_path, web))
    web.seen.clear()
    fetch(config(tmp_path, web, periods={"generic": {"delta": {"days": 60}}}))
    assert queries(web)[0]["added_after"] == "2026-10-01T00:00:00.000Z"
    web.seen.clear()
    fetch(config(tmp_path, web))  # shorter again: what is kept covers it
    assert queries(web)[0]["added_after"] == collection.added[-1][0]
