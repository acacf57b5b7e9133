# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the correlate, retro and dnslog tests: configs, lines, schema checks."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import msgspec

import pdnssoc_agent
from pdnssoc_agent.config import Config, parse_config
from tests.support.paths import ASSETS

SAMPLE = ASSETS / "collector-v0.38.0.json"
SAMPLE_GZ = ASSETS / "collector-v0.38.0.json.gz"
SAMPLE_HASHED = ASSETS / "collector-v0.38.0-hashed.json"
SAMPLE_MINIFIED = ASSETS / "queries-minified.json.gz_minified"
SCHEMA = Path(pdnssoc_agent.__file__).parent / "schemas" / "alert.schema.json"
# The recorded samples were captured with this clock.
SAMPLE_DAY = datetime(2025, 11, 27, 12, 0, tzinfo=UTC)


CRASH_POINTS = ("after-pending", "after-append")
"""Where a crash test kills the agent inside the durable commit of alerts:
the pending record is saved but the lines are not appended yet, or the lines
are appended and fsynced but the state is not saved again."""

_CRASH_WRAPPER = """
import os, sys
from pdnssoc_agent.correlate import output
point = sys.argv.pop(1)
append = output.append_durably
def dying_append(*args, **kwargs):
    if point == "after-pending":
        os._exit(77)
    append(*args, **kwargs)
    os._exit(77)
output.append_durably = dying_append
from pdnssoc_agent._cli import main
sys.exit(main(sys.argv[1:]))
"""


def agent_dying_at(point: str) -> list[str]:
    """The agent's command line, but the process exits 77 at ``point`` of its first
    alert append (one of :data:`CRASH_POINTS`). The fault is injected from outside,
    before ``main()``; the agent has no hook for it."""
    assert point in CRASH_POINTS, point
    return [sys.executable, "-c", _CRASH_WRAPPER, point]


@cache
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def make_config(data_dir: Path, **correlation: Any) -> Config:
    """A configuration rooted at ``data_dir`` with optional correlation overrides."""
    return parse_config({"data_dir": str(data_dir), "correlation": correlation})


def write_lists(config: Config, domains: list[str], ips: list[str]) -> None:
    """Write the plain indicator lists where the configuration expects them."""
    corr = config.correlation
    corr.malicious_domains_file.parent.mkdir(parents=True, exist_ok=True)
    corr.malicious_domains_file.write_text("".join(d + "\n" for d in domains))
    corr.malicious_ips_file.write_text("".join(i + "\n" for i in ips))


def read_alerts(config: Config) -> list[dict[str, Any]]:
    """Every line of matches.json, each validated against the alert JSON Schema."""
    path = config.correlation.output_dir / "matches.json"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        alert = json.loads(line)
        validator().validate(alert)
        out.append(alert)
    return out


def latest(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """id -> the highest revision of each alert."""
    out: dict[str, dict[str, Any]] = {}
    for a in alerts:
        if a["id"] not in out or a["revision"] > out[a["id"]]["revision"]:
            out[a["id"]] = a
    return out


def dns_line(
    qname: str,
    answers: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    *,
    client: str = "192.0.2.50",
    sensor: str = "sensor-t",
    ts: str = "2025-11-27T10:00:00.123456789Z",
    qtype: str = "A",
    rcode: str = "NOERROR",
) -> bytes:
    """A go-dnscollector v0.38 JSON line (same keys and layout as the recorded samples)."""
    rec = {
        "network": {
            "family": "IPv4",
            "protocol": "UDP",
            "query-ip": client,
            "query-port": "40000",
            "response-ip": "192.0.2.1",
            "response-port": "53",
            "ip-defragmented": False,
            "tcp-reassembled": False,
        },
        "dns": {
            "length": 64,
            "opcode": 0,
            "rcode": rcode,
            "qname": qname,
            "qtype": qtype,
            "flags": {"qr": True, "tc": False, "aa": False, "ra": True, "ad": False},
            "resource-records": {
                "an": [{"name": n, "rdatatype": t, "ttl": 60, "rdata": d} for n, t, d in answers],
                "ns": [],
                "ar": [],
            },
            "malformed-packet": False,
        },
        "edns": {"udp-size": 0, "rcode": 0, "version": 0, "dnssec-ok": 0, "options": []},
        "dnstap": {
            "operation": "CLIENT_RESPONSE",
            "identity": sensor,
            "version": "-",
            "timestamp-rfc3339ns": ts,
            "latency": "0.000000",
            "extra": "-",
        },
    }
    return msgspec.json.encode(rec) + b"\n"
