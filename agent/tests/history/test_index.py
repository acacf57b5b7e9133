# SPDX-License-Identifier: Apache-2.0
"""The segments' companion index: written with them, read when present, checked."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.history import HistoryStore, hunt, search, segment
from pdnssoc_agent.history import index as hindex
from tests.support.correlate import dns_line
from tests.support.history import add_lines, flip_in_column, rows, store_at


@pytest.fixture(autouse=True)
def _row_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small row groups: a segment of these few rows has some to skip, and an index."""
    monkeypatch.setattr(segment, "ROW_GROUP", 5)


def _lines() -> bytes:
    out = []
    for i in range(40):
        q = f"h{i}.Example.ORG."
        answers = [(q, "CNAME", f"Edge{i % 3}.CDN.example.net."),
                   (f"edge{i % 3}.cdn.example.net", "A", f"10.0.{i % 4}.{i}"),
                   (f"edge{i % 3}.cdn.example.net", "AAAA", f"2001:db8::{i:x}")]  # fmt: skip
        out.append(dns_line(q, answers, ts=f"2026-01-05T10:{i:02d}:00Z", sensor=f"s{i % 2}"))
    return b"".join(out)


def _store(tmp_path: Path) -> HistoryStore:
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, _lines())
        w.commit()
    return store


def _idx_path(store: HistoryStore) -> Path:
    (seg,) = store.manifest().segments
    return hindex.path_for(store.segment_path(seg))


def _pairs(sec: hindex.Section) -> list[tuple[object, int]]:
    return list(zip(sec.keys.to_pylist(), sec.rows.to_pylist(), strict=True))


def _domains(name: str) -> list[str]:
    """A reversed name and each of its parents, reversed: ``gro.elpmaxe.1h`` ->
    ``gro``, ``gro.elpmaxe``, ``gro.elpmaxe.1h``."""
    labels = name.split(".")
    return [".".join(labels[:i]) for i in range(1, len(labels) + 1)]


def test_each_segment_has_an_index_of_what_it_holds_and_where(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (seg,) = store.manifest().segments
    assert seg.index == _idx_path(store).stat().st_size > 0
    idx = hindex.read(_idx_path(store), seg.index, seg.rows)
    assert idx.counts["seen"] and pq.ParquetFile(_idx_path(store)).metadata.num_row_groups == 4
    stored = rows(store)
    # every CNAME target (canonical, reversed) and address, with its row, sorted by key
    targets = [t.lower().rstrip(".")[::-1] for r in stored for t in r["cnames"]]
    want_c = sorted((t.lower().rstrip(".")[::-1], i) for i, r in enumerate(stored)
                    for t in r["cnames"])  # fmt: skip
    assert _pairs(idx.section("cnames")) == want_c
    want_4 = sorted((v.to_bytes(4, "big"), i) for i, r in enumerate(stored) for v in r["ip4"])
    assert _pairs(idx.section("ip4")) == want_4
    want_6 = sorted((v, i) for i, r in enumerate(stored) for v in r["ip6"])
    assert _pairs(idx.section("ip6")) == want_6
    # seen: each domain a name or a CNAME target is in, each /24 and /48 of an answer
    seen = {hindex.domain_key(hindex.NAME, d) for r in stored for d in _domains(r["rname"])}
    seen |= {hindex.domain_key(hindex.CNAME, d) for t in targets for d in _domains(t)}
    seen |= {hindex.net4_key(v >> 8) for r in stored for v in r["ip4"]}
    seen |= {hindex.net6_key(v[:6]) for r in stored for v in r["ip6"]}
    assert idx.seen().to_pylist() == sorted(seen)
    assert idx.which(pa.array([hindex.domain_key(hindex.NAME, "gro.elpmaxe"),
                               hindex.domain_key(hindex.NAME, "gro.elpmaxe.1"),
                               hindex.domain_key(hindex.CNAME, "ten.elpmaxe.ndc")], pa.uint32())
                     ) == [0, 2]  # fmt: skip
    assert store.verify() == []
    assert store.size_on_disk() >= seg.bytes + seg.index


def test_a_search_reads_no_section_of_a_segment_that_cannot_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indicators none of which is among a segment's seen keys: only that section is read,
    and nothing of the segment's rows."""
    store = _store(tmp_path)
    read: list[str] = []
    section = hindex.Index._section

    def spy(self: hindex.Index, name: str, groups: list[int]) -> hindex.Section:
        if name not in read:
            read.append(name)
        return section(self, name, groups)

    monkeypatch.setattr(hindex.Index, "_section", spy)
    groups = pq.ParquetFile.read_row_groups
    rows_read: list[list[int]] = []

    def spy_groups(self: pq.ParquetFile, row_groups: list[int], **kw: object) -> pa.Table:
        if "rname" in self.schema_arrow.names:  # the segment's, not the index's
            rows_read.append(list(row_groups))
        return groups(self, row_groups, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy_groups)
    unseen = Matcher(
        ["example.com", "h1.example.org.evil", "edge9.cdn.example.net"],
        ["10.1.0.0/16", "10.0.9.0/24", "2001:db9:1::/48", "2001:db8:1:1::/64"],
    )
    assert search(store, unseen).rows == []
    assert read == ["seen"] and rows_read == []
    read.clear()
    found = search(store, Matcher(["h1.example.org"], ["10.0.1.0/24"]))
    assert {r.qname for r in found.rows} >= {"h1.Example.ORG."}
    assert read == ["seen", "ip4"] and rows_read  # the names from the segment, not the index
    # a network too wide to list its /24s reads the section
    read.clear()
    assert search(store, Matcher([], ["11.0.0.0/8", "2001:db9::/32"])).rows == []
    assert read == ["ip4", "ip6"]  # the seen keys are not asked


def test_the_index_spares_row_groups_that_hold_no_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Damage in the address column of a row group that holds no match: a search with
    the index never reads it; the same search without the index does (every row's
    addresses), which is what the index saves."""
    with_idx = _store(tmp_path / "a")
    monkeypatch.setattr(hindex, "WRITE", False)
    without = _store(tmp_path / "b")
    for store in (with_idx, without):
        (seg,) = store.manifest().segments
        path = store.segment_path(seg)
        assert pq.ParquetFile(path).metadata.num_row_groups == 8
        flip_in_column(path, "ip4.list.element")  # row group 0, where h39 is not
    # 10.0.3.39: the reply for h39, in the last row group
    m = Matcher([], ["10.0.3.39"])
    found = search(with_idx, m)
    assert found.problems == []
    assert [(r.qname, r.hits) for r in found.rows] == [
        ("h39.Example.ORG.", [("ip", "10.0.3.39", "10.0.3.39")])
    ]
    assert len(search(without, m).problems) == 1
    assert with_idx.manifest().segments[0].index and not without.manifest().segments[0].index


def test_a_store_without_indexes_and_one_with_answer_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_idx = _store(tmp_path / "a")
    monkeypatch.setattr(hindex, "WRITE", False)
    without = _store(tmp_path / "b")
    monkeypatch.undo()
    assert not any(p.suffix == ".idx" for p in without.root.rglob("*"))
    values = ["example.org", "cdn.example.net", "10.0.1.0/24", "2001:db8::/120", "10.0.0.8"]
    for v in values:
        a, b = hunt(with_idx, [v]), hunt(without, [v])
        assert a.rows and a.rows == b.rows, v


@pytest.mark.parametrize("damage", ["flipped byte", "flipped in a section", "truncated", "missing"])
def test_a_damaged_index_is_reported_and_the_segment_still_answers(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path)
    want = hunt(store, ["cdn.example.net"]).rows
    path = _idx_path(store)
    data = path.read_bytes()
    if damage == "flipped byte":
        flip_in_column(path, "row")  # in the seen keys, which every search reads
    elif damage == "flipped in a section":
        flip_in_column(path, "key", group=1)  # the CNAME targets, read once seen says so
    elif damage == "truncated":
        path.write_bytes(data[:-10])
    else:
        path.unlink()
    with caplog.at_level(logging.WARNING):
        got = hunt(store, ["cdn.example.net"])
    assert got.rows == want and got.problems == []
    assert "searching its segment without it" in caplog.text
    (problem,) = store.verify()
    assert str(path) in problem
    (seg,) = store.manifest().segments
    cheap = store.check(seg, full=False)  # what status checks: size and presence
    assert (cheap is None) == damage.startswith("flipped")


def test_a_segment_of_one_row_group_has_no_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment, "ROW_GROUP", 40)  # _lines() makes 40 rows
    store = _store(tmp_path)
    (seg,) = store.manifest().segments
    assert seg.rows == 40 and seg.index == 0
    assert not list(store.root.rglob("*.idx"))
    assert [r.qname for r in hunt(store, ["h7.example.org"]).rows] == ["h7.Example.ORG."]


def test_merging_and_expiry_take_the_indexes_along(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment, "ROW_GROUP", 1)  # a segment of two rows or more has an index
    store = store_at(tmp_path)
    with store.writer() as w:
        for day in (5, 6):
            for hour in (10, 11):
                ts = f"2026-01-0{day}T{hour}:00:00Z"
                data = dns_line("a.example.org", ts=ts) + dns_line("b.example.org", ts=ts)
                add_lines(w, data, fp=f"f{day}{hour}")
                w.commit()
        assert len(list(store.root.rglob("*.idx"))) == 4
        w.compact(full_before="2026-01-07")
        segs = store.manifest().segments
        assert sorted(p.name for p in store.root.rglob("*.idx")) == sorted(
            Path(s.path).with_suffix(".idx").name for s in segs
        )
        assert all(s.index for s in segs) and store.verify() == []
        now = datetime(2026, 1, 7, 12, tzinfo=UTC)
        w.expire(timedelta(days=1), now=now)
    (seg,) = store.manifest().segments
    assert [p.name for p in store.root.rglob("*.idx")] == [Path(seg.path).with_suffix(".idx").name]


def test_an_index_no_manifest_lists_is_removed_when_a_writer_opens(tmp_path: Path) -> None:
    store = _store(tmp_path)
    stray = _idx_path(store).with_name("seg-00000099.idx")
    stray.write_bytes(b"left by a crash")
    with store.writer():
        pass
    assert not stray.exists() and _idx_path(store).exists()


def test_ipv4_keys_sort_as_numbers() -> None:
    addrs = ["9.0.0.1", "10.0.0.1", "128.0.0.1", "255.255.255.255", "0.0.0.1"]
    numbers = pa.array([int.from_bytes(socket.inet_aton(a), "big") for a in addrs], pa.uint32())
    keys = hindex._be4(numbers).to_pylist()
    assert [socket.inet_ntoa(k) for k in keys] == addrs
    assert [socket.inet_ntoa(k) for k in sorted(keys)] == sorted(addrs, key=socket.inet_aton)
