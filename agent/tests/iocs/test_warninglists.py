# SPDX-License-Identifier: Apache-2.0
"""MISP warninglists as the agent matches them, on real lists and on each list type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.iocs.warninglists import Hit, WarninglistError, Warninglists, bundled_directory


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
def test_an_unusable_list_is_left_out_and_named_with_what_is_wrong(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(
        WarninglistError, match=rf"no usable warninglist: {tmp_path}/bad.json: {problem}"
    ):
        Warninglists.load(tmp_path)
    # Beside a usable list, the bad one is left out (named) and the good one applies.
    write(tmp_path, "names", "hostname", ["example.org"], [])
    lists = Warninglists.load(tmp_path)
    assert len(lists) == 1
    assert lists.check("domain", "www.example.org") == Hit("names", "example.org")
    assert len(lists.skipped) == 1
    assert lists.skipped[0].startswith(f"{tmp_path}/bad.json: {problem}")


def test_a_global_modifier_as_published_lists_carry_it_is_ignored(tmp_path: Path) -> None:
    # MISP's phone_numbers list has entries such as /^\+?[0-9 ]+$/g: 'g' means
    # nothing to a match test; refusing the list would refuse the whole directory.
    write(tmp_path, "rx", "regex", ["/^c2-[0-9]+\\.example\\.info$/gi"], [])
    lists = Warninglists.load(tmp_path)
    assert lists.skipped == []
    assert lists.check("domain", "C2-7.example.info") == Hit("rx", "^c2-[0-9]+\\.example\\.info$")


def test_lists_for_other_attribute_types_are_not_loaded(tmp_path: Path) -> None:
    write(tmp_path, "mail", "string", ["abuse@example.org"], ["email-src"])
    write(tmp_path, "any", "hostname", ["example.org"], [])
    write(tmp_path, "ips", "cidr", ["10.0.0.0/8"], ["ip-dst", "domain|ip"])
    lists = Warninglists.load(tmp_path, ["domain", "ip-dst"])
    assert sorted(wl.name for wl in lists.lists) == ["any", "ips"]


def test_the_lists_pymispwarninglists_ships() -> None:
    directory = bundled_directory()
    if directory is None:
        pytest.skip("the pymispwarninglists package is not installed")
    lists = Warninglists.load(directory, ["domain", "hostname", "ip-dst", "ip-src"])
    assert lists.skipped == []
    assert len(lists) > 50
    google = lists.check("ip-dst", "8.8.8.8")
    assert google is not None and google.entry.startswith("8.8.8.8")
    assert lists.check("ip-src", "10.1.2.3") is not None  # RFC 1918
    assert lists.check("domain", "sub.aadrm.com") is not None  # Microsoft's Office 365 names
    assert lists.check("domain", "pdnssoc-test-evil.example") is None


def test_an_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WarninglistError, match="no warninglist"):
        Warninglists.load(tmp_path)
    with pytest.raises(WarninglistError, match="not a directory"):
        Warninglists.load(tmp_path / "nope")


def test_the_packaged_lists_are_found_without_importing_the_package() -> None:
    # Its code imports jsonschema, which it does not declare: a deployment's
    # environment may lack it, and the lists must be found all the same.
    code = (
        "import sys; sys.modules['jsonschema'] = None\n"
        "from pdnssoc_agent.iocs.warninglists import bundled_directory\n"
        "d = bundled_directory()\n"
        "assert d is not None and (d / 'rfc1918' / 'list.json').is_file()\n"
        "assert 'pymispwarninglists' not in sys.modules\n"
    )
    if bundled_directory() is None:
        pytest.skip("the pymispwarninglists package is not installed")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
