# SPDX-License-Identifier: Apache-2.0
"""Searching the history store: the same matches as correlate's scan, damage reported."""

from __future__ import annotations

import random
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.correlate.scan import Hit, scan_chunk
from pdnssoc_agent.dnslog import LogRecord, ReadStats
from pdnssoc_agent.history import (
    HistoryStore,
    HuntValueError,
    StoreError,
    hunt,
    matcher_for,
    search,
    segment,
)
from pdnssoc_agent.history import index as hindex
from pdnssoc_agent.history.hunt import merge
from pdnssoc_agent.history.query import DIRECT_MAX
from tests.support.correlate import dns_line
from tests.support.history import add_lines, flip_in_column, store_at

LABELS = ["a", "b", "evil", "Evil", "cdn", "x-y", "www", "mail", ""]
TLDS = ["com", "org", "example"]


def _name(rng: random.Random) -> str:
    labels = [rng.choice(LABELS) for _ in range(rng.randint(1, 4))]
    name = ".".join([lb for lb in labels if lb] or ["a"]) + "." + rng.choice(TLDS)
    if rng.random() < 0.05:
        name = name.replace(".", "..", 1)  # an empty label
    if rng.random() < 0.1:
        name = name.upper()
    if rng.random() < 0.1:
        name += "."
    return name


def _ip4(rng: random.Random) -> str:
    return f"{rng.choice((10, 11))}.{rng.randint(0, 1)}.{rng.randint(0, 3)}.{rng.randint(0, 7)}"


def _ip6(rng: random.Random) -> str:
    """Written as go-dnscollector writes addresses (RFC 5952)."""
    if rng.random() < 0.1:
        text = f"::ffff:{_ip4(rng)}"
    else:
        text = f"2001:db8:{rng.randint(0, 3):x}:{rng.randint(0, 1):x}::{rng.randint(0, 7):x}"
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))


def _answers(rng: random.Random, qname: str) -> list[tuple[str, str, str]]:
    out = []
    owner = qname
    for _ in range(rng.choice((0, 0, 1, 2))):
        target = _name(rng)
        out.append((owner, "CNAME", target))
        owner = target
    for _ in range(rng.randint(0, 3)):
        t = rng.random()
        if t < 0.6:
            out.append((owner, "A", _ip4(rng)))
        elif t < 0.9:
            out.append((owner, "AAAA", _ip6(rng)))
        else:
            out.append((owner, "MX", f"10 {_name(rng)}"))
    return out


def _indicators(rng: random.Random) -> tuple[list[str], list[str]]:
    # a few, or more than DIRECT_MAX (the other way of searching CNAME targets)
    n = rng.choice((rng.randint(1, 6), rng.randint(DIRECT_MAX + 1, DIRECT_MAX + 30)))
    domains = {_name(rng).lower().rstrip(".").replace("..", ".") for _ in range(n)}
    nets = []
    for _ in range(rng.randint(0, 6)):
        k = rng.random()
        if k < 0.3:
            nets.append(_ip4(rng))
        elif k < 0.6:
            plen = rng.choice((8, 16, 20, 23, 24, 30, 31))
            nets.append(f"{_ip4(rng)}/{plen}")
        elif k < 0.8:
            nets.append(_ip6(rng))
        else:
            nets.append(f"{_ip6(rng)}/{rng.choice((32, 48, 63, 64, 96, 120))}")
    return sorted(domains), nets


def _lines(rng: random.Random, n: int) -> bytes:
    t0 = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    out = []
    for _ in range(n):
        q = _name(rng)
        when = t0 + timedelta(seconds=rng.randint(0, 3 * 3600))  # over two days
        ts = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{rng.randint(0, 999):03d}Z"
        client, sensor = rng.choice(("c1", "c2")), rng.choice(("s1", "s2"))
        rcode = rng.choice(("NOERROR", "NOERROR", "NOERROR", "NXDOMAIN"))
        out.append(dns_line(q, _answers(rng, q), ts=ts, client=client, sensor=sensor, rcode=rcode))
    return b"".join(out)


def _scan(data: bytes, matcher: Matcher) -> Counter[tuple[Any, ...]]:
    """What correlate's scan finds: (sensor, client, qname, hits) -> matching lines."""
    found: Counter[tuple[Any, ...]] = Counter()

    def on_hit(rec: LogRecord, hits: list[Hit]) -> None:
        assert rec.dns is not None and rec.dnstap is not None and rec.network is not None
        found[(rec.dnstap.identity, rec.network.query_ip, rec.dns.qname, tuple(sorted(hits)))] += 1

    scan_chunk(data, matcher, ReadStats(), on_hit, "t")
    return found


def _stored(store: HistoryStore, matcher: Matcher) -> Counter[tuple[Any, ...]]:
    result = search(store, matcher)
    assert result.problems == []
    found: Counter[tuple[Any, ...]] = Counter()
    for r in result.rows:
        found[(r.sensor, r.client, r.qname, tuple(sorted(r.hits)))] += r.count
    return found


@pytest.mark.parametrize("seed", range(40))
def test_search_finds_what_the_raw_scan_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(segment, "ROW_GROUP", 16)  # row groups to skip: segments get an index
    rng = random.Random(seed)
    data = _lines(rng, 150)
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    assert len(store.manifest().segments) == 2  # two days
    assert all(s.index for s in store.manifest().segments)  # searched through the index
    for subdomains in (True, False):
        for cnames in (True, False):
            domains, nets = _indicators(rng)
            matcher = Matcher(domains, nets, subdomains=subdomains, cnames=cnames)
            expected = _scan(data, Matcher(domains, nets, subdomains=subdomains, cnames=cnames))
            assert _stored(store, matcher) == expected, (domains, nets, subdomains, cnames)


LAYOUTS = {
    # many row groups: a search reads some of them for names and the others' rows
    "small row groups": {"ROW_GROUP": 7},
    # segments written before names were stored plain
    "prefix-coded names": {"ENCODING": {"rname": "DELTA_BYTE_ARRAY", "first": "BYTE_STREAM_SPLIT"}},
    # segments of many row groups written without their index (before it existed)
    "no index": {"ROW_GROUP": 7, "index.WRITE": False},
    # indexes whose sections are many parts: a search reads those its keys can be in
    "small index parts": {"ROW_GROUP": 7, "index.PART": 3},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("seed", range(10))
def test_search_finds_what_the_raw_scan_finds_in_every_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, layout: str
) -> None:
    for name, value in LAYOUTS[layout].items():
        if name.startswith("index."):
            monkeypatch.setattr(hindex, name.removeprefix("index."), value)
        else:
            monkeypatch.setattr(segment, name, value)
    rng = random.Random(1000 + seed)
    data = _lines(rng, 150)
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    for seg in store.manifest().segments:
        md = pq.ParquetFile(store.segment_path(seg)).metadata
        assert bool(seg.index) == (layout in ("small row groups", "small index parts"))
        if layout != "prefix-coded names":
            assert md.num_row_groups == -(-seg.rows // 7)
        elif layout == "prefix-coded names":
            assert "DELTA_BYTE_ARRAY" in md.row_group(0).column(0).encodings
    monkeypatch.undo()  # searched as today's code searches any store
    for subdomains in (True, False):
        for cnames in (True, False):
            domains, nets = _indicators(rng)
            matcher = Matcher(domains, nets, subdomains=subdomains, cnames=cnames)
            expected = _scan(data, Matcher(domains, nets, subdomains=subdomains, cnames=cnames))
            assert _stored(store, matcher) == expected, (domains, nets, subdomains, cnames)


def test_search_on_edges_of_names_and_networks(tmp_path: Path) -> None:
    """Case and trailing dots on both sides, a CNAME into a subdomain, IPv6 and
    IPv4-mapped addresses in CIDRs, a name that only shares characters with an
    indicator (``notevil.example``)."""
    lines = [
        dns_line("WWW.Evil.Example.", [("WWW.Evil.Example.", "A", "10.0.0.1")], sensor="s1"),
        dns_line("notevil.example", [("notevil.example", "A", "10.0.1.1")], sensor="s1"),
        dns_line("a.cdn.org", [("a.cdn.org", "CNAME", "X.Sub.Evil.Example."),
                               ("X.Sub.Evil.Example.", "AAAA", "2001:db8:1::5")], sensor="s2"),
        dns_line("m.org", [("m.org", "AAAA", "::ffff:192.0.2.9")], sensor="s2"),
        dns_line("evil.example.net", [("evil.example.net", "AAAA", "2001:db8:2::1")], sensor="s2"),
    ]  # fmt: skip
    data = b"".join(lines)
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    many = [f"pad{i}.example" for i in range(DIRECT_MAX)] + ["evil.example"]
    for domains in (["EVIL.example."], many):  # CNAME targets compared directly, or searched
        matcher = Matcher(domains, ["2001:db8:1::/48", "::ffff:192.0.2.0/120"])
        expected = _scan(data, Matcher(domains, ["2001:db8:1::/48", "::ffff:192.0.2.0/120"]))
        found = _stored(store, matcher)
        assert found == expected
        assert {k[2] for k in found} == {"WWW.Evil.Example.", "a.cdn.org", "m.org"}


def test_the_most_specific_indicator_is_reported(tmp_path: Path) -> None:
    data = dns_line("a.b.evil.example", [("a.b.evil.example", "A", "10.1.2.3")])
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    m = Matcher(["evil.example", "b.evil.example"], ["10.0.0.0/8", "10.1.2.0/24"])
    (row,) = search(store, m).rows
    assert row.hits == [
        ("subdomain", "b.evil.example", "a.b.evil.example"),
        ("cidr", "10.1.2.0/24", "10.1.2.3"),
    ]


def test_addresses_are_reported_in_canonical_form(tmp_path: Path) -> None:
    # stored as numbers: an address written another way comes back as RFC 5952 / dotted quad
    data = dns_line("a.example", [("a.example", "AAAA", "2001:DB8:0:0::5")])
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    (row,) = search(store, Matcher([], ["2001:db8::/32"])).rows
    assert row.ips == ["2001:db8::5"]
    assert row.hits == [("cidr", "2001:db8::/32", "2001:db8::5")]


def _two_days(tmp_path: Path) -> HistoryStore:
    store = store_at(tmp_path)
    data = dns_line("evil.example", ts="2026-01-05T10:00:00Z") + dns_line(
        "www.evil.example", ts="2026-01-06T10:00:00Z"
    )
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    return store


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "missing", "not parquet"])
def test_a_damaged_segment_is_reported_and_the_rest_still_answers(
    tmp_path: Path, damage: str
) -> None:
    store = _two_days(tmp_path)
    seg = next(s for s in store.manifest().segments if s.day == "2026-01-05")
    path = store.segment_path(seg)
    if damage == "flipped byte":
        flip_in_column(path, "rname")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"x" * seg.bytes)
    result = search(store, Matcher(["evil.example"]))
    assert len(result.problems) == 1 and str(path) in result.problems[0]
    assert [r.qname for r in result.rows] == ["www.evil.example"]
    assert store.verify() == result.problems


def test_damage_in_a_column_a_search_does_not_read_is_found_by_verify(tmp_path: Path) -> None:
    store = _two_days(tmp_path)
    seg = store.manifest().segments[0]
    flip_in_column(store.segment_path(seg), "client")
    problems = store.verify()
    assert len(problems) == 1 and "CRC" in problems[0]


def test_a_damaged_manifest_is_an_error_that_names_it(tmp_path: Path) -> None:
    store = _two_days(tmp_path)
    store.manifest_path.write_text('{"version": 1, "segments": [')
    with pytest.raises(StoreError, match=r"MANIFEST\.json: damaged manifest"):
        search(store, Matcher(["evil.example"]))


def test_search_by_time_and_sensor(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = (
        dns_line("evil.example", ts="2026-01-05T10:00:00Z", sensor="s1")
        + dns_line("evil.example", ts="2026-01-05T10:20:00Z", sensor="s1")
        + dns_line("evil.example", ts="2026-01-06T10:00:00Z", sensor="s2")
    )
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    m = Matcher(["evil.example"])
    day2 = int(datetime(2026, 1, 6, tzinfo=UTC).timestamp()) * 1_000_000
    assert [r.sensor for r in search(store, m, since_us=day2).rows] == ["s2"]
    assert [r.count for r in search(store, m, until_us=day2).rows] == [2]
    assert [r.sensor for r in search(store, m, sensors=["s1"]).rows] == ["s1"]


def test_hunt_merges_buckets_and_takes_domains_ips_and_cidrs(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    cdn = [("www.shop.example", "CNAME", "shop.cdn.example"), ("shop.cdn.example", "A", "10.9.8.7")]
    data = b"".join(
        dns_line("www.shop.example", cdn, ts=f"2026-01-05T{h:02d}:00:00Z") for h in range(5)
    ) + dns_line("other.example", [("other.example", "AAAA", "2001:db8::5")])
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    (row,) = hunt(store, ["cdn.example"]).rows  # a CNAME into it
    assert (row.count, row.qname) == (5, "www.shop.example")
    assert (row.cnames, row.ips) == (["shop.cdn.example"], ["10.9.8.7"])
    assert row.first_us < row.last_us
    assert [r.count for r in hunt(store, ["10.9.0.0/16"]).rows] == [5]
    assert [r.qname for r in hunt(store, ["2001:db8::5"]).rows] == ["other.example"]
    first_hit = hunt(store, ["SHOP.example."]).rows[0].hits[0]
    assert first_hit == ("subdomain", "shop.example", "www.shop.example")
    with pytest.raises(HuntValueError, match="'not a name'"):
        matcher_for(["not a name"])


@pytest.mark.parametrize("seed", range(12))
def test_hunt_gives_every_reply_once_over_many_days_and_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The same replies over several days, in segments of many row groups (with and
    without an index): hunt answers what the rows search finds, merged as
    :func:`~pdnssoc_agent.history.hunt.merge` merges them (every reply once, count added
    up, in the same order), with a time window and sensors as well."""
    rng = random.Random(seed)
    monkeypatch.setattr(segment, "ROW_GROUP", rng.choice((3, 7, 64)))
    monkeypatch.setattr(hindex, "WRITE", seed % 3 != 0)
    replies = []
    for _ in range(40):
        q = _name(rng)
        kw = {"client": rng.choice(("c1", "c2")), "sensor": rng.choice(("s1", "s2", "s3"))}
        replies.append((q, _answers(rng, q), kw))
    store = store_at(tmp_path)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    with store.writer() as w:
        for day in range(4):
            for _ in range(rng.randint(1, 3)):  # a few commits (segments) a day
                out = []
                for _ in range(rng.randint(20, 60)):
                    q, answers, kw = rng.choice(replies)
                    at = t0 + timedelta(days=day, seconds=rng.randint(0, 86399))
                    ts = at.strftime("%Y-%m-%dT%H:%M:%S") + f".{rng.randint(0, 999):03d}Z"
                    out.append(dns_line(q, answers, ts=ts, **kw))
                add_lines(w, b"".join(out))
                w.commit()
    domains, nets = _indicators(rng)
    values = rng.sample(domains, min(3, len(domains))) + nets[:2]
    day2 = int((t0 + timedelta(days=1, hours=12)).timestamp()) * 1_000_000
    day3 = int((t0 + timedelta(days=3)).timestamp()) * 1_000_000
    for kw in ({}, {"since_us": day2}, {"until_us": day3, "sensors": ["s1", "s3"]}):
        found = search(store, matcher_for(values), **kw)  # type: ignore[arg-type]
        want = merge(found.rows)
        got = hunt(store, values, **kw)  # type: ignore[arg-type]
        assert got.rows == want
        assert (got.segments, got.problems) == (found.segments, found.problems)
        assert sum(r.count for r in got.rows) == sum(r.count for r in found.rows)
