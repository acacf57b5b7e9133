# SPDX-License-Identifier: Apache-2.0
"""Live alert latency while a long ``retro`` runs, with retro in its own lane and without.

Run: ``make bench BENCH=live_latency`` (or ``cd agent && python -m benchmarks live_latency``).
Options: ``--lines N`` (archived lines retro reads, default 3,000,000; ``BENCH_LINES``),
``--mode lane|sequential|both`` (default both), ``--json`` (one JSON object per mode).

The scheduler is the daemon's (:class:`pdnssoc_agent.scheduler.Scheduler`) with
the real ``correlate`` and ``retro`` steps, its clock stepped one correlation
interval per tick, so ``correlate`` is due at every tick (a tick every 50 ms).
Retro's first run reads a gzip archive of N benign lines. Once retro is
running, one line that hits an indicator is appended to the live query log;
the figure is the time from that append until its ``live`` alert is in
``matches.json``. ``lane``: retro runs in its own lane (a child process), as
``daemonize`` runs it; ``sequential``: retro runs in the main lane, one step
after another, as ``daemonize`` ran it before. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pdnssoc_agent.config import parse_config
from pdnssoc_agent.scheduler import MAIN_LANE, STEPS, Scheduler, Step

EVIL = "evil-live.example"
LINE = (
    '{{"network":{{"family":"IPv4","protocol":"UDP","query-ip":"192.0.2.{c}",'
    '"query-port":"40000","response-ip":"192.0.2.1","response-port":"53"}},'
    '"dns":{{"length":64,"opcode":0,"rcode":"NOERROR","qname":"{q}","qtype":"A",'
    '"resource-records":{{"an":[{{"name":"{q}","rdatatype":"A","ttl":60,'
    '"rdata":"198.51.100.{c}"}}],"ns":[],"ar":[]}}}},'
    '"dnstap":{{"operation":"CLIENT_RESPONSE","identity":"sensor-b",'
    '"timestamp-rfc3339ns":"{ts}"}}}}\n'
)


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


def _archive(path: Path, lines: int, when: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = _ts(when)
    with gzip.open(path, "wt", encoding="ascii", compresslevel=1) as out:
        block: list[str] = []
        for i in range(lines):
            block.append(LINE.format(c=i % 250 + 1, q=f"host{i % 50_000}.benign.example", ts=ts))
            if len(block) == 10_000:
                out.write("".join(block))
                block.clear()
        out.write("".join(block))
    # rotated a day ago: history for retro, long read by correlate
    old = (when - timedelta(hours=1)).timestamp()
    os.utime(path, (old, old))


def scenario(data_dir: Path, lines: int, mode: str, timeout: float = 3600.0) -> dict[str, Any]:
    """Run one measurement in ``data_dir`` (fresh); its figures."""
    now = datetime.now(UTC)
    cfg = parse_config({"data_dir": str(data_dir)})
    corr = cfg.correlation
    corr.malicious_domains_file.parent.mkdir(parents=True, exist_ok=True)
    corr.malicious_domains_file.write_text(EVIL + "\n")
    corr.malicious_ips_file.write_text("")
    _archive(corr.archive_dir / "queries-1.json.gz", lines, now - timedelta(days=1))
    corr.queries_file.write_text(LINE.format(c=1, q="first.benign.example", ts=_ts(now)))

    by_name = {s.name: s for s in STEPS}
    retro = by_name["retro"]
    steps = [
        by_name["correlate"],
        Step(
            retro.name,
            retro.schedule_key,
            retro.target,
            lane="retro" if mode == "lane" else MAIN_LANE,
        ),
    ]
    sched = Scheduler(cfg, None, steps)
    alerts = corr.output_dir / "matches.json"
    marks: dict[str, float] = {}

    def writer() -> None:
        while "retro" not in sched.running:
            time.sleep(0.01)
        time.sleep(0.5)  # retro is well into the archive
        with corr.queries_file.open("a", encoding="ascii") as fh:
            fh.write(LINE.format(c=7, q=f"www.{EVIL}", ts=_ts(datetime.now(UTC))))
        marks["written"] = time.monotonic()
        while time.monotonic() - marks["written"] < timeout:
            try:
                text = alerts.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = ""
            if any('"kind":"live"' in ln and EVIL in ln for ln in text.splitlines()):
                marks["alerted"] = time.monotonic()
                marks["retro_running"] = float("retro" in sched.running)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=writer, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    tick = datetime(2026, 1, 1, tzinfo=UTC)
    while watcher.is_alive() and time.monotonic() - t0 < timeout:
        sched.run_due(tick, wait=False)
        tick += timedelta(minutes=cfg.schedules.correlation.interval)
        time.sleep(0.05)
    sched.join_lanes()
    retro_end = time.monotonic()
    watcher.join(1.0)
    return {
        "mode": mode,
        "lines": lines,
        "latency_s": round(marks["alerted"] - marks["written"], 3) if "alerted" in marks else None,
        "retro_still_running_at_alert": bool(marks.get("retro_running")),
        "retro_s": round(retro_end - t0, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--lines", type=int, default=int(os.environ.get("BENCH_LINES", "3000000")))
    p.add_argument("--mode", choices=("lane", "sequential", "both"), default="both")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    modes = ("lane", "sequential") if args.mode == "both" else (args.mode,)
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            r = scenario(Path(tmp), args.lines, mode)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print(
                f"{mode:>10}: live alert {r['latency_s']} s after its line was written "
                f"(retro still running: {r['retro_still_running_at_alert']}); "
                f"retro over {r['lines']:,} lines took about {r['retro_s']} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
