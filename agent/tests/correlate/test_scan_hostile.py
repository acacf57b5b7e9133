# SPDX-License-Identifier: Apache-2.0
"""Hostile and unlucky query-log lines: counted and skipped, never fatal, never misattributed.

Each good line below is a hit with its own client address, so an alert that
names the wrong client (a record shifted onto another line) or a missing or
extra alert shows at once.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pdnssoc_agent.config import Config
from pdnssoc_agent.correlate import Matcher, run_correlate, run_retro
from pdnssoc_agent.correlate.scan import scan_chunk
from pdnssoc_agent.dnslog import LineReader, LogRecord, ReadStats
from tests.support.correlate import dns_line, latest, make_config, read_alerts, write_lists

EVIL = "evil.example"
NOW = datetime(2025, 11, 27, 12, 0, tzinfo=UTC)


def good(i: int, ts: str = "2025-11-27T10:00:00Z") -> bytes:
    """A hit on EVIL from client 10.0.<i>; one alert each."""
    return dns_line(EVIL, [(EVIL, "A", "192.0.2.1")], client=f"10.0.{i // 250}.{i % 250}", ts=ts)


def client_of(i: int) -> str:
    return f"10.0.{i // 250}.{i % 250}"


def _compact(line: bytes) -> bytes:
    return line.rstrip(b"\n")


# Lines that cannot be used: each must be counted as skipped and alert nothing.
BAD: dict[str, Callable[[random.Random], bytes]] = {
    "deep nesting": lambda r: b'{"x":' + b"[" * r.randint(5_000, 60_000) + b"]}",
    "deep nesting, closed": lambda r: b'{"x":' + b"[" * 3000 + b"]" * 3000 + b',"query":"a.b"}',
    "two hits on one line": lambda r: _compact(good(900)) + b"," + _compact(good(901)),
    "two hits, space": lambda r: _compact(good(902)) + b" " + _compact(good(903)),
    "two hits, nothing between": lambda r: _compact(good(904)) + _compact(good(905)),
    "hit cut short": lambda r: _compact(good(906))[: r.randint(1, 300)],
    "hit then junk": lambda r: _compact(good(907)) + b"]",
    "opening bracket": lambda r: b"[" + _compact(good(908)),
    "array of hits": lambda r: b"[" + _compact(good(909)) + b"]",
    "NUL byte": lambda r: _compact(good(910)).replace(b'"query-ip"', b'"query\x00-ip"'),
    "raw NUL in a value": lambda r: _compact(good(911)).replace(b"10.0.3.161", b"10.0.\x00"),
    "invalid UTF-8 in qname": lambda r: _compact(good(912)).replace(b"evil.", b"evil\xff."),
    "lone surrogate escape": lambda r: _compact(good(913)).replace(b"evil.", b"evil\\ud800."),
    "lone low surrogate escape": lambda r: _compact(good(914)).replace(b"evil.", b"evil\\udc00."),
    "random bytes": lambda r: (
        bytes(r.getrandbits(8) for _ in range(r.randint(1, 200))).replace(b"\n", b"") + b"\x00"
    ),
    "number": lambda r: str(r.getrandbits(300)).encode(),
    "string": lambda r: b'"evil.example"',
    "null": lambda r: b"null",
    "qname of wrong type": lambda r: b'{"dns":{"qname":5}}',
    "answers of wrong type": lambda r: b'{"query":"evil.example","answers":{"a":1}}',
    "ttl out of range": lambda r: (
        b'{"query":"evil.example","answers":[{"rdatatype":"A","rdata":"192.0.2.1","ttl":1e400}]}'
    ),
    "huge ttl": lambda r: (
        b'{"query":"evil.example","answers":[{"rdatatype":"A",'
        b'"rdata":"192.0.2.1","ttl":' + str(10**30).encode() + b"}]}"
    ),
    "client of wrong type": lambda r: b'{"query":"evil.example","client":["x"]}',
    "no query name": lambda r: b'{"dns":{"qtype":"A"}}',
    "empty object": lambda r: b"{}",
    "opening brace": lambda r: b"{",
    "closing brace": lambda r: b"}",
    "value over two lines": lambda r: b'{"query":\n"evil.example"}',
}
BAD_LINES = {"value over two lines": 2}
"""Generators whose bytes span more than one line (each line counted)."""

# Lines that are fine but match nothing: never skipped, never alerted.
BENIGN: dict[str, Callable[[random.Random], bytes]] = {
    "benign": lambda r: _compact(dns_line(f"x{r.randint(0, 9)}.benign.example")),
    "huge number in an unused field": lambda r: b'{"zz":1' + b"0" * 4000 + b',"query":"a.b"}',
    "escaped NUL": lambda r: b'{"query":"a\\u0000.benign"}',
    "timestamp overflow, no hit": lambda r: _compact(
        dns_line("x.benign", ts="9999-12-31T23:59:59-23:59")
    ),
    "carriage return": lambda r: _compact(dns_line("y.benign")) + b"\r",
    "leading blanks": lambda r: b"   " + _compact(dns_line("z.benign")),
}


def _assert_alerts(got: list[tuple[str, str]], want: list[int]) -> None:
    assert sorted(got) == sorted((client_of(i), EVIL) for i in want)


def _scan(data: bytes, stats: ReadStats) -> list[tuple[str, str]]:
    m = Matcher([EVIL], [])
    out: list[tuple[str, str]] = []

    def on_hit(rec: LogRecord, hits: list[tuple[str, str, str]]) -> None:
        assert rec.network is not None and rec.dns is not None
        assert [h[1] for h in hits] == [EVIL]
        out.append((rec.network.query_ip, rec.dns.qname))

    scan_chunk(data, m, stats, on_hit, "t")
    return out


def _mix(rng: random.Random, n: int, base: int = 0) -> tuple[bytes, list[int], int, int]:
    """(chunk, good line numbers, bad lines, lines) with hostile lines between good ones."""
    parts: list[bytes] = []
    goods: list[int] = []
    bad = lines = 0
    kinds = [*BAD, *BENIGN]
    for i in range(n):
        roll = rng.random()
        if roll < 0.4:
            parts.append(good(base + i))
            goods.append(base + i)
            lines += 1
        elif roll < 0.45:
            parts.append(b"\n")  # blank: neither a line nor skipped
        else:
            kind = rng.choice(kinds)
            if kind in BAD:
                parts.append(BAD[kind](rng) + b"\n")
                bad += BAD_LINES.get(kind, 1)
                lines += BAD_LINES.get(kind, 1)
            else:
                parts.append(BENIGN[kind](rng) + b"\n")
                lines += 1
    return b"".join(parts), goods, bad, lines


@pytest.mark.parametrize("kind", sorted(BAD))
def test_each_bad_line_is_counted_and_alerts_nothing(kind: str) -> None:
    rng = random.Random(kind)
    bad = BAD[kind](rng) + b"\n"
    data = good(1) + bad + good(2) + good(3)
    stats = ReadStats()
    _assert_alerts(_scan(data, stats), [1, 2, 3])
    n = BAD_LINES.get(kind, 1)
    assert stats.skipped == n, stats.summary()
    assert stats.lines == 3 + n


@pytest.mark.parametrize("kind", sorted(BENIGN))
def test_benign_oddities_are_read_and_alert_nothing(kind: str) -> None:
    data = good(1) + BENIGN[kind](random.Random(kind)) + b"\n" + good(2)
    stats = ReadStats()
    _assert_alerts(_scan(data, stats), [1, 2])
    assert (stats.skipped, stats.lines) == (0, 3), stats.summary()


def test_two_objects_on_one_line_do_not_shift_records() -> None:
    """The line before a hit holds two objects: the hit must keep its own client."""
    data = _compact(dns_line("benign.example")) + b"," + _compact(good(7)) + b"\n" + good(8)
    stats = ReadStats()
    _assert_alerts(_scan(data, stats), [8])
    assert stats.malformed == 1


@pytest.mark.parametrize(
    "merged",
    [
        b'{"query":\n"evil.example","network":{"query-ip":"10.9.9.9"}}\n',
        # valid JSON when the newline becomes a comma inside an unknown field's array
        b'{"x":[[1\n2]],"query":"evil.example","network":{"query-ip":"10.9.9.9"}}\n',
    ],
)
@pytest.mark.parametrize("values", [2, 3, 4])
def test_a_merged_and_a_split_line_in_one_chunk_are_both_caught(merged: bytes, values: int) -> None:
    """A value over two lines and several values on one line can keep the counts equal."""
    split = b",".join(_compact(good(10 + k)) for k in range(values)) + b"\n"
    data = good(1) + merged + split + good(4)
    stats = ReadStats()
    _assert_alerts(_scan(data, stats), [1, 4])
    assert stats.skipped == 3
    assert stats.lines == 5


@pytest.mark.parametrize("seed", range(60))
def test_random_hostile_lines_between_good_ones(seed: int) -> None:
    rng = random.Random(seed)
    data, goods, bad, lines = _mix(rng, rng.randint(1, 40))
    stats = ReadStats()
    _assert_alerts(_scan(data, stats), goods)
    assert stats.skipped == bad, stats.summary()
    assert stats.lines == lines


# ---------------------------------------------------------------------- whole runs


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = make_config(tmp_path / "data", dedup_window={"seconds": 1})
    write_lists(cfg, [EVIL], [])
    return cfg


def _clients(config: Config) -> list[str]:
    return sorted(a["client"] for a in read_alerts(config))


@pytest.mark.parametrize("seed", range(6))
def test_correlate_and_retro_survive_hostile_logs_on_every_run(config: Config, seed: int) -> None:
    rng = random.Random(seed)
    log = config.correlation.queries_file
    goods: list[int] = []
    bad = 0
    for run in range(3):
        data, g, b, _ = _mix(rng, 30, base=100 * run)
        with log.open("ab") as fh:
            fh.write(data)
        goods += g
        bad += b
        result = run_correlate(config, now=NOW)
        assert result.stats.skipped == b, result.stats.summary()
    assert _clients(config) == sorted(client_of(i) for i in goods)
    # retro reads the same lines from the archive (a first run searches every indicator)
    archive = config.correlation.archive_dir
    archive.mkdir(parents=True, exist_ok=True)
    (archive / "old.json.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    retro = run_retro(config, now=NOW)
    assert retro.stats.skipped == bad, retro.stats.summary()
    got = sorted(a["client"] for a in read_alerts(config) if a["kind"] == "retro")
    assert got == sorted(client_of(i) for i in goods)


def test_timestamp_overflow_in_a_hit_is_not_fatal(config: Config) -> None:
    log = config.correlation.queries_file
    log.write_bytes(
        good(1, ts="9999-12-31T23:59:59-23:59") + good(2, ts="0001-01-01T00:00:00+01:00") + good(3)
    )
    result = run_correlate(config, now=NOW)
    assert result.alerts == 3
    assert _clients(config) == sorted(client_of(i) for i in (1, 2, 3))


def test_retro_reads_an_archive_whose_last_line_has_no_newline(config: Config) -> None:
    archive = config.correlation.archive_dir
    archive.mkdir(parents=True)
    (archive / "q-1.json").write_bytes(good(1) + _compact(good(2)))
    retro = run_retro(config, now=NOW)
    assert retro.alerts == 2
    assert _clients(config) == [client_of(1), client_of(2)]


def test_plain_reader_can_take_a_final_line_without_newline(tmp_path: Path) -> None:
    p = tmp_path / "q.json"
    p.write_bytes(good(1) + _compact(good(2)))
    stats = ReadStats()
    chunks = list(LineReader(p, stats, complete=True).chunks())
    assert b"".join(c.data for c in chunks) == good(1) + good(2)


# ---------------------------------------------------------------------- bad clocks


def _state(config: Config) -> dict[str, list[object]]:
    path = config.correlation.state_dir / "correlate.state.json"
    alerts: dict[str, list[object]] = json.loads(path.read_text())["alerts"]
    return alerts


@pytest.mark.parametrize(
    "odd", ["9999-06-01T00:00:00Z", "2200-01-01T00:00:00Z", "1971-01-01T00:00:00Z"]
)
def test_a_line_dated_far_away_keeps_the_dedup_table(tmp_path: Path, odd: str) -> None:
    cfg = make_config(tmp_path / "data", dedup_window={"hours": 1})
    write_lists(cfg, [EVIL], [])
    log = cfg.correlation.queries_file
    log.write_bytes(good(1, ts="2025-11-27T10:00:00Z"))
    run_correlate(cfg, now=NOW)
    with log.open("ab") as fh:
        fh.write(good(2, ts=odd))  # a sensor with a bad clock
    run_correlate(cfg, now=NOW + timedelta(minutes=1))
    assert len(_state(cfg)) == 2
    with log.open("ab") as fh:  # both repeat in their buckets
        fh.write(good(1, ts="2025-11-27T10:30:00Z") + good(2, ts=odd))
    run_correlate(cfg, now=NOW + timedelta(minutes=2))
    last = latest(read_alerts(cfg))
    assert sorted((a["client"], a["revision"], a["count"]) for a in last.values()) == [
        (client_of(1), 2, 2),
        (client_of(2), 2, 2),
    ]
    assert len(read_alerts(cfg)) == 4


def test_the_dedup_table_still_forgets_what_is_old(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "data", dedup_window={"hours": 1})
    write_lists(cfg, [EVIL], [])
    log = cfg.correlation.queries_file
    log.write_bytes(
        good(1, ts="2025-11-20T10:00:00Z")  # a week before the newest data
        + good(2, ts="2025-11-27T10:00:00Z")
        + good(3, ts="9999-06-01T00:00:00Z")  # far ahead of the run's clock
    )
    run_correlate(cfg, now=NOW)
    assert len(_state(cfg)) == 3  # all just written
    run_correlate(cfg, now=NOW + timedelta(days=2))
    # untouched for more than the window and a day: the week-old bucket and the
    # one far in the future go; the newest data keeps its own, whatever the wall clock says
    kept = _state(cfg)
    assert len(kept) == 1
    (entry,) = kept.values()
    assert entry[2] == "2025-11-27T10:00:00Z"


def test_retro_forgets_alerts_dated_far_in_the_future(config: Config) -> None:
    archive = config.correlation.archive_dir
    archive.mkdir(parents=True)
    (archive / "q.json").write_bytes(good(1, ts="9999-06-01T00:00:00Z") + good(2))
    assert run_retro(config, now=NOW).alerts == 2
    state = json.loads((config.correlation.state_dir / "retro.state.json").read_text())
    assert len(state["alerts"]) == 2
    write_lists(config, [EVIL, "other.example"], [])  # something new for the next run
    run_retro(config, now=NOW + timedelta(days=2))
    state = json.loads((config.correlation.state_dir / "retro.state.json").read_text())
    assert [v[2] for v in state["alerts"].values()] == ["2025-11-27T10:00:00Z"]
