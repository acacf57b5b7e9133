# SPDX-License-Identifier: Apache-2.0
"""Writing alerts: dedup by window, building lines, and durable exactly-once appending.

The line format itself (type, encoder, decoder) is :mod:`pdnssoc_agent.alertfile`.

An alert's ``id`` is derived from what it is about (kind, sensor, client,
query name, indicator) and the start of the ``correlation.dedup_window``
bucket the DNS answer fell in, so re-reading the same line always yields the
same id. Repeats in the same bucket update the alert: a later line with the
same id carries a higher ``revision`` and the new ``count``/``last_seen``.

Writing is two-phase so a crash at any point neither loses nor repeats a
line: the step's state file (offsets, dedup table) is first replaced
atomically together with the alert lines about to be appended ("pending");
the lines are appended and fsynced; then the state is replaced again without
them. On start a pending record is completed: whatever part of it is missing
from the alerts file is appended.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec
from msgspec.structs import replace

from ..alertfile import (
    ALERTS_FILE,
    SCHEMA_VERSION,
    Alert,
    AlertAnswer,
    AlertMatch,
    AlertQuery,
    AlertSource,
    MispAttribute,
    encode_alert,
)
from ..dnslog import Answer, DnsEvent
from ..errors import StateError
from ..fsutil import append_durably, atomic_write_bytes, locked
from ..iocs.index import IndicatorEntry, IocContext
from ..timefmt import format_rfc3339, parse_rfc3339_or_none
from .inputs import FileMark
from .scan import Hit

log = logging.getLogger(__name__)

Kind = Literal["live", "retro"]


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def window_start(when: datetime, window: timedelta) -> int:
    """Epoch second at which ``when``'s dedup bucket starts (buckets aligned on 1970)."""
    size = max(1, int(window.total_seconds()))
    ts = int(when.timestamp())
    return ts - ts % size


def alert_id(kind: str, *, sensor: str, client: str, qname: str, indicator: str, start: int) -> str:
    """32 hex digits, stable for (kind, sensor, client, query name, indicator, bucket)."""
    key = "\x1f".join((kind, sensor, client, qname.lower().rstrip("."), indicator, str(start)))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass
class Pending:
    """An alert being aggregated in this batch."""

    id: str
    kind: str
    window_start: int
    first: datetime
    last: datetime
    count: int
    sensor: str
    client: str
    qname: str
    qtype: str
    rcode: str
    answers: tuple[Answer, ...]
    hit: Hit
    source: str


class Aggregator:
    """Folds hits into one Pending per alert id."""

    def __init__(self, kind: str, window: timedelta) -> None:
        self.kind = kind
        self.window = window
        self.items: dict[str, Pending] = {}
        self.unparsed_times = 0

    def add(self, event: DnsEvent, hits: list[Hit], source: str, when: datetime) -> None:
        sensor, client, qname = event.sensor, event.client, event.qname
        qtype, rcode, answers = event.qtype, event.rcode, event.answers
        start = window_start(when, self.window)
        seen: set[str] = set()
        for hit in hits:
            if hit[1] in seen:
                continue
            seen.add(hit[1])
            aid = alert_id(
                self.kind, sensor=sensor, client=client, qname=qname, indicator=hit[1], start=start
            )
            p = self.items.get(aid)
            if p is None:
                self.items[aid] = Pending(
                    aid, self.kind, start, when, when, 1, sensor, client, qname, qtype, rcode,
                    answers, hit, source,
                )  # fmt: skip
            else:
                p.count += 1
                p.first = min(p.first, when)
                p.last = max(p.last, when)

    def merge(self, other: Aggregator) -> None:
        """Fold ``other``'s alerts into these, as if its hits had been added here after."""
        for aid, theirs in other.items.items():
            mine = self.items.get(aid)
            if mine is None:
                self.items[aid] = theirs
            else:
                mine.count += theirs.count
                mine.first = min(mine.first, theirs.first)
                mine.last = max(mine.last, theirs.last)
        self.unparsed_times += other.unparsed_times


def event_time(event: DnsEvent) -> datetime | None:
    """When the DNS message was seen by the sensor."""
    return parse_rfc3339_or_none(event.timestamp)


# ---------------------------------------------------------------------- dedup state


class Seen(msgspec.Struct, array_like=True):
    """What was last written for an alert id."""

    revision: int
    count: int
    first: str
    last: str
    window_end: int
    written: int = 0
    """When (epoch s, the run's clock) this id was last written; 0 in older state files."""


class PendingWrite(msgspec.Struct):
    alerts_file: str
    size_before: int
    data: str


class StepState(msgspec.Struct):
    """Everything a step must remember between runs, replaced atomically."""

    version: int = 1
    files: list[FileMark] = msgspec.field(default_factory=list)
    alerts: dict[str, Seen] = msgspec.field(default_factory=dict)
    pending: PendingWrite | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


_state_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(StepState)


def load_state(path: Path) -> StepState:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return StepState()
    try:
        return _state_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise StateError(
            f"{path}: unreadable state ({exc}); move it away to start over "
            "(inputs would then be read again from the start)"
        ) from None


def save_state(path: Path, state: StepState) -> None:
    atomic_write_bytes(path, _state_encoder.encode(state) + b"\n")


@contextlib.contextmanager
def alerts_lock(alerts_dir: Path) -> Iterator[None]:
    """Exclusive lock on the alerts file for correlate and retro (blocking)."""
    with locked(alerts_dir / f".{ALERTS_FILE}.lock"):
        yield


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_range(path: Path, start: int, length: int) -> bytes:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            return fh.read(length)
    except FileNotFoundError:
        return b""


def recover(state_path: Path, state: StepState) -> StepState:
    """Finish a write that a crash interrupted; returns the state without ``pending``."""
    p = state.pending
    if p is None:
        return state
    target = Path(p.alerts_file)
    data = p.data.encode("utf-8")
    with alerts_lock(target.parent):
        size = _size(target)
        have = _read_range(target, p.size_before, len(data)) if size > p.size_before else b""
        if have == data:
            missing = b""
        elif data.startswith(have) and size == p.size_before + len(have):
            missing = data[len(have) :]
        else:
            log.warning(
                "%s changed since an interrupted write; appending its %d alert line(s) again",
                target,
                data.count(b"\n"),
            )
            missing = data
        if missing:
            append_durably(target, missing)
            log.info("completed an interrupted write of %d byte(s) to %s", len(missing), target)
        state.pending = None
        save_state(state_path, state)
    return state


def commit(state_path: Path, state: StepState, alerts_file: Path, lines: list[bytes]) -> None:
    """Append ``lines`` and persist ``state`` so that both happen exactly once."""
    if not lines:
        state.pending = None
        save_state(state_path, state)
        return
    data = b"".join(line + b"\n" for line in lines)
    with alerts_lock(alerts_file.parent):
        state.pending = PendingWrite(str(alerts_file), _size(alerts_file), data.decode("utf-8"))
        save_state(state_path, state)
        append_durably(alerts_file, data)
        state.pending = None
        save_state(state_path, state)


# ---------------------------------------------------------------------- building lines


# An alert line stays far below what ``alert`` reads (1 MiB) and below
# correlation.max_line_bytes (64 KiB by default), however well documented its
# indicator: the indicator, the query and the incident are always written
# whole; the MISP context is listed up to these bounds and the rest counted in
# ``misp_more`` (the reader sees "and N more").
LINE_BUDGET = 32 * 1024
"""Bytes an alert line aims to stay within (the MISP context gives way first)."""
MAX_MISP = 20
"""MISP attributes listed per alert line."""
MAX_TAGS = 30
"""Tags listed per MISP attribute (``tlp:`` tags always are)."""
MAX_TEXT = 1000
"""Characters of an event title, comment or organisation; then "…"."""
MAX_ANSWERS = 32
"""DNS answers listed per alert line."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    tlp = [t for t in tags if t.lower().startswith("tlp:")]
    other = [t for t in tags if not t.lower().startswith("tlp:")]
    return (*tlp, *(_cut(t, 200) for t in other[: max(0, MAX_TAGS - len(tlp))]))


def _misp(entry: IndicatorEntry | None) -> list[MispAttribute]:
    if entry is None:
        return []
    return [_misp_one(c) for c in entry.contexts]


def _misp_one(c: IocContext, text: int = MAX_TEXT) -> MispAttribute:
    return MispAttribute(
        server=c.server,
        event_id=c.event_id,
        event_uuid=c.event_uuid,
        event_info=_cut(c.event_info, text),
        event_url=c.event_url,
        org=_cut(c.org, text),
        tags=_tags(c.tags),
        attribute_uuid=c.attribute_uuid,
        attribute_type=c.attribute_type,
        category=c.category,
        comment=_cut(c.comment, text),
        timestamp=c.timestamp,
        tlp=c.tlp,
        source_type=c.source_type,
    )


def encode_bounded(alert: Alert, budget: int = LINE_BUDGET) -> bytes:
    """``alert`` as one JSON line of at most about ``budget`` bytes.

    Listed MISP attributes are halved until the line fits (each one left out
    is counted in ``misp_more``), down to one; then the texts of that one are
    cut shorter. The indicator, query, client, sensor and times are never cut.
    """
    line = encode_alert(alert)
    while len(line) > budget and len(alert.misp) > 1:
        keep = len(alert.misp) // 2
        alert = replace(
            alert, misp=alert.misp[:keep], misp_more=alert.misp_more + len(alert.misp) - keep
        )
        line = encode_alert(alert)
    if len(line) > budget and alert.misp:
        m = alert.misp[0]
        m = replace(
            m,
            event_info=_cut(m.event_info, 100),
            comment=_cut(m.comment, 100),
            org=_cut(m.org, 100),
            tags=tuple(t for t in m.tags if t.lower().startswith("tlp:"))[:5],
        )
        alert = replace(alert, misp=(m, *alert.misp[1:]))
        line = encode_alert(alert)
    return line


def build_lines(
    pending: dict[str, Pending],
    seen: dict[str, Seen],
    *,
    window: timedelta,
    context: dict[str, IndicatorEntry],
    ioc_added: dict[str, datetime | None],
    now: datetime,
) -> list[bytes]:
    """Alert lines for this batch (revisions continue ``seen``, which is updated)."""
    out: list[bytes] = []
    size = max(1, int(window.total_seconds()))
    detected = format_rfc3339(now)
    written = int(now.timestamp())
    for p in sorted(pending.values(), key=lambda p: (p.first, p.id)):
        prev = seen.get(p.id)
        first, last, count, revision = p.first, p.last, p.count, 1
        if prev is not None:
            pf, pl = parse_rfc3339_or_none(prev.first), parse_rfc3339_or_none(prev.last)
            first = min(first, pf) if pf else first
            last = max(last, pl) if pl else last
            count += prev.count
            revision = prev.revision + 1
        seen[p.id] = Seen(
            revision,
            count,
            format_rfc3339(first),
            format_rfc3339(last),
            p.window_start + size,
            written,
        )
        how, indicator, value = p.hit
        added = ioc_added.get(indicator)
        misp = _misp(context.get(indicator))
        alert = Alert(
            schema_version=SCHEMA_VERSION,
            id=p.id,
            revision=revision,
            kind=p.kind,
            detected_at=detected,
            first_seen=format_rfc3339(first),
            last_seen=format_rfc3339(last),
            count=count,
            sensor=p.sensor,
            client=p.client,
            query=AlertQuery(p.qname, p.qtype, p.rcode),
            answers=tuple(
                AlertAnswer(a.name, a.rdatatype, a.rdata, a.ttl) for a in p.answers[:MAX_ANSWERS]
            ),
            match=AlertMatch(how, indicator, value),
            misp=tuple(misp[:MAX_MISP]),
            ioc_added=format_rfc3339(added) if added is not None else None,
            source=AlertSource(p.source),
            misp_more=max(0, len(misp) - MAX_MISP),
            answers_more=max(0, len(p.answers) - MAX_ANSWERS),
        )
        out.append(encode_bounded(alert))
    return out


def data_clock(seen: dict[str, Seen], now: datetime, window: timedelta) -> int:
    """The end of the newest dedup bucket that is not in the future (epoch s).

    The reference for forgetting old buckets: logs read late still fold into
    their alerts. Buckets beyond ``now`` (plus one window) come from a sensor
    with a bad clock and are left out, so one of them cannot age the others.
    """
    limit = int((now + window).timestamp())
    ends = [v.window_end for v in seen.values() if v.window_end <= limit]
    return max(ends) if ends else int(now.timestamp())


def prune_seen(seen: dict[str, Seen], older_than: int, *, now: datetime, keep: timedelta) -> None:
    """Forget alerts not written for ``keep`` whose bucket ended before ``older_than``
    (epoch s) or lies more than ``keep`` after ``now``.

    An id written within ``keep`` is always kept, whatever its time stamps (a
    sensor's clock may be years off): forgetting it would restart its
    revisions at 1, and a consumer ignores a revision it has already seen.
    """
    now_s, keep_s = int(now.timestamp()), int(keep.total_seconds())
    quiet, ahead = now_s - keep_s, now_s + keep_s
    for key in [
        k
        for k, v in seen.items()
        if v.written < quiet and (v.window_end < older_than or v.window_end > ahead)
    ]:
        del seen[key]
