# SPDX-License-Identifier: Apache-2.0
"""``retro``: indicators that are new since the last run, searched for in the
answers logged before they were added (within ``correlation.retro_lookback``).

The history store answers what it holds of the look-back; the raw scan reads
only the bytes it does not. Alerts, the indicator snapshot and ``retro.last``
are committed once, at the end, in a crash-safe order. A run asked to stop
(the daemon stopping) stops at its next chunk boundary and leaves a
checkpoint its next run resumes from (:mod:`.retro_resume`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .. import stopping
from ..alertfile import ALERTS_FILE
from ..config import Config
from ..dnslog import Chunk, LogRecord, ReadStats, normalise
from ..errors import AgentError, IndexFormatError
from ..fsutil import atomic_write_text
from ..state import read_pointer, step_lock, utcnow, write_pointer
from ..timefmt import format_rfc3339, parse_rfc3339_or_none
from . import handover, retro_resume, retro_store
from .indicators import Matcher, index_dates, read_list
from .inputs import (
    FP_LEN,
    check_paths,
    content_ends_at,
    discover,
    file_size,
    fingerprint,
    retro_files,
    retro_problems,
)
from .output import (
    Aggregator,
    StepState,
    build_lines,
    commit,
    event_time,
    from_epoch,
    load_state,
    prune_seen,
    recover,
)
from .scan import Hit, OnChunk, OnHit, scan_file
from .step import (
    HANDOVER_DONE,
    RunResult,
    Sources,
    context,
    gc_paused,
    load_matcher,
    log_stats,
    raise_no_input,
    sources_from,
    warn,
)

log = logging.getLogger(__name__)

SNAPSHOT = "retro.indicators"
STATE_FILE = "retro.state.json"


class ProgressReport(Protocol):
    """Where a run reports how far it is (the command shows it on a terminal)."""

    def update(self, files_done: int, lines: int, bytes_done: int, *, final: bool = False) -> None:
        """``files_done`` files and ``bytes_done`` bytes of the total read, ``lines`` lines."""


ProgressFactory = Callable[[int, int], ProgressReport]
"""Makes the report for a scan of ``total_bytes`` in ``total_files`` files."""


def run_retro(
    config: Config,
    paths: Iterable[Path] = (),
    *,
    domain_files: Iterable[Path] = (),
    ip_files: Iterable[Path] = (),
    gzip_backend: str = "zlib",
    now: datetime | None = None,
    progress: ProgressFactory | None = None,
) -> RunResult:
    """Search archived query logs for indicators that are new since the last retro run."""
    corr = config.correlation
    started = time.monotonic()
    given = check_paths(paths)
    run_now = now or utcnow()
    with step_lock(corr.state_dir, "retro"):
        job = load(
            config,
            sources_from(config, domain_files, ip_files),
            run_now,
            given=bool(given),
            gzip_backend=gzip_backend,
            progress=progress,
        )
        job.result.load_seconds = time.monotonic() - started
        if given:
            files = discover(given)
        elif job.resume is not None:
            files = job.resume_files(retro_files(config, job.since))
        else:
            warn(retro_problems(config))
            files = retro_files(config, job.since)
        try:
            if not job.matcher.empty:
                with gc_paused():
                    if not given and job.resume is None:  # PATH arguments: as they are
                        job.from_store(files)
                    job.scan(files)
        except stopping.Stopped:
            job.checkpoint(scheduled=not given)
        else:
            # A search of given paths does not move retro.last: the scheduled run
            # must still search the archive for the indicators that are new now.
            job.finish(scheduled=not given)
    job.result.seconds = time.monotonic() - started
    log_stats(log, "retro", job.result)
    if not given and not job.store_searched:
        # with no DNS log at all, a run that searched the history store did its work
        raise_no_input(retro_problems(config))
    return job.result


@dataclass(frozen=True)
class NewIndicators:
    """What a retro run searches for, and what it remembers having searched for."""

    everything: Matcher
    """Every indicator of this run (written to the snapshot)."""
    matcher: Matcher
    """Those new since the previous run (``everything`` itself on a first run)."""
    dates: dict[str, int] | None
    """When each new indicator was added (IOC index, epoch s); None without an index."""
    last: datetime | None
    """The previous run's time, if there was one."""


def load(
    config: Config,
    src: Sources,
    now: datetime,
    *,
    given: bool = False,
    gzip_backend: str = "zlib",
    progress: ProgressFactory | None = None,
) -> Retro:
    """Read the state, the indicators and their dates, and set up the run."""
    corr = config.correlation
    state_path = corr.state_dir / STATE_FILE
    state = recover(state_path, load_state(state_path))
    resume = None if given else retro_resume.read(corr.state_dir, state.extra)
    if resume is not None:
        new = resumed_indicators(config, src, resume)
        now = resume.now
        log.info(
            "retro: resuming the run of %s stopped with %d file(s) left",
            format_rfc3339(now),
            len(resume.files),
        )
    else:
        new = new_indicators(config, src, state)
    predecessor = (
        None
        if state.extra.get(HANDOVER_DONE) and not given
        else handover.for_step(config, "retro", src.index_file)
    )
    log.info(
        "retro: %d of %d indicator(s) are new since %s",
        new.matcher.indicator_count,
        new.everything.indicator_count,
        format_rfc3339(new.last) if new.last else "ever (first retro run)",
    )
    return Retro(
        config,
        state,
        new,
        index_file=src.index_file,
        predecessor=predecessor,
        now=now,
        gzip_backend=gzip_backend,
        progress=progress,
        resume=resume,
    )


def resumed_indicators(
    config: Config, src: Sources, resume: retro_resume.Checkpoint
) -> NewIndicators:
    """The indicators a stopped run searched for, to search the rest of its files."""
    corr = config.correlation
    matcher = Matcher(
        resume.domains, resume.networks, subdomains=corr.match_subdomains, cnames=corr.match_cnames
    )
    dates: dict[str, int] | None = None
    if src.index_file is not None:
        try:
            every = index_dates(src.index_file)
            dates = {v: every[v] for v in (*resume.domains, *resume.networks) if v in every}
        except (OSError, IndexFormatError) as exc:
            log.warning("IOC index unusable, falling back to the plain lists: %s", exc)
    # ``everything`` only feeds the snapshot, which the stopped run wrote already
    return NewIndicators(matcher, matcher, dates, None)


def new_indicators(config: Config, src: Sources, state: StepState) -> NewIndicators:
    """The indicators added since the previous run (index dates), or that it did not have."""
    corr = config.correlation
    last = read_pointer(corr.last_retro_pointer_file)
    committed = state.extra.get("retro_last")
    c = parse_rfc3339_or_none(committed) if isinstance(committed, str) else None
    if c is not None and (last is None or c > last):
        last = c  # the pointer write after the last commit was lost
    everything = load_matcher(corr, src)
    dates: dict[str, int] | None = None
    if src.index_file is not None:
        try:
            dates = index_dates(src.index_file)
        except (OSError, IndexFormatError) as exc:
            log.warning("IOC index unusable, falling back to the plain lists: %s", exc)
    previous = _read_snapshot(corr.state_dir, state)
    domains, nets = _new_values(everything, dates, last, previous)
    del previous
    if dates is not None:  # only the new ones can match: keep their dates only
        all_dates = dates
        dates = {v: all_dates[v] for v in (*domains, *nets) if v in all_dates}
        del all_dates
    if len(domains) + len(nets) == everything.indicator_count:
        matcher = everything  # all new (first run): no second copy in memory
    else:
        matcher = Matcher(domains, nets, subdomains=corr.match_subdomains, cnames=corr.match_cnames)
    return NewIndicators(everything, matcher, dates, last)


class Retro:
    """One retro run: new indicators x archived lines, committed once at the end."""

    def __init__(
        self,
        config: Config,
        state: StepState,
        indicators: NewIndicators,
        *,
        index_file: Path | None,
        predecessor: handover.Predecessor | None,
        now: datetime,
        gzip_backend: str = "zlib",
        progress: ProgressFactory | None = None,
        resume: retro_resume.Checkpoint | None = None,
    ) -> None:
        corr = config.correlation
        self.config = config
        self.corr = corr
        self.state = state
        self.state_path = corr.state_dir / STATE_FILE
        self.everything = indicators.everything
        self.matcher = indicators.matcher
        self.dates = indicators.dates
        self.index_file = index_file
        self.predecessor = predecessor
        self.now = now
        self.since = now - corr.retro_lookback
        self.gzip_backend = gzip_backend
        self.progress = progress
        self.result = RunResult(indicators=self.matcher.indicator_count)
        self.agg = Aggregator("retro", corr.dedup_window)
        self.gaps: dict[Path, retro_store.Gaps] = {}
        self.store_searched = False
        self.resume = resume
        """The checkpoint of a stopped run this one resumes (None: a run of its own)."""
        self.remaining: list[Path] = []
        """Files not completely read yet (the checkpoint's list when stopped)."""
        self.done: list[retro_resume.Ident] = list(resume.done) if resume is not None else []
        """Files read to the end, by their content (for a checkpoint)."""

    def resume_files(self, candidates: list[Path]) -> list[Path]:
        """Of ``candidates``, what the stopped run left (with the store's gaps) or never saw."""
        assert self.resume is not None  # noqa: S101
        files = []
        for path, gaps in retro_resume.plan(self.resume, candidates):
            files.append(path)
            if gaps is not None:
                self.gaps[path] = gaps
        return files

    def from_store(self, files: list[Path]) -> None:
        """Search the history store for what it holds of the look-back; the raw scan
        then reads only the bytes of ``files`` the store does not hold."""
        why = retro_store.usable(self.config)
        if why is not None:
            log.info("retro: not reading the history store (%s); raw scan", why)
            return
        try:
            part = retro_store.plan(self.config, files, FP_LEN, fingerprint)
            retro_store.search(self.config, part, self.matcher, self.since, self._keep, self.agg)
        except (AgentError, OSError, ValueError) as exc:
            log.warning("retro: history store unusable (%s); raw scan of the look-back", exc)
            self.agg = Aggregator("retro", self.corr.dedup_window)
            return
        self.gaps = part.gaps
        self.store_searched = True
        log.info(
            "retro: history store: %d segment(s) searched, %d matching row(s) (%d repl(ies)); "
            "%d of %d file(s) held there",
            part.segments,
            part.rows,
            part.replies,
            len(part.gaps),
            len(files),
        )

    def scan(self, files: list[Path]) -> None:
        """Match the bytes of ``files`` the history store did not answer for."""
        sizes = [file_size(f) for f in files]
        progress = self.progress(sum(sizes), len(files)) if self.progress is not None else None
        done_bytes = 0
        self.remaining = list(files)
        for i, path in enumerate(files):
            stopping.check()
            stats = ReadStats(files=1)
            # A file's hits join the run's once it is read to the end: a stop
            # part-way drops them, and the resumed run reads the file again.
            found = Aggregator("retro", self.corr.dedup_window)
            on_hit = self._on_hit(str(path), found)
            report = self._on_chunk(progress, i, stats, done_bytes)
            for lo, hi in self.gaps.get(path, [(0, None)]):
                if hi is None and content_ends_at(path, lo, sizes[i]):
                    continue  # the store holds all of it
                scan_file(
                    path,
                    self.matcher,
                    stats,
                    on_hit,
                    offset=lo,
                    end=hi,
                    limit=sizes[i],
                    complete=path != self.corr.queries_file,  # the live log may grow
                    max_line_bytes=self.corr.max_line_bytes,
                    gzip_backend=self.gzip_backend,
                    on_chunk=report,
                )
            self.agg.merge(found)
            self.remaining.pop(0)
            self.done.append(retro_resume.ident(path))
            done_bytes += sizes[i]
            self.result.stats.merge(stats)
        if progress is not None:
            progress.update(len(files) - 1, self.result.stats.lines, done_bytes, final=True)

    def _on_chunk(
        self, progress: ProgressReport | None, i: int, stats: ReadStats, done_bytes: int
    ) -> OnChunk:
        """After each chunk of the ``i``-th file: stop if asked to; report progress."""
        total = self.result.stats

        def report(_records: list[Any], _data: bytes, chunk: Chunk) -> None:
            stopping.check()
            if progress is not None:
                progress.update(i, total.lines + stats.lines, done_bytes + chunk.raw_position)

        return report

    def _keep(self, hits: list[Hit], when: datetime) -> list[Hit]:
        """The hits retro reports for an answer seen at ``when``."""
        dates, ts = self.dates, when.timestamp()
        # An indicator known before the answer was live correlate's to find.
        keep = [h for h in hits if dates is None or h[1] not in dates or dates[h[1]] > ts]
        if keep and self.predecessor is not None:
            keep = self.predecessor.new(keep, when)
        return keep

    def _on_hit(self, where: str, agg: Aggregator) -> OnHit:
        since, keep_of = self.since, self._keep

        def on_hit(rec: LogRecord, hits: list[Hit]) -> None:
            event = normalise(rec)
            when = event_time(event)
            if when is None or when < since:
                return
            keep = keep_of(hits, when)
            if keep:
                agg.add(event, keep, where, when)

        return on_hit

    def finish(self, *, scheduled: bool = True) -> None:
        """Write the alerts, the indicator snapshot and retro.last, in a crash-safe order.

        A run that is not ``scheduled`` (given paths) writes its alerts only.
        """
        corr, state = self.corr, self.state
        lines = self._lines()
        self.result.alerts = len(lines)
        if not scheduled:
            commit(self.state_path, state, corr.output_dir / ALERTS_FILE, lines)
            return
        if self.resume is not None:
            snapshot = corr.state_dir / self.resume.snapshot
        else:
            snapshot = _write_snapshot(corr.state_dir, self.everything, self.now)
        old = state.extra.get("snapshot")
        state.extra["snapshot"] = snapshot.name
        state.extra["retro_last"] = format_rfc3339(self.now)
        state.extra[HANDOVER_DONE] = True
        state.extra.pop(retro_resume.STATE_KEY, None)
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
        retro_resume.discard(corr.state_dir)
        write_pointer(corr.last_retro_pointer_file, self.now)

    def checkpoint(self, *, scheduled: bool = True) -> None:
        """Stopped part-way: commit the alerts of the files read to the end, and
        leave the rest to the next run (:mod:`.retro_resume`). ``retro.last`` stays.

        A search of given paths (not ``scheduled``) writes nothing: it is run
        again by hand.
        """
        self.result.stopped = True
        if not scheduled:
            log.info("retro: stopped; nothing written (run it again)")
            return
        corr, state = self.corr, self.state
        lines = self._lines()
        self.result.alerts = len(lines)
        if self.resume is not None:
            snapshot = self.resume.snapshot
        else:
            snapshot = _write_snapshot(corr.state_dir, self.everything, self.now).name
        left = [
            retro_resume.FileLeft(p, retro_resume.ident(p), self.gaps.get(p))
            for p in self.remaining
        ]
        state.extra[retro_resume.STATE_KEY] = retro_resume.save(
            corr.state_dir,
            retro_resume.Checkpoint(
                now=self.now,
                domains=list(self.matcher.domains),
                networks=self.matcher.network_values(),
                snapshot=snapshot,
                files=left,
                done=self.done,
            ),
        )
        commit(self.state_path, state, corr.output_dir / ALERTS_FILE, lines)
        log.info(
            "retro: stopped; %d alert line(s) written, %d file(s) left for the next run",
            len(lines),
            len(left),
        )

    def _lines(self) -> list[bytes]:
        """The alert lines of what was found (revisions continue the state's alerts)."""
        corr, state = self.corr, self.state
        indicators = {p.hit[1] for p in self.agg.items.values()}
        ctx = context(self.index_file, indicators)
        added: dict[str, datetime | None] = {}
        for value in indicators:
            if self.dates is not None and self.dates.get(value):
                added[value] = from_epoch(self.dates[value])
            elif value in ctx and ctx[value].added:
                added[value] = from_epoch(ctx[value].added)
            else:
                # plain lists: new since the previous run, first searched now
                added[value] = self.now if self.dates is None else None
        return build_lines(
            self.agg.items,
            state.alerts,
            window=corr.dedup_window,
            context=ctx,
            ioc_added=added,
            now=self.now,
        )


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


def _new_values(
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
