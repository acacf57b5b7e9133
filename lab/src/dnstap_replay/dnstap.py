# SPDX-License-Identifier: Apache-2.0
"""dnstap CLIENT_RESPONSE messages and a bidirectional frame-stream sender.

Only what a resolver's reply needs is encoded (dnstap.proto: Dnstap.identity,
Dnstap.message, Dnstap.type; Message.type, socket family and protocol, addresses,
ports, response time and the DNS message), with the protobuf wire format written
by hand: the lab package uses the standard library only.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

CONTENT_TYPE = b"protobuf:dnstap.Dnstap"
CONTROL_ACCEPT, CONTROL_START, CONTROL_STOP, CONTROL_READY, CONTROL_FINISH = 1, 2, 3, 4, 5
CLIENT_RESPONSE = 6


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _field_fixed32(number: int, value: int) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<I", value)


def dns_name(name: str) -> bytes:
    """A name in DNS wire form (no compression)."""
    labels = [label.encode() for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


@dataclass(frozen=True)
class Reply:
    """One reply of the resolver to a client."""

    when: float  # seconds since the epoch
    client: str
    qname: str
    qtype: str  # "A" or "AAAA"
    answers: tuple[str, ...]  # addresses of the qtype; empty: NXDOMAIN
    qid: int = 0


def dns_reply(reply: Reply) -> bytes:
    """The reply's DNS message: question, and one record per answer (or NXDOMAIN)."""
    qtype = 1 if reply.qtype == "A" else 28
    rcode = 0 if reply.answers else 3
    header = struct.pack(">HHHHHH", reply.qid, 0x8180 | rcode, 1, len(reply.answers), 0, 0)
    body = dns_name(reply.qname) + struct.pack(">HH", qtype, 1)
    for address in reply.answers:
        rdata = ipaddress.ip_address(address).packed
        body += struct.pack(">HHHIH", 0xC00C, qtype, 1, 300, len(rdata)) + rdata
    return header + body


def message(reply: Reply, identity: str, resolver: str) -> bytes:
    """The reply as one serialized Dnstap message (CLIENT_RESPONSE)."""
    client = ipaddress.ip_address(reply.client)
    sec = int(reply.when)
    nsec = int((reply.when - sec) * 1e9)
    inner = b"".join(
        (
            _field_varint(1, CLIENT_RESPONSE),
            _field_varint(2, 1 if client.version == 4 else 2),
            _field_varint(3, 1),  # UDP
            _field_bytes(4, client.packed),
            _field_bytes(5, ipaddress.ip_address(resolver).packed),
            _field_varint(6, 1024 + reply.qid % 60000),
            _field_varint(7, 53),
            _field_varint(12, sec),
            _field_fixed32(13, nsec),
            _field_bytes(14, dns_reply(reply)),
        )
    )
    return _field_bytes(1, identity.encode()) + _field_bytes(14, inner) + _field_varint(15, 1)


def _control(kind: int, with_type: bool = True) -> bytes:
    fields = struct.pack(">II", 1, len(CONTENT_TYPE)) + CONTENT_TYPE if with_type else b""
    return struct.pack(">III", 0, 4 + len(fields), kind) + fields


def _read_control(sock: socket.socket) -> int:
    head = _recv_exact(sock, 8)
    escape, length = struct.unpack(">II", head)
    if escape != 0:
        raise ConnectionError("frame-stream: expected a control frame")
    body = _recv_exact(sock, length)
    return int(struct.unpack(">I", body[:4])[0])


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("frame-stream: connection closed during the handshake")
        data += chunk
    return data


class FrameStreamSender:
    """A dnstap writer on a unix socket, as BIND's is: READY, ACCEPT, START, data, STOP."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.sock.sendall(_control(CONTROL_READY))
        if _read_control(self.sock) != CONTROL_ACCEPT:
            raise ConnectionError(f"frame-stream: {path} did not accept {CONTENT_TYPE!r}")
        self.sock.sendall(_control(CONTROL_START))

    def send(self, frames: list[bytes]) -> None:
        """Send data frames (serialized Dnstap messages)."""
        self.sock.sendall(b"".join(struct.pack(">I", len(f)) + f for f in frames))

    def close(self) -> None:
        """STOP, wait for FINISH, close."""
        try:
            self.sock.sendall(_control(CONTROL_STOP, with_type=False))
            _read_control(self.sock)
        except OSError:
            pass
        finally:
            self.sock.close()
