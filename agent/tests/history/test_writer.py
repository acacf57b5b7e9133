# SPDX-License-Identifier: Apache-2.0
"""Filling the history store: aggregation, idempotence, crashes, compaction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pdnssoc_agent.dnslog import LineReader, ReadStats
from pdnssoc_agent.errors import BusyError
from pdnssoc_agent.history import Source, StoreError, compact, decode_chunk
from pdnssoc_agent.history.manifest import SegmentInfo
from tests.support.correlate import SAMPLE, SAMPLE_MINIFIED, dns_line
from tests.support.history import add_lines, fp_of, replies_by_key, rows, store_at
from tests.support.paths import AGENT_DIR

A = [("www.example.org", "A", "192.0.2.10")]
B = [("www.example.org", "A", "192.0.2.11")]


def _us(text: str) -> int:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(when.timestamp()) * 1_000_000 + when.microsecond


def test_repeats_fold_per_bucket_and_the_counts_add_up(tmp_path: Path) -> None:
    lines = [
        # one client, one answer, one hour: one row of four; the times are out of order and
        # of every length Go writes (trailing zeros dropped, none at all on the second)
        dns_line("www.example.org", A, ts="2026-01-05T10:00:00.5Z"),
        dns_line("www.example.org", A, ts="2026-01-05T10:00:00Z"),
        dns_line("www.example.org", A, ts="2026-01-05T10:00:00.50001Z"),
        dns_line("WWW.Example.ORG", A, ts="2026-01-05T10:59:59.999999Z"),  # another spelling
        dns_line("www.example.org", A, ts="2026-01-05T10:30:00Z"),
        dns_line("www.example.org", B, ts="2026-01-05T10:31:00Z"),  # round robin: a row of its own
        dns_line("www.example.org", A, ts="2026-01-05T11:00:00Z"),  # the next hour
        dns_line("www.example.org", A, ts="2026-01-05T10:01:00Z", client="192.0.2.99"),
        dns_line("www.example.org", A, ts="2026-01-05T10:02:00Z", sensor="other"),
        dns_line("nx.example.org", [], ts="2026-01-05T10:03:00Z", rcode="NXDOMAIN"),
        b'{"dns": {"qtype": "A"}}\n',  # no query name: counted, not stored
        b"not json\n",
    ]
    store = store_at(tmp_path)
    data = b"".join(lines)
    with store.writer() as w:
        assert add_lines(w, data)
        result = w.commit()
    assert result.replies == 10
    got = rows(store)
    assert sum(r["count"] for r in got) == 10
    assert result.rows == len(got) == 7
    main = [r for r in got if r["client"] == "192.0.2.50" and r["sensor"] == "sensor-t"
            and r["ip4"] == [0xC000020A] and r["qname"] is None]  # fmt: skip
    by_first = sorted(main, key=lambda r: r["first"])
    assert [r["count"] for r in by_first] == [4, 1]
    assert by_first[0]["first"] == _us("2026-01-05T10:00:00Z")
    assert by_first[0]["last"] == _us("2026-01-05T10:30:00Z")
    assert by_first[0]["rname"] == "gro.elpmaxe.www"
    upper = [r for r in got if r["qname"] == "WWW.Example.ORG"]
    assert len(upper) == 1 and upper[0]["rname"] == "gro.elpmaxe.www"
    nx = [r for r in got if r["rcode"] == "NXDOMAIN"]
    assert nx[0]["ip4"] == [] and nx[0]["cnames"] == []
    assert store.manifest().segments[0].replies == 10


def test_a_held_range_is_not_added_again(tmp_path: Path) -> None:
    data = b"".join(dns_line(f"h{i}.example.org", A) for i in range(5))
    store = store_at(tmp_path)
    with store.writer() as w:
        assert add_lines(w, data[: len(data) // 5 * 2], fp="f")
        w.commit()
    with store.writer() as w:  # again: the same bytes (a re-read after a crash, a second import)
        assert not add_lines(w, data[: len(data) // 5 * 2], fp="f")
        assert w.resume_at("f", 0) == len(data) // 5 * 2
        assert add_lines(w, data[len(data) // 5 * 2 :], fp="f", start=len(data) // 5 * 2)
        assert not add_lines(w, data[len(data) // 5 * 2 :], fp="f", start=len(data) // 5 * 2)
        result = w.commit()
    assert result.skipped == 2
    assert sum(replies_by_key(store).values()) == 5
    assert store.manifest().sources["f"].ranges == [[0, len(data)]]


def test_a_range_partly_held_is_refused_with_where_to_resume(tmp_path: Path) -> None:
    data = b"".join(dns_line(f"h{i}.example.org", A) for i in range(4))
    half = len(data) // 2
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, data[:half], fp="f")
        w.commit()
        with pytest.raises(StoreError, match=f"read from {half}"):
            add_lines(w, data[half // 2 :], fp="f", start=half // 2)


def test_importing_the_same_file_twice_counts_it_once(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for _ in range(2):
        with store.writer() as w:
            for path in (SAMPLE, SAMPLE_MINIFIED):
                stats = ReadStats()
                head = path.read_bytes()
                for ch in LineReader(path, stats).chunks():
                    start = ch.end - len(ch.data)
                    recs = decode_chunk(ch.data, stats, str(path), start)
                    w.add(recs, Source(fp_of(head), start, ch.end, str(path)))
            w.commit()
    got = rows(store)
    # the sample holds 7 queries and their 7 replies; the minified archive the same 14 lines
    assert sum(r["count"] for r in got) == 28
    minified = [r for r in got if r["qtype"] == ""]
    assert sum(r["count"] for r in minified) == 14
    assert {"Evil.Example.COM"} <= {r["qname"] for r in got}


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from tests.support.history import add_lines
    from pdnssoc_agent.history import HistoryStore

    def die_on_save(frame, event, arg):
        # the process dies the moment the manifest is about to be replaced:
        # the segment file is written and fsynced, the checkpoint is not
        if event == "call" and frame.f_code.co_name == "save" and \\
                frame.f_globals.get("__name__") == "pdnssoc_agent.history.manifest":
            os._exit(137)

    store = HistoryStore(Path({root!r}))
    with store.writer() as w:
        add_lines(w, Path({data!r}).read_bytes(), fp="f")
        sys.setprofile(die_on_save)
        w.commit()
    """
)


def test_a_crash_between_segment_write_and_checkpoint_neither_loses_nor_doubles(
    tmp_path: Path,
) -> None:
    data = b"".join(dns_line(f"h{i % 3}.example.org", A) for i in range(9))
    (tmp_path / "lines.json").write_bytes(data)
    store = store_at(tmp_path)
    store.root.mkdir()
    script = CRASH.format(root=str(store.root), data=str(tmp_path / "lines.json"))
    # the child imports the agent and tests.support as this process does
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(AGENT_DIR), *sys.path])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, check=False, timeout=120)
    assert proc.returncode == 137
    left = list(store.root.glob("day=*/*.parquet"))
    assert len(left) == 1  # written, never listed
    assert not store.manifest_path.exists()
    with store.writer() as w:  # opening removes it; the range is not held, so it is read again
        assert not left[0].exists()
        assert w.resume_at("f") == 0
        assert add_lines(w, data, fp="f")
        w.commit()
    with store.writer() as w:  # the caller's own checkpoint was lost: it sends the range again
        assert not add_lines(w, data, fp="f")
        w.commit()
    assert sum(replies_by_key(store).values()) == 9


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    with store.writer(), pytest.raises(BusyError), store.writer():
        pass


def test_a_store_made_with_another_bucket_is_refused(tmp_path: Path) -> None:
    store = store_at(tmp_path, bucket="day")
    with store.writer() as w:
        add_lines(w, dns_line("a.example.org", A))
        w.commit()
    with pytest.raises(StoreError, match="day buckets"):
        store_at(tmp_path).manifest()


def test_compaction_merges_the_same_reply_from_many_commits(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    pos = 0
    with store.writer() as w:
        for minute in range(12):  # twelve correlate runs in the same hour
            data = b"".join(
                dns_line(f"h{i}.example.org", A, ts=f"2026-01-05T10:{minute:02d}:{i:02d}Z")
                for i in range(5)
            )
            add_lines(w, data, fp="f", start=pos)
            pos += len(data)
            w.commit()
            w.compact()
        before = replies_by_key(store)
        assert len(store.manifest().segments) == 12  # the day is not over: left as written
        w.compact(full_before="2026-01-06")
    segs = store.manifest().segments
    assert len(segs) == 1 and segs[0].rows == 5 and segs[0].replies == 60
    assert replies_by_key(store) == before
    got = rows(store)
    assert {r["count"] for r in got} == {12}
    assert min(r["first"] for r in got) == _us("2026-01-05T10:00:00Z")
    assert max(r["last"] for r in got) == _us("2026-01-05T10:11:04Z")
    assert sorted(p.name for p in store.root.glob("day=*/*.parquet")) == [Path(segs[0].path).name]


def test_an_open_day_with_too_many_segments_is_merged_by_size_tiers() -> None:
    segs = [SegmentInfo(f"s{i}", "2026-01-05", rows, rows, 1, 0, 0)
            for i, rows in enumerate([1000] * 3 + [100] * 4 + [5000])]  # fmt: skip
    assert [s.path for s in compact.pick(segs)] == ["s3", "s4", "s5", "s6"]
    assert compact.pick(segs[:6]) == []  # three of a tier: not yet
    assert len(compact.pick(segs, full=True)) == 8


def test_rows_go_to_the_day_of_their_first_reply(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    data = (
        dns_line("a.example.org", A, ts="2026-01-05T23:59:59.9Z")
        + dns_line("a.example.org", A, ts="2026-01-06T00:00:00.1Z")
        + dns_line("a.example.org", A, ts="2026-01-06T01:00:00+01:00")
    )  # 00:00 UTC
    with store.writer() as w:
        add_lines(w, data)
        w.commit()
    days = {s.day: s.replies for s in store.manifest().segments}
    assert days == {"2026-01-05": 1, "2026-01-06": 2}
    assert all(s.first_us <= s.last_us for s in store.manifest().segments)
    assert (
        datetime.fromtimestamp(store.manifest().segments[0].first_us / 1e6, UTC).date().isoformat()
        in days
    )


def test_a_renamed_fingerprint_keeps_what_is_held(tmp_path: Path) -> None:
    # correlate lengthens the fingerprint of a file first read while it was short
    data = dns_line("a.example.org", A)
    store = store_at(tmp_path)
    with store.writer() as w:
        add_lines(w, data, fp="short")
        w.commit()
        w.rename_source("short", "long")
    with store.writer() as w:
        assert w.held("short") == []
        assert not add_lines(w, data, fp="long")
        with pytest.raises(StoreError, match="already another file's"):
            add_lines(w, dns_line("b.example.org", A), fp="other")
            w.commit()
            w.rename_source("long", "other")
    assert sum(replies_by_key(store).values()) == 2
