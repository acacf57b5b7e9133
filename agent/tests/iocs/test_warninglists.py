# SPDX-License-Identifier: Apache-2.0
"""MISP warninglists as the agent matches them, on real lists and on each list type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.iocs.warninglists import Hit, WarninglistError, Warninglists


def write(folder: Path, name: str, kind: str, entries: list[str], types: list[str]) -> None:
    (folder / name).mkdir(parents=True)
    data: dict[str, Any] = {
        "name": name,
        "type": kind,
        "list": entries,
        "matching_attributes": types,
        "description": "test list",
        "version": 1,
    }
    (folder / name / "list.json").write_text(json.dumps(data))


def test_the_real_lists_of_the_reference(shared_dir: Path) -> None:
    lists = Warninglists.load(shared_dir / "reference" / "misp" / "warninglists")
    public_dns = lists.check("ip-dst", "8.8.8.8")
    assert public_dns is not None and public_dns.entry == "8.8.8.8/32"
    private = lists.check("ip-src", "10.20.30.0/24")
    assert private is not None and private.entry == "10.0.0.0/8"
    office = lists.check("domain", "aadrm.com")
    assert office is not None and office.entry == "aadrm.com"
    assert lists.check("domain", "evil.example.com") is None
    assert lists.check("ip-dst", "192.0.2.66") is None
    assert lists.check("hostname", "8.8.8.8") is None  # address lists do not apply to names


def test_each_list_type(tmp_path: Path) -> None:
    write(tmp_path, "names", "hostname", [".Example.ORG.", "cdn.example.net"], [])
    write(tmp_path, "exact", "string", [".google.com", "exact.example.com"], ["domain"])
    write(tmp_path, "part", "substring", ["sinkhole"], ["domain", "hostname"])
    write(tmp_path, "rx", "regex", ["/^c2-[0-9]+\\.example\\.info$/i"], ["domain"])
    write(tmp_path, "v6", "cidr", ["2001:db8:1::/48", "198.51.100.0/24"], ["ip-dst"])
    lists = Warninglists.load(tmp_path)
    assert lists.check("domain", "deep.sub.example.org") == Hit("names", "example.org")
    assert lists.check("domain", "example.org") == Hit("names", "example.org")
    assert lists.check("domain", "notexample.org") is None
    assert lists.check("domain", "exact.example.com") == Hit("exact", "exact.example.com")
    assert lists.check("hostname", "exact.example.com") is None  # string list: domain only
    assert lists.check("domain", "mail.google.com") is None  # a string entry is literal
    assert lists.check("domain", "sinkhole-7.example.biz") == Hit("part", "sinkhole")
    assert lists.check("domain", "c2-42.example.info") is not None
    assert lists.check("ip-dst", "2001:db8:1:5::1") == Hit("v6", "2001:db8:1::/48")
    assert lists.check("ip-dst", "2001:db8::/32") is None  # broader than the entry
    assert lists.check("ip-dst", "198.51.100.128/25") == Hit("v6", "198.51.100.0/24")
    assert lists.check("ip-src", "198.51.100.7") is None  # not among its types


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "unreadable"),
        ('{"name": "x", "type": "glob", "list": ["a"]}', "unknown list type 'glob'"),
        ('{"name": "x", "type": "regex", "list": ["no-delimiters"]}', "a bad regex entry"),
        ('{"name": "x", "type": "cidr", "list": ["300.1.1.1"]}', "a bad cidr entry"),
        ('["a", "b"]', "not a warninglist"),
    ],
)
def test_an_unusable_list_is_named_with_what_is_wrong(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(WarninglistError, match=rf"{tmp_path}/bad.json: {problem}"):
        Warninglists.load(tmp_path)


def test_an_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WarninglistError, match="no warninglist"):
        Warninglists.load(tmp_path)
    with pytest.raises(WarninglistError, match="not a directory"):
        Warninglists.load(tmp_path / "nope")
