# SPDX-License-Identifier: Apache-2.0
"""Correlation benchmark: lines/s of ``correlate`` and ``retro``, against pdnssoc-cli 0.0.5.

Run: ``make bench BENCH=correlate`` (or ``cd agent && python -m benchmarks correlate``).
Environment: ``BENCH_LINES`` (default 2,000,000), ``BENCH_PDNSSOC_LINES`` (lines of the
same file given to pdnssoc-cli, default 50,000: it scans every IOC network per new
answer address, so a full run takes far longer), ``BENCH_SKIP_PDNSSOC=1``.

Data: go-dnscollector v0.38.0 JSON lines (the key order and fields its ``logfile``
JSON mode writes), names drawn with a skewed popularity from a pool of benign
names, A/AAAA/CNAME answers, NXDOMAINs, and about 0.1% of lines hitting an
indicator (exact, subdomain, CNAME target, IP, CIDR). Each measurement runs in a
fresh process pinned to one core (``os.sched_setaffinity``), which also gives
its peak memory. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from pdnssoc_agent.config import parse_config
from pdnssoc_agent.correlate import run_correlate, run_retro

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench-correlate"
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
PDNSSOC_VENV = ROOT / ".cache" / "bench-pdnssoc-cli"
PDNSSOC_VERSION = "0.0.5"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

TLDS = ["com", "net", "org", "de", "fr", "ch", "io", "eu", "co.uk", "info"]
WORDS = [
    "alpha", "beta", "cloud", "data", "edge", "mail", "shop", "news", "video", "static",
    "cdn", "api", "img", "auth", "login", "portal", "files", "docs", "web", "app",
]  # fmt: skip


def _label(rng: random.Random, lo: int = 4, hi: int = 12) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(lo, hi)))


def _domain(rng: random.Random) -> str:
    return f"{_label(rng)}.{rng.choice(TLDS)}"


def _ip4(rng: random.Random) -> str:
    return (
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


def _ip6(rng: random.Random) -> str:
    a, b, c = rng.randint(0, 0xFFFF), rng.randint(0, 0xFFFF), rng.randint(1, 0xFFFF)
    return f"2a0{rng.randint(0, 9)}:{a:x}:{b:x}::{c:x}"


def make_iocs(rng: random.Random, n_domains: int, n_ips: int) -> tuple[list[str], list[str]]:
    """IOC domains (distinct from the benign pool by a marker label) and IPs/CIDRs."""
    domains = [f"{_label(rng, 6, 14)}-ioc.{rng.choice(TLDS)}" for _ in range(n_domains)]
    nets: list[str] = []
    for i in range(n_ips):
        r = i % 10
        if r < 6:
            nets.append(f"100.{64 + (i // 65536) % 64}.{(i // 256) % 256}.{i % 256}")
        elif r < 8:
            nets.append(f"2001:db8:{i % 65536:x}::{(i // 65536) + 1:x}")
        elif r == 8:
            nets.append(f"198.{18 + (i // 65536) % 2}.{(i // 256) % 256}.0/24")
        else:
            nets.append(f"2001:db8:{i % 65536:x}:{(i // 65536) + 1:x}::/64")
    return sorted(set(domains)), nets


def _line(  # noqa: PLR0917 - mirrors the record's fields
    ts: datetime, identity: str, client: str, qname: str, qtype: str, rcode: str, an: list[Any]
) -> bytes:
    rec = {
        "network": {
            "family": "IPv4",
            "protocol": "UDP",
            "query-ip": client,
            "query-port": "53001",
            "response-ip": "192.0.2.53",
            "response-port": "53",
            "ip-defragmented": False,
            "tcp-reassembled": False,
        },
        "dns": {
            "length": 90,
            "opcode": 0,
            "rcode": rcode,
            "qname": qname,
            "qtype": qtype,
            "flags": {"qr": True, "tc": False, "aa": False, "ra": True, "ad": False},
            "resource-records": {"an": an, "ns": [], "ar": []},
            "malformed-packet": False,
        },
        "edns": {"udp-size": 1232, "rcode": 0, "version": 0, "dnssec-ok": 0, "options": []},
        "dnstap": {
            "operation": "CLIENT_RESPONSE",
            "identity": identity,
            "version": "BIND 9.18.28-1~deb12u2-Debian",
            "timestamp-rfc3339ns": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond:06d}123Z",
            "latency": "0.000000",
            "extra": "-",
        },
    }
    return msgspec.json.encode(rec)


def _zone(rng: random.Random, name: str) -> tuple[str, list[dict[str, Any]]]:
    """A stable answer for ``name``: A records, an AAAA, or a CNAME to a CDN."""
    r = rng.random()
    if r < 0.15:
        target = f"{name.replace('.', '-')}.cdn-provider.net"
        return "A", [{"name": name, "rdatatype": "CNAME", "ttl": 300, "rdata": target}] + [
            {"name": target, "rdatatype": "A", "ttl": 20, "rdata": _ip4(rng)}
            for _ in range(rng.randint(1, 3))
        ]
    if r < 0.30:
        return "AAAA", [{"name": name, "rdatatype": "AAAA", "ttl": 300, "rdata": _ip6(rng)}]
    return "A", [
        {"name": name, "rdatatype": "A", "ttl": 300, "rdata": _ip4(rng)}
        for _ in range(rng.randint(1, 3))
    ]


def generate(path: Path, n: int, ioc_domains: list[str], ioc_nets: list[str], seed: int = 7) -> int:
    """Write ``n`` lines; returns how many were built to hit an indicator.

    Popularity follows Zipf (s=1) over 300,000 host names of 200,000 benign
    domains, each with a stable answer; 4% are NXDOMAINs for random names (all
    distinct); 0.1% hit an indicator in one of five ways.
    """
    rng = random.Random(seed)
    domains = [_domain(rng) for _ in range(200_000)]
    hosts = [f"{rng.choice(WORDS)}.{d}" for d in domains] + [
        f"{rng.choice(WORDS)}.{rng.choice(domains)}" for _ in range(100_000)
    ]
    rng.shuffle(hosts)
    zones = {h: _zone(rng, h) for h in hosts}
    weights = [1.0 / (i + 1) for i in range(len(hosts))]
    clients = [
        f"10.{rng.randint(0, 20)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(5000)
    ]
    sensors = ["sensor-a", "sensor-b", "sensor-c"]
    ioc_ips = [x for x in ioc_nets if "/" not in x and ":" not in x]
    hits = 0
    names = rng.choices(hosts, weights=weights, k=n)
    with path.open("wb") as fh:
        for i in range(n):
            ts = T0 + timedelta(microseconds=i * 400)
            sensor, client = rng.choice(sensors), rng.choice(clients)
            r = rng.random()
            if r < 0.001:  # a hit of some kind
                hits += 1
                k = i % 5
                qname = f"www.{rng.choice(WORDS)}-{i}.example.net"
                if k == 0:
                    qname = rng.choice(ioc_domains)
                    an = [{"name": qname, "rdatatype": "A", "ttl": 60, "rdata": _ip4(rng)}]
                elif k == 1:
                    qname = f"x{i}.{rng.choice(ioc_domains)}".upper()
                    an = [{"name": qname, "rdatatype": "A", "ttl": 60, "rdata": _ip4(rng)}]
                elif k == 2:
                    target = f"edge.{rng.choice(ioc_domains)}"
                    an = [
                        {"name": qname, "rdatatype": "CNAME", "ttl": 300, "rdata": target},
                        {"name": target, "rdatatype": "A", "ttl": 60, "rdata": _ip4(rng)},
                    ]
                elif k == 3:
                    an = [
                        {"name": qname, "rdatatype": "A", "ttl": 60, "rdata": rng.choice(ioc_ips)}
                    ]
                else:
                    ip = f"198.18.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                    an = [{"name": qname, "rdatatype": "A", "ttl": 60, "rdata": ip}]
                line = _line(ts, sensor, client, qname, "A", "NOERROR", an)
            elif r < 0.041:
                qname = f"{_label(rng)}.{rng.choice(domains)}"
                line = _line(ts, sensor, client, qname, "A", "NXDOMAIN", [])
            else:
                qname = names[i]
                qtype, an = zones[qname]
                line = _line(ts, sensor, client, qname, qtype, "NOERROR", an)
            fh.write(line + b"\n")
    return hits


# --------------------------------------------------------------------------- workers


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})


def _peak_mb() -> float:
    """Peak resident memory of this process since exec (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process and its finished children (a gzip -dc pipe)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _config(data_dir: Path, domains: Path, ips: Path) -> Any:
    return parse_config(
        {
            "data_dir": str(data_dir),
            "correlation": {
                "malicious_domains_file": str(domains),
                "malicious_ips_file": str(ips),
                "retro_lookback": {"days": 36500},
            },
        }
    )


def worker(args: argparse.Namespace) -> None:
    """One measurement in this (pinned) process; prints a JSON result."""
    if args.pin:
        _pin()
    data_dir = Path(args.data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    cfg = _config(data_dir, Path(args.domains), Path(args.ips))
    base = _peak_mb()
    c0 = _cpu()
    t = time.perf_counter()
    if args.worker == "correlate":
        r = run_correlate(cfg, [Path(args.file)])
    else:
        r = run_retro(cfg, [Path(args.file)], gzip_backend=args.gzip, progress=None)
    dt = time.perf_counter() - t
    cpu = _cpu() - c0
    print(
        json.dumps(
            {
                "lines": r.stats.lines,
                "seconds": dt,
                "cpu": cpu,
                "load": r.load_seconds,
                "alerts": r.alerts,
                "indicators": r.indicators,
                "skipped": r.stats.skipped,
                "peak_mb": _peak_mb(),
                "base_mb": base,
            }
        )
    )


def _run_worker(
    kind: str, file: Path, domains: Path, ips: Path, *, gzip_backend: str = "zlib", pin: bool = True
) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "benchmarks.bench_correlate", "--worker", kind,
        "--file", str(file), "--domains", str(domains), "--ips", str(ips),
        "--data-dir", str(CACHE / f"run-{kind}"), "--gzip", gzip_backend,
    ]  # fmt: skip
    if pin:
        cmd.append("--pin")
    runs = []
    for _ in range(REPEAT):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT / "agent")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best: dict[str, Any] = min(runs, key=lambda r: r["seconds"])
    return best


def _zcat(path: Path) -> tuple[float, float]:
    """Best wall time and CPU time of ``zcat FILE > /dev/null`` on one core."""
    best = (float("inf"), float("inf"))
    for _ in range(REPEAT):
        k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        with Path(os.devnull).open("wb") as null:
            subprocess.run(["zcat", str(path)], stdout=null, check=True, preexec_fn=_pin)
        wall = time.perf_counter() - t
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime
        best = min(best, (wall, cpu))
    return best


def _pdnssoc_cli(sample: Path, domains: Path, ips: Path, lines: int) -> dict[str, Any] | None:
    """Install pdnssoc-cli in its own venv and time its correlate on ``sample``."""
    exe = PDNSSOC_VENV / "bin" / "pdnssoc-cli"
    if not exe.exists():
        print(f"installing pdnssoc-cli=={PDNSSOC_VERSION} into {PDNSSOC_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PDNSSOC_VENV)], check=True)
        subprocess.run(
            [str(PDNSSOC_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
             f"pdnssoc-cli=={PDNSSOC_VERSION}"],
            check=True,
        )  # fmt: skip
    work = CACHE / "pdnssoc-cli"
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    cfg = work / "pdnssoccli.yml"
    cfg.write_text(
        "logging_level: WARN\nmisp_servers: []\ncorrelation:\n"
        f"  input_dir: {sample.parent}\n  output_dir: {work / 'out'}\n"
        f"  malicious_domains_file: {domains}\n  malicious_ips_file: {ips}\n"
        f"  last_correlation_pointer_file: {work / 'correlation.last'}\n"
        f"  last_retro_pointer_file: {work / 'retro.last'}\n"
    )
    k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "-c", str(cfg), "correlate", "--start-date", "2000-01-01T00:00:00", str(sample)],
        capture_output=True, text=True, preexec_fn=_pin, check=False,
    )  # fmt: skip
    dt = time.perf_counter() - t
    k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime
    if proc.returncode != 0:
        print(f"pdnssoc-cli failed ({proc.returncode}): {proc.stderr[-500:]}")
        return None
    out = work / "out" / "matches.json"
    matches = sum(1 for _ in out.open()) if out.exists() else 0
    return {"lines": lines, "seconds": dt, "cpu": cpu, "matches": matches}


def _fmt(r: dict[str, Any]) -> str:
    scan = r["seconds"] - r["load"]
    return (
        f"{r['lines'] / r['seconds']:>9,.0f} lines/s wall ({r['seconds']:.2f} s; "
        f"{r['lines'] / scan:,.0f} lines/s after {r['load']:.2f} s loading lists), "
        f"{r['lines'] / r['cpu']:>9,.0f} lines/CPU-s, {r['alerts']} alert lines, "
        f"peak RSS {r['peak_mb']:.0f} MB"
    )


def _prepare(n: int) -> tuple[Path, Path, dict[str, Path]]:
    """Indicator lists and the query log (plain and gzip), generated once into .cache/."""
    CACHE.mkdir(parents=True, exist_ok=True)
    doms, nets = make_iocs(random.Random(1), 1_000_000, 100_000)
    files = {
        "d100": CACHE / "iocs-domains-100.txt",
        "d50k": CACHE / "iocs-domains-50k.txt",
        "d1m": CACHE / "iocs-domains-1m.txt",
        "ips100": CACHE / "iocs-ips-100.txt",
        "ips": CACHE / "iocs-ips-20k.txt",
        "ips100k": CACHE / "iocs-ips-100k.txt",
    }
    files["d100"].write_text("".join(d + "\n" for d in doms[:100]))
    files["d50k"].write_text("".join(d + "\n" for d in doms[:50_000]))
    files["d1m"].write_text("".join(d + "\n" for d in doms))
    files["ips100"].write_text("".join(x + "\n" for x in nets[:100]))
    files["ips"].write_text("".join(x + "\n" for x in nets[:20_000]))
    files["ips100k"].write_text("".join(x + "\n" for x in nets))
    plain = CACHE / f"queries-{n}.json"
    gz = CACHE / f"queries-{n}.json.gz"
    if not plain.exists() or not gz.exists():
        print(f"generating {n:,} go-dnscollector JSON lines ...", flush=True)
        hits = generate(plain, n, doms[:50_000], nets[:20_000])
        with plain.open("rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        print(f"  {hits:,} lines made to look like hits", flush=True)
    return plain, gz, files


def _correlate_figures(plain: Path, files: dict[str, Path]) -> None:
    for label, doms, ips in (
        ("100 domains + 100 IPs/CIDRs ", "d100", "ips100"),
        ("50k domains + 20k IPs/CIDRs ", "d50k", "ips"),
        ("1M domains + 20k IPs/CIDRs  ", "d1m", "ips"),
        ("1M domains + 100k IPs/CIDRs ", "d1m", "ips100k"),
    ):
        r = _run_worker("correlate", plain, files[doms], files[ips])
        print(f"correlate, plain JSON, {label}: {_fmt(r)}")


def _retro_figures(gz: Path, n: int, files: dict[str, Path]) -> None:
    zw, zc = _zcat(gz)
    print(
        f"\nzcat {gz.name} > /dev/null, one core: {n / zw:,.0f} lines/s wall ({zw:.2f} s), "
        f"{n / zc:,.0f} lines/CPU-s"
    )
    for backend, pin, doms in (
        ("zlib", True, "d50k"),
        ("thread", True, "d50k"),
        ("thread", False, "d50k"),
        ("zlib", True, "d1m"),
    ):
        r = _run_worker("retro", gz, files[doms], files["ips"], gzip_backend=backend, pin=pin)
        where = "one core" if pin else "both cores"
        size = "50k" if doms == "d50k" else "1M"
        print(
            f"retro, gzip {backend} on {where}, {size}+20k: {_fmt(r)}; "
            f"{zw / r['seconds']:.0%} of zcat wall, {zc / r['cpu']:.0%} of zcat CPU"
        )


def _pdnssoc_figures(plain: Path, n: int, n_pdnssoc: int, files: dict[str, Path]) -> None:
    sample = CACHE / "pdnssoc-sample" / f"queries-head-{n_pdnssoc}.json"
    sample.parent.mkdir(exist_ok=True)
    with plain.open("rb") as src, sample.open("wb") as dst:
        for i, line in enumerate(src):
            if i >= n_pdnssoc:
                break
            dst.write(line)
    lines = min(n, n_pdnssoc)
    p = _pdnssoc_cli(sample, files["d50k"], files["ips"], lines)
    if p is None:
        return
    ours = _run_worker("correlate", sample, files["d50k"], files["ips"])
    print(
        f"\npdnssoc-cli {PDNSSOC_VERSION} correlate, first {lines:,} lines of the same file, "
        f"50k+20k, one core: {lines / p['seconds']:,.0f} lines/s wall ({p['seconds']:.1f} s), "
        f"{lines / p['cpu']:,.0f} lines/CPU-s, {p['matches']} matches"
    )
    print(f"pdnssoc-agent correlate, same lines and lists: {_fmt(ours)}")
    print(
        f"ratio pdnssoc-agent / pdnssoc-cli: {p['seconds'] / ours['seconds']:,.0f}x (wall), "
        f"{p['cpu'] / ours['cpu']:,.0f}x (CPU)"
    )


def main() -> None:
    n = int(os.environ.get("BENCH_LINES", "2000000"))
    n_pdnssoc = int(os.environ.get("BENCH_PDNSSOC_LINES", "50000"))
    plain, gz, files = _prepare(n)
    size_mb = plain.stat().st_size / 1e6
    print(f"data: {plain} ({size_mb:,.0f} MB), {gz.name} ({gz.stat().st_size / 1e6:,.0f} MB)")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.1f}; "
        f"each figure the best of {REPEAT} runs in a fresh process pinned to one core\n"
    )
    _correlate_figures(plain, files)
    _retro_figures(gz, n, files)
    if os.environ.get("BENCH_SKIP_PDNSSOC") != "1":
        _pdnssoc_figures(plain, n, n_pdnssoc, files)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=["correlate", "retro"])
    p.add_argument("--file")
    p.add_argument("--domains")
    p.add_argument("--ips")
    p.add_argument("--data-dir")
    p.add_argument("--gzip", default="zlib")
    p.add_argument("--pin", action="store_true")
    return p.parse_args()


if __name__ == "__main__":
    a = _args()
    if a.worker:
        worker(a)
    else:
        main()
