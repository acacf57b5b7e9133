# SPDX-License-Identifier: Apache-2.0
"""The hot loop: decode lines, match them, hand the rare hits on.

A chunk of complete lines is decoded in one call into
:class:`~pdnssoc_agent.dnslog.HotRecord` objects (query name, answer types and
data only): its newlines become a separator and the whole is read as one JSON
array. The separator is ``,S,`` where ``S`` is a random 62-bit number drawn
when the module is loaded, so no line can hold it. Record ``i`` is line ``i``
exactly when the array alternates record, ``S``, record, ... with one ``S``
for every newline: a line holding two values adds an element that is not
``S``, a value over two lines swallows an ``S`` into itself (where only an
unknown field can hold it), and both show in that count. Anything else (a
line that is not JSON, invalid UTF-8, nested too deeply, of the wrong type, a
blank line) makes the array invalid. Then the chunk is decoded again line by
line so that only the bad lines are counted and skipped. The count costs
nothing: the number of newlines follows from the lengths before and after
the replacement.

The matcher's name and address caches are consulted inline; only a line that
matches is decoded again in full for its alert. A line that fails that full
decoding (an alert field of the wrong type) is counted and skipped like any
other bad line.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import msgspec

from ..dnslog import Chunk, HotRecord, LineReader, LogRecord, ReadStats, hot_decoder, record_decoder
from .indicators import MISS, Matcher

# (how, indicator, value)
Hit = tuple[str, str, str]
OnHit = Callable[[LogRecord, list[Hit]], None]
OnChunk = Callable[[list[Any], bytes, Chunk], None]
"""Called after each chunk is matched: its records, the bytes scanned and the chunk."""

_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)

_S = secrets.randbits(62) | 1 << 61
_SEP = b",%d," % _S
_chunk_decoder: msgspec.json.Decoder[list[HotRecord | int]] = msgspec.json.Decoder(
    list[HotRecord | Literal[_S]]  # type: ignore[valid-type]
)


class Decoders(NamedTuple):
    """How :func:`scan_chunk` decodes: a chunk at once, or a line at a time."""

    chunk: msgspec.json.Decoder[Any]
    line: msgspec.json.Decoder[Any]


HOT = Decoders(_chunk_decoder, hot_decoder)


def decoders_for(record: type) -> Decoders:
    """Decoders of a wider record than ``HotRecord`` with the same attribute names for
    what the matcher reads (``dns.qname``, ``dns.rrs.an``, ``query``, ``answers``),
    so that one decode serves the matcher and another consumer of the same lines."""
    return Decoders(
        msgspec.json.Decoder(list[record | Literal[_S]]),  # type: ignore[valid-type]
        msgspec.json.Decoder(record),
    )


def scan_chunk(  # noqa: PLR0917 - the hot path's signature
    data: bytes,
    matcher: Matcher,
    stats: ReadStats,
    on_hit: OnHit,
    where: str,
    start: int = 0,
    decoders: Decoders = HOT,
) -> list[Any]:
    """Match every line of ``data`` (complete lines); count what cannot be read.

    ``start`` is the offset of ``data`` in the file's content, for the log.
    Returns the records of the lines that could be read, decoded by ``decoders``.
    """
    # data ends with a newline: "[" line SEP line ... SEP line "]"
    joined = b"".join((b"[", data[:-1].replace(b"\n", _SEP), b"]"))
    separators = (len(joined) - len(data) - 1) // (len(_SEP) - 1)
    try:
        items = decoders.chunk.decode(joined)
    except _ERRORS:
        items = None
    if items is None or len(items) != 2 * separators + 1 or items[1::2].count(_S) != separators:
        # a bad line, a blank one, two values on one line, a value over two lines
        return _scan_slow(data, matcher, stats, on_hit, f"{where}: byte", start, decoders.line)
    records: list[HotRecord] = items[::2]
    found = _match(records, matcher, stats, where)
    stats.lines += len(records)
    if found:
        lines = data.split(b"\n")
        for i, hits in found:
            try:
                rec = record_decoder.decode(lines[i])
            except _ERRORS as exc:
                at = start + sum(len(line) + 1 for line in lines[:i])
                stats.note(_kind(exc), f"{where}: byte {at}")
                continue
            on_hit(rec, hits)
    return records


def _kind(exc: BaseException) -> str:
    """The :class:`ReadStats` counter for a line that failed to decode with ``exc``."""
    if isinstance(exc, msgspec.ValidationError):
        return "wrong_type"  # JSON, but a field has the wrong type (or is out of range)
    if isinstance(exc, UnicodeDecodeError):
        return "invalid_utf8"
    return "malformed"  # not JSON, cut off, or nested too deeply (RecursionError)


def _scan_slow(  # noqa: PLR0917
    data: bytes,
    matcher: Matcher,
    stats: ReadStats,
    on_hit: OnHit,
    where: str,
    start: int,
    line_decoder: msgspec.json.Decoder[Any],
) -> list[Any]:
    good: list[tuple[bytes, int]] = []
    records: list[HotRecord] = []
    wide: list[Any] = records if line_decoder is hot_decoder else []
    pos = start
    for line in data.split(b"\n"):
        at = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        stats.lines += 1
        try:
            if line_decoder is hot_decoder:
                records.append(hot_decoder.decode(line))
            else:
                rec = _decode_wide(line, line_decoder, wide)
                records.append(rec)
        except _ERRORS as exc:
            stats.note(_kind(exc), f"{where} {at}")
            continue
        good.append((line, at))
    for i, hits in _match(records, matcher, stats, where.removesuffix(": byte")):
        line, at = good[i]
        try:
            rec = record_decoder.decode(line)
        except _ERRORS as exc:
            stats.note(_kind(exc), f"{where} {at}")
            continue
        on_hit(rec, hits)
    return wide


def _decode_wide(line: bytes, decoder: msgspec.json.Decoder[Any], wide: list[Any]) -> Any:
    """``line`` decoded by the wider ``decoder`` (kept in ``wide``), or, when only the
    wider record fails (a field the matcher does not read has the wrong type), as a
    ``HotRecord``: the matcher still sees every line it can read."""
    try:
        rec = decoder.decode(line)
    except msgspec.ValidationError:
        return hot_decoder.decode(line)
    wide.append(rec)
    return rec


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


def scan_file(
    path: Path,
    matcher: Matcher,
    stats: ReadStats,
    on_hit: OnHit,
    *,
    offset: int = 0,
    end: int | None = None,
    limit: int | None = None,
    complete: bool = False,
    max_line_bytes: int,
    gzip_backend: str,
    decoders: Decoders = HOT,
    on_chunk: OnChunk | None = None,
) -> int:
    """Match the complete lines of ``path``'s content from ``offset`` (up to ``end``).

    The one read-and-match loop of ``correlate`` and ``retro``. ``limit``,
    ``complete``, ``max_line_bytes`` and ``gzip_backend`` go to
    :class:`~pdnssoc_agent.dnslog.LineReader`. An unreadable file is counted in
    ``stats``, as are the bytes read. Returns the content offset reached.
    """
    where = str(path)
    reader = LineReader(
        path,
        stats,
        offset=offset,
        max_line_bytes=max_line_bytes,
        gzip_backend=gzip_backend,
        limit=limit,
        complete=complete,
    )
    try:
        for chunk in reader.chunks():
            at = chunk.end - len(chunk.data)
            data = chunk.data
            if end is not None and chunk.end > end:
                data = data[: end - at]
            records = scan_chunk(data, matcher, stats, on_hit, where, at, decoders)
            if on_chunk is not None:
                on_chunk(records, data, chunk)
            if end is not None and chunk.end >= end:
                break
    except OSError as exc:
        stats.note("unreadable", f"{path}: {exc.strerror}")
    stats.bytes += reader.offset - offset
    return reader.offset
