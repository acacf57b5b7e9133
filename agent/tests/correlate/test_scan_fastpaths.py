# SPDX-License-Identifier: Apache-2.0
"""The fast paths of reading and matching give what the plain paths give."""

from __future__ import annotations

import gzip
import ipaddress
import random
import zlib
from pathlib import Path

import pytest

from pdnssoc_agent import dnslog
from pdnssoc_agent.correlate.indicators import Matcher, _parse_network, read_list
from pdnssoc_agent.correlate.scan import scan_chunk
from pdnssoc_agent.dnslog import LineReader, ReadStats
from tests.support.correlate import dns_line


def test_a_value_over_two_lines_does_not_hide_two_values_on_one() -> None:
    # three lines, three JSON values: a whole-chunk decode that only counted
    # records against newlines would shift the last line's alert
    matcher = Matcher(["evil.example"], [])
    data = b'{"query": "a.example"}{"query": "b.example"}\n{"query":\n"c.example"}\n' + dns_line(
        "evil.example"
    )
    stats = ReadStats()
    hits: list[str] = []
    scan_chunk(data, matcher, stats, lambda rec, h: hits.append(rec.dns.qname), "t")  # type: ignore[union-attr]
    assert hits == ["evil.example"]
    # line by line: two values, a cut-off object, a string before a stray brace
    assert (stats.malformed, stats.wrong_type) == (2, 1)
    assert stats.lines == 4


def _ref_network(t: str) -> tuple[int, int, int, str] | None:
    try:
        net = ipaddress.ip_network(t, strict=False)
    except ValueError:
        return None
    addr = net.network_address
    text = str(addr) if net.prefixlen == net.max_prefixlen else str(net)
    return (net.version, net.prefixlen, int(addr), text)


EDGE_NETWORKS = [
    "::", "::/0", "::1", "1::", "::ffff:0:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "2001:DB8::1/64",
    "2001:0db8::/32", "1.2.3.4/24", "1.2.3.4/024", "0.0.0.0/0", "255.255.255.255/32",
    "a:b::c/128", "1.2.3.4/00000000024", "1:0:0:1:0:0:0:1", "1:0:0:1:0:0:1:1", "0:1::",
]  # fmt: skip
LEFT_TO_IPADDRESS = [
    "::ffff:1.2.3.4", "::1.2.3.4", "fe80::1%eth0", "1.2.3.4/255.255.255.0", "::ffff:0.0.0.0/96",
    "1.2.3.4/33", "1.2.3.4/", "01.2.3.4/24", "1.2.3.4/24/1", "::/129", "::/+1", "::/ 1",
    "1.2.3.4/\u00b2", "1:2:3:4:5:6:7:8:9", ":::/1", "1::2::3", "1.2.3.256/8",
]  # fmt: skip


def test_network_parsing_fast_path_agrees_with_ipaddress() -> None:
    rng = random.Random(11)
    cases = list(EDGE_NETWORKS)
    for _ in range(20_000):
        words = [0 if rng.random() < 0.4 else rng.randint(0, 0xFFFF) for _ in range(8)]
        upper = rng.random() < 0.3
        text = ":".join(f"{w:04X}" if upper else f"{w:x}" for w in words)
        cases.append(text + rng.choice(["", "/128", "/64", f"/{rng.randint(0, 128)}"]))
        cases.append(str(ipaddress.IPv6Address(text)) + f"/{rng.randint(0, 128)}")
        octets = ".".join(str(rng.randint(0, 255)) for _ in range(4))
        cases.append(f"{octets}/{rng.randint(0, 32)}")
    for t in cases:
        fast = _parse_network(t)
        assert fast is None or fast == _ref_network(t), t
    for t in EDGE_NETWORKS:
        assert _parse_network(t) is not None, t
    for t in LEFT_TO_IPADDRESS:
        assert _parse_network(t) is None, t
    # and a Matcher built from them indexes what ipaddress would
    m = Matcher([], ["::ffff:1.2.3.4", "2001:DB8::1/64", "10.1.2.3/8"])
    assert sorted(m.network_values()) == ["10.0.0.0/8", "2001:db8::/64", "::ffff:102:304"]


@pytest.mark.parametrize(
    "text",
    [
        "a.com\nb.net\n",
        "a.com\n\nb.net",
        "a.com\nB.net\n",
        "a.com.\n",
        "a.com.",
        "# comment\na.com\n",
        "a.com\r\nb.net\r\n",
        " a.com \n",
        "a.com\x0b\n",
        "xn--bcher-kva.de\nb\u00fccher.de\n",
        "\n\n",
        "a_b.com\n-x.org\nx..y\n",
        "bad domain\nok.example\n",
    ],
)
def test_bulk_domain_loading_equals_line_by_line(tmp_path: Path, text: str) -> None:
    p = tmp_path / "misp_domains.txt"
    p.write_bytes(text.encode())
    bulk = Matcher()
    bulk.add_domain_file(p)
    plain = Matcher(read_list(p))
    assert bulk.domains == plain.domains
    assert bulk.invalid == plain.invalid


def test_ipv4_prefix_rules_out_only_non_matches() -> None:
    m = Matcher([], ["192.0.2.7", "198.51.100.0/24"])
    assert m.v4_by_prefix
    answers = {
        "192.0.2.7": [("ip", "192.0.2.7", "192.0.2.7")],
        "192.0.2.70": None,  # same first three octets as an indicator address
        "198.51.100.200": [("cidr", "198.51.100.0/24", "198.51.100.200")],
        "198.51.10.1": None,
        "not-an-address": None,
    }
    data = b"".join(dns_line("benign.example", [("benign.example", "A", a)]) for a in answers)
    got: list[list[tuple[str, str, str]]] = []
    scan_chunk(data, m, ReadStats(), lambda rec, hits: got.append(hits), "t")
    assert got == [hit for hit in answers.values() if hit]
    assert not Matcher([], ["10.0.0.0/16"]).v4_by_prefix


@pytest.mark.parametrize("engine", ["isal", "zlib"])
def test_both_inflaters_read_damaged_and_multi_member_gzip_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    if engine == "zlib":
        monkeypatch.setattr(dnslog, "inflate_module", zlib)
    elif dnslog.INFLATE != "isal":
        pytest.skip("python-isal is not installed")
    one = gzip.compress(b'{"a": 1}\n' * 1000)
    cases = {
        "multi": (one + gzip.compress(b'{"b": 2}\n' * 500), 1500, 0),
        "padded": (one + b"\0" * 100, 1000, 0),
        "cut": (one[: len(one) // 2], 0, 1),
        "corrupt": (one[:20] + b"\xff" * 50 + one[70:], 0, 1),
        "trailing garbage": (one + b"garbage", 1000, 1),
    }
    for name, (content, lines, truncated) in cases.items():
        p = tmp_path / f"{name}.json.gz"
        p.write_bytes(content)
        stats = ReadStats()
        n = sum(c.data.count(b"\n") for c in LineReader(p, stats).chunks())
        assert (n, stats.truncated_gzip) == (lines, truncated), name
