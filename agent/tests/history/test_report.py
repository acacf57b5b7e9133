# SPDX-License-Identifier: Apache-2.0
"""``hunt``'s output lines: times, and names from the network made safe for a terminal."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from pdnssoc_agent.history.query import Row
from pdnssoc_agent.history.report import HEADER, lines, time_text, time_texts
from pdnssoc_agent.sanitize import printable


def _row(qname: str = "www.shop.example", cnames: list[str] | None = None) -> Row:
    return Row(sensor="s1", client="10.0.0.0", qname=qname, qtype="A", rcode="NOERROR",
               cnames=cnames or ["e1.cdn.example"], ips=["192.0.2.1", "2001:db8::1"], count=3,
               first_us=1_767_225_600_000_000, last_us=1_767_225_661_500_000,
               hits=[("cname", "cdn.example", "e1.cdn.example")])  # fmt: skip


def _us(*args: int) -> int:
    d = datetime(*args, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)  # type: ignore[misc]
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def test_times_are_rfc3339_utc_with_microseconds_only_when_there_are_some() -> None:
    assert time_text(0) == "1970-01-01T00:00:00Z"
    assert time_text(-1) == "1969-12-31T23:59:59.999999Z"
    assert time_text(_us(2026, 1, 5, 8, 7, 6)) == "2026-01-05T08:07:06Z"
    assert time_text(_us(2026, 1, 5, 8, 7, 6, 120)) == "2026-01-05T08:07:06.000120Z"
    assert time_text(_us(999, 12, 31, 23, 59, 59)) == "0999-12-31T23:59:59Z"


def test_times_made_in_bulk_are_those_made_one_by_one() -> None:
    rng = random.Random(5)
    values = [
        0,
        -1,
        1,
        999_999,
        1_000_000,
        -1_000_000,
        -1_000_001,
        _us(999, 12, 31, 23, 59, 59),
        _us(2026, 1, 5, 8, 7, 6, 120),
        _us(2026, 1, 5),
    ]
    values += [rng.randrange(_us(1, 1, 1), _us(9999, 12, 31)) for _ in range(2000)]
    values += [rng.randrange(1_700_000_000, 1_900_000_000) * 1_000_000 for _ in range(200)]
    assert time_texts(values) == [time_text(v) for v in values]
    assert time_texts([]) == []


def test_text_lines_escape_control_characters_and_cut_long_fields() -> None:
    plain, bad, long = _row(), _row("a\tb\x1b[31m.example"), _row(cnames=["x" * 3000])
    header, *out = lines([plain, bad, long], "text")
    assert header == HEADER
    assert out[0] == "\t".join([
        "2026-01-01T00:00:00Z", "2026-01-01T00:01:01.500000Z", "3", "s1", "10.0.0.0",
        "www.shop.example A", "CNAME e1.cdn.example, 192.0.2.1, 2001:db8::1",
        "cname cdn.example (e1.cdn.example)",
    ])  # fmt: skip
    fields = out[1].split("\t")
    assert len(fields) == 8 and fields[5] == "a\\tb\\x1b[31m.example A"
    assert fields[6] == "CNAME e1.cdn.example, 192.0.2.1, 2001:db8::1"
    answer = out[2].split("\t")[6]
    assert answer == printable("CNAME " + "x" * 3000 + ", 192.0.2.1, 2001:db8::1", 2000)
    assert answer.endswith("more characters)") and len(answer) < 2100
