# SPDX-License-Identifier: Apache-2.0
"""``retro`` from the history store: the look-back it covers, searched in bulk.

The store knows which bytes of which query-log file it holds (by the same
fingerprint correlate uses). For each file the raw scan would read, the held
bytes are left to the store's search and only the rest (bytes the store does
not hold yet: the tail of the live log, a file it never saw) is scanned raw,
so that every reply is counted once, from one of the two. Files the store
holds that are no longer on disk are still searched (the store keeps its own
copy).

A stored row stands for the repeats of one reply within one hour, so it maps
onto exactly one alert of a dedup window that is a whole number of hours;
another window makes retro scan the raw logs. The alert lines are those of the
raw scan, built by the same code, except for what the store does not keep:
each answer's TTL (0 here) and its owner name (the query name, then each
CNAME target in turn); answers of other types than A, AAAA and CNAME; and
``source.file``, which names the store. See docs/history-store.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..dnslog import Answer, head_bytes
from ..errors import AgentError
from .indicators import Matcher
from .output import Aggregator, Pending, alert_id, window_start
from .scan import Hit

if TYPE_CHECKING:
    from ..history import Row

log = logging.getLogger(__name__)

HOUR = 3600

Gaps = list[tuple[int, int | None]]
"""Byte ranges of a file's content to scan raw; None: to the end."""


@dataclass
class StorePart:
    """What the store answered for a retro run."""

    root: Path | str
    """The store's directory, or the cluster's name (what alert lines name as their source)."""
    gaps: dict[Path, Gaps] = field(default_factory=dict)
    """Per raw file: the ranges the store does not hold (absent: all of it)."""
    rows: int = 0
    replies: int = 0
    segments: int = 0


def usable(config: Config) -> str | None:
    """Why retro cannot read the store (None: it can)."""
    if not config.history.enabled:
        return "history.enabled is false"
    window = int(config.correlation.dedup_window.total_seconds())
    if window % HOUR:
        return "correlation.dedup_window is not a whole number of hours (the store's buckets)"
    if config.history.engine == "embedded" and not (config.history.dir / "MANIFEST.json").is_file():
        return "the store holds nothing yet"
    return None


def plan(config: Config, files: list[Path], fp_len: int, fp: Callable[[bytes], str]) -> StorePart:
    """The part of ``files`` the store holds, file by file (raises StoreError,
    ClusterError)."""
    from ..history.backend import open_store  # noqa: PLC0415 - pyarrow only when used

    store = open_store(config)
    prints = {}
    for path in files:
        head = head_bytes(path, fp_len)
        if head:
            prints[path] = fp(head)
    held = store.held(prints.values())
    part = StorePart(config.history.dir if config.history.engine == "embedded" else store.name)
    for path, key in prints.items():
        ranges = held.get(key)
        if ranges is not None:
            part.gaps[path] = _gaps(ranges)
    return part


def _gaps(ranges: list[list[int]]) -> Gaps:
    out: Gaps = []
    at = 0
    for lo, hi in ranges:
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    out.append((at, None))
    return out


def search(  # noqa: PLR0917
    config: Config,
    part: StorePart,
    matcher: Matcher,
    since: datetime,
    keep: Callable[[list[Hit], datetime], list[Hit]],
    agg: Aggregator,
) -> None:
    """Rows of the look-back that match ``matcher`` into ``agg``, as the raw scan's lines
    would go (``keep`` filters a row's hits as retro filters a line's)."""
    from ..history.backend import open_store  # noqa: PLC0415

    # whole hours: a row that begins before the look-back starts counts whole
    since_us = int(since.timestamp()) // HOUR * HOUR * 1_000_000
    # own: on a cluster, the replies of this server's sensors (each server's
    # retro alerts on its own; the others' are theirs to report)
    result = open_store(config).search(matcher, since_us=since_us, own=True)
    if result.problems:
        raise AgentError("; ".join(result.problems))
    part.segments = result.segments
    source = str(part.root)
    for row in sorted(result.rows, key=lambda r: (r.first_us, r.sensor, r.client, r.qname)):
        first = _dt(row.first_us)
        hits = keep(row.hits, first)
        if not hits:
            continue
        part.rows += 1
        part.replies += row.count
        _add(agg, row, hits, first, _dt(row.last_us), source)


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _answers(qname: str, cnames: list[str], ips: list[str]) -> tuple[Answer, ...]:
    """The answer section as far as the store keeps it: CNAME chain, then addresses."""
    out: list[Answer] = []
    owner = qname
    for c in cnames:
        out.append(Answer(owner, "CNAME", c, 0))
        owner = c
    for ip in ips:
        out.append(Answer(owner, "AAAA" if ":" in ip else "A", ip, 0))
    return tuple(out)


def _add(  # noqa: PLR0917
    agg: Aggregator, row: Row, hits: list[Hit], first: datetime, last: datetime, source: str
) -> None:
    """What ``Aggregator.add`` does for a line, for a row of ``count`` replies."""
    start = window_start(first, agg.window)
    seen: set[str] = set()
    answers: tuple[Answer, ...] | None = None
    for hit in hits:
        if hit[1] in seen:
            continue
        seen.add(hit[1])
        aid = alert_id(
            agg.kind, sensor=row.sensor, client=row.client, qname=row.qname, indicator=hit[1],
            start=start,
        )  # fmt: skip
        p = agg.items.get(aid)
        if p is None:
            if answers is None:
                answers = _answers(row.qname, row.cnames, row.ips)
            agg.items[aid] = Pending(
                aid, agg.kind, start, first, last, row.count, row.sensor, row.client, row.qname,
                row.qtype, row.rcode, answers, hit, source,
            )  # fmt: skip
        else:
            p.count += row.count
            p.first = min(p.first, first)
            p.last = max(p.last, last)
