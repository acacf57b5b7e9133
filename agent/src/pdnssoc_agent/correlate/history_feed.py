# SPDX-License-Identifier: Apache-2.0
"""correlate's side of the history store: the records it decoded go in too.

correlate decodes each chunk of the query log once, with a record wide enough
for the store (:data:`DECODERS`), matches it and hands the same records to
:class:`StoreFeed`. The store stays behind correlate's own checkpoint: its
batch is committed only after correlate has committed the alerts and offsets
of the same bytes. A crash between the two leaves the store behind; the next
run reads the gap again for the store alone (:meth:`StoreFeed.position`),
without matching it a second time, and the store's byte ranges make sure no
reply is held twice.

Nothing here stops correlate: a store that is busy (an import is writing it),
damaged or on a full disk is logged once, left alone for the rest of the run
and caught up by a later one.

A run commits its batch when it ends, unless its process carries batches from
run to run (:func:`carry_between_runs`: the daemon does). Then the batch is
committed every ``history.commit_every`` (or once it holds
:data:`MAX_PENDING_ROWS` rows); between commits it waits in memory with the
store unlocked, and the next run's writer takes it over, so a busy hour costs
one segment file instead of sixty. The query log keeps the lines meanwhile:
``retro`` and ``hunt`` read what the store does not hold from it, and a daemon
killed before its commit reads them again when it starts (the store is behind
correlate's checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..dnslog import ReadStats
from ..errors import AgentError
from ..fsutil import atomic_writer
from .scan import Decoders, decoders_for

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ..history.backend import StoreWriter
    from ..history.writer import Pending

log = logging.getLogger(__name__)

MAX_PENDING_ROWS = 100_000
"""Commit (correlate first, then the store) once the store's batch holds this many rows:
about 100 MiB of memory (a row held costs about 1 KiB), and enough rows that the fixed
cost of a commit is spread thin."""


HELD_NOTE = "history-held.json"
"""In correlate's state directory, while the daemon holds replies the store does not:
how many, since when, and by when they are committed (for ``status``)."""


def held_note(config: Config) -> Path:
    return config.correlation.state_dir / HELD_NOTE


class Carry:
    """The store's batch kept in memory between the correlate runs of one process."""

    def __init__(self, every: timedelta, note: Path | None = None) -> None:
        self.every = every
        self.pending: Pending | None = None
        self.store = ""
        """The store the batch is for (its name)."""
        self.since: float | None = None
        """When (monotonic) the oldest row not committed was added."""
        self.since_wall: float | None = None
        """The same, as a time of day (for the note)."""
        self.note = note

    def due(self, rows: int) -> bool:
        return rows >= MAX_PENDING_ROWS or (
            self.since is not None and time.monotonic() - self.since >= self.every.total_seconds()
        )

    def started(self) -> None:
        """A row not committed was added (the clock starts at the first)."""
        if self.since is None:
            self.since, self.since_wall = time.monotonic(), time.time()

    def reset(self) -> None:
        """Nothing is held any more (committed, or dropped to be read again)."""
        self.since = self.since_wall = None
        if self.note is not None:
            with contextlib.suppress(OSError):
                self.note.unlink()

    def write_note(self, replies: int, rows: int) -> None:
        """Say in :data:`HELD_NOTE` what is held (a failure to is only logged)."""
        if self.note is None or self.since_wall is None:
            return
        since = datetime.fromtimestamp(self.since_wall, UTC)
        due = since + self.every
        body = {
            "pid": os.getpid(),
            "replies": replies,
            "rows": rows,
            "since": since.isoformat(timespec="seconds")[:19] + "Z",
            "due": due.isoformat(timespec="seconds")[:19] + "Z",
            "commit_every_s": int(self.every.total_seconds()),
        }
        try:
            with atomic_writer(self.note, 0o640) as fh:
                json.dump(body, fh)
        except OSError as exc:
            log.debug("history store: cannot write %s: %s", self.note, exc)


_carry: Carry | None = None


def carry_between_runs(every: timedelta | None, note: Path | None = None) -> None:
    """Keep the store's batch from one correlate run to the next in this process,
    committing it every ``every``; None or zero: commit at the end of every run.
    ``note``: where to say what is held (:func:`held_note`); one left by an earlier
    process is removed. A batch carried so far must have been flushed first
    (:func:`flush_carried`)."""
    global _carry  # noqa: PLW0603 - one per process, like the daemon it serves
    _carry = Carry(every, note) if every else None
    if note is not None:
        with contextlib.suppress(OSError):
            note.unlink()


STALE_AFTER_DUE = timedelta(minutes=15)
"""A note this long past its commit time is not believed (its process is another)."""


def read_held(config: Config, now: datetime | None = None) -> dict[str, Any] | None:
    """What the running daemon holds in memory (its :data:`HELD_NOTE`), or None: no
    note, or one its process did not outlive, or one long past its commit."""
    try:
        raw = json.loads(held_note(config).read_text(encoding="utf-8"))
        pid, due_text = int(raw["pid"]), str(raw["due"])
        held: dict[str, Any] = {
            "pid": pid,
            "replies": int(raw["replies"]),
            "rows": int(raw["rows"]),
            "since": str(raw["since"]),
            "due": due_text,
            "commit_every_s": int(raw["commit_every_s"]),
        }
        due = datetime.fromisoformat(due_text.replace("Z", "+00:00"))
        due = due if due.tzinfo is not None else due.replace(tzinfo=UTC)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # the daemon died: the next one reads those lines again
    except PermissionError:
        pass  # alive, another user's
    # a live daemon commits at its first correlate run after ``due``
    if (now or datetime.now(UTC)) > due + STALE_AFTER_DUE:
        return None
    return held


def flush_carried(config: Config) -> None:
    """Commit the batch carried between runs, if any (the daemon, when it stops or
    reloads). A store that cannot take it now leaves its lines to be read again
    from the query log."""
    carry = _carry
    if carry is None or carry.pending is None:
        return
    replies = carry.pending.batch.replies
    feed = StoreFeed.open(config)
    if feed is None:
        carry.pending = None
        carry.reset()
        log.warning(
            "history store: %d repl(ies) not committed; the query log keeps them and the "
            "next run adds them",
            replies,
        )
        return
    with feed:
        adopted = feed.pending_rows > 0
        feed.commit(force=True)
        if adopted and not feed.failed:
            log.info("history store: committed the %d repl(ies) kept in memory", replies)


def decoders() -> Decoders:
    """The scan's decoders for the store's wider record (imported on first use)."""
    from ..history import Record  # noqa: PLC0415 - pyarrow only when the store is on

    return decoders_for(Record)


class StoreFeed:
    """The store's writer for one correlate run; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writer: StoreWriter | None = None
        self._cm: AbstractContextManager[StoreWriter] | None = None
        self._ranges: dict[str, list[list[int]]] = {}
        self.added = 0
        """Replies handed to the store in this run."""
        self.failed = False

    @classmethod
    def open(cls, config: Config) -> StoreFeed | None:
        """The feed, or None when the store is off or cannot be written now (logged)."""
        if not config.history.enabled:
            return None
        feed = cls(config.history.dir)
        try:
            from ..history.backend import open_store  # noqa: PLC0415

            feed._cm = open_store(config).writer()
            feed.writer = feed._cm.__enter__()
        except (AgentError, OSError, ValueError) as exc:
            log.warning("history store not filled in this run (it catches up later): %s", exc)
            return None
        feed._adopt()
        return feed

    def _adopt(self) -> None:
        """Take over the batch an earlier run of this process left for later."""
        carry = _carry
        if carry is None or carry.pending is None or self.writer is None:
            return
        taken, carry.pending = carry.pending, None
        if carry.store == str(self.root) and self.writer.adopt(taken):
            return
        carry.reset()
        log.warning(
            "history store: %d repl(ies) kept since an earlier run were dropped (another "
            "process added the same query-log bytes, or the store changed); the store "
            "holds them or reads them again from the query log",
            taken.batch.replies,
        )

    @property
    def ok(self) -> bool:
        return self.writer is not None

    def _fail(self, what: str, exc: BaseException) -> None:
        log.warning(
            "history store: %s failed (%s); not filled further in this run, the query log "
            "keeps the lines and a later run catches up",
            what,
            exc,
        )
        self.writer = None  # the batch is dropped; the lock is released on close
        self.failed = True
        if _carry is not None:
            _carry.reset()

    def _held(self, fp: str) -> list[list[int]]:
        ranges = self._ranges.get(fp)
        if ranges is None and self.writer is not None:
            ranges = self._ranges[fp] = self.writer.holding(fp)
        return ranges or []

    def position(self, fp: str) -> int:
        """Where the store's hold of file ``fp`` from its start ends (0: none of it)."""
        from ..history.manifest import covered_end  # noqa: PLC0415

        end = covered_end(self._held(fp), 0)
        return 0 if end is None else end

    @property
    def pending_rows(self) -> int:
        return len(self.writer.batch) if self.writer is not None else 0

    def add(  # noqa: PLR0917
        self, records: list[Any], data: bytes, fp: str, start: int, end: int, path: str
    ) -> None:
        """The records of ``data`` (bytes ``start``-``end`` of file ``fp``, whole lines).

        Bytes the store holds already are left out; a chunk that is partly held
        is cut at the held ranges and only the rest decoded again.
        """
        if self.writer is None or end <= start:
            return
        from ..history import Source, decode_chunk  # noqa: PLC0415
        from ..history.manifest import add_range, overlap  # noqa: PLC0415

        ranges = self._held(fp)
        whole, part = overlap(ranges, start, end)
        pieces: list[tuple[list[Any], int, int]] = []
        if whole:
            return
        if not part:
            pieces.append((records, start, end))
        else:
            for a, b in _gaps(ranges, start, end):
                piece = data[a - start : b - start]
                aligned = (a == start or data[a - start - 1 : a - start] == b"\n") and piece[
                    -1:
                ] == b"\n"
                if not aligned:
                    log.warning(
                        "history store: %s bytes %d-%d are not whole lines; left out", path, a, b
                    )
                    continue
                pieces.append((decode_chunk(piece, ReadStats(), path, a), a, b))
        try:
            for recs, a, b in pieces:
                if self.writer.add(recs, Source(fp, a, b, path)):
                    self.added += len(recs)
                    if _carry is not None:
                        _carry.started()
                ranges = add_range(ranges, a, b)
        except (AgentError, OSError, ValueError) as exc:
            self._fail(f"adding {path}", exc)
            return
        self._ranges[fp] = ranges

    def commit(self, *, force: bool = False) -> None:
        """Make what was added durable; call after correlate committed the same bytes.
        A process that carries batches between runs commits only when one is due
        (``force``: now)."""
        if self.writer is None:
            return
        carry = _carry
        if not force and carry is not None and not carry.due(len(self.writer.batch)):
            return
        try:
            self.writer.commit()
        except (AgentError, OSError, ValueError) as exc:
            self._fail("commit", exc)
            self._ranges = {}
            return
        if carry is not None:
            carry.reset()

    def close(self, now: datetime | None = None) -> None:
        """Commit (or, in a process that carries batches between runs and none is due,
        keep the batch for the next run), merge the days that are over, release the store."""
        carry = _carry
        if carry is not None and self.writer is not None and not carry.due(len(self.writer.batch)):
            kept = carry.pending = self.writer.take_pending()
            carry.store = str(self.root)
            if kept is not None:
                carry.write_note(kept.batch.replies, len(kept.batch))
        else:
            self.commit(force=True)
        if self.writer is not None:
            today = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")
            try:
                self.writer.compact(full_before=today)
            except (AgentError, OSError, ValueError) as exc:
                self._fail("compaction", exc)
        if self._cm is not None:
            cm, self._cm = self._cm, None
            cm.__exit__(None, None, None)
        self.writer = None

    def __enter__(self) -> StoreFeed:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self._cm is not None:  # correlate failed: keep nothing it did not commit
            if _carry is not None:
                _carry.reset()
            cm, self._cm = self._cm, None
            self.writer = None
            cm.__exit__(exc_type, exc, tb)


def _gaps(ranges: list[list[int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of [start, end) that ``ranges`` (sorted, merged) do not cover."""
    out: list[tuple[int, int]] = []
    at = start
    for lo, hi in ranges:
        if hi <= at or lo >= end:
            continue
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    if at < end:
        out.append((at, end))
    return out


def store_lag(config: Config) -> dict[str, Any]:
    """How far the history store is behind correlate, for ``status`` (reads only).

    ``bytes_behind``/``files_behind``: query-log content correlate has read
    (its checkpoints) that the store does not hold yet; ``newest``: the last
    reply time the store holds; ``problem``: why it cannot be read; ``held``: what
    the daemon holds in memory of what is behind (:func:`read_held`).
    """
    from ..history import HistoryStore  # noqa: PLC0415
    from ..history.manifest import covered_end  # noqa: PLC0415
    from .output import load_state  # noqa: PLC0415

    out: dict[str, Any] = {
        "enabled": config.history.enabled,
        "dir": str(config.history.dir),
        "commit_every_s": int(config.history.commit_every.total_seconds()),
    }
    if not config.history.enabled or config.correlation.live_input != "query_log":
        out["enabled"] = False  # correlate fills it from the query log only
        return out
    held = read_held(config)
    if held is not None:
        out["held"] = held
    if config.history.engine == "clickhouse":
        return _cluster_lag(config, out)
    try:
        m = HistoryStore(config.history.dir).manifest()
        state = load_state(config.correlation.state_dir / "correlate.state.json")
    except (AgentError, OSError) as exc:
        out["problem"] = str(exc)
        return out
    behind = files = 0
    for mark in state.files:
        info = m.sources.get(mark.fp)
        end = covered_end(info.ranges, 0) if info is not None else None
        gap = mark.offset - (end or 0)
        if gap > 0:
            behind, files = behind + gap, files + 1
    last = max((s.last_us for s in m.segments), default=None)
    out.update(
        bytes_behind=behind,
        files_behind=files,
        segments=len(m.segments),
        replies=sum(s.replies for s in m.segments),
        newest=(
            datetime.fromtimestamp(last / 1e6, UTC).isoformat(timespec="seconds")[:19] + "Z"
            if last is not None
            else None
        ),
    )
    return out


def _cluster_lag(config: Config, out: dict[str, Any]) -> dict[str, Any]:
    """:func:`store_lag` for a ClickHouse cluster: what this server's shard holds of the
    files correlate read; ``problem`` when the cluster cannot be asked."""
    from ..history.clickhouse import ClusterStore  # noqa: PLC0415
    from ..history.clickhouse.writer import held_ranges  # noqa: PLC0415
    from ..history.manifest import covered_end  # noqa: PLC0415
    from .output import load_state  # noqa: PLC0415

    out["engine"] = "clickhouse"
    try:
        state = load_state(config.correlation.state_dir / "correlate.state.json")
        store = ClusterStore.from_config(config)
        out["dir"] = store.name
        held = held_ranges(store.client, local=True, fps=[m.fp for m in state.files])
    except (AgentError, OSError, ValueError) as exc:
        out["problem"] = str(exc)
        return out
    behind = files = 0
    for mark in state.files:
        gap = mark.offset - (covered_end(held.get(mark.fp, []), 0) or 0)
        if gap > 0:
            behind, files = behind + gap, files + 1
    out.update(bytes_behind=behind, files_behind=files)
    return out
