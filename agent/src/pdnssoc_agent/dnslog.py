# SPDX-License-Identifier: Apache-2.0
"""Reading go-dnscollector query logs: JSON lines, plain or gzip, full or minified.

Two record shapes are understood, in the same decoder:

* go-dnscollector's ``logfile`` JSON mode (v0.38): ``network.query-ip``,
  ``dns.qname``, ``dns.qtype``, ``dns.rcode``, ``dns.resource-records.an[]``
  (``name``, ``rdatatype``, ``rdata``, ``ttl``), ``dnstap.identity``,
  ``dnstap.operation``, ``dnstap.timestamp-rfc3339ns``;
* the minified records pdnssoc's post-rotate script archived (``timestamp``,
  ``query``, ``client``, ``server``, ``client_id``, ``answers``), so that
  existing archives stay searchable.

Only those fields are decoded (msgspec skips the rest without building it).
Files are read in chunks of complete lines: a line still being written is
left for the next run, over-long lines are skipped, and every problem is
counted in :class:`ReadStats` instead of stopping the read.
"""

from __future__ import annotations

import abc
import queue
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, cast

import msgspec

try:  # ISA-L's inflate, about twice as fast as zlib's, with the same interface
    from isal import isal_zlib as inflate_module

    # the stub types isal_zlib.error as an instance; it is the exception class
    INFLATE_ERRORS: tuple[type[Exception], ...] = (
        zlib.error,
        cast("type[Exception]", inflate_module.error),
    )
except ImportError:  # pragma: no cover - isal is a pinned dependency; zlib still works
    inflate_module = zlib  # type: ignore[misc,unused-ignore]
    INFLATE_ERRORS = (zlib.error,)
INFLATE = "isal" if inflate_module is not zlib else "zlib"
"""Which library inflates gzip files: "isal" (python-isal) or "zlib" when it is missing."""

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20


TTL = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
"""A DNS TTL is an unsigned 32-bit number; anything else is the wrong type."""


class Answer(msgspec.Struct, frozen=True):
    """One resource record of the answer section."""

    name: str = ""
    rdatatype: str = ""
    rdata: str = ""
    ttl: TTL = 0


class _RRs(msgspec.Struct):
    an: list[Answer] | None = None


class _Dns(msgspec.Struct, rename={"rrs": "resource-records"}):
    qname: str = ""
    qtype: str = ""
    rcode: str = ""
    rrs: _RRs | None = None


class _Net(msgspec.Struct, rename={"query_ip": "query-ip"}):
    query_ip: str = ""


class _Tap(msgspec.Struct, rename={"timestamp": "timestamp-rfc3339ns"}):
    identity: str = ""
    operation: str = ""
    timestamp: str = ""


class LogRecord(msgspec.Struct):
    """One line of either shape; unknown keys are skipped while decoding."""

    network: _Net | None = None
    dns: _Dns | None = None
    dnstap: _Tap | None = None
    # pdnssoc minified archive records
    timestamp: str = ""
    query: str = ""
    client: str = ""
    client_id: str = ""
    answers: list[Answer] | None = None


class DnsEvent(msgspec.Struct, frozen=True):
    """One DNS answer as correlation sees it, whatever shape its line had.

    The one normalised event: the scan decodes lines as :class:`LogRecord`
    (or only what matching needs, :class:`HotRecord`), and a matching line is
    normalised by :func:`normalise` before it becomes an alert.
    """

    timestamp: str
    sensor: str
    client: str
    qname: str
    qtype: str
    rcode: str
    answers: tuple[Answer, ...]


record_decoder = msgspec.json.Decoder(LogRecord)


# The hot path decodes only what matching needs; a matching line is decoded
# again in full. gc=False: these objects hold only strings and lists of them.
class HotAnswer(msgspec.Struct, gc=False):
    """What matching needs of an answer record."""

    rdatatype: str = ""
    rdata: str = ""


class _HotRRs(msgspec.Struct, gc=False):
    an: list[HotAnswer] | None = None


class _HotDns(msgspec.Struct, gc=False, rename={"rrs": "resource-records"}):
    qname: str = ""
    rrs: _HotRRs | None = None


class _HotTap(msgspec.Struct, gc=False, rename={"timestamp": "timestamp-rfc3339ns"}):
    identity: str = ""
    timestamp: str = ""


class HotRecord(msgspec.Struct, gc=False):
    """What matching needs of a line, in either shape, and the sensor and time
    that the per-sensor counts need (:mod:`pdnssoc_agent.sensors`)."""

    dns: _HotDns | None = None
    query: str = ""
    answers: list[HotAnswer] | None = None
    dnstap: _HotTap | None = None
    timestamp: str = ""
    client_id: str = ""


hot_decoder = msgspec.json.Decoder(HotRecord)
"""Decodes one line (``correlate.scan`` decodes chunks of lines as one array)."""


def normalise(rec: LogRecord) -> DnsEvent:
    """The fields an alert needs of a decoded line, whatever its shape.

    A line with a ``dns`` object is the collector's; any other is read as a
    minified archive record. The time is the sensor's (``dnstap``) if the line
    has one, else the archive record's.
    """
    tap = rec.dnstap
    timestamp = tap.timestamp if tap is not None else rec.timestamp
    d = rec.dns
    if d is not None:
        net, rrs = rec.network, d.rrs
        return DnsEvent(
            timestamp=timestamp,
            sensor=tap.identity if tap is not None else "",
            client=net.query_ip if net is not None else "",
            qname=d.qname,
            qtype=d.qtype,
            rcode=d.rcode,
            answers=tuple(rrs.an or ()) if rrs is not None else (),
        )
    return DnsEvent(
        timestamp=timestamp,
        sensor=rec.client_id,
        client=rec.client,
        qname=rec.query,
        qtype="",
        rcode="",
        answers=tuple(rec.answers or ()),
    )


def to_event(rec: LogRecord) -> DnsEvent | None:
    """Normalise a decoded line; None when it has no query name."""
    event = normalise(rec)
    return event if event.qname else None


def parse_line(line: bytes) -> DnsEvent | None:
    """Decode one line (raises msgspec.DecodeError / UnicodeDecodeError)."""
    return to_event(record_decoder.decode(line))


MAX_PLACES = 10
"""How many problem places of each kind a :class:`ReadStats` keeps for the log."""


@dataclass
class ReadStats:
    """What was read and what was skipped, by reason."""

    files: int = 0
    lines: int = 0
    bytes: int = 0
    malformed: int = 0
    """Not one JSON value (cut off, two values, nested too deeply)."""
    invalid_utf8: int = 0
    wrong_type: int = 0
    """JSON, but a field has the wrong type or is out of range (or the line is not an object)."""
    missing_fields: int = 0
    """No query name in either record shape."""
    too_long: int = 0
    """Longer than correlation.max_line_bytes."""
    truncated_gzip: int = 0
    """gzip files that ended early or are corrupt (read up to the damage)."""
    unreadable: int = 0
    """Files that could not be opened or read."""
    places: list[tuple[str, str]] = field(default_factory=list)
    """The first few problems of each kind: (kind, where), in the order they were met
    (one kind met often does not hide the places of another)."""
    kept: dict[str, int] = field(default_factory=dict, repr=False)
    """How many places of each kind :attr:`places` holds."""

    SKIP_KINDS = (
        "malformed",
        "invalid_utf8",
        "wrong_type",
        "missing_fields",
        "too_long",
        "truncated_gzip",
        "unreadable",
    )

    @property
    def skipped(self) -> int:
        return sum(getattr(self, k) for k in self.SKIP_KINDS if k not in ("truncated_gzip",))

    def note(self, kind: str, where: str) -> None:
        """Count one problem of ``kind``; keep the first few locations for the log."""
        setattr(self, kind, getattr(self, kind) + 1)
        self._keep(kind, where)

    def _keep(self, kind: str, where: str) -> None:
        n = self.kept.get(kind, 0)
        if n < MAX_PLACES:
            self.kept[kind] = n + 1
            self.places.append((kind, where))

    def merge(self, other: ReadStats) -> None:
        for name in ("files", "lines", "bytes", *self.SKIP_KINDS):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, where in other.places:
            self._keep(kind, where)

    def counts(self, kinds: Iterable[str] = SKIP_KINDS) -> list[str]:
        """``"3 malformed"`` for each of ``kinds`` met at least once."""
        return [f"{getattr(self, k)} {_words(k)}" for k in kinds if getattr(self, k)]

    def examples_of(self, kinds: Iterable[str] = SKIP_KINDS) -> list[str]:
        """``"<where>: <kind>"`` for each kept place of one of ``kinds``."""
        chosen = set(kinds)
        return [f"{where}: {_words(kind)}" for kind, where in self.places if kind in chosen]

    @property
    def examples(self) -> list[str]:
        """At most :data:`MAX_PLACES` places for the log: the first of each kind met,
        then the second of each, and so on (in the order the kinds were met)."""
        ranked: dict[str, int] = {}
        order: list[tuple[int, int, str]] = []
        for i, (kind, where) in enumerate(self.places):
            rank = ranked[kind] = ranked.get(kind, -1) + 1
            order.append((rank, i, f"{where}: {_words(kind)}"))
        return [text for _, _, text in sorted(order)[:MAX_PLACES]]

    def summary(self) -> str:
        parts = [f"{self.files} file(s)", f"{self.lines} line(s)"]
        problems = self.counts()
        if problems:
            parts.append("skipped: " + ", ".join(problems))
        return "; ".join(parts)


def _words(kind: str) -> str:
    return kind.replace("_", " ")


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic (whatever its suffix)."""
    try:
        with path.open("rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError:
        return False


# --------------------------------------------------------------------------- raw byte streams


class _Source(abc.ABC):
    """A stream of decompressed bytes plus how far into the file it has got."""

    truncated = False

    @abc.abstractmethod
    def read(self) -> bytes:
        """The next block of decompressed bytes; empty at the end."""

    @abc.abstractmethod
    def position(self) -> int:
        """Bytes of the file (compressed, for gzip) consumed so far."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the file."""


class _PlainSource(_Source):
    def __init__(self, path: Path, limit: int | None) -> None:
        self._fh = path.open("rb")
        self._limit = limit

    def seek(self, offset: int) -> None:
        self._fh.seek(offset)

    def read(self) -> bytes:
        n = CHUNK
        if self._limit is not None:
            n = min(n, self._limit - self._fh.tell())
            if n <= 0:
                return b""
        return self._fh.read(n)

    def position(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


class _ZlibSource(_Source):
    """In-process gzip decompression of every member, noting a damaged or cut-off end.

    Inflated by :data:`INFLATE` (ISA-L when python-isal is installed, else zlib).
    """

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self._d = inflate_module.decompressobj(wbits=31)
        self._in = b""
        self._member_open = False
        self._done = False

    def read(self) -> bytes:
        while not self._done:
            if not self._in:
                self._in = self._fh.read(CHUNK // 4)
                if not self._in:
                    self._done = True
                    self.truncated = self._member_open
                    return b""
            if not self._member_open and not self._in.strip(b"\x00"):
                self._in = b""  # zero padding after the last member
                continue
            self._member_open = True
            try:
                out = self._d.decompress(self._in, CHUNK)
            except INFLATE_ERRORS:
                self.truncated = True
                self._done = True
                return b""
            self._in = self._d.unconsumed_tail
            if self._d.eof:
                self._in = self._d.unused_data
                self._d = inflate_module.decompressobj(wbits=31)
                self._member_open = False
            if out:
                return out
        return b""

    def position(self) -> int:
        return self._fh.tell() - len(self._in)

    def close(self) -> None:
        self._fh.close()


class _ThreadSource(_Source):
    """gzip decompressed in a helper thread, a few blocks ahead of the parser.

    Where the inflating library releases the GIL (zlib does), decompression and
    matching overlap on a machine with a second core; on one core this costs
    about the same as inline decompression.
    """

    AHEAD = 8

    def __init__(self, path: Path) -> None:
        self._inner = _ZlibSource(path)
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(self.AHEAD)
        self._stop = threading.Event()
        self._pos = 0
        self._thread = threading.Thread(target=self._run, name=f"gunzip {path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._inner.read()
                self._put(data if data else None)
                if not data:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            self._put(exc)

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            else:
                return

    def read(self) -> bytes:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is None:
            self.truncated = self._inner.truncated
            return b""
        self._pos = self._inner.position()
        return item

    def position(self) -> int:
        return self._pos

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._inner.close()


GZIP_BACKENDS = ("zlib", "thread")


def _gzip_source(path: Path, backend: str) -> _Source:
    if backend == "thread":
        return _ThreadSource(path)
    return _ZlibSource(path)


@dataclass
class Chunk:
    """Complete lines read from one file, and the offset just after the last one."""

    data: bytes
    """One or more whole lines, each ending in a newline and at most max_line_bytes long."""
    end: int
    """Offset in the (decompressed) content just after the last line of this chunk."""
    raw_position: int
    """Bytes of the file itself consumed so far (compressed bytes for gzip)."""


class LineReader:
    """Complete lines of one file from an offset, in chunks of at most max_line_bytes.

    ``offset`` counts bytes of the decompressed content. A plain file's last
    line without a newline is left unread (the collector may still be writing
    it) unless the file is ``complete`` (an archive); the same in a gzip file
    is read when the stream ended cleanly.
    Lines longer than ``max_line_bytes`` are skipped and counted. Working in
    pieces of that size makes the length check exact at O(1) per piece: only
    the first line of a piece can continue the previous one.
    """

    def __init__(
        self,
        path: Path,
        stats: ReadStats,
        *,
        offset: int = 0,
        max_line_bytes: int = 65536,
        gzip_backend: str = "zlib",
        limit: int | None = None,
        complete: bool = False,
    ) -> None:
        self.path = path
        self.complete = complete
        self.stats = stats
        self.offset = offset
        self.max_line_bytes = max_line_bytes
        self.gzip = is_gzip(path)
        self._backend = gzip_backend
        self._limit = limit

    def chunks(self) -> Iterator[Chunk]:
        src: _Source
        if self.gzip:
            src = _gzip_source(self.path, self._backend)
        else:
            plain = _PlainSource(self.path, self._limit)
            plain.seek(self.offset)
            src = plain
        try:
            yield from self._chunks(src)
        finally:
            src.close()

    def _too_long(self, at: int) -> None:
        self.stats.note("too_long", f"{self.path}: byte {at}")

    def _chunks(self, src: _Source) -> Iterator[Chunk]:  # noqa: PLR0915 - one state machine
        size = self.max_line_bytes
        pos = 0 if self.gzip else self.offset  # content offset of ``pending[0]``
        skip = self.offset - pos  # gzip: content bytes to discard before resuming
        pending = b""  # start of a line continued in the next piece (never > size)
        discarding = False  # inside an over-long line, dropping until its newline
        while True:
            block = src.read()
            if not block:
                break
            if skip:
                take = min(skip, len(block))
                skip -= take
                pos += take
                block = block[take:]
            for start in range(0, len(block), size):
                piece = block[start : start + size]
                if discarding:
                    nl = piece.find(b"\n")
                    if nl < 0:
                        pos += len(piece)
                        continue
                    pos += nl + 1
                    piece = piece[nl + 1 :]
                    discarding = False
                if pending:
                    nl = piece.find(b"\n")
                    if nl < 0:
                        pending += piece
                        if len(pending) > size:
                            self._too_long(pos)
                            pos += len(pending)
                            pending = b""
                            discarding = True
                        continue
                    if len(pending) + nl > size:
                        self._too_long(pos)
                        pos += len(pending) + nl + 1
                        pending = b""
                        piece = piece[nl + 1 :]
                cut = piece.rfind(b"\n")
                if cut < 0:
                    pending += piece
                    if len(pending) > size:
                        self._too_long(pos)
                        pos += len(pending)
                        pending = b""
                        discarding = True
                    continue
                data = pending + piece[: cut + 1] if pending else piece[: cut + 1]
                pending = piece[cut + 1 :]
                pos += len(data)
                self.offset = pos
                yield Chunk(data, pos, src.position())
        if src.truncated:
            self.stats.note("truncated_gzip", str(self.path))
        elif (self.gzip or self.complete) and pending and not discarding:
            pos += len(pending)
            self.offset = pos
            yield Chunk(pending + b"\n", pos, src.position())


def head_bytes(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of the file's content (decompressed for gzip)."""
    try:
        with path.open("rb") as fh:
            first = fh.read(n)
            if first[:2] != GZIP_MAGIC:
                return first
            fh.seek(0)
            d = zlib.decompressobj(wbits=31)
            out = b""
            while len(out) < n and not d.eof:
                raw = d.unconsumed_tail or fh.read(65536)
                if not raw:
                    break
                try:
                    out += d.decompress(raw, n - len(out))
                except zlib.error:
                    break
            return out[:n]
    except OSError:
        return b""
