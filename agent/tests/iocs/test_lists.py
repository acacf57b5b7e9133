# SPDX-License-Identifier: Apache-2.0
"""List files: format, the never-empty placeholders, write-only-if-changed, config keys."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pdnssoc_agent.config import ConfigError, parse_config
from pdnssoc_agent.iocs import lists
from pdnssoc_agent.iocs.normalize import Indicator, Normalizer


def test_render_sorted_one_per_line() -> None:
    assert lists.render(["b.example", "a.example"], lists.DOMAIN_PLACEHOLDER) == (
        b"a.example\nb.example\n"
    )


def test_empty_list_gets_placeholder() -> None:
    assert lists.render([], lists.DOMAIN_PLACEHOLDER) == (lists.DOMAIN_PLACEHOLDER + "\n").encode()
    assert lists.render([], lists.IP_PLACEHOLDER) == b"::ffff:0.0.0.0\n"


def test_domain_placeholder_cannot_be_a_query_name() -> None:
    name = lists.DOMAIN_PLACEHOLDER
    # Wire format: each label is length byte + label, plus the root byte.
    wire_length = sum(len(label) + 1 for label in name.split(".")) + 1
    assert wire_length > 255
    assert name.endswith(".invalid")
    assert all(len(label) <= 63 for label in name.split("."))
    # The normaliser never produces it (too long).
    assert not isinstance(Normalizer().domain(name), Indicator)


def test_ip_placeholder_is_ipv4_mapped_and_never_an_indicator() -> None:
    addr = ipaddress.ip_address(lists.IP_PLACEHOLDER)
    assert isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None
    # A real indicator written like it is turned into IPv4 by the normaliser.
    assert Normalizer().ip(lists.IP_PLACEHOLDER) != Indicator("ip", lists.IP_PLACEHOLDER)


def test_read_values_skips_placeholder(tmp_path: Path) -> None:
    p = tmp_path / "l.txt"
    assert lists.read_values(p) is None
    p.write_text(lists.DOMAIN_PLACEHOLDER + "\n")
    assert lists.read_values(p) == []
    p.write_text("a.example\nb.example\n")
    assert lists.read_values(p) == ["a.example", "b.example"]


def test_replace_if_changed(tmp_path: Path) -> None:
    p = tmp_path / "misp" / "l.txt"
    assert lists.replace_if_changed(p, b"a\n") is True
    mtime = p.stat().st_mtime_ns
    assert lists.replace_if_changed(p, b"a\n") is False
    assert p.stat().st_mtime_ns == mtime
    assert lists.replace_if_changed(p, b"b\n") is True
    assert p.read_bytes() == b"b\n"
    assert p.stat().st_mode & 0o777 == 0o640
    assert [x.name for x in p.parent.iterdir()] == ["l.txt"]  # no temp file left


def test_fetch_iocs_config_keys() -> None:
    cfg = parse_config(
        {
            "fetch_iocs": {
                "types": ["domain", "ip-dst"],
                "to_ids_only": False,
                "max_prefix_v4": 24,
                "max_prefix_v6": 48,
                "reload_collector": False,
                "collector_pid_file": "/run/x.pid",
                "collector_process_match": "my-collector",
            }
        }
    )
    f = cfg.fetch_iocs
    assert f.types == ["domain", "ip-dst"] and not f.to_ids_only
    assert (f.max_prefix_v4, f.max_prefix_v6) == (24, 48)
    assert f.collector_pid_file == Path("/run/x.pid") and not f.reload_collector
    assert f.collector_process_match == "my-collector"
    default = parse_config({}).fetch_iocs
    assert default.reload_collector and default.collector_process_match == "dnscollector"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"types": ["url"]}, "fetch_iocs.types[0]: 'url' is not a type DNS can reveal"),
        ({"types": []}, "fetch_iocs.types: must list at least one type"),
        ({"max_prefix_v4": 33}, "fetch_iocs.max_prefix_v4: must be at most 32"),
    ],
)
def test_fetch_iocs_config_errors(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"fetch_iocs": section})
    assert message in str(err.value)
