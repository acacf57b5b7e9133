# SPDX-License-Identifier: Apache-2.0
"""Folding records into rows: the answer columns and the variants of one key."""

from __future__ import annotations

import socket

from pdnssoc_agent.dnslog import ReadStats
from pdnssoc_agent.history import Batch, decode_chunk
from tests.support.correlate import dns_line


def _table(*lines: bytes) -> list[dict[str, object]]:
    batch = Batch()
    batch.add(decode_chunk(b"".join(lines), ReadStats(), "t"))
    rows: list[dict[str, object]] = batch.table().to_pylist()
    return sorted(rows, key=lambda r: (str(r["rname"]), str(r["first"])))


def _v6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def test_answers_keep_their_order_and_leave_out_what_inet_pton_refuses() -> None:
    bad4 = ["01.2.3.4", "256.1.1.1", "1.2.3", "1.2.3.4.5", "a.b.c.d", "1.2.3.4 ", ""]
    answers = [
        ("a.example", "CNAME", "b.example."),
        ("b.example", "CNAME", "c.example."),
        ("c.example", "A", "198.51.100.7"),
        *[("c.example", "A", t) for t in bad4],
        ("c.example", "A", "0.0.0.0"),  # noqa: S104 - an answer, not a bind
        ("c.example", "A", "255.255.255.255"),
        ("c.example", "AAAA", "2001:db8::1"),
        ("c.example", "AAAA", "2001:db8::zz"),
        ("c.example", "AAAA", "fe80::1%eth0"),
        ("c.example", "MX", "10 mx.example."),
    ]
    other = [("d.example", "A", "198.51.100.7"), ("d.example", "A", "192.0.2.1")]
    got = _table(
        dns_line("a.example", answers),
        dns_line("d.example", other),
        dns_line("e.example", [], rcode="NXDOMAIN"),
    )
    a, d, e = got
    assert a["cnames"] == ["b.example.", "c.example."]
    assert a["ip4"] == [0xC6336407, 0, 0xFFFFFFFF]
    assert a["ip6"] == [_v6("2001:db8::1"), _v6("fe80::1")]
    assert d["ip4"] == [0xC6336407, 0xC0000201] and d["cnames"] == [] and d["ip6"] == []
    assert e["ip4"] == [] and e["cnames"] == [] and e["ip6"] == []


def test_each_answer_section_of_a_key_is_a_row_and_its_repeats_fold_into_it() -> None:
    one = [("x.example", "A", "192.0.2.1")]
    two = [("x.example", "A", "192.0.2.2")]
    got = _table(
        dns_line("x.example", one, ts="2026-01-05T10:00:01Z"),
        dns_line("x.example", two, ts="2026-01-05T10:00:02Z"),
        dns_line("x.example", one, ts="2026-01-05T10:00:03Z"),
        dns_line("x.example", two, ts="2026-01-05T10:00:05Z"),
        dns_line("x.example", two, ts="2026-01-05T10:00:04Z"),
        dns_line("x.example", [], ts="2026-01-05T10:00:06Z"),
    )
    by_ip = {tuple(r["ip4"]): r for r in got}  # type: ignore[arg-type]
    assert {k: r["count"] for k, r in by_ip.items()} == {(0xC0000201,): 2, (0xC0000202,): 3, (): 1}
    assert by_ip[(0xC0000202,)]["span_us"] == 3_000_000
    assert by_ip[(0xC0000201,)]["span_us"] == 2_000_000
