# SPDX-License-Identifier: Apache-2.0
"""Write ``dns.pcap``: DNS queries and responses that go-dnscollector turns into samples.

The recorded samples in this directory were made by feeding this pcap to the
real go-dnscollector v0.38.0 (file-ingestor, pcap mode) with a JSON logfile
logger; see README.md here. Packets are built by hand (Ethernet/IPv4 or
IPv6/UDP/DNS) so the capture is reproducible without network access.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from pathlib import Path

TYPES = {"A": 1, "CNAME": 5, "AAAA": 28, "TXT": 16, "MX": 15}


def _name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def _rdata(rtype: str, value: str) -> bytes:
    if rtype in ("A", "AAAA"):
        return ipaddress.ip_address(value).packed
    if rtype == "CNAME":
        return _name(value)
    raise ValueError(rtype)


def dns_message(
    ident: int, qname: str, qtype: str, answers: list[tuple[str, str, str, int]], rcode: int = 0
) -> tuple[bytes, bytes]:
    """(query, response) wire messages."""
    question = _name(qname) + struct.pack("!HH", TYPES[qtype], 1)
    query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question
    body = b""
    for name, rtype, value, ttl in answers:
        rdata = _rdata(rtype, value)
        body += _name(name) + struct.pack("!HHIH", TYPES[rtype], 1, ttl, len(rdata)) + rdata
    flags = 0x8180 | rcode
    response = struct.pack("!HHHHHH", ident, flags, 1, len(answers), 0, 0) + question + body
    return query, response


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    udp_len = 8 + len(payload)
    if s.version == 4:
        udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, s.packed, d.packed
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp
    pseudo = s.packed + d.packed + struct.pack("!IxxxB", udp_len, 17)
    udp0 = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = _checksum(pseudo + udp0) or 0xFFFF
    udp = udp0[:6] + struct.pack("!H", csum) + udp0[8:]
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, udp_len, 17, 64, s.packed, d.packed)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + ip6 + udp


# (client, qname, qtype, answers, rcode)
CONVERSATIONS: list[tuple[str, str, str, list[tuple[str, str, str, int]], int]] = [
    ("192.0.2.10", "www.example.org", "A", [("www.example.org", "A", "93.184.215.14", 300)], 0),
    ("192.0.2.11", "Evil.Example.COM", "A", [("Evil.Example.COM", "A", "203.0.113.7", 60)], 0),
    (
        "192.0.2.12",
        "cdn.benign.test",
        "A",
        [
            ("cdn.benign.test", "CNAME", "edge.bad-cdn.net", 120),
            ("edge.bad-cdn.net", "A", "198.51.100.20", 60),
        ],
        0,
    ),
    ("192.0.2.13", "a.b.evil.example.com", "A", [("a.b.evil.example.com", "A", "10.1.2.3", 30)], 0),
    (
        "2001:db8::53",
        "v6.example.net",
        "AAAA",
        [("v6.example.net", "AAAA", "2001:db8:bad::1", 300)],
        0,
    ),
    ("192.0.2.14", "nonexistent.example.org", "A", [], 3),
    ("192.0.2.15", "mail.example.org", "A", [("mail.example.org", "A", "198.51.100.99", 300)], 0),
]


def write_pcap(path: Path) -> None:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    ts = 1764240000  # 2025-11-27T10:40:00Z
    for i, (client, qname, qtype, answers, rcode) in enumerate(CONVERSATIONS):
        server = "2001:db8::1" if ":" in client else "192.0.2.1"
        query, response = dns_message(0x1000 + i, qname, qtype, answers, rcode)
        for usec, src, dst, sport, dport, msg in (
            (0, client, server, 40000 + i, 53, query),
            (1500, server, client, 53, 40000 + i, response),
        ):
            pkt = frame(src, dst, sport, dport, msg)
            out += struct.pack("<IIII", ts + i, usec, len(pkt), len(pkt)) + pkt
    path.write_bytes(bytes(out))


if __name__ == "__main__":
    write_pcap(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dns.pcap"))
