# SPDX-License-Identifier: Apache-2.0
"""go-dnscollector JSON lines for tests (the keys and layout of its v0.38 output)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


def dns_line(
    qname: str,
    answers: Sequence[tuple[str, str, str]] = (),
    *,
    client: str = "192.0.2.50",
    sensor: str = "sensor-t",
    ts: str = "2025-11-27T10:00:00.123456789Z",
    qtype: str = "A",
    rcode: str = "NOERROR",
) -> bytes:
    """One reply: ``answers`` are (owner, type, data) in answer-section order."""
    rec = {
        "network": {"family": "IPv4", "protocol": "UDP", "query-ip": client,
                    "query-port": "40000", "response-ip": "192.0.2.1", "response-port": "53"},
        "dns": {
            "length": 64, "opcode": 0, "rcode": rcode, "qname": qname, "qtype": qtype,
            "resource-records": {
                "an": [{"name": n, "rdatatype": t, "ttl": 60, "rdata": d} for n, t, d in answers],
                "ns": [], "ar": [],
            },
            "malformed-packet": False,
        },
        "dnstap": {"operation": "CLIENT_RESPONSE", "identity": sensor, "version": "-",
                   "timestamp-rfc3339ns": ts, "latency": "0.000000", "extra": "-"},
    }  # fmt: skip
    return msgspec.json.encode(rec) + b"\n"
