# SPDX-License-Identifier: Apache-2.0
"""The hot loop: decode lines, match them, hand the rare hits on.

A chunk of complete lines is decoded in one call into
:class:`~pdnssoc_agent.dnslog.HotRecord` objects (query name, answer types and
data only): its newlines become commas and the whole is read as one JSON array,
which is valid exactly when every line holds one well-formed object, so record
``i`` is line ``i``. When any line of the chunk cannot be read (or is blank, or
holds two values, or a value spans two lines), the array is invalid and the
chunk is decoded again line by line so that only the bad lines are counted and
skipped. The
matcher's name and address caches are consulted inline; only a line that
matches is decoded again in full for its alert.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ..dnslog import HotRecord, LogRecord, ReadStats, hot_chunk_decoder, hot_decoder, record_decoder
from .indicators import MISS, Matcher

# (how, indicator, value)
Hit = tuple[str, str, str]
OnHit = Callable[[LogRecord, list[Hit]], None]

_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)


def scan_chunk(  # noqa: PLR0917 - the hot path's signature
    data: bytes, matcher: Matcher, stats: ReadStats, on_hit: OnHit, where: str, start: int = 0
) -> None:
    """Match every line of ``data`` (complete lines); count what cannot be read.

    ``start`` is the offset of ``data`` in the file's content, for the log.
    """
    try:
        # data ends with a newline: "[" line "," line ... line "]"
        records = hot_chunk_decoder.decode(b"".join((b"[", data[:-1].replace(b"\n", b","), b"]")))
    except _ERRORS:
        # a bad line, a blank one, two values on one line, a value over two lines
        _scan_slow(data, matcher, stats, on_hit, f"{where}: byte", start)
        return
    found = _match(records, matcher, stats, where)
    stats.lines += len(records)
    if found:
        lines = data.split(b"\n")
        for i, hits in found:
            on_hit(record_decoder.decode(lines[i]), hits)


def _scan_slow(  # noqa: PLR0917
    data: bytes, matcher: Matcher, stats: ReadStats, on_hit: OnHit, where: str, start: int
) -> None:
    good: list[bytes] = []
    records: list[HotRecord] = []
    pos = start
    for line in data.split(b"\n"):
        at = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        stats.lines += 1
        try:
            records.append(hot_decoder.decode(line))
        except msgspec.ValidationError:
            stats.note("wrong_type", f"{where} {at}")
            continue
        except msgspec.DecodeError:
            stats.note("malformed", f"{where} {at}")
            continue
        except UnicodeDecodeError:
            stats.note("invalid_utf8", f"{where} {at}")
            continue
        good.append(line)
    for i, hits in _match(records, matcher, stats, where.removesuffix(": byte")):
        on_hit(record_decoder.decode(good[i]), hits)


def _match(  # noqa: PLR0915 - one flat loop on purpose (speed)
    records: list[HotRecord], matcher: Matcher, stats: ReadStats, where: str
) -> list[tuple[int, list[Hit]]]:
    name_cache = matcher.name_cache
    ip_cache = matcher.ip_cache
    match_name = matcher.match_name
    match_ip = matcher.match_ip
    exact4 = matcher.exact4
    v4_cidrs = matcher.v4_cidrs
    v4_text = matcher.v4_bit_aligned
    match_ip4_cidr = matcher.match_ip4_cidr
    slash24 = matcher.slash24
    wider = v4_text and matcher.has_slash16_or_8
    by_prefix = matcher.v4_by_prefix
    prefix4 = matcher.prefix4
    match_ip4_text = matcher.match_ip4_text
    v6 = matcher.v6
    cnames = matcher.cnames
    miss = MISS
    found: list[tuple[int, list[Hit]]] = []
    for i, rec in enumerate(records):
        d = rec.dns
        if d is not None:
            qname = d.qname
            rrs = d.rrs
            an = rrs.an if rrs is not None else None
        else:
            qname = rec.query
            an = rec.answers
        if not qname:
            stats.note("missing_fields", where)
            continue
        hits: list[Hit] | None = None
        h = name_cache.get(qname, miss)
        if h is miss:
            h = match_name(qname)
        if h is not None:
            hits = [(h[0], h[1], qname)]
        for rr in an or ():
            t = rr.rdatatype
            if t == "A":
                value = rr.rdata
                if by_prefix:
                    # one set lookup rules out almost every answer
                    if value[: value.rfind(".")] not in prefix4:
                        continue
                    h = match_ip4_text(value)
                    if h is None:
                        continue
                    if hits is None:
                        hits = []
                    hits.append((h[0], h[1], value))
                    continue
                e = exact4.get(value)
                if e is not None:
                    h = ("ip", e)
                elif not v4_cidrs:
                    continue
                elif v4_text:
                    e = slash24.get(value[: value.rfind(".")])
                    if e is not None:
                        h = ("cidr", e)
                    elif wider:
                        h = match_ip4_cidr(value)
                    else:
                        continue
                else:
                    h = ip_cache.get(value, miss)
                    if h is miss:
                        h = match_ip(value)
            elif t == "AAAA":
                if not v6:
                    continue
                value = rr.rdata
                h = ip_cache.get(value, miss)
                if h is miss:
                    h = match_ip(value)
            elif t == "CNAME" and cnames:
                value = rr.rdata
                h = name_cache.get(value, miss)
                if h is miss:
                    h = match_name(value)
                if h is not None:
                    h = ("cname", h[1])
            else:
                continue
            if h is not None:
                if hits is None:
                    hits = []
                hits.append((h[0], h[1], value))
        if hits is not None:
            found.append((i, hits))
    return found
