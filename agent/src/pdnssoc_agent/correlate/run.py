# SPDX-License-Identifier: Apache-2.0
"""``correlate`` and ``retro``: files in, alerts out, checkpoints kept."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from ..alertfile import ALERTS_FILE
from ..config import Config
from ..dnslog import LineReader, LogRecord, ReadStats, head_bytes, is_gzip
from ..errors import AgentError, IndexFormatError, NoInputError, UsageError
from ..fsutil import atomic_write_text
from ..iocs.index import IndicatorEntry, lookup
from ..sensors import BOOK_FILE, SensorBook
from ..state import read_pointer, step_lock, utcnow, write_pointer
from ..timefmt import format_rfc3339, parse_rfc3339_or_none
from . import handover, retro_store
from .history_feed import MAX_PENDING_ROWS, StoreFeed, decoders
from .indicators import Matcher, index_dates, read_list
from .inputs import InputProblem, correlate_problems, retro_problems
from .output import (
    Aggregator,
    FileMark,
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
from .scan import HOT, Hit, OnHit, scan_chunk

log = logging.getLogger(__name__)

FP_LEN = 1024
"""Bytes of content that identify a file across renames, rotation and compression."""
COMMIT_BYTES = 256 << 20
"""Commit alerts and offsets at least this often (bytes of content read)."""
FORGET_FILES_AFTER = timedelta(days=7)
HANDOVER_DONE = "handover_done"
"""State key: the step has completed a run here, so no predecessor's matches are held back."""


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while scanning.

    The scan allocates many short-lived objects and creates no reference
    cycles; generation sweeps over the large indicator sets and caches would
    otherwise cost more than the matching itself.
    """
    was = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        gc.unfreeze()


@dataclass
class RunResult:
    """What a correlate or retro run did."""

    stats: ReadStats = field(default_factory=ReadStats)
    alerts: int = 0
    """Alert lines written (new alerts and revisions)."""
    indicators: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    """Of ``seconds``, the time spent loading indicators and state."""


@dataclass(frozen=True)
class Sources:
    """Where indicators come from."""

    domain_files: tuple[Path, ...]
    ip_files: tuple[Path, ...]
    index_file: Path | None


def sources_from(
    config: Config, domain_files: Iterable[Path] = (), ip_files: Iterable[Path] = ()
) -> Sources:
    """Command-line list files if any were given, else the configured ones."""
    corr = config.correlation
    d, i = tuple(domain_files), tuple(ip_files)
    if not d and not i:
        d, i = (corr.malicious_domains_file,), (corr.malicious_ips_file,)
    missing = [p for p in (*d, *i) if not p.is_file()]
    if len(missing) == len(d) + len(i):
        raise AgentError(
            "no indicator list found ("
            + ", ".join(str(p) for p in missing)
            + "); run fetch-iocs first or give --malicious-domains-file/--malicious-ips-file"
        )
    for p in missing:
        log.warning("indicator list %s not found; continuing without it", p)
    index = corr.ioc_index_file if corr.ioc_index_file.is_file() else None
    return Sources(tuple(p for p in d if p.is_file()), tuple(p for p in i if p.is_file()), index)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Regular files under ``paths`` (recursively), sorted; hidden names skipped."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
        elif p.is_file():
            out.append(p)
    return out


ROTATION_SLACK = timedelta(minutes=10)
"""Archive files modified this long before the previous correlate run are still read."""
BEING_COMPRESSED = 120.0
"""Seconds: a rotated ``.gz`` this fresh beside the query log may still be written."""


def rotated_query_logs(queries_file: Path, *, now: float | None = None) -> list[Path]:
    """The collector's rotated copies of ``queries_file`` still beside it.

    go-dnscollector renames ``queries.json`` to ``queries-<ns>.json`` and later
    compresses it to ``queries-<ns>.json.gz``, which the role's post-command moves
    into the archive directory. A ``.gz`` that is still being written is left for
    the next run; its plain original is still there while it is.
    """
    stem, suffix = queries_file.stem, queries_file.suffix
    pattern = re.compile(re.escape(stem) + r"-\d+" + re.escape(suffix) + r"(\.gz)?")
    t = time.time() if now is None else now
    out = []
    try:
        entries = sorted(queries_file.parent.iterdir())
    except OSError:
        return []
    for p in entries:
        if not pattern.fullmatch(p.name) or not p.is_file():
            continue
        if p.name.endswith(".gz") and t - _mtime(p) < BEING_COMPRESSED:
            continue
        out.append(p)
    return out


def live_files(config: Config, previous_run: datetime | None) -> list[Path]:
    """What ``correlate`` reads without paths (``correlation.live_input``).

    ``matches``: everything under ``correlation.input_dir``. ``query_log``: the
    archive files and rotated copies written since the previous run (they hold
    the lines the collector wrote after that run read the log, up to rotation),
    oldest first, then the query log itself. A first run starts at the live log
    and leaves the history to ``retro``. Files read to their end before are
    recognised by content and skipped.
    """
    corr = config.correlation
    if corr.live_input == "matches":
        return discover([corr.input_dir])
    rotated: list[Path] = []
    if previous_run is not None:
        since = (previous_run - ROTATION_SLACK).timestamp()
        candidates = discover([corr.archive_dir]) + rotated_query_logs(corr.queries_file)
        rotated = sorted((p for p in candidates if _mtime(p) >= since), key=_mtime)
    return rotated + ([corr.queries_file] if corr.queries_file.is_file() else [])


def check_paths(paths: Iterable[Path]) -> list[Path]:
    given = list(paths)
    bad = [p for p in given if not p.exists()]
    if bad:
        raise UsageError("no such file or directory: " + ", ".join(str(p) for p in bad))
    return given


def fingerprint(head: bytes) -> str:
    """What identifies a file by its first bytes (at most :data:`FP_LEN` of its content)."""
    return hashlib.sha256(head).hexdigest()[:32]


_fp = fingerprint


def _context(index: Path | None, values: set[str]) -> dict[str, IndicatorEntry]:
    if index is None or not values:
        return {}
    try:
        return lookup(index, values)
    except (OSError, IndexFormatError) as exc:
        log.warning("IOC index unusable, alerts carry no MISP context: %s", exc)
        return {}


def _log_stats(step: str, result: RunResult) -> None:
    s = result.stats
    rate = s.lines / result.seconds if result.seconds > 0 else 0.0
    log.info(
        "%s: %s; %d alert line(s) written; %d indicator(s); %.1f s (%.0f lines/s)",
        step,
        s.summary(),
        result.alerts,
        result.indicators,
        result.seconds,
        rate,
    )
    if s.skipped or s.truncated_gzip:
        for example in s.examples:
            log.warning("%s: skipped %s", step, example)


# ====================================================================== correlate


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
        job = _Correlate(
            config, sources_from(config, domain_files, ip_files), now or utcnow(), given=bool(given)
        )
        job.result.load_seconds = time.monotonic() - started
        job.gzip_backend = gzip_backend
        if given:
            files = discover(given)
        else:
            _warn(correlate_problems(config))
            files = live_files(config, read_pointer(corr.last_correlation_pointer_file))
        with job.open_store(live=not given), gc_paused():
            if not given:
                files += job.store_behind(files)
            for path in files:
                job.file(path)
            # Only a run over the live inputs moves correlation.last, from which
            # the next one finds what rotated meanwhile.
            job.finish(live=not given)
    job.result.seconds = time.monotonic() - started
    _log_stats("correlate", job.result)
    if not given:
        # looked at again: the collector may have created its log meanwhile
        _raise_no_input(correlate_problems(config))
    return job.result


def _warn(problems: list[InputProblem]) -> None:
    for p in problems:
        log.warning("%s", p)


def _raise_no_input(problems: list[InputProblem]) -> None:
    fatal = [p for p in problems if p.no_input]
    if fatal:
        raise NoInputError("; ".join(str(p) for p in fatal))


def _fill(matcher: Matcher, src: Sources) -> None:
    for p in src.domain_files:
        matcher.add_domain_file(p)
    for p in src.ip_files:
        for v in read_list(p):
            matcher.add_network(v)
    if matcher.invalid:
        log.warning(
            "%d indicator value(s) are not a domain, IP or CIDR and were ignored, e.g. %r",
            len(matcher.invalid),
            matcher.invalid[0][:80],
        )


class _Correlate:
    """One correlate run: per-file offsets, alerts committed with them."""

    def __init__(self, config: Config, src: Sources, now: datetime, *, given: bool = False) -> None:
        corr = config.correlation
        self.corr = corr
        self.src = src
        self.now = now
        self.gzip_backend = "zlib"
        self.matcher = Matcher(subdomains=corr.match_subdomains, cnames=corr.match_cnames)
        _fill(self.matcher, src)
        self.state_path = corr.state_dir / "correlate.state.json"
        self.state = recover(self.state_path, load_state(self.state_path))
        self.alerts_file = corr.output_dir / ALERTS_FILE
        self.result = RunResult(indicators=self.matcher.indicator_count)
        # Given PATHs may be the predecessor's old files (a catch-up run): always
        # filtered; the scheduled runs only until the first one completed.
        self.predecessor = (
            None
            if self.state.extra.get(HANDOVER_DONE) and not given
            else handover.for_step(config, "correlate", src.index_file)
        )
        self.config = config
        self.given = given
        self.feed: StoreFeed | None = None
        self.decoders = HOT
        # per-sensor counts: the scheduled runs over the query log only
        counted = not given and corr.live_input == "query_log"
        self.sensors = SensorBook.load(corr.state_dir / BOOK_FILE) if counted else None

    @contextlib.contextmanager
    def open_store(self, *, live: bool) -> Iterator[None]:
        """The history store's writer for this run (none when it is off or busy, or
        when the run does not read the query log: see :meth:`_feeds`)."""
        use = live and self.corr.live_input == "query_log"
        feed = StoreFeed.open(self.config) if use else None
        if feed is None:
            yield
            return
        self.feed, self.decoders = feed, decoders()
        with feed:
            yield
        if feed.added:
            log.info("correlate: %d repl(ies) added to the history store", feed.added)
        self.feed, self.decoders = None, HOT

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

    def _find_mark(self, head: bytes) -> FileMark | None:
        digests: dict[int, str] = {}  # one hash per fingerprint length, not per mark
        for m in self.state.files:
            if len(head) < m.fp_len:
                continue
            digest = digests.get(m.fp_len)
            if digest is None:
                digest = digests[m.fp_len] = _fp(head[: m.fp_len])
            if digest == m.fp:
                return m
        return None

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
        mark = self._find_mark(head)
        if mark is None:
            mark = FileMark(len(head), _fp(head), 0, str(path), now_s)
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

        reader = LineReader(
            path,
            stats,
            offset=mark.offset,
            max_line_bytes=self.corr.max_line_bytes,
            gzip_backend=self.gzip_backend,
            limit=None if gz else size,
        )
        start = last = mark.offset
        decoders = self.decoders if feed is not None else HOT
        try:
            for chunk in reader.chunks():
                at = chunk.end - len(chunk.data)
                records = scan_chunk(chunk.data, self.matcher, stats, on_hit, where, at, decoders)
                if self.sensors is not None:
                    self.sensors.add(records, self.now)
                if feed is not None:
                    feed.add(records, chunk.data, mark.fp, at, chunk.end, where)
                last = chunk.end
                if last - start >= COMMIT_BYTES or (
                    feed is not None and feed.pending_rows >= MAX_PENDING_ROWS
                ):
                    self._flush(agg, mark, last)
                    start = last
        except OSError as exc:
            stats.note("unreadable", f"{path}: {exc.strerror}")
        stats.bytes = reader.offset - mark.offset
        if unparsed:
            log.warning("%s: %d matching line(s) had no timestamp; used now", path, len(unparsed))
        _refresh_fingerprint(mark, path, head)
        mark.stat = stat_key if _mtime_ns(path) == st.st_mtime_ns else ""
        self._flush(agg, mark, reader.offset)
        self.result.stats.merge(stats)

    def _store_for(
        self, path: Path, mark: FileMark, head: bytes, gz: bool, size: int
    ) -> StoreFeed | None:
        """The store's feed if this file goes into it, caught up to correlate's offset."""
        _refresh_fingerprint(mark, path, head)  # before the store looks at it
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
            when = event_time(rec)
            if when is None:
                unparsed.append(1)
                when = now
            if predecessor is not None:
                hits = predecessor.new(hits, when)
                if not hits:
                    return
            agg.add(rec, hits, where, when)

        return on_hit

    def _flush(self, agg: Aggregator, mark: FileMark, offset: int) -> None:
        """Write this file's alerts so far and its new offset, exactly once."""
        # Never backwards: a copy of the same content (a .gz being written
        # beside its plain original) may end earlier than what was read.
        mark.offset = max(mark.offset, offset)
        lines: list[bytes] = []
        if agg.items:
            indicators = {p.hit[1] for p in agg.items.values()}
            ctx = _context(self.src.index_file, indicators)
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


# ====================================================================== retro


class Progress:
    """Files, lines, rate and ETA on a terminal; nothing otherwise (the log summarises)."""

    def __init__(
        self, total_bytes: int, total_files: int, stream: TextIO | None, label: str = "retro"
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None and stream.isatty() else None
        self.total_bytes = max(1, total_bytes)
        self.total_files = total_files
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, files_done: int, lines: int, bytes_done: int, *, final: bool = False) -> None:
        if self.stream is None:
            return
        t = time.monotonic()
        if not final and t - self._last < 0.5:
            return
        self._last = t
        elapsed = max(t - self.started, 1e-6)
        rate = lines / elapsed
        frac = min(1.0, bytes_done / self.total_bytes)
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        eta_txt = "done" if final else f"ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        self.stream.write(
            f"\r{self.label}: file {min(files_done + 1, self.total_files)}/{self.total_files}, "
            f"{lines:,} lines, {rate:,.0f} lines/s, {frac:.0%}, {eta_txt}   "
        )
        if final:
            self.stream.write("\n")
        self.stream.flush()


SNAPSHOT = "retro.indicators"


def run_retro(
    config: Config,
    paths: Iterable[Path] = (),
    *,
    domain_files: Iterable[Path] = (),
    ip_files: Iterable[Path] = (),
    gzip_backend: str = "zlib",
    now: datetime | None = None,
    progress: TextIO | None = None,
) -> RunResult:
    """Search archived query logs for indicators that are new since the last retro run."""
    corr = config.correlation
    started = time.monotonic()
    given = check_paths(paths)
    run_now = now or utcnow()
    with step_lock(corr.state_dir, "retro"):
        job = _Retro(
            config, sources_from(config, domain_files, ip_files), run_now, given=bool(given)
        )
        job.result.load_seconds = time.monotonic() - started
        job.gzip_backend = gzip_backend
        if given:
            files = discover(given)
        else:
            _warn(retro_problems(config))
            files = discover([corr.archive_dir])
            files += rotated_query_logs(corr.queries_file)
            files += [corr.queries_file] if corr.queries_file.is_file() else []
        if not given:
            files = [f for f in files if _mtime(f) >= job.since.timestamp()]
        if not job.matcher.empty:
            with gc_paused():
                if not given:  # PATH arguments are scanned as they are
                    job.from_store(files)
                job.scan(files, progress if progress is not None else sys.stderr)
        # A search of given paths does not move retro.last: the scheduled run
        # must still search the archive for the indicators that are new now.
        job.finish(scheduled=not given)
    job.result.seconds = time.monotonic() - started
    _log_stats("retro", job.result)
    if not given:
        _raise_no_input(retro_problems(config))
    return job.result


class _Retro:
    """One retro run: new indicators x archived lines, committed once at the end."""

    def __init__(self, config: Config, src: Sources, now: datetime, *, given: bool = False) -> None:
        corr = config.correlation
        self.corr = corr
        self.src = src
        self.now = now
        self.gzip_backend = "zlib"
        self.since = now - corr.retro_lookback
        self.state_path = corr.state_dir / "retro.state.json"
        self.state = recover(self.state_path, load_state(self.state_path))
        last = read_pointer(corr.last_retro_pointer_file)
        committed = self.state.extra.get("retro_last")
        c = parse_rfc3339_or_none(committed) if isinstance(committed, str) else None
        if c is not None and (last is None or c > last):
            last = c  # the pointer write after the last commit was lost
        self.everything = Matcher(subdomains=corr.match_subdomains, cnames=corr.match_cnames)
        _fill(self.everything, src)
        self.dates: dict[str, int] | None = None
        if src.index_file is not None:
            try:
                self.dates = index_dates(src.index_file)
            except (OSError, IndexFormatError) as exc:
                log.warning("IOC index unusable, falling back to the plain lists: %s", exc)
        previous = _read_snapshot(corr.state_dir, self.state)
        domains, nets = _new_indicators(self.everything, self.dates, last, previous)
        del previous
        if self.dates is not None:  # only the new ones can match: keep their dates only
            dates = self.dates
            self.dates = {v: dates[v] for v in (*domains, *nets) if v in dates}
            del dates
        if len(domains) + len(nets) == self.everything.indicator_count:
            self.matcher = self.everything  # all new (first run): no second copy in memory
        else:
            self.matcher = Matcher(
                domains, nets, subdomains=corr.match_subdomains, cnames=corr.match_cnames
            )
        del domains, nets
        self.result = RunResult(indicators=self.matcher.indicator_count)
        self.agg = Aggregator("retro", corr.dedup_window)
        self.config = config
        self.gaps: dict[Path, retro_store.Gaps] = {}
        self.predecessor = (
            None
            if self.state.extra.get(HANDOVER_DONE) and not given
            else handover.for_step(config, "retro", src.index_file)
        )
        log.info(
            "retro: %d of %d indicator(s) are new since %s",
            self.matcher.indicator_count,
            self.everything.indicator_count,
            format_rfc3339(last) if last else "ever (first retro run)",
        )

    def from_store(self, files: list[Path]) -> None:
        """Search the history store for what it holds of the look-back; the raw scan
        then reads only the bytes of ``files`` the store does not hold."""
        why = retro_store.usable(self.config)
        if why is not None:
            log.info("retro: not reading the history store (%s); raw scan", why)
            return
        try:
            part = retro_store.plan(self.config, files, FP_LEN, _fp)
            retro_store.search(self.config, part, self.matcher, self.since, self._keep, self.agg)
        except (AgentError, OSError, ValueError) as exc:
            log.warning("retro: history store unusable (%s); raw scan of the look-back", exc)
            self.agg = Aggregator("retro", self.corr.dedup_window)
            return
        self.gaps = part.gaps
        log.info(
            "retro: history store: %d segment(s) searched, %d matching row(s) (%d repl(ies)); "
            "%d of %d file(s) held there",
            part.segments,
            part.rows,
            part.replies,
            len(part.gaps),
            len(files),
        )

    def scan(self, files: list[Path], stream: TextIO) -> None:
        sizes = [_size(f) for f in files]
        progress = Progress(sum(sizes), len(files), stream)
        done_bytes = 0
        for i, path in enumerate(files):
            stats = ReadStats(files=1)
            on_hit = self._on_hit(str(path))
            for lo, hi in self.gaps.get(path, [(0, None)]):
                if hi is None and content_ends_at(path, lo, sizes[i]):
                    continue  # the store holds all of it
                reader = LineReader(
                    path,
                    stats,
                    offset=lo,
                    max_line_bytes=self.corr.max_line_bytes,
                    gzip_backend=self.gzip_backend,
                    limit=sizes[i],
                    complete=path != self.corr.queries_file,  # the live log may grow
                )
                try:
                    for chunk in reader.chunks():
                        at = chunk.end - len(chunk.data)
                        data = chunk.data
                        if hi is not None and chunk.end > hi:
                            data = data[: hi - at]
                        scan_chunk(data, self.matcher, stats, on_hit, str(path), at)
                        lines = self.result.stats.lines + stats.lines
                        progress.update(i, lines, done_bytes + chunk.raw_position)
                        if hi is not None and chunk.end >= hi:
                            break
                except OSError as exc:
                    stats.note("unreadable", f"{path}: {exc.strerror}")
                stats.bytes += reader.offset - lo
            done_bytes += sizes[i]
            self.result.stats.merge(stats)
        progress.update(len(files) - 1, self.result.stats.lines, done_bytes, final=True)

    def _keep(self, hits: list[Hit], when: datetime) -> list[Hit]:
        """The hits retro reports for an answer seen at ``when``."""
        dates, ts = self.dates, when.timestamp()
        # An indicator known before the answer was live correlate's to find.
        keep = [h for h in hits if dates is None or h[1] not in dates or dates[h[1]] > ts]
        if keep and self.predecessor is not None:
            keep = self.predecessor.new(keep, when)
        return keep

    def _on_hit(self, where: str) -> OnHit:
        since, agg, keep_of = self.since, self.agg, self._keep

        def on_hit(rec: LogRecord, hits: list[Hit]) -> None:
            when = event_time(rec)
            if when is None or when < since:
                return
            keep = keep_of(hits, when)
            if keep:
                agg.add(rec, keep, where, when)

        return on_hit

    def finish(self, *, scheduled: bool = True) -> None:
        """Write the alerts, the indicator snapshot and retro.last, in a crash-safe order.

        A run that is not ``scheduled`` (given paths) writes its alerts only.
        """
        corr, state = self.corr, self.state
        indicators = {p.hit[1] for p in self.agg.items.values()}
        ctx = _context(self.src.index_file, indicators)
        added: dict[str, datetime | None] = {}
        for value in indicators:
            if self.dates is not None and self.dates.get(value):
                added[value] = from_epoch(self.dates[value])
            elif value in ctx and ctx[value].added:
                added[value] = from_epoch(ctx[value].added)
            else:
                # plain lists: new since the previous run, first searched now
                added[value] = self.now if self.dates is None else None
        lines = build_lines(
            self.agg.items,
            state.alerts,
            window=corr.dedup_window,
            context=ctx,
            ioc_added=added,
            now=self.now,
        )
        self.result.alerts = len(lines)
        if not scheduled:
            commit(self.state_path, state, corr.output_dir / ALERTS_FILE, lines)
            return
        snapshot = _write_snapshot(corr.state_dir, self.everything, self.now)
        old = state.extra.get("snapshot")
        state.extra["snapshot"] = snapshot.name
        state.extra["retro_last"] = format_rfc3339(self.now)
        state.extra[HANDOVER_DONE] = True
        if self.predecessor is not None:
            self.predecessor.report("retro")
        prune_seen(
            state.alerts,
            int((self.since - corr.dedup_window).timestamp()),
            now=self.now,
            keep=corr.dedup_window + timedelta(days=1),
        )
        commit(self.state_path, state, corr.output_dir / ALERTS_FILE, lines)
        if isinstance(old, str) and old != snapshot.name:
            (corr.state_dir / old).unlink(missing_ok=True)
        write_pointer(corr.last_retro_pointer_file, self.now)


def _refresh_fingerprint(mark: FileMark, path: Path, head: bytes) -> None:
    """Lengthen a short fingerprint once the file has grown past it."""
    if mark.fp_len >= FP_LEN:
        return
    new_head = head_bytes(path, FP_LEN)
    if len(new_head) > mark.fp_len and new_head[: mark.fp_len] == head[: mark.fp_len]:
        mark.fp_len, mark.fp = len(new_head), _fp(new_head)


def content_ends_at(path: Path, offset: int, size: int) -> bool:
    """Whether the file's content (decompressed) ends at ``offset``: a plain file's
    size; a gzip file's ISIZE trailer (the length modulo 2**32 of its last member)."""
    if offset == 0:
        return size == 0
    if not is_gzip(path):
        return offset >= size
    try:
        with path.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little") == offset % (1 << 32)
    except OSError:
        return False


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_snapshot(state_dir: Path, state: StepState) -> set[str] | None:
    name = state.extra.get("snapshot")
    if not isinstance(name, str):
        return None
    try:
        return set(read_list(state_dir / name))
    except FileNotFoundError:
        return None


def _write_snapshot(state_dir: Path, matcher: Matcher, now: datetime) -> Path:
    """The indicator values this run searched for (plain lists carry no dates)."""
    path = state_dir / f"{SNAPSHOT}.{int(now.timestamp())}"
    # in no order: it is read back into a set, and sorting a million names costs a second
    values = [*matcher.domains, *matcher.network_values()]
    atomic_write_text(path, "\n".join(values) + "\n" if values else "")
    return path


def _new_indicators(
    everything: Matcher,
    dates: dict[str, int] | None,
    last: datetime | None,
    previous: set[str] | None,
) -> tuple[list[str], list[str]]:
    """Indicators added after ``last`` (index dates), or unseen by the previous run."""
    domains = list(everything.domains)  # in no order: sorting a million names costs a second
    nets = everything.network_values()
    if last is None:
        return domains, nets
    cutoff = last.timestamp()

    def is_new(v: str) -> bool:
        if dates is not None and v in dates:
            return dates[v] > cutoff
        return previous is None or v not in previous

    return [d for d in domains if is_new(d)], [n for n in nets if is_new(n)]
