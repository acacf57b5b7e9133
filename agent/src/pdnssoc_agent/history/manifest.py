# SPDX-License-Identifier: Apache-2.0
"""The store's manifest: which segment files hold its rows and which query-log
ranges they came from.

The manifest is the store's only commit point. A segment file counts once it
is listed here, and the query-log bytes it was built from are listed in the
same atomic replacement, so after a crash the store either holds a batch and
knows it read those bytes, or holds neither (the unlisted file is removed on
the next open and the bytes are read again).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from ..errors import AgentError
from ..fsutil import atomic_write_bytes

VERSION = 1
NAME = "MANIFEST.json"


class StoreError(AgentError):
    """The history store cannot be used as it is; the message says what and where."""


class SegmentInfo(msgspec.Struct):
    """One segment file, relative to the store's directory."""

    path: str
    day: str
    rows: int
    replies: int
    bytes: int
    first_us: int
    last_us: int
    index: int = 0
    """Size of the companion index (``seg-*.idx``, see :mod:`.index`); 0: none."""


class SourceInfo(msgspec.Struct):
    """A query-log file known by its fingerprint, and the byte ranges of its content
    (decompressed) that the store holds, sorted and merged."""

    ranges: list[list[int]]
    path: str
    last_day: str = ""
    """The newest day any of its rows fell on ("" if none yet)."""


class Manifest(msgspec.Struct):
    version: int = VERSION
    bucket: str = "hour"
    next_seq: int = 1
    segments: list[SegmentInfo] = msgspec.field(default_factory=list)
    sources: dict[str, SourceInfo] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Manifest)


def load(path: Path) -> Manifest | None:
    """The manifest at ``path``, or None when there is none yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: unreadable ({exc.strerror})") from None
    try:
        m = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise StoreError(
            f"{path}: damaged manifest ({exc}); the segment files beside it are intact, "
            "but which log ranges they hold is lost: move the store away and import "
            "the query-log archive again"
        ) from None
    if m.version != VERSION:
        raise StoreError(f"{path}: manifest version {m.version}, this agent reads {VERSION}")
    return m


def save(path: Path, manifest: Manifest) -> None:
    atomic_write_bytes(path, _encoder.encode(manifest) + b"\n")


def covered_end(ranges: list[list[int]], start: int) -> int | None:
    """End of the held range containing ``start`` (None when ``start`` is not held)."""
    for lo, hi in ranges:
        if lo <= start < hi:
            return hi
    return None


def overlap(ranges: list[list[int]], start: int, end: int) -> tuple[bool, bool]:
    """(wholly held, partly held) for the byte range [start, end)."""
    held = 0
    for lo, hi in ranges:
        held += max(0, min(hi, end) - max(lo, start))
    return held >= end - start, held > 0


def add_range(ranges: list[list[int]], start: int, end: int) -> list[list[int]]:
    """``ranges`` with [start, end) added, sorted and merged."""
    if ranges and ranges[-1][1] == start:  # the common case: reading on
        return [*ranges[:-1], [ranges[-1][0], end]]
    out: list[list[int]] = []
    for lo, hi in sorted([*ranges, [start, end]]):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out
