# SPDX-License-Identifier: Apache-2.0
"""The history store on ClickHouse: a real two-shard cluster on loopback, measured.

Run: ``cd agent && python -m benchmarks history_cluster`` (needs clickhouse-server,
which apt-packages.txt lists). Environment: ``BENCH_HISTORY_DAYS`` (30) and
``BENCH_HISTORY_PER_DAY`` (10,000) and the others of the ``history`` benchmark,
whose query logs (:mod:`.history_data`, cached in .cache/bench-history) it uses.

Days alternate between the two shards (as two pDNSSOC servers would fill
theirs). Figures: CPU per line of filling (the agent's decode, fold and
RowBinary encoding, and the servers' own CPU, read from /proc), beside zcat;
bytes on disk per reply held once the parts are merged, beside the gzip
archive; retro of the 1,000 indicators over 1, 7 and all days and hunt of one
domain over all days, wall time through the Distributed tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.dnslog import ReadStats
from pdnssoc_agent.history import HistoryStore, QueryResult, Source, decode_chunk, search
from pdnssoc_agent.history.clickhouse import Client, ClusterStore
from pdnssoc_agent.history.hunt import matcher_for, merge
from pdnssoc_agent.history.query import Row

from .bench_history import _prepare, _shape

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import clickhouse as ch

CHUNK = 1 << 20


def _server_cpu(nodes: list[ch.Node]) -> float:
    """Seconds of CPU the server processes used so far (user + system)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for n in nodes:
        pid = n.proc.pid if n.proc is not None else 0
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _fill(stores: list[ClusterStore], files: list[Path], per_commit: int) -> tuple[int, float]:
    lines = 0
    cpu0 = time.process_time()
    for day, path in enumerate(files):
        with stores[day % len(stores)].writer() as w:
            data = path.read_bytes()
            fp = path.name
            at = 0
            while at < len(data):
                end = data.rfind(b"\n", at, at + CHUNK) + 1 or len(data)
                recs = decode_chunk(data[at:end], ReadStats(), path.name, at)
                lines += len(recs)
                w.add(recs, Source(fp, at, end, path.name))
                if len(w.batch) >= per_commit:
                    w.commit()
                at = end
            w.commit()
    return lines, time.process_time() - cpu0


def _zcat(files: list[Path]) -> float:
    t = time.perf_counter()
    for f in files:
        subprocess.run(["zcat", str(f)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> None:
    shape = _shape()
    work = _prepare(shape)
    plain = sorted((work / "logs").glob("*.json"))
    gz = sorted((work / "logs").glob("*.json.gz"))
    gz_bytes = sum(f.stat().st_size for f in gz)
    base = Path(tempfile.mkdtemp(prefix="bench-ch-"))
    with ch.cluster(base, shards=2) as nodes:
        stores = [ClusterStore(Client(n.url, "pdnssoc", ch.PASSWORD)) for n in nodes]
        for s in stores:
            s.create()
        srv0 = _server_cpu(nodes)
        wall = time.perf_counter()
        lines, agent_cpu = _fill(stores, plain, per_commit=max(1, shape.per_day // 24))
        wall = time.perf_counter() - wall
        srv = _server_cpu(nodes) - srv0
        zc = _zcat(gz)
        rows = replies = disk = 0
        for s in stores:
            s.client.execute("OPTIMIZE TABLE pdnssoc.history_local FINAL")
            (r,) = s.client.rows(
                "SELECT sum(rows) AS rows, sum(bytes) AS bytes FROM system.parts "
                "WHERE active AND database = 'pdnssoc'"
            )
            (c,) = s.client.rows("SELECT count() AS n, sum(count) AS c FROM pdnssoc.history_local")
            rows, replies, disk = rows + int(c["n"]), replies + int(c["c"]), disk + int(r["bytes"])
        print(f"{shape.days} days x {shape.per_day:,} replies: {lines:,} lines, {rows:,} rows "
              f"({replies:,} replies), 2 shards")  # fmt: skip
        print(f"ingest: agent {agent_cpu / lines * 1e6:.1f} us/line, servers "
              f"{srv / lines * 1e6:.1f} us/line (zcat {zc / lines * 1e6:.1f} us/line), "
              f"wall {lines / wall:,.0f} lines/s")  # fmt: skip
        print(f"disk: {disk / replies:.1f} bytes/reply ({disk / rows:.1f} a row) on ClickHouse, "
              f"gzip JSON {gz_bytes / lines:.1f} bytes/reply")  # fmt: skip
        m = Matcher()
        m.add_domain_file(work / "iocs-domains.txt")
        for line in (work / "iocs-ips.txt").read_text().split():
            m.add_network(line)
        hunt = json.loads((work / "hunt.json").read_text())
        t0_us = 1_767_225_600_000_000  # 2026-01-01, the first day of the data
        for days in sorted({1, min(7, shape.days), shape.days}):
            since = t0_us + (shape.days - days) * 86_400_000_000
            t = time.perf_counter()
            res = stores[0].search(m, since_us=since)
            took = time.perf_counter() - t
            found = sum(r.count for r in res.rows)
            print(f"retro 1,000 indicators, {days} day(s): {took:.3f} s, "
                  f"{len(res.rows):,} rows, {found:,} replies")  # fmt: skip
        t = time.perf_counter()
        found = stores[1].search(matcher_for([hunt["popular"]]))
        print(f"hunt {hunt['popular']}, {shape.days} days: {time.perf_counter() - t:.3f} s, "
              f"{len(found.rows):,} rows")  # fmt: skip
        _cross_check(plain, base / "embedded", [(res, m), (found, matcher_for([hunt["popular"]]))])


def _lines(rows: list[Row]) -> list[tuple[object, ...]]:
    return sorted((r.sensor, r.client, r.qname, tuple(r.ips), r.count, r.first_us, r.last_us)
                  for r in merge(rows))  # fmt: skip


def _cross_check(
    files: list[Path], root: Path, searches: list[tuple[QueryResult, Matcher]]
) -> None:
    """The embedded store, filled with the same files, must find the same rows."""
    store = HistoryStore(root)
    with store.writer() as w:
        for path in files:
            data = path.read_bytes()
            w.add(decode_chunk(data, ReadStats(), path.name), Source(path.name, 0, len(data)))
            w.commit()
    for got, matcher in searches:
        # rows of one reply committed in different batches are separate rows until
        # merged: compare them as hunt shows them (one line per reply)
        want = search(store, matcher)
        if _lines(got.rows) != _lines(want.rows):
            raise SystemExit("the cluster and the embedded store found different replies")
    print("cross-check: the embedded store found the same replies for retro (all days) and hunt")


if __name__ == "__main__":
    main()
