# SPDX-License-Identifier: Apache-2.0
"""Reading go-dnscollector logs: record shapes, chunks, partial and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.correlate.scan import scan_chunk
from pdnssoc_agent.dnslog import GZIP_BACKENDS, LineReader, ReadStats, head_bytes, parse_line
from tests.support.correlate import SAMPLE, SAMPLE_GZ, SAMPLE_HASHED, SAMPLE_MINIFIED, dns_line


def _events(path: Path, backend: str = "thread") -> list[object]:
    stats = ReadStats()
    out = []
    for chunk in LineReader(path, stats, gzip_backend=backend).chunks():
        out.extend(parse_line(line) for line in chunk.data.splitlines())
    return out


def test_recorded_collector_lines_decode() -> None:
    events = _events(SAMPLE)
    assert len(events) == 14
    resp = [e for e in events if e is not None and e.answers]
    cname = next(e for e in resp if e.qname == "cdn.benign.test")
    assert cname.sensor == "sensor-lab-1"
    assert cname.client == "192.0.2.12"
    assert cname.qtype == "A"
    assert cname.rcode == "NOERROR"
    assert cname.timestamp.startswith("2025-11-27T10:40:")
    assert [(a.rdatatype, a.rdata, a.ttl) for a in cname.answers] == [
        ("CNAME", "edge.bad-cdn.net", 120),
        ("A", "198.51.100.20", 60),
    ]
    nx = next(e for e in events if e is not None and e.rcode == "NXDOMAIN")
    assert nx.answers == ()


def test_hashed_clients_are_kept_as_sent() -> None:
    events = [e for e in _events(SAMPLE_HASHED) if e is not None]
    assert events
    assert all(len(e.client) == 40 and "." not in e.client for e in events)


@pytest.mark.parametrize("backend", GZIP_BACKENDS)
def test_gzip_and_plain_give_the_same_events(backend: str) -> None:
    assert _events(SAMPLE_GZ, backend) == _events(SAMPLE)


@pytest.mark.parametrize("backend", GZIP_BACKENDS)
def test_minified_archive_records(backend: str) -> None:
    full = [e for e in _events(SAMPLE) if e is not None]
    mini = [e for e in _events(SAMPLE_MINIFIED, backend) if e is not None]
    assert len(mini) == len(full)
    for f, m in zip(full, mini, strict=True):
        assert (m.qname, m.client, m.sensor, m.timestamp) == (
            f.qname,
            f.client,
            f.sensor,
            f.timestamp,
        )
        assert m.answers == f.answers
        assert m.qtype == ""  # the minified shape has no query type


def test_plain_file_partial_last_line_is_left_for_later(tmp_path: Path) -> None:
    p = tmp_path / "q.json"
    whole = dns_line("a.example")
    p.write_bytes(whole + dns_line("b.example")[:50])
    stats = ReadStats()
    reader = LineReader(p, stats)
    chunks = list(reader.chunks())
    assert b"".join(c.data for c in chunks) == whole
    assert reader.offset == len(whole)
    with p.open("ab") as fh:
        fh.write(dns_line("b.example")[50:])
    again = LineReader(p, stats, offset=reader.offset)
    data = b"".join(c.data for c in again.chunks())
    assert data == dns_line("b.example")
    assert stats.skipped == 0


def test_gzip_last_line_without_newline_is_read(tmp_path: Path) -> None:
    p = tmp_path / "q.json.gz"
    p.write_bytes(gzip.compress(dns_line("a.example") + dns_line("b.example").rstrip(b"\n")))
    stats = ReadStats()
    data = b"".join(c.data for c in LineReader(p, stats).chunks())
    assert data.count(b"\n") == 2
    assert b"b.example" in data


@pytest.mark.parametrize("backend", GZIP_BACKENDS)
def test_truncated_gzip_keeps_what_precedes_the_damage(tmp_path: Path, backend: str) -> None:
    body = b"".join(dns_line(f"h{i}.example") for i in range(3000))
    packed = gzip.compress(body)
    p = tmp_path / "cut.json.gz"
    p.write_bytes(packed[: len(packed) // 2])
    stats = ReadStats()
    data = b"".join(c.data for c in LineReader(p, stats, gzip_backend=backend).chunks())
    assert stats.truncated_gzip == 1
    assert 0 < data.count(b"\n") < 3000
    assert body.startswith(data)


def test_concatenated_gzip_members_and_padding(tmp_path: Path) -> None:
    p = tmp_path / "multi.gz"
    p.write_bytes(
        gzip.compress(dns_line("a.example")) + gzip.compress(dns_line("b.example")) + b"\0" * 8
    )
    stats = ReadStats()
    data = b"".join(c.data for c in LineReader(p, stats).chunks())
    assert data == dns_line("a.example") + dns_line("b.example")
    assert stats.truncated_gzip == 0


@pytest.mark.parametrize("gz", [False, True])
def test_over_long_lines_are_skipped_and_counted(tmp_path: Path, gz: bool) -> None:
    limit = 2048
    long_line = b'{"query":"' + b"x" * 5000 + b'"}\n'
    just_fits = b'{"query":"' + b"y" * (limit - 12) + b'"}\n'
    assert len(just_fits) - 1 == limit
    content = dns_line("a.example") + long_line + just_fits + long_line * 2 + dns_line("b.example")
    p = tmp_path / ("q.json.gz" if gz else "q.json")
    p.write_bytes(gzip.compress(content) if gz else content)
    stats = ReadStats()
    reader = LineReader(p, stats, max_line_bytes=limit)
    data = b"".join(c.data for c in reader.chunks())
    assert data == dns_line("a.example") + just_fits + dns_line("b.example")
    assert stats.too_long == 3
    assert reader.offset == len(content)


def test_resume_gzip_from_content_offset(tmp_path: Path) -> None:
    first = dns_line("a.example") + dns_line("b.example")
    p = tmp_path / "rotated.json.gz"
    p.write_bytes(gzip.compress(first + dns_line("c.example")))
    stats = ReadStats()
    data = b"".join(c.data for c in LineReader(p, stats, offset=len(first)).chunks())
    assert data == dns_line("c.example")


def test_head_bytes_sees_through_gzip(tmp_path: Path) -> None:
    content = b"".join(dns_line(f"h{i}.example") for i in range(10))
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(content))
    assert head_bytes(p, 1024) == content[:1024]
    assert head_bytes(SAMPLE, 100) == SAMPLE.read_bytes()[:100]
    assert head_bytes(tmp_path / "missing", 10) == b""


def test_every_kind_of_bad_line_is_counted_and_good_lines_still_match() -> None:
    matcher = Matcher(["evil.example"], [])
    bad = [
        b"not json at all",
        b'{"dns": {"qname": "cut off',
        b'{"dns": {"qname": "bad-\xff\xfe-utf8.example"}}',
        b'{"dns": {"qname": 42}}',
        b'["an", "array"]',
        b'{"dns": {"qtype": "A"}}',
        b'{"unrelated": true}',
    ]
    data = dns_line("evil.example") + b"\n".join(bad) + b"\n\n" + dns_line("www.evil.example")
    stats = ReadStats()
    hits: list[str] = []
    scan_chunk(data, matcher, stats, lambda rec, h: hits.append(h[0][2]), "t", 1000)
    assert hits == ["evil.example", "www.evil.example"]
    first_bad = 1000 + len(dns_line("evil.example"))
    assert stats.examples[0] == f"t: byte {first_bad}: malformed"
    assert stats.malformed == 2
    assert stats.invalid_utf8 == 1
    assert stats.wrong_type == 2
    assert stats.missing_fields == 2
    assert stats.lines == 9  # blank lines are not counted
    assert "skipped" in stats.summary()
    assert stats.examples


def test_a_kind_met_often_does_not_hide_the_places_of_another() -> None:
    """Fifty replies without a name ahead of one damaged line: the damaged
    line's place is still kept, and merged counts keep both."""
    matcher = Matcher(["evil.example"], [])
    nameless = b'{"dns": {"qname": "", "rcode": "FORMERR"}}\n' * 50
    stats = ReadStats()
    scan_chunk(nameless, matcher, stats, lambda rec, h: None, "t")
    scan_chunk(b'{"dns": \n', matcher, stats, lambda rec, h: None, "t", len(nameless))
    assert stats.missing_fields == 50 and stats.malformed == 1
    assert stats.examples_of(["malformed"]) == [f"t: byte {len(nameless)}: malformed"]
    assert len(stats.examples_of(["missing_fields"])) == 10  # the first few of each kind
    assert stats.counts(["malformed", "too_long"]) == ["1 malformed"]
    total = ReadStats()
    total.merge(stats)
    total.merge(stats)
    assert total.examples_of(["malformed"]) == [f"t: byte {len(nameless)}: malformed"] * 2
    # what the log shows stays short and names each kind
    assert len(total.examples) == 10
    assert total.examples[:2] == ["t: missing fields", f"t: byte {len(nameless)}: malformed"]


def test_two_values_on_one_line_do_not_shift_the_alerts() -> None:
    matcher = Matcher(["evil.example"], [])
    data = b'{"query": "a.example"} {"query": "b.example"}\n' + dns_line("evil.example")
    stats = ReadStats()
    hits: list[str] = []
    scan_chunk(data, matcher, stats, lambda rec, h: hits.append(rec.dns.qname), "t")  # type: ignore[union-attr]
    assert hits == ["evil.example"]
    assert stats.malformed == 1
