# SPDX-License-Identifier: Apache-2.0
"""What the history store needs of a query-log line, decoded once.

:class:`Record` holds the fields of both record shapes that
:mod:`pdnssoc_agent.dnslog` reads (go-dnscollector's JSON and pdnssoc's
minified archive) that the store keeps: time, sensor, client, query name,
type, rcode and the answer section's type and data. Its attribute names are
those of :class:`~pdnssoc_agent.dnslog.HotRecord` (``dns.qname``,
``dns.rrs.an[].rdatatype``/``rdata``, ``query``, ``answers``), so one decode
of a chunk can serve both the matcher and the store.
"""

from __future__ import annotations

import msgspec

from ..dnslog import ReadStats

# gc=False: these objects hold only strings and lists of them (no cycles).


class RecAnswer(msgspec.Struct, gc=False):
    """Type and data of an answer record (the owner name and TTL are not kept)."""

    rdatatype: str = ""
    rdata: str = ""


class _RRs(msgspec.Struct, gc=False):
    an: list[RecAnswer] | None = None


class _Dns(msgspec.Struct, gc=False, rename={"rrs": "resource-records"}):
    qname: str = ""
    qtype: str = ""
    rcode: str = ""
    rrs: _RRs | None = None


class _Net(msgspec.Struct, gc=False, rename={"query_ip": "query-ip"}):
    query_ip: str = ""


class _Tap(msgspec.Struct, gc=False, rename={"timestamp": "timestamp-rfc3339ns"}):
    identity: str = ""
    timestamp: str = ""


class Record(msgspec.Struct, gc=False):
    """One line of either shape, as the store reads it."""

    network: _Net | None = None
    dns: _Dns | None = None
    dnstap: _Tap | None = None
    # pdnssoc minified archive records
    timestamp: str = ""
    query: str = ""
    client: str = ""
    client_id: str = ""
    answers: list[RecAnswer] | None = None


record_decoder = msgspec.json.Decoder(Record)
chunk_decoder = msgspec.json.Decoder(list[Record])

_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)


def decode_chunk(data: bytes, stats: ReadStats, where: str, start: int = 0) -> list[Record]:
    """Every line of ``data`` (complete lines, each ending in a newline) as a Record.

    The whole chunk is decoded as one JSON array (its newlines turned into
    commas), which is valid exactly when each line holds one object; otherwise
    it is decoded again line by line and each bad line is counted in ``stats``
    (by byte offset, ``start`` being the chunk's offset in the file) and left
    out. ``stats.lines`` counts every non-blank line.
    """
    if not data:
        return []
    try:
        records = chunk_decoder.decode(b"".join((b"[", data[:-1].replace(b"\n", b","), b"]")))
    except _ERRORS:
        return _decode_slow(data, stats, where, start)
    stats.lines += len(records)
    return records


def _decode_slow(data: bytes, stats: ReadStats, where: str, start: int) -> list[Record]:
    out: list[Record] = []
    pos = start
    for line in data.split(b"\n"):
        at = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        stats.lines += 1
        try:
            out.append(record_decoder.decode(line))
        except msgspec.ValidationError:
            stats.note("wrong_type", f"{where}: byte {at}")
        except msgspec.DecodeError:
            stats.note("malformed", f"{where}: byte {at}")
        except UnicodeDecodeError:
            stats.note("invalid_utf8", f"{where}: byte {at}")
    return out
