# SPDX-License-Identifier: Apache-2.0
"""The sensor's traffic reducer: bytes on the wire and at the server, and the alerts.

Run: ``make bench BENCH=reducer`` (or ``cd agent && python -m benchmarks reducer``);
needs the pinned go-dnscollector (``make collector``, or ``PDNSSOC_COLLECTOR=<binary>``)
and ``ansible-playbook`` on PATH (``make venv``). Options: ``--seconds`` (default 60),
``--rate`` replies/s (default 250), ``--interval`` the reducer's watch interval (default 5).

A day-like stretch of a resolver's replies (lab/src/dnstap_replay/traffic.py: Zipf-like
names, 3,000 clients, bursts, pollers, indicator lookups) is sent in real time (the
reducer's window is wall-clock time) over dnstap into two real sensor collectors, both
configured by the dnscollector role's own template: one as deployed by default, one with
``dnscollector_sensor_reducer: true``. Each writes the frames it would stream to a spool
file (the bytes on the wire, before TLS); a server collector reads each file into a JSON
query log (the bytes at the server); the agent's ``correlate`` runs over both logs with the
same indicators. Printed: replies, lines and bytes per day each way, and the alerts
(sensor, client, name, indicator) with their counts against what was sent.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import struct
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdnssoc_agent.alertfile import ALERTS_FILE
from pdnssoc_agent.config import parse_config
from pdnssoc_agent.correlate import run_correlate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lab" / "src"))

from dnstap_replay import collector, dnstap, traffic  # noqa: E402

IDENTITY = "univ-a"
RESOLVER = "192.0.2.53"
DAY = 86400.0
AlertKey = tuple[str, str, str, str]  # sensor, client, query name, indicator


@dataclass
class Outcome:
    name: str
    frames: int
    wire_bytes: int
    lines: int
    log_bytes: int
    reducer_field: bool
    unmasked: int  # lines whose client is not a /16 network address
    alerts: dict[AlertKey, int]


def frames_in(path: Path) -> int:
    """Data frames of a frame-stream file."""
    data, pos, count = path.read_bytes(), 0, 0
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        if size == 0:  # control frame: escape, length, body
            (clen,) = struct.unpack_from(">I", data, pos + 4)
            pos += 8 + clen
            continue
        count += 1
        pos += 4 + size
    return count


def masked(client: str) -> str:
    return str(ipaddress.ip_network(f"{client}/16", strict=False).network_address)


def unmasked_ok(line: str) -> bool:
    """Whether the line's client is masked to its /16, as the sensor must send it."""
    client = str(json.loads(line)["network"]["query-ip"])
    return client == masked(client)


def expected_alerts(replies: list[dnstap.Reply]) -> dict[AlertKey, int]:
    """What was sent that matches an indicator, by (sensor, masked client, name, indicator)."""
    out: Counter[AlertKey] = Counter()
    for r in replies:
        if r.qname in traffic.IOC_DOMAINS:
            out[(IDENTITY, masked(r.client), r.qname, r.qname)] += 1
        for address in r.answers:
            if address in traffic.IOC_IPS:
                out[(IDENTITY, masked(r.client), r.qname, address)] += 1
    return dict(out)


def replay(socks: list[Path], replies: list[dnstap.Reply], start: float) -> None:
    """Send every reply at its time to every socket (batches of 20 ms)."""
    frames = [dnstap.message(r, IDENTITY, RESOLVER) for r in replies]
    senders = [dnstap.FrameStreamSender(str(s)) for s in socks]
    i = 0
    try:
        while i < len(replies):
            now = time.time()
            j = i
            while j < len(replies) and replies[j].when <= now:
                j += 1
            if j > i:
                for sender in senders:
                    sender.send(frames[i:j])
                i = j
            time.sleep(0.02)
    finally:
        for sender in senders:
            sender.close()


def correlate(workdir: Path, query_log: Path) -> dict[AlertKey, int]:
    """The agent's correlate over the query log; the latest count of each alert."""
    domains = workdir / "domains.txt"
    ips = workdir / "ips.txt"
    domains.write_text("".join(f"{d}\n" for d in traffic.INDICATOR_DOMAINS))
    ips.write_text("".join(f"{a}\n" for a in traffic.IOC_IPS))
    data_dir = workdir / "agent"
    data_dir.mkdir()
    cfg = parse_config(
        {
            "data_dir": str(data_dir),
            "correlation": {"malicious_domains_file": str(domains), "malicious_ips_file": str(ips)},
        }
    )
    run_correlate(cfg, [query_log])
    latest: dict[str, dict[str, Any]] = {}
    for path in data_dir.rglob(ALERTS_FILE):
        for line in path.read_text().splitlines():
            alert = json.loads(line)
            if alert["revision"] >= latest.get(alert["id"], {"revision": 0})["revision"]:
                latest[alert["id"]] = alert
    out: Counter[AlertKey] = Counter()
    for a in latest.values():
        key = (a["sensor"], a["client"], a["query"]["name"], a["match"]["indicator"])
        out[key] += int(a["count"])
    return dict(out)


def measure(args: argparse.Namespace, workdir: Path) -> tuple[list[dnstap.Reply], list[Outcome]]:
    variants: dict[str, dict[str, object]] = {
        "default": {},
        "reducer": {
            "dnscollector_sensor_reducer": True,
            "dnscollector_sensor_reducer_interval": args.interval,
        },
    }
    sensors: dict[str, collector.Collector] = {}
    for name, settings in variants.items():
        d = workdir / name
        d.mkdir()
        config = collector.render_sensor_config(d, **settings)
        sensors[name] = collector.Collector(config, d / "sensor.log")
    try:
        for name, sensor in sensors.items():
            sensor.wait_for(workdir / name / "dnstap.sock")
        start = time.time() + 1.0
        replies = traffic.replies(traffic.Mix(rate=args.rate, seconds=args.seconds), start)
        print(f"replaying {len(replies):,} replies over {args.seconds:.0f} s ...", flush=True)
        replay([workdir / n / "dnstap.sock" for n in variants], replies, start)
        time.sleep(2 * args.interval + 3)  # the reducer's last window, then a flush
    finally:
        for sensor in sensors.values():
            sensor.stop()
    outcomes = []
    for name in variants:
        d = workdir / name
        spool = d / "spool" / f"{IDENTITY}.fstrm"
        server = d / "server"
        query_log = collector.server_ingest(server, spool)
        text = query_log.read_text()
        outcomes.append(
            Outcome(
                name=name,
                frames=frames_in(spool),
                wire_bytes=spool.stat().st_size,
                lines=text.count("\n"),
                log_bytes=len(text.encode()),
                reducer_field='"reducer"' in text,
                unmasked=sum(1 for line in text.splitlines() if not unmasked_ok(line)),
                alerts=correlate(server, query_log),
            )
        )
    return replies, outcomes


def report(args: argparse.Namespace, replies: list[dnstap.Reply], outcomes: list[Outcome]) -> int:
    scale = DAY / args.seconds
    rate = len(replies) / args.seconds
    print(
        f"\n{len(replies):,} replies in {args.seconds:.0f} s ({rate:.0f}/s), "
        f"watch interval {args.interval} s; per day = x{scale:.0f}"
    )
    head = ("sensor", "frames", "wire MB/day", "log lines", "log MB/day", "lines/reply")
    print("{:<8} {:>8} {:>12} {:>10} {:>11} {:>12}".format(*head))
    for o in outcomes:
        print(f"{o.name:<8} {o.frames:>8,} {o.wire_bytes * scale / 1e6:>12.1f} {o.lines:>10,} "
              f"{o.log_bytes * scale / 1e6:>11.1f} {o.lines / len(replies):>12.3f}")  # fmt: skip
    for o in outcomes:
        print(f"{o.name}: lines with an unmasked client at the server: {o.unmasked}")
    base = outcomes[0]
    for o in outcomes[1:]:
        field = "yes" if o.reducer_field else "no (dnstap has no field for it)"
        print(
            f"{o.name}: wire bytes x{o.wire_bytes / base.wire_bytes:.3f}, "
            f"log bytes x{o.log_bytes / base.log_bytes:.3f}; "
            f"reducer count in the server's log: {field}"
        )
    sent = expected_alerts(replies)
    print("\nalerts (sensor, client, name, indicator): count sent / default / reducer")
    keys = sorted(set(sent) | {k for o in outcomes for k in o.alerts})
    for k in keys:
        counts = " / ".join(str(c.get(k, 0)) for c in [sent, *(o.alerts for o in outcomes)])
        print(f"  {k[1]:<12} {k[2]:<34} {k[3]:<28} {counts}")
    same = all(set(o.alerts) == set(sent) for o in outcomes)
    exact = base.alerts == sent
    print(
        f"\nsame alerts in every run as sent: {'yes' if same else 'NO'}; "
        f"default counts add up to what was sent: {'yes' if exact else 'NO'}"
    )
    for o in outcomes[1:]:
        total, matched = sum(o.alerts.values()), sum(sent.values())
        print(f"{o.name}: alert counts {total} of {matched} replies that matched")
    return 0 if same and exact and not any(o.unmasked for o in outcomes) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=250.0)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument(
        "--workdir", type=Path, help="keep the files here (default: a temporary directory)"
    )
    args = parser.parse_args()
    try:
        collector.binary()
    except FileNotFoundError as err:
        print(f"bench reducer: {err}", file=sys.stderr)
        return 2
    if args.workdir:
        args.workdir.mkdir(parents=True)
        replies, outcomes = measure(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-reducer-") as tmp:
            replies, outcomes = measure(args, Path(tmp))
    return report(args, replies, outcomes)


if __name__ == "__main__":
    raise SystemExit(main())
