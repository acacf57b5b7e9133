# SPDX-License-Identifier: Apache-2.0
"""``correlate``: new lines of the DNS logs in, alerts out, checkpoints kept.

Each file is read from its checkpoint (:class:`~.inputs.FileMark`) to its last
complete line; its alerts and new offset are committed together. A scheduled
run over the query log also hands the lines it reads to the history store.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..alertfile import ALERTS_FILE
from ..config import Config
from ..dnslog import Chunk, LineReader, LogRecord, ReadStats, head_bytes, is_gzip, normalise
from ..sensors import BOOK_FILE, SensorBook
from ..state import read_pointer, step_lock, utcnow, write_pointer
from . import handover
from .history_feed import MAX_PENDING_ROWS, StoreFeed, decoders
from .indicators import Matcher
from .inputs import (
    FP_LEN,
    FileMark,
    check_paths,
    correlate_problems,
    discover,
    find_mark,
    fingerprint,
    live_files,
    mtime_ns,
    refresh_fingerprint,
)
from .output import (
    Aggregator,
    StepState,
    build_lines,
    commit,
    data_clock,
    event_time,
    from_epoch,
    load_state,
    prune_seen,
    recover,
)
from .scan import HOT, Hit, OnHit, scan_file
from .step import (
    HANDOVER_DONE,
    RunResult,
    context,
    gc_paused,
    load_matcher,
    log_stats,
    raise_no_input,
    sources_from,
    warn,
)

log = logging.getLogger(__name__)

COMMIT_BYTES = 256 << 20
"""Commit alerts and offsets at least this often (bytes of content read)."""
FORGET_FILES_AFTER = timedelta(days=7)
STATE_FILE = "correlate.state.json"


def run_correlate(
    config: Config,
    paths: Iterable[Path] = (),
    *,
    domain_files: Iterable[Path] = (),
    ip_files: Iterable[Path] = (),
    gzip_backend: str = "zlib",
    now: datetime | None = None,
) -> RunResult:
    """Match new lines of ``paths`` (default: :func:`live_files`) and write alerts."""
    corr = config.correlation
    started = time.monotonic()
    given = check_paths(paths)
    with step_lock(corr.state_dir, "correlate"):
        src = sources_from(config, domain_files, ip_files)
        matcher = load_matcher(corr, src)
        state_path = corr.state_dir / STATE_FILE
        state = recover(state_path, load_state(state_path))
        # Given PATHs may be the predecessor's old files (a catch-up run): always
        # filtered; the scheduled runs only until the first one completed.
        predecessor = (
            None
            if state.extra.get(HANDOVER_DONE) and not given
            else handover.for_step(config, "correlate", src.index_file)
        )
        loaded = time.monotonic() - started
        if given:
            files = discover(given)
        else:
            warn(correlate_problems(config))
            files = live_files(config, read_pointer(corr.last_correlation_pointer_file))
        with open_feed(config, live=not given) as feed, gc_paused():
            job = Correlate(
                config,
                state,
                matcher,
                index_file=src.index_file,
                predecessor=predecessor,
                now=now or utcnow(),
                gzip_backend=gzip_backend,
                given=bool(given),
                feed=feed,
                # per-sensor counts: the scheduled runs over the query log only
                sensors=(
                    SensorBook.load(corr.state_dir / BOOK_FILE)
                    if not given and corr.live_input == "query_log"
                    else None
                ),
            )
            job.result.load_seconds = loaded
            if not given:
                files += job.store_behind(files)
            for path in files:
                job.file(path)
            # Only a run over the live inputs moves correlation.last, from which
            # the next one finds what rotated meanwhile.
            job.finish(live=not given)
    job.result.seconds = time.monotonic() - started
    log_stats(log, "correlate", job.result)
    if not given:
        # looked at again: the collector may have created its log meanwhile
        raise_no_input(correlate_problems(config))
    return job.result


@contextlib.contextmanager
def open_feed(config: Config, *, live: bool) -> Iterator[StoreFeed | None]:
    """The history store's writer for a run (none when it is off or busy, or when
    the run does not read the query log: see :meth:`Correlate._feeds`)."""
    use = live and config.correlation.live_input == "query_log"
    feed = StoreFeed.open(config) if use else None
    if feed is None:
        yield None
        return
    with feed:
        yield feed
    if feed.added:
        log.info("correlate: %d repl(ies) added to the history store", feed.added)


class Correlate:
    """One correlate run: per-file offsets, alerts committed with them."""

    def __init__(
        self,
        config: Config,
        state: StepState,
        matcher: Matcher,
        *,
        index_file: Path | None,
        predecessor: handover.Predecessor | None,
        now: datetime,
        gzip_backend: str = "zlib",
        given: bool = False,
        feed: StoreFeed | None = None,
        sensors: SensorBook | None = None,
    ) -> None:
        corr = config.correlation
        self.config = config
        self.corr = corr
        self.state = state
        self.state_path = corr.state_dir / STATE_FILE
        self.matcher = matcher
        self.index_file = index_file
        self.predecessor = predecessor
        self.now = now
        self.gzip_backend = gzip_backend
        self.given = given
        self.feed = feed
        self.sensors = sensors
        self.decoders = decoders() if feed is not None else HOT
        self.alerts_file = corr.output_dir / ALERTS_FILE
        self.result = RunResult(indicators=matcher.indicator_count)

    def store_behind(self, files: list[Path]) -> list[Path]:
        """Files correlate has read further than the store holds that the run would
        not read otherwise (they rotated while the store was busy or broken)."""
        feed = self.feed
        if feed is None:
            return []
        listed = {str(p) for p in files}
        out = []
        for m in self.state.files:
            if m.path in listed or not self._feeds(m, Path(m.path)):
                continue
            if feed.position(m.fp) < m.offset and Path(m.path).is_file():
                out.append(Path(m.path))
                listed.add(m.path)
        return out

    def _feeds(self, mark: FileMark, path: Path) -> bool:
        """Whether this file's lines go into the store now.

        Only the query log of a scheduled run (``live_input: query_log``, no
        PATH: matches files or arbitrary paths would hold a part of what the
        archive holds, and retro would count it twice), and only a file whose
        fingerprint is final: full length, or a file that no longer grows (not
        the live query log). A fingerprint that changed later would make the
        store take the grown file for another one.
        """
        if self.feed is None or not self.feed.ok or self.given:
            return False
        if self.corr.live_input != "query_log":
            return False
        return mark.fp_len >= FP_LEN or path != self.corr.queries_file

    def file(self, path: Path) -> None:
        """Read ``path`` from its checkpoint to its last complete line."""
        stats = ReadStats()
        try:
            st = path.stat()
            head = head_bytes(path, FP_LEN)
        except OSError as exc:
            self.result.stats.note("unreadable", f"{path}: {exc.strerror}")
            return
        if not head:
            return
        now_s = int(self.now.timestamp())
        mark = find_mark(self.state.files, head)
        if mark is None:
            mark = FileMark(len(head), fingerprint(head), 0, str(path), now_s)
            self.state.files.append(mark)
        mark.seen, mark.path = now_s, str(path)
        stat_key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        size = st.st_size
        gz = is_gzip(path)
        feed = self._store_for(path, mark, head, gz, size)
        if mark.stat == stat_key:
            return  # read to its end before and not changed since
        if not gz and size < mark.offset:
            log.warning("%s is shorter than what was read before; reading it from the start", path)
            mark.offset = 0
        stats.files = 1
        agg = Aggregator("live", self.corr.dedup_window)
        where = str(path)
        unparsed: list[int] = []
        on_hit = self._on_hit(agg, where, unparsed)

        start = mark.offset
        decoders = self.decoders if feed is not None else HOT

        def each(records: list[Any], data: bytes, chunk: Chunk) -> None:
            nonlocal start
            if self.sensors is not None:
                self.sensors.add(records, self.now)
            if feed is not None:
                feed.add(records, data, mark.fp, chunk.end - len(data), chunk.end, where)
            if chunk.end - start >= COMMIT_BYTES or (
                feed is not None and feed.pending_rows >= MAX_PENDING_ROWS
            ):
                self._flush(agg, mark, chunk.end)
                start = chunk.end

        reached = scan_file(
            path,
            self.matcher,
            stats,
            on_hit,
            offset=mark.offset,
            limit=None if gz else size,
            max_line_bytes=self.corr.max_line_bytes,
            gzip_backend=self.gzip_backend,
            decoders=decoders,
            on_chunk=each,
        )
        if unparsed:
            log.warning("%s: %d matching line(s) had no timestamp; used now", path, len(unparsed))
        refresh_fingerprint(mark, path, head)
        mark.stat = stat_key if mtime_ns(path) == st.st_mtime_ns else ""
        self._flush(agg, mark, reached)
        self.result.stats.merge(stats)

    def _store_for(
        self, path: Path, mark: FileMark, head: bytes, gz: bool, size: int
    ) -> StoreFeed | None:
        """The store's feed if this file goes into it, caught up to correlate's offset."""
        refresh_fingerprint(mark, path, head)  # before the store looks at it
        feed = self.feed if self._feeds(mark, path) else None
        if feed is not None and feed.position(mark.fp) < mark.offset:
            self._catch_up(feed, path, mark, gz, size)
        return feed

    def _catch_up(self, feed: StoreFeed, path: Path, mark: FileMark, gz: bool, size: int) -> None:
        """Read what correlate read before and the store does not hold, for the store
        alone (not matched again, not counted in the run's figures)."""
        from ..history import decode_chunk  # noqa: PLC0415

        stats = ReadStats()
        where = str(path)
        reader = LineReader(
            path,
            stats,
            offset=feed.position(mark.fp),
            max_line_bytes=self.corr.max_line_bytes,
            gzip_backend=self.gzip_backend,
            limit=None if gz else size,
        )
        try:
            for chunk in reader.chunks():
                at = chunk.end - len(chunk.data)
                data, end = chunk.data, chunk.end
                if end > mark.offset:
                    data, end = data[: max(0, mark.offset - at)], mark.offset
                if data:
                    feed.add(decode_chunk(data, stats, where, at), data, mark.fp, at, end, where)
                if end >= mark.offset or feed.pending_rows >= MAX_PENDING_ROWS:
                    feed.commit()
                if end >= mark.offset or not feed.ok:
                    break
        except OSError as exc:
            log.warning("history store: %s unreadable (%s); it catches up later", path, exc)
        feed.commit()
        log.info("history store: caught up %s to byte %d", path, feed.position(mark.fp))

    def _on_hit(self, agg: Aggregator, where: str, unparsed: list[int]) -> OnHit:
        now, predecessor = self.now, self.predecessor

        def on_hit(rec: LogRecord, hits: list[Hit]) -> None:
            event = normalise(rec)
            when = event_time(event)
            if when is None:
                unparsed.append(1)
                when = now
            if predecessor is not None:
                hits = predecessor.new(hits, when)
                if not hits:
                    return
            agg.add(event, hits, where, when)

        return on_hit

    def _flush(self, agg: Aggregator, mark: FileMark, offset: int) -> None:
        """Write this file's alerts so far and its new offset, exactly once."""
        # Never backwards: a copy of the same content (a .gz being written
        # beside its plain original) may end earlier than what was read.
        mark.offset = max(mark.offset, offset)
        lines: list[bytes] = []
        if agg.items:
            indicators = {p.hit[1] for p in agg.items.values()}
            ctx = context(self.index_file, indicators)
            added: dict[str, datetime | None] = {
                k: from_epoch(e.added) for k, e in ctx.items() if e.added
            }
            lines = build_lines(
                agg.items,
                self.state.alerts,
                window=self.corr.dedup_window,
                context=ctx,
                ioc_added=added,
                now=self.now,
            )
            agg.items = {}
        commit(self.state_path, self.state, self.alerts_file, lines)
        self.result.alerts += len(lines)
        if self.sensors is not None:
            self.sensors.save()  # after the offsets: a crash loses counts, never doubles them
        if self.feed is not None:
            self.feed.commit()  # after correlate's own checkpoint: the store stays behind it

    def finish(self, *, live: bool = True) -> None:
        """Forget old files and alerts; record a ``live`` run in correlation.last."""
        horizon = int((self.now - FORGET_FILES_AFTER).timestamp())
        self.state.files = [m for m in self.state.files if m.seen >= horizon]
        # By the data's clock (the newest dedup bucket up to now), not the wall
        # clock, so that old logs read late still fold into their alerts; and
        # never an id written within ``keep``, whatever its time stamps.
        alerts = self.state.alerts
        if alerts:
            window = self.corr.dedup_window
            keep = window + timedelta(days=1)
            newest = data_clock(alerts, self.now, window)
            prune_seen(alerts, newest - int(keep.total_seconds()), now=self.now, keep=keep)
        if self.predecessor is not None:
            self.predecessor.report("correlate")
        if live:
            self.state.extra[HANDOVER_DONE] = True
        commit(self.state_path, self.state, self.alerts_file, [])
        if self.sensors is not None:
            self.sensors.prune(self.now, self.config.sensors.forget_after)
            self.sensors.save()
        if live:
            write_pointer(self.corr.last_correlation_pointer_file, self.now)
