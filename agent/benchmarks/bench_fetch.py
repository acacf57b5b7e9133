# SPDX-License-Identifier: Apache-2.0
"""fetch-iocs benchmark: wall time and peak RSS for 500,000 MISP attributes.

Run: ``make bench BENCH=fetch`` (or ``cd agent && python -m benchmarks fetch``).
Environment: ``BENCH_FETCH_ATTRIBUTES`` (default 500,000), ``BENCH_FETCH_PAGE_SIZE``
(default 5,000, the agent's default), ``BENCH_FETCH_COMPARE=0`` to skip the
comparison with PyMISP's own JSON decoding.

The MISP stand-in serves synthetic attributes from its own process, so its
CPU time and memory are not counted; fetch-iocs runs in a fresh process per
measurement, over real HTTP through PyMISP, and reports its wall time and
peak resident memory (``ru_maxrss``, the kernel's high-water mark, the same
as VmHWM). Measured:

1. first run: no previous index;
2. second run: the previous index exists (``added`` carried over for every
   value), the hourly steady state;
3. (comparison) the same first run with PyMISP's own JSON parsing of each
   page (dicts for every attribute) instead of the msgspec decoding the agent
   uses.

Goal on these machines: at most 30 s and 400 MB. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench0000000000000000000000000000000000key"  # the stand-in's key, not a secret
GOAL_SECONDS = 30.0
GOAL_MB = 400.0


def serve(n: int, url_file: Path) -> None:
    """Child: run the MISP stand-in with ``n`` synthetic attributes until killed."""
    from misp_standin import MispStandin  # noqa: PLC0415 (the lab package, only in this child)

    standin = MispStandin(api_keys={KEY: "BENCH"}, events=[], warninglists_dir=None)
    standin.add_synthetic(n, seed=0)
    standin.start()
    tmp = url_file.with_suffix(".tmp")
    tmp.write_text(standin.url)
    tmp.replace(url_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        standin.stop()


def worker(url: str, data_dir: Path, page_size: int, decoder: str) -> None:
    """Child: one fetch-iocs run; prints a JSON line of figures."""
    import logging  # noqa: PLC0415

    from pdnssoc_agent.config import Secret, parse_config  # noqa: PLC0415
    from pdnssoc_agent.iocs.configured import sources_from_config  # noqa: PLC0415
    from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs  # noqa: PLC0415

    from .pymisp_decoding import PyMispDecodedSource  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, format="    %(levelname)s %(name)s: %(message)s")
    config = parse_config(
        {
            "data_dir": str(data_dir),
            "misp_servers": [
                {
                    "domain": url,
                    "name": "bench",
                    "api_key": KEY,
                    "page_size": page_size,
                    "timeout": 300,
                    "periods": {"generic": {"delta": {"days": 3650}}},
                }
            ],
            "fetch_iocs": {"reload_collector": False},
        }
    )
    if decoder == "pymisp":
        sources = [PyMispDecodedSource(config.misp_servers[0], Secret(KEY))]
    else:
        sources = sources_from_config(config)
    started = time.perf_counter()
    result = fetch_iocs(config, sources, FetchOptions(reload=False))
    seconds = time.perf_counter() - started
    (report,) = result.servers
    usage = resource.getrusage(resource.RUSAGE_SELF)
    status = Path("/proc/self/status").read_text()
    hwm = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")), "0")
    out = {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "vmhwm_mb": int(hwm) / 1024,
        "seen": report.seen,
        "kept": report.kept,
        "rejected": sum(report.rejected.values()),
        "domains": result.domains,
        "ips": result.ips,
        "error": report.error,
    }
    print(json.dumps(out), flush=True)


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    url: str, data_dir: Path, page_size: int, decoder: str, server_pid: int
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_fetch",
        "--worker",
        "--url",
        url,
        "--data-dir",
        str(data_dir),
        "--page-size",
        str(page_size),
        "--decoder",
        decoder,
    ]
    started = time.perf_counter()
    server_cpu = _cpu_of(server_pid)
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, cwd=ROOT / "agent", capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"fetch worker failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    result["server_cpu_seconds"] = _cpu_of(server_pid) - server_cpu
    result["load"] = max(load, os.getloadavg()[0])
    return result


def _fmt(r: dict[str, Any]) -> str:
    verdict = (
        "within goal" if r["seconds"] <= GOAL_SECONDS and r["peak_mb"] <= GOAL_MB else "OVER GOAL"
    )
    return (
        f"{r['seconds']:.1f} s wall ({r['process_seconds']:.1f} s with interpreter start, "
        f"agent CPU {r['cpu_seconds']:.1f} s, stand-in CPU {r['server_cpu_seconds']:.1f} s, "
        f"load average {r['load']:.1f}), "
        f"peak RSS {r['peak_mb']:.0f} MB (VmHWM {r['vmhwm_mb']:.0f} MB); "
        f"{r['seen']:,} attributes seen, {r['kept']:,} kept, {r['rejected']:,} rejected, "
        f"{r['domains']:,} domains + {r['ips']:,} IPs written [{verdict}]"
    )


def main() -> None:
    n = int(os.environ.get("BENCH_FETCH_ATTRIBUTES", "500000"))
    page_size = int(os.environ.get("BENCH_FETCH_PAGE_SIZE", "5000"))
    compare = os.environ.get("BENCH_FETCH_COMPARE", "1") != "0"
    tmp = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    url_file = tmp / "url"
    print(f"starting the MISP stand-in with {n:,} synthetic attributes ...", flush=True)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_fetch",
            "--serve",
            str(n),
            "--url-file",
            str(url_file),
        ],
        cwd=ROOT / "agent",
    )
    try:
        deadline = time.monotonic() + 300
        while not url_file.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the MISP stand-in did not start")
            time.sleep(0.1)
        url = url_file.read_text()
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); stand-in at {url} "
            f"(its own process); page size {page_size:,}; goal <= {GOAL_SECONDS:.0f} s, "
            f"<= {GOAL_MB:.0f} MB\n",
            flush=True,
        )
        data = tmp / "data"
        first = _measure(url, data, page_size, "msgspec", server.pid)
        print(f"fetch-iocs, first run (no previous index):    {_fmt(first)}", flush=True)
        second = _measure(url, data, page_size, "msgspec", server.pid)
        print(f"fetch-iocs, second run (previous index read): {_fmt(second)}", flush=True)
        if compare:
            other = tmp / "data-pymisp"
            via = _measure(url, other, page_size, "pymisp", server.pid)
            print(f"same first run, PyMISP's JSON parsing:       {_fmt(via)}", flush=True)
            same = (data / "misp" / "misp_domains.txt").read_bytes() == (
                other / "misp" / "misp_domains.txt"
            ).read_bytes()
            print(f"  (lists identical with both decoders: {same})")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--page-size", type=int, default=5000, help=argparse.SUPPRESS)
    p.add_argument("--decoder", default="msgspec", help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    a = _args()
    if a.serve:
        serve(a.serve, a.url_file)
    elif a.worker:
        worker(a.url, a.data_dir, a.page_size, a.decoder)
    else:
        main()
