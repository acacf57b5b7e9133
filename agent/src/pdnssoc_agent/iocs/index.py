# SPDX-License-Identifier: Apache-2.0
"""The local IOC index: every indicator with its MISP context, one JSON object a line.

fetch-iocs writes it beside the collector's list files; correlate and retro
read it to enrich alerts without a MISP connection. The first line is a
header; each following line is one :class:`IndicatorEntry`. Lines are sorted
by value, so the file diffs well and can be searched with grep.

Entries are read lazily: matching loads only the plain value lists, and the
index is scanned for context only for values that matched.

The structs are not tracked by Python's cycle collector (``gc=False``: they
hold only strings, numbers, tuples and lists of contexts, never a cycle), so
half a million of them cost no collector passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import msgspec

from ..errors import IndexFormatError
from ..fsutil import atomic_writer

FORMAT = "pdnssoc-ioc-index"
VERSION = 1

Kind = Literal["domain", "ip", "cidr"]


class IocContext(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """Where an indicator came from: one MISP attribute."""

    server: str
    """Label of the MISP server (``misp_servers[].name`` or its host name)."""
    event_id: str
    event_uuid: str = ""
    event_info: str = ""
    event_url: str = ""
    """Link to the event on its MISP server."""
    org: str = ""
    tags: tuple[str, ...] = ()
    attribute_uuid: str = ""
    attribute_type: str = ""
    category: str = ""
    comment: str = ""
    timestamp: int = 0
    """The attribute's MISP timestamp, epoch seconds."""
    first_seen: str = ""
    """When the source first saw the indicator (ISO 8601), where it says."""

    @property
    def tlp(self) -> str | None:
        """The TLP tag, if any (``tlp:amber``)."""
        for tag in self.tags:
            if tag.lower().startswith("tlp:"):
                return tag.lower()
        return None


class IndicatorEntry(msgspec.Struct, omit_defaults=True, gc=False):
    """One normalised indicator value and every attribute that carries it."""

    value: str
    kind: Kind
    added: int
    """When this agent first fetched the value, epoch seconds (drives retro)."""
    updated: int
    """Newest MISP attribute timestamp among ``contexts``, epoch seconds."""
    contexts: list[IocContext] = msgspec.field(default_factory=list)


class IndexHeader(msgspec.Struct, omit_defaults=True):
    """First line of the index file."""

    format: str
    version: int
    generated: int
    servers: dict[str, str] = msgspec.field(default_factory=dict)
    """Server label -> base URL of every server the index was built from."""


_enc = msgspec.json.Encoder()
_header_dec = msgspec.json.Decoder(IndexHeader)
_entry_dec = msgspec.json.Decoder(IndicatorEntry)


def write_index(path: Path, header: IndexHeader, entries: Iterable[IndicatorEntry]) -> int:
    """Atomically replace the index at ``path``; return the number of entries."""
    count = 0
    with atomic_writer(path, binary=True) as fh:
        fh.write(_enc.encode(header) + b"\n")
        for entry in sorted(entries, key=lambda e: e.value):
            fh.write(_enc.encode(entry) + b"\n")
            count += 1
    return count


def read_header(path: Path) -> IndexHeader:
    """The header line; raises FileNotFoundError or IndexFormatError."""
    with path.open("rb") as fh:
        first = fh.readline()
    return _parse_header(path, first)


def _parse_header(path: Path, line: bytes) -> IndexHeader:
    try:
        header = _header_dec.decode(line)
    except msgspec.DecodeError as exc:
        raise IndexFormatError(f"{path}: not a pDNSSOC IOC index ({exc})") from None
    if header.format != FORMAT or header.version != VERSION:
        raise IndexFormatError(
            f"{path}: format {header.format!r} version {header.version} is not "
            f"{FORMAT!r} version {VERSION}"
        )
    return header


def iter_index(path: Path) -> Iterator[IndicatorEntry]:
    """Every entry of the index, streamed. Raises IndexFormatError on a bad line."""
    with path.open("rb") as fh:
        _parse_header(path, fh.readline())
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                yield _entry_dec.decode(line)
            except msgspec.DecodeError as exc:
                raise IndexFormatError(f"{path}:{lineno}: {exc}") from None


def lookup(path: Path, values: set[str]) -> dict[str, IndicatorEntry]:
    """Entries for ``values`` only (a streaming scan; cheap, run once per batch)."""
    if not values:
        return {}
    found: dict[str, IndicatorEntry] = {}
    prefix = b'{"value":'
    with path.open("rb") as fh:
        _parse_header(path, fh.readline())
        for line in fh:
            # Cheap pre-check on the raw value before decoding the whole line.
            if not line.startswith(prefix):
                continue
            end = line.find(b'"', len(prefix) + 1)
            raw = line[len(prefix) + 1 : end].decode("utf-8", "replace")
            if raw in values:
                found[raw] = _entry_dec.decode(line)
    return found
