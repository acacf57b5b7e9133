# SPDX-License-Identifier: Apache-2.0
"""History store benchmark: candidate stores side by side on the same query logs.

Run: ``make bench BENCH=history`` (or ``cd agent && python -m benchmarks history``).
Environment (defaults give a run of a couple of minutes):

* ``BENCH_HISTORY_DAYS`` (30) and ``BENCH_HISTORY_PER_DAY`` (10,000 replies a day);
  the issue's scale is 10,000,000 a day, out of reach of one benchmark run here,
  so run several sizes and read the curve;
* ``BENCH_HISTORY_SENSORS`` (10), ``BENCH_HISTORY_CLIENTS`` (4 clients a sensor as the
  server sees them: masked to /16 by default), ``BENCH_HISTORY_HOSTS`` (200,000 names);
* ``BENCH_HISTORY_COMMIT_MINUTES`` (60): the store commits once per that many minutes
  of traffic (correlate runs every minute and hands its lines over; the store
  writes when its batch is that old); ``BENCH_HISTORY_CANDIDATES``
  (``parquet,duckdb,sqlite``);
* ``BENCH_REPEAT`` (1): each CPU figure is the best of that many fresh processes.

The ``duckdb`` candidate needs the duckdb package, which the agent does not
depend on; without it that candidate is left out.

Figures (not pass/fail): bytes on disk per reply held, beside today's gzip JSON;
CPU per line of filling the store, beside ``correlate``'s own and zcat's; retro of
1,000 indicators over 1, 7 and 30 days against today's raw rescan of the same
days, and over every day with 1,000 indicators almost never resolved (the daily
case); hunt of one domain over every day. Every search is cross-checked: the
candidates must find the same replies, and as many as the lines a raw scan
matches.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pdnssoc_agent.config import parse_config
from pdnssoc_agent.correlate import run_correlate, run_retro
from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.correlate.scan import _match, scan_chunk
from pdnssoc_agent.correlate.step import gc_paused
from pdnssoc_agent.dnslog import LineReader, LogRecord, ReadStats
from pdnssoc_agent.state import write_pointer

from .history_data import T0, Shape, generate

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench-history"
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
FP_LEN = 1024


def _shape() -> Shape:
    e = os.environ.get
    return Shape(
        days=int(e("BENCH_HISTORY_DAYS", "30")),
        per_day=int(e("BENCH_HISTORY_PER_DAY", "10000")),
        sensors=int(e("BENCH_HISTORY_SENSORS", "10")),
        clients=int(e("BENCH_HISTORY_CLIENTS", "4")),
        hosts=int(e("BENCH_HISTORY_HOSTS", "200000")),
    )


# --------------------------------------------------------------------------- helpers


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _config(data_dir: Path, domains: Path, ips: Path, *, store: bool = False,
            **correlation: str) -> Any:  # fmt: skip
    return parse_config(
        {
            "data_dir": str(data_dir),
            "correlation": {
                "malicious_domains_file": str(domains),
                "malicious_ips_file": str(ips),
                "retro_lookback": {"days": 36500},
                **correlation,
            },
            "history": {"enabled": store},
        }
    )


def _matcher(work: Path) -> Matcher:
    m = Matcher()
    m.add_domain_file(work / "iocs-domains.txt")
    for line in (work / "iocs-ips.txt").read_text().split():
        m.add_network(line)
    return m


def _files(work: Path, kind: str) -> list[Path]:
    suffix = ".json.gz" if kind == "gz" else ".json"
    return sorted(p for p in (work / "logs").iterdir() if p.name.endswith(suffix))


# --------------------------------------------------------------------------- workers


def _w_correlate(work: Path, a: argparse.Namespace) -> dict[str, Any]:
    """A scheduled run_correlate (no PATH) over the plain logs as rotated files in the
    archive, with the history store off or on (``--kind parquet``: the wired path,
    filling the store in the same pass)."""
    import pdnssoc_agent.history  # noqa: F401, PLC0415 - imported before the clock starts

    store = a.kind == "parquet"
    data = work / ("run-correlate-store" if store else "run-correlate")
    shutil.rmtree(data, ignore_errors=True)
    archive = data / "archive"
    archive.mkdir(parents=True)
    for f in _files(work, "plain"):
        (archive / f.name).symlink_to(f)
    cfg = _config(data, work / "iocs-domains.txt", work / "iocs-ips.txt", store=store,
                  archive_dir=str(archive))  # fmt: skip
    cfg.correlation.queries_file.write_bytes(b"")
    # the previous run long ago: every archive file is new to this one
    write_pointer(cfg.correlation.last_correlation_pointer_file, datetime(1971, 1, 1, tzinfo=UTC))
    c0 = _cpu()
    r = run_correlate(cfg)
    out = {"cpu": _cpu() - c0, "lines": r.stats.lines, "alerts": r.alerts}
    if store:
        from pdnssoc_agent.history import HistoryStore  # noqa: PLC0415

        m = HistoryStore(cfg.history.dir).manifest()
        out["replies"] = sum(seg.replies for seg in m.segments)
    return out


def _w_retro_store(work: Path, _: argparse.Namespace) -> dict[str, Any]:
    """run_retro without paths (all indicators new) over the store the wired correlate
    filled, the archive being the gzip logs: the store answers, nothing is scanned raw."""
    data = work / "run-retro-store"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    archive = data / "archive"
    archive.mkdir()
    for f in _files(work, "gz"):
        (archive / f.name).symlink_to(f)
    cfg = _config(data, work / "iocs-domains.txt", work / "iocs-ips.txt", store=True,
                  archive_dir=str(archive), queries_file=str(data / "queries.json"))  # fmt: skip
    shutil.copytree(work / "run-correlate-store" / "history", cfg.history.dir)
    c0, t0 = _cpu(), time.perf_counter()
    r = run_retro(cfg, progress=None)
    return {"cpu": _cpu() - c0, "wall": time.perf_counter() - t0, "lines": r.stats.lines,
            "alerts": r.alerts}  # fmt: skip


def _w_retro_raw(work: Path, a: argparse.Namespace) -> dict[str, Any]:
    data = work / "run-retro"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    cfg = _config(data, work / "iocs-domains.txt", work / "iocs-ips.txt")
    files = _files(work, "gz")[-a.days :]
    c0, t0 = _cpu(), time.perf_counter()
    r = run_retro(cfg, files, progress=None)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    # the lines a raw scan matches, for the cross-check of the stores' answers
    matcher = _matcher(work)
    stats, hits = ReadStats(), [0]

    def on_hit(_rec: LogRecord, _h: list[Any]) -> None:
        hits[0] += 1

    for f in files:
        for ch in LineReader(f, stats).chunks():
            scan_chunk(ch.data, matcher, stats, on_hit, str(f))
    return {"cpu": cpu, "wall": wall, "lines": r.stats.lines, "alerts": r.alerts, "hits": hits[0]}


def _fp(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(FP_LEN)).hexdigest()[:32]


def _w_ingest(work: Path, a: argparse.Namespace) -> dict[str, Any]:
    """correlate's loop over the plain logs, with or without filling a store."""
    import pdnssoc_agent.history  # noqa: F401, PLC0415 - imported before the clock starts

    kind = a.kind
    matcher = _matcher(work)
    minutes = a.commit_minutes or int(os.environ.get("BENCH_HISTORY_COMMIT_MINUTES", "60"))
    # (the queries read store-<kind>: a run over part of the days fills one of its own)
    part = f"-first{a.first_days}-every{minutes}m" if a.first_days else ""
    store_dir = work / f"store-{kind}{part}"
    shutil.rmtree(store_dir, ignore_errors=True)
    per_day = int(os.environ.get("BENCH_HISTORY_PER_DAY", "10000"))
    commit_every = max(1, per_day * minutes // 1440)
    stats = ReadStats()
    found = [0]

    def on_hit(_rec: LogRecord, _h: list[Any]) -> None:
        found[0] += 1

    with gc_paused():
        return _ingest(work, kind, matcher, store_dir, commit_every, stats, found, on_hit,
                       a.first_days)  # fmt: skip


def _ingest(  # noqa: PLR0917
    work: Path,
    kind: str,
    matcher: Matcher,
    store_dir: Path,
    commit_every: int,
    stats: ReadStats,
    found: list[int],
    on_hit: Any,
    first_days: int = 0,
) -> dict[str, Any]:
    files = _files(work, "plain")[: first_days or None]
    c0, t0 = _cpu(), time.perf_counter()
    if kind == "none":
        for f in files:
            for ch in LineReader(f, stats).chunks():
                scan_chunk(ch.data, matcher, stats, on_hit, str(f))
        return {"cpu": _cpu() - c0, "wall": time.perf_counter() - t0, "lines": stats.lines}
    fill = _fill_parquet if kind == "parquet" else _fill_sqlite
    out = fill(files, matcher, store_dir, commit_every, stats, found)
    return {"cpu": _cpu() - c0, "wall": time.perf_counter() - t0, "lines": stats.lines,
            "hits": found[0], **out}  # fmt: skip


def _fill_parquet(  # noqa: PLR0917
    files: list[Path],
    matcher: Matcher,
    store_dir: Path,
    commit_every: int,
    stats: ReadStats,
    found: list[int],
) -> dict[str, Any]:
    """correlate's loop handing each chunk's records to the store; a commit per
    ``commit_every`` lines, a day's segments merged once the day is over."""
    from pdnssoc_agent.history import HistoryStore, Source, decode_chunk  # noqa: PLC0415

    store = HistoryStore(store_dir)
    commits, commit_cpu = 0, 0.0
    with store.writer() as w:
        for day, f in enumerate(files):
            fp, since = _fp(f), 0
            for ch in LineReader(f, stats).chunks():
                start = ch.end - len(ch.data)
                recs = decode_chunk(ch.data, stats, str(f), start)
                found[0] += len(_match(recs, matcher, stats, str(f)))  # type: ignore[arg-type]
                w.add(recs, Source(fp, start, ch.end, str(f)))
                since += len(recs)
                if since >= commit_every:
                    c = _cpu()
                    w.commit()
                    w.compact()
                    commit_cpu += _cpu() - c
                    commits, since = commits + 1, 0
            c = _cpu()
            w.commit()
            w.compact(full_before=(T0 + timedelta(days=day)).strftime("%Y-%m-%d"))
            commit_cpu += _cpu() - c
            commits += 1
        w.compact(full_before="9999-12-31")
        m = w.manifest
    return {"bytes": store.size_on_disk(), "rows": sum(s.rows for s in m.segments),
            "replies": sum(s.replies for s in m.segments), "files": len(m.segments),
            "commits": commits, "commit_cpu": commit_cpu}  # fmt: skip


def _fill_sqlite(  # noqa: PLR0917
    files: list[Path],
    matcher: Matcher,
    store_dir: Path,
    commit_every: int,
    stats: ReadStats,
    found: list[int],
) -> dict[str, Any]:
    import sqlite3  # noqa: PLC0415

    from pdnssoc_agent.history import decode_chunk  # noqa: PLC0415
    from pdnssoc_agent.history.aggregate import Batch  # noqa: PLC0415

    from .history_candidates import SqliteStore  # noqa: PLC0415

    sq = SqliteStore(store_dir)
    batch, since = Batch(), 0
    commits, commit_cpu = 0, 0.0
    for f in files:
        for ch in LineReader(f, stats).chunks():
            start = ch.end - len(ch.data)
            recs = decode_chunk(ch.data, stats, str(f), start)
            found[0] += len(_match(recs, matcher, stats, str(f)))  # type: ignore[arg-type]
            batch.add(recs)
            since += len(recs)
            if since >= commit_every:
                c = _cpu()
                sq.ingest(batch.table())
                commit_cpu += _cpu() - c
                batch, since, commits = Batch(), 0, commits + 1
    sq.ingest(batch.table())
    sq.close()
    rows = replies = 0
    for p in store_dir.glob("*.sqlite"):
        db = sqlite3.connect(p)
        n, c = db.execute("SELECT count(*), sum(count) FROM rows").fetchone()
        rows, replies = rows + n, replies + (c or 0)
        db.close()
    return {"bytes": sq.bytes(), "rows": rows, "replies": replies,
            "files": len(list(store_dir.glob("*.sqlite"))), "commits": commits + 1,
            "commit_cpu": commit_cpu}  # fmt: skip


def _w_query(work: Path, a: argparse.Namespace) -> dict[str, Any]:
    """Retro (all indicators) or hunt (one domain) over the last ``days`` days."""
    from pdnssoc_agent.history import matcher_for  # noqa: PLC0415

    from .history_candidates import days_of  # noqa: PLC0415

    all_days = sorted(p.name.removeprefix("queries-").removesuffix(".json")
                      for p in _files(work, "plain"))  # fmt: skip
    first = T0 + timedelta(days=len(all_days) - a.days)
    days = days_of(first, a.days)
    since = int(first.timestamp()) * 1_000_000
    if a.hunt is not None:
        matcher = matcher_for([a.hunt])
    elif a.unseen:
        from .history_unseen import unseen  # noqa: PLC0415

        matcher = unseen()
    else:
        matcher = _matcher(work)
    with gc_paused():
        return _query(work, a, matcher, since, days)


def _query(
    work: Path, a: argparse.Namespace, matcher: Matcher, since: int, days: list[str]
) -> dict[str, Any]:
    from pdnssoc_agent.history import HistoryStore, hunt, search  # noqa: PLC0415

    from .history_candidates import SqliteStore, duckdb_search  # noqa: PLC0415

    c0, t0 = _cpu(), time.perf_counter()
    if a.kind == "parquet":
        store = HistoryStore(work / "store-parquet")
        if a.hunt is None:
            res = search(store, matcher, since_us=since)
            rows, replies = len(res.rows), sum(r.count for r in res.rows)
        else:
            res = hunt(store, [a.hunt], since_us=since)
            rows, replies = len(res.rows), sum(r.count for r in res.rows)
    elif a.kind == "duckdb":
        store = HistoryStore(work / "store-parquet")
        files = [store.segment_path(s) for s in store.manifest().segments if s.day in set(days)]
        rows, replies = duckdb_search(files, matcher)
    else:
        rows, replies = SqliteStore(work / "store-sqlite").search(matcher, days)
    return {"cpu": _cpu() - c0, "wall": time.perf_counter() - t0, "rows": rows, "replies": replies}


WORKERS = {"correlate": _w_correlate, "retro-raw": _w_retro_raw, "ingest": _w_ingest,
           "query": _w_query, "retro-store": _w_retro_store}  # fmt: skip


def _run(work: Path, worker: str, *extra: str, repeat: int = REPEAT) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_history", "--worker", worker,
           "--work", str(work), *extra]  # fmt: skip
    best: dict[str, Any] | None = None
    for _ in range(max(1, repeat)):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT / "agent")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or r["cpu"] < best["cpu"]:
            best = r
    if best is None:
        raise RuntimeError(f"{worker}: no run")
    return best


# --------------------------------------------------------------------------- the run


def _prepare(shape: Shape) -> Path:
    work = CACHE / shape.tag
    done = work / "logs" / ".complete"
    if done.exists():
        return work
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    print(f"generating {shape.days} days x {shape.per_day:,} replies ...", flush=True)
    files, ind, hits = generate(shape, logs)
    for f in files:
        with f.open("rb") as src, gzip.open(f.with_name(f.name + ".gz"), "wb", 6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    (work / "iocs-domains.txt").write_text("".join(d + "\n" for d in ind.domains))
    (work / "iocs-ips.txt").write_text("".join(n + "\n" for n in ind.networks))
    (work / "hunt.json").write_text(json.dumps({"popular": ind.hunt_popular, "cdn": ind.hunt_cdn,
                                                "ioc": ind.domains[0], "hits": hits}))  # fmt: skip
    done.write_text("")
    return work


def _zcat(files: list[Path]) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        with Path(os.devnull).open("wb") as null:
            subprocess.run(["zcat", *map(str, files)], stdout=null, check=True, preexec_fn=_pin)
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime)
    return best


def _wired_ingest(cor: dict[str, Any], wired: dict[str, Any], zc: float, lines: int) -> None:
    us = 1e6 / lines
    extra = wired["cpu"] - cor["cpu"]
    print(
        f"  correlate filling the store (history on, wired)   {wired['cpu'] * us:7.2f}  "
        f"store adds {extra * us:5.2f} us = {extra / cor['cpu']:+.0%} of correlate; "
        f"{wired['cpu'] / max(zc, 1e-9):.1f}x zcat (correlate alone "
        f"{cor['cpu'] / max(zc, 1e-9):.1f}x)"
    )
    if wired.get("replies") != lines or wired["alerts"] != cor["alerts"]:
        print(f"  !! wired correlate: {wired.get('replies')} replies held, {wired['alerts']} "
              f"alerts; expected {lines} and {cor['alerts']}")  # fmt: skip


def _cadence(work: Path, shape: Shape) -> None:
    """The store's cost with a commit every correlate run (the daemon's minute) against
    one an hour (history.commit_every's default), over the first day."""
    one = ["--first-days", "1"]
    base = _run(work, "ingest", "--kind", "none", *one)
    us = 1e6 / base["lines"]
    for minutes, what in ((60, "every hour (history.commit_every)"),
                          (1, "every correlate run (a minute)")):  # fmt: skip
        r = _run(work, "ingest", "--kind", "parquet", "--commit-minutes", str(minutes), *one)
        print(
            f"  day 1, a commit {what:34} store adds {(r['cpu'] - base['cpu']) * us:6.2f} us "
            f"a line ({r['commits']} commits)"
        )


def _unseen_retro(work: Path, shape: Shape, candidates: list[str], raw: dict[str, Any]) -> None:
    """Retro over every day with 1,000 indicators the generator did not plant, against the
    raw rescan of the same days just measured (a rescan costs the same whatever it looks
    for): the daily case, where most new indicators were never resolved."""
    from .history_unseen import unseen  # noqa: PLC0415

    matcher, stats, hits = unseen(), ReadStats(), [0]

    def on_hit(_rec: LogRecord, _h: list[Any]) -> None:
        hits[0] += 1

    for f in _files(work, "gz"):
        for ch in LineReader(f, stats).chunks():
            scan_chunk(ch.data, matcher, stats, on_hit, str(f))
    print(f"  {shape.days:2} day(s), 1,000 indicators almost never resolved "
          f"({hits[0]} matching lines):")  # fmt: skip
    for kind in candidates:
        if kind != "parquet":  # the others have no index to skip by
            continue
        q = _run(work, "query", "--kind", kind, "--days", str(shape.days), "--unseen")
        ok = "" if q["replies"] == hits[0] else f"  !! {hits[0]} expected"
        print(
            f"           {kind:8} {q['wall']:8.3f} s wall, {q['cpu']:8.3f} s CPU: "
            f"{raw['wall'] / max(q['wall'], 1e-6):7.0f}x faster (wall), "
            f"{q['rows']} rows, {q['replies']} replies{ok}"
        )


def _wired_retro(work: Path, shape: Shape) -> None:
    full = _run(work, "retro-raw", "--days", str(shape.days), repeat=1)
    ret = _run(work, "retro-store", repeat=1)
    ok = "" if ret["alerts"] == full["alerts"] else f"  !! {full['alerts']} expected"
    print(
        f"  wired: run_retro over the archive with the store correlate filled: "
        f"{ret['wall']:.2f} s wall ({full['wall'] / max(ret['wall'], 1e-6):.0f}x faster than "
        f"the raw rescan of {shape.days} days), {ret['lines']:,} lines scanned raw, "
        f"{ret['alerts']:,} alert lines{ok}"
    )


def _retros(work: Path, shape: Shape, candidates: list[str]) -> None:
    """Retro from each candidate against the raw rescan of the same days."""
    print("\n== retro: 1,000 indicators (600 domains, 300 IPs, 100 CIDRs) ==")
    spans = sorted({d for d in (1, 7, 30) if d <= shape.days} | {shape.days})
    for days in spans:
        raw = _run(work, "retro-raw", "--days", str(days), repeat=1)
        print(
            f"  {days:2} day(s): raw rescan (run_retro over gzip) {raw['wall']:8.2f} s wall, "
            f"{raw['cpu']:8.2f} s CPU, {raw['lines']:,} lines, {raw['hits']} matching lines"
        )
        for kind in candidates:
            q = _run(work, "query", "--kind", kind, "--days", str(days))
            ok = "" if q["replies"] == raw["hits"] else f"  !! {raw['hits']} expected"
            print(
                f"           {kind:8} {q['wall']:8.3f} s wall, {q['cpu']:8.3f} s CPU: "
                f"{raw['wall'] / max(q['wall'], 1e-6):7.0f}x faster (wall), "
                f"{q['rows']} rows, {q['replies']} replies{ok}"
            )
    _unseen_retro(work, shape, candidates, raw)
    _wired_retro(work, shape)


def main() -> None:
    shape = _shape()
    candidates = os.environ.get("BENCH_HISTORY_CANDIDATES", "parquet,duckdb,sqlite").split(",")
    if "duckdb" in candidates and importlib.util.find_spec("duckdb") is None:
        candidates.remove("duckdb")
        print("duckdb is not installed (it is no dependency of the agent): that candidate is "
              "left out; `pip install duckdb` into the venv to include it")  # fmt: skip
    work = _prepare(shape)
    plain, gz = _files(work, "plain"), _files(work, "gz")
    lines = shape.days * shape.per_day
    hunts = json.loads((work / "hunt.json").read_text())
    plain_b = sum(p.stat().st_size for p in plain)
    gz_b = sum(p.stat().st_size for p in gz)
    print(
        f"data: {work}\n  {shape.days} days x {shape.per_day:,} replies = {lines:,} lines, "
        f"{shape.sensors} sensors x {shape.clients} clients, {shape.hosts:,} host names (Zipf)"
    )
    print(
        f"  plain JSON {plain_b / lines:,.0f} bytes/reply; gzip -6 (today's archive) "
        f"{gz_b / lines:,.1f} bytes/reply ({gz_b / 1e6:,.1f} MB)"
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load "
        f"{os.getloadavg()[0]:.1f}; CPU figures: best of {REPEAT} fresh processes on one core\n"
    )

    zc = _zcat(gz)
    cor = _run(work, "correlate", "--kind", "none")
    wired = _run(work, "correlate", "--kind", "parquet")
    loop = _run(work, "ingest", "--kind", "none")
    us = 1e6 / lines
    print("== ingest: CPU per line (us), same lines ==")
    print(f"  zcat (the floor: inflating the archive)          {zc * us:7.2f}")
    print(f"  correlate (run_correlate, 1,000 indicators)       {cor['cpu'] * us:7.2f}")
    _wired_ingest(cor, wired, zc, lines)
    print(f"  correlate's read+decode+match loop alone          {loop['cpu'] * us:7.2f}")
    stores: dict[str, dict[str, Any]] = {}
    for kind in ("parquet", "sqlite"):
        if kind not in candidates and not (kind == "parquet" and "duckdb" in candidates):
            continue
        r = _run(work, "ingest", "--kind", kind)
        stores[kind] = r
        extra = r["cpu"] - loop["cpu"]
        print(
            f"  loop + {kind:8} store (one decode for both)      {r['cpu'] * us:7.2f}  "
            f"store adds {extra * us:5.2f} us = {extra / cor['cpu']:+.0%} of correlate"
        )
        print(
            f"      of which writing: {r['commits']} commits x "
            f"{r['commit_cpu'] / r['commits'] * 1e3:.1f} ms = {r['commit_cpu'] * us:.2f} us/line; "
            f"folding and the wider decode: {(extra - r['commit_cpu']) * us:.2f} us/line"
        )
    if "parquet" in stores:
        _cadence(work, shape)
    print("\n== storage ==")
    print(f"  gzip JSON today: {gz_b / lines:7.1f} bytes/reply")
    for kind, r in stores.items():
        print(
            f"  {kind:8} {r['bytes'] / r['replies']:7.2f} bytes/reply held "
            f"({r['bytes'] / 1e6:,.1f} MB, {r['rows']:,} rows for {r['replies']:,} replies = "
            f"{r['replies'] / max(1, r['rows']):.2f} replies/row, "
            f"{r['bytes'] / max(1, r['rows']):.1f} bytes/row, {r['files']} files); "
            f"{gz_b / r['bytes']:.1f}x smaller than gzip JSON"
        )
        if r["replies"] != lines:
            print(f"  !! {kind} holds {r['replies']:,} replies, the logs have {lines:,}")

    _retros(work, shape, candidates)
    print(f"\n== hunt: one domain over {shape.days} days (with subdomains and CNAMEs into it) ==")
    for label in ("ioc", "popular", "cdn"):
        value = hunts[label]
        for kind in candidates:
            q = _run(work, "query", "--kind", kind, "--days", str(shape.days), "--hunt", value)
            rows = "lines out (hours merged)" if kind == "parquet" else "rows"
            print(
                f"  {label:8} {value:24} {kind:8} {q['wall']:7.3f} s wall, "
                f"{q['cpu']:7.3f} s CPU, {q['replies']:,} replies, {q['rows']:,} {rows}"
            )


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=sorted(WORKERS))
    p.add_argument("--work")
    p.add_argument("--kind", default="parquet")
    p.add_argument(
        "--commit-minutes",
        type=int,
        default=0,
        help="ingest: commit every this many minutes of lines (0: the environment's)",
    )
    p.add_argument("--first-days", type=int, default=0, help="ingest: only the first days")
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--hunt")
    p.add_argument("--unseen", action="store_true", help="retro of indicators almost never seen")
    return p.parse_args()


if __name__ == "__main__":
    args = _args()
    if args.worker:
        _pin()
        print(json.dumps(WORKERS[args.worker](Path(args.work), args)))
    else:
        main()
