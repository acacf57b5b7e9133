# SPDX-License-Identifier: Apache-2.0
"""``sources``: each kind's keys validated, errors naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from pdnssoc_agent.config import ConfigError, parse_config


def problems(*sources: dict[str, Any], **top: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config({"sources": list(sources), **top})
    return [str(p) for p in info.value.problems]


def test_a_list_needs_its_indicator_type() -> None:
    assert problems({"type": "list", "url": "https://lists.example.org/bad.txt"}) == [
        "sources[0].indicator_type: required for type list: domain, hostname, ip-dst or ip-src"
    ]


def test_a_key_of_another_type_is_refused_not_ignored() -> None:
    got = problems(
        {"type": "misp_feed", "url": "https://feeds.example.org/f", "indicator_type": "domain"},
        {"type": "list", "url": "https://l.example.org/x", "indicator_type": "domain", "days": 3},
    )
    assert got == [
        "sources[0].indicator_type: only for type list, not for type misp_feed",
        "sources[1].days: only for type threatfox, not for type list",
    ]


def test_csv_keys_only_for_format_csv_and_hosts_list_names() -> None:
    got = problems(
        {"type": "list", "url": "https://l.example.org/x", "indicator_type": "domain", "column": 2},
        {
            "type": "list",
            "url": "https://l.example.org/h",
            "format": "hosts",
            "indicator_type": "ip-dst",
        },
    )
    assert got == [
        "sources[0].column: only for format csv",
        "sources[1].indicator_type: a hosts file lists names: domain or hostname",
    ]


def test_threatfox_needs_a_key_and_keys_come_from_one_place() -> None:
    assert problems({"type": "threatfox"}) == [
        "sources[0].api_key_file: ThreatFox needs an Auth-Key: "
        "one of api_key_file, api_key_env or api_key"
    ]
    got = problems({"type": "threatfox", "api_key_file": "/k", "api_key_env": "TF_KEY"})
    assert got == ["sources[0].api_key_env: give only one of api_key_file, api_key_env"]


def test_url_must_be_http_and_carry_no_password() -> None:
    got = problems(
        {"type": "misp_feed", "url": "ftp://feeds.example.org/f"},
        {"type": "misp_feed", "url": "https://user:s3cret-pw@feeds.example.org/f"},
        {"type": "misp_feed"},
    )
    assert got[0] == "sources[0].url: expected an http(s) URL, got scheme 'ftp'"
    assert got[1].startswith("sources[1].url: must not carry a user name or password")
    assert "s3cret" not in " ".join(got)
    assert got[2] == "sources[2].url: required key is missing for misp_feed"


def test_unknown_type_and_unknown_key_are_named() -> None:
    got = problems({"type": "stix", "url": "https://x.example.org/"}, {"type": "list", "urll": 1})
    assert got[0] == (
        "sources[0].type: expected one of 'misp_feed', 'list', 'threatfox', 'taxii', got 'stix'"
    )
    assert got[1].startswith("sources[1].urll: unknown key; did you mean 'url'?")


def test_names_are_unique_across_misp_servers_and_sources() -> None:
    got = problems(
        {"type": "misp_feed", "url": "https://misp.example.org/feed"},
        misp_servers=[{"domain": "https://misp.example.org", "api_key": "k" * 40}],
    )
    assert got == [
        "sources[0]: same name 'misp.example.org' as another source or MISP server; "
        "set a distinct 'name'"
    ]


def test_a_valid_entry_of_each_kind_and_its_defaults() -> None:
    cfg = parse_config(
        {
            "sources": [
                {"type": "misp_feed", "url": "https://feeds.example.org/circl/", "tlp": "green"},
                {
                    "type": "list",
                    "name": "urlhaus",
                    "url": "https://urlhaus.example.org/hostfile/",
                    "format": "hosts",
                    "indicator_type": "domain",
                },
                {"type": "threatfox", "api_key_env": "TF_KEY", "days": 2},
            ]
        }
    )
    feed, hosts, tf = cfg.sources
    assert (feed.label, feed.base_url, feed.tlp) == (
        "feeds.example.org",
        "https://feeds.example.org/circl",
        "green",
    )
    assert (hosts.label, hosts.base_url) == ("urlhaus", "https://urlhaus.example.org/hostfile/")
    assert (tf.label, tf.base_url, tf.header, tf.days) == (
        "threatfox-api.abuse.ch",
        "https://threatfox-api.abuse.ch/api/v1/",
        "Auth-Key",
        2,
    )


def test_a_key_over_plain_http_is_a_warning() -> None:
    cfg = parse_config(
        {"sources": [{"type": "misp_feed", "url": "http://f.example.org/", "api_key": "k" * 20}]}
    )
    assert [str(w) for w in cfg.warnings] == [
        "sources[0].url: plain http: the key and the indicators cross the network "
        "unencrypted; use https",
        "fetch_iocs.warninglists_dir: not set: the values of 'sources' are not checked "
        "against MISP's warninglists (public resolvers, big providers), which only a MISP "
        "server applies itself",
    ]
    lists = parse_config(
        {
            "sources": [{"type": "misp_feed", "url": "https://f.example.org/"}],
            "fetch_iocs": {"warninglists_dir": "/var/lib/misp-warninglists/lists"},
        }
    )
    assert lists.warnings == ()


def test_taxii_needs_its_collection_and_basic_auth_needs_a_password() -> None:
    got = problems(
        {"type": "taxii", "url": "https://taxii.example.org/api1/"},
        {
            "type": "taxii",
            "url": "https://taxii.example.org/api1/",
            "collection": "c1",
            "username": "me",
        },
        {
            "type": "taxii",
            "url": "https://taxii.example.org/api1/",
            "collection": "c1",
            "username": "me",
            "api_key_env": "PW",
            "auth_header": "X-Key",
        },
        {"type": "list", "url": "https://l.example/x", "indicator_type": "domain", "page_size": 5},
    )
    assert got == [
        "sources[0].collection: required for type taxii: the collection's id",
        "sources[1].username: needs a password: api_key_file, api_key_env or api_key",
        "sources[2].auth_header: not with username (HTTP Basic uses Authorization)",
        "sources[3].page_size: only for type taxii, not for type list",
    ]


def test_a_list_of_a_type_not_fetched_is_a_warning() -> None:
    cfg = parse_config(
        {
            "sources": [{"type": "list", "url": "https://l.example/x", "indicator_type": "ip-src"}],
            "fetch_iocs": {"types": ["domain", "ip-dst"], "warninglists_dir": "/w"},
        }
    )
    assert [str(w) for w in cfg.warnings] == [
        "sources[0].indicator_type: 'ip-src' is not in fetch_iocs.types: "
        "nothing of this list is fetched"
    ]
