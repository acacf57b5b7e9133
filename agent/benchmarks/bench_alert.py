# SPDX-License-Identifier: Apache-2.0
"""Alert storm benchmark: one ``alert`` run over a random-subdomain storm.

Run: ``make bench BENCH=alert`` (or ``cd agent && python -m benchmarks alert``).
Environment: ``BENCH_STORM`` (alerts in the storm, default 5,000), ``BENCH_CLIENTS``
(clients querying, default 20), ``BENCH_RUNS`` (``alert`` runs to time, default 3:
the first takes the storm in; later runs deliver what a per-run cap left pending).

The storm: random names below one listed domain (``<random>.storm.example``, an
indicator carried by one MISP attribute), queried by a few clients behind one
sensor, each name one alert (as ``correlate`` writes them). Every channel is
configured and each one's receiver runs on loopback in its own process, so its
CPU time is not counted: the lab's mail sink (SMTP, summary and institution
mail), the lab's webhook sink (Slack, Mattermost, Teams and the generic webhook)
and the MISP stand-in (sightings). Figures, not pass/fail.
"""

from __future__ import annotations

import json
import os
import random
import socket
import string
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pdnssoc_agent.alerts import alerts_file, deliver
from pdnssoc_agent.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab"
STORM = int(os.environ.get("BENCH_STORM", "5000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
KEY = "bench-alert-key-0123456789"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DOMAIN = "storm.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port}")


def event() -> dict[str, Any]:
    return {
        "Event": {
            "id": "7",
            "info": "Storm test event",
            "uuid": "5f0c1a2b-0000-4000-8000-000000000007",
            "date": "2026-11-01",
            "timestamp": "1764000000",
            "published": True,
            "Orgc": {"id": "1", "name": "CERT-X"},
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [
                {
                    "id": "701",
                    "event_id": "7",
                    "category": "Network activity",
                    "type": "domain",
                    "value": DOMAIN,
                    "to_ids": True,
                    "uuid": "6f0c1a2b-0000-4000-8000-000000000701",
                    "timestamp": "1764000000",
                    "comment": "wildcard C2",
                    "deleted": False,
                }
            ],
        }
    }


def storm_lines(n: int, rng: random.Random) -> list[str]:
    lines = []
    for i in range(n):
        label = "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
        name = f"{label}.{DOMAIN}"
        client = f"192.0.2.{1 + i % CLIENTS}"
        seen = (NOW - timedelta(minutes=10) + timedelta(milliseconds=100 * i)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        alert = {
            "schema_version": 1,
            "id": f"{i:032x}",
            "revision": 1,
            "kind": "live",
            "detected_at": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "first_seen": seen,
            "last_seen": seen,
            "count": 1,
            "sensor": "inst-a",
            "client": client,
            "query": {"name": name, "type": "A", "rcode": "NXDOMAIN"},
            "answers": [],
            "match": {"how": "subdomain", "indicator": DOMAIN, "value": name},
            "misp": [
                {
                    "server": "misp1",
                    "event_id": "7",
                    "event_uuid": "5f0c1a2b-0000-4000-8000-000000000007",
                    "event_info": "Storm test event",
                    "event_url": "https://misp.example.org/events/view/7",
                    "org": "CERT-X",
                    "tags": ["tlp:green"],
                    "attribute_uuid": "6f0c1a2b-0000-4000-8000-000000000701",
                    "attribute_type": "domain",
                    "category": "Network activity",
                    "comment": "wildcard C2",
                    "timestamp": 1764000000,
                    "tlp": "tlp:green",
                }
            ],
            "ioc_added": "2026-11-26T00:00:00Z",
            "source": {"file": "/var/dnscollector/queries/query.json"},
        }
        lines.append(json.dumps(alert))
    return lines


def count_files(directory: Path, pattern: str) -> int:
    return sum(1 for _ in directory.glob(pattern))


def main() -> int:
    rng = random.Random(16)
    with tempfile.TemporaryDirectory(prefix="bench-alert-") as tmp_name:
        tmp = Path(tmp_name)
        for d in ("mail", "hooks", "events"):
            (tmp / d).mkdir()
        (tmp / "events" / "storm.json").write_text(json.dumps(event()))
        smtp_port, hook_port, misp_port = free_port(), free_port(), free_port()
        env = {**os.environ, "MISP_STANDIN_API_KEY": KEY}
        procs = {
            "mail sink": (
                smtp_port,
                subprocess.Popen(
                    [
                        sys.executable,
                        str(LAB / "sinks" / "mailsink.py"),
                        "serve",
                        "--listen",
                        f"127.0.0.1:{smtp_port}",
                        "--dir",
                        str(tmp / "mail"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            ),
            "webhook sink": (
                hook_port,
                subprocess.Popen(
                    [
                        sys.executable,
                        str(LAB / "sinks" / "webhooksink.py"),
                        "serve",
                        "--listen",
                        f"127.0.0.1:{hook_port}",
                        "--dir",
                        str(tmp / "hooks"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            ),
            "MISP stand-in": (
                misp_port,
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "misp_standin",
                        "--listen",
                        f"127.0.0.1:{misp_port}",
                        "--events-dir",
                        str(tmp / "events"),
                        "--quiet",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            ),
        }
        try:
            for what, (port, proc) in procs.items():
                wait_port(port, proc, what)
            hook = f"http://127.0.0.1:{hook_port}"
            cfg = parse_config(
                {
                    "data_dir": str(tmp / "data"),
                    "misp_servers": [
                        {
                            "domain": f"http://127.0.0.1:{misp_port}",
                            "name": "misp1",
                            "api_key": KEY,
                            "timeout": 10,
                            "sightings": {"enabled": True, "source": "pdnssoc-bench"},
                        }
                    ],
                    "alerting": {
                        "email": {
                            "from": "pdnssoc@csirt.example",
                            "summary_to": "soc@csirt.example",
                            "server": "127.0.0.1",
                            "port": smtp_port,
                            "timeout": 10,
                            "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
                        },
                        "slack": {"webhook_url": f"{hook}/slack"},
                        "mattermost": {"webhook_url": f"{hook}/mattermost"},
                        "teams": {"webhook_url": f"{hook}/teams"},
                        "webhook": {"webhook_url": f"{hook}/generic"},
                    },
                }
            )
            src = alerts_file(cfg)
            src.parent.mkdir(parents=True)
            src.write_text("\n".join(storm_lines(STORM, rng)) + "\n")
            print(f"storm: {STORM} alerts below {DOMAIN} from {CLIENTS} client(s), one sensor")
            total = 0.0
            for run in range(RUNS):
                when = NOW + timedelta(minutes=5 * run)
                started = time.perf_counter()
                report = deliver(cfg, when)
                elapsed = time.perf_counter() - started
                total += elapsed
                sent = ", ".join(f"{c} {n}" for c, n in sorted(report.sent.items())) or "nothing"
                failed = f"; FAILED {sorted(report.failed)}" if report.failed else ""
                print(f"run {run + 1}: {elapsed:7.2f} s  sent: {sent}{failed}")
            mails = count_files(tmp / "mail", "*.eml")
            posts = count_files(tmp / "hooks", "*.json")
            print(f"total {total:.2f} s over {RUNS} run(s); {mails} mail(s), {posts} POST(s)")
        finally:
            for _port, proc in procs.values():
                proc.terminate()
            for _port, proc in procs.values():
                proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
