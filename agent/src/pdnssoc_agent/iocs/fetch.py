# SPDX-License-Identifier: Apache-2.0
"""fetch-iocs: indicator sources -> IOC index + the collector's list files -> SIGHUP.

Sources come in through :class:`~pdnssoc_agent.iocs.source.IndicatorSource`
(MISP servers are one kind, :mod:`pdnssoc_agent.iocs.misp`). From each,
attributes of the configured types are fetched page by page (one query for
the generic age limit, one more per tag period longer than it), filtered
(IDS flag, age by tag period), normalised and validated, here, the same for
every kind of source. Sources are merged: a value from two sources is one
line in the lists and carries both contexts in the index.

Failure keeps the last good state. A source that fails (or a configured one
that was not selected with ``--server``) keeps the indicators it had in the
previous index; when its share cannot be known (no readable previous index)
nothing is written at all. When every selected source fails, nothing is
written.
Files are written index first, then lists (so a listed value always has its
context), each atomically; the collector is told to reload only when a list
file actually changed.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import msgspec

from ..config import Config
from ..errors import ExitCode, FetchConfigError, IndexFormatError
from ..reload import ReloadResult, reload_collector
from ..state import step_lock
from . import lists
from .configured import configured, sources_from_config
from .index import (
    FORMAT,
    VERSION,
    IndexHeader,
    IndicatorEntry,
    IocContext,
    iter_index,
    read_header,
    write_index,
)
from .normalize import Normalizer, Rejection
from .source import Attribute, IndicatorSource, Query, SourceError
from .warninglists import WarninglistError, Warninglists

__all__ = ["FetchConfigError", "FetchOptions", "FetchResult", "ServerReport", "fetch_iocs"]

log = logging.getLogger(__name__)

LOG_REJECTIONS_PER_REASON = 20
"""Rejections logged one by one per server and reason; the rest are counted (and at DEBUG)."""


@dataclass(frozen=True)
class FetchOptions:
    """How one fetch-iocs run behaves (the sources are given beside it)."""

    reload: bool = True
    """Tell the collector to reload when a list file changed."""
    now: float | None = None
    """The time age limits count back from and new values are stamped with; None: the clock."""
    progress_interval: float = 5.0
    """Seconds between progress lines while a source pages."""


@dataclass
class ServerReport:
    """What one source gave (or why it gave nothing)."""

    label: str
    url: str
    selected: bool = True
    seen: int = 0
    """Attributes the source returned (each attribute once)."""
    kept: int = 0
    """Attributes that gave at least one indicator."""
    not_to_ids: int = 0
    too_old: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejected values by reason."""
    values: int = 0
    """Distinct indicator values this server contributed."""
    carried: int = 0
    """Values kept from the previous index because this source failed or was skipped."""
    seconds: float = 0.0
    error: str | None = None

    def summary(self) -> str:
        if not self.selected:
            return f"{self.label}: not selected; kept {self.carried} values from the previous index"
        rejected = sum(self.rejected.values())
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items()))
        text = (
            f"{self.label}: {self.seen} attributes seen, {self.kept} kept "
            f"({self.values} distinct values), {self.too_old} too old, "
            f"{self.not_to_ids} without IDS flag, {rejected} values rejected"
            + (f" ({reasons})" if reasons else "")
            + f", {self.seconds:.1f} s"
        )
        if self.error:
            text += f"; FAILED: {self.error}; kept {self.carried} values from the previous index"
        return text


@dataclass
class FetchResult:
    """Outcome of one fetch-iocs run."""

    servers: list[ServerReport]
    written: bool = False
    """The index and lists were (re)written; False when the previous state was kept."""
    domains: int = 0
    ips: int = 0
    lists_changed: bool = False
    reload: ReloadResult | None = None

    @property
    def failed(self) -> list[ServerReport]:
        return [s for s in self.servers if s.error]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.UPSTREAM if self.failed else ExitCode.OK


class _Rejections:
    """Counts rejections and logs each, with its event, up to a limit per reason."""

    def __init__(self, report: ServerReport) -> None:
        self.report = report

    def __call__(self, rej: Rejection, attr: Attribute) -> None:
        counter = self.report.rejected
        counter[rej.reason] += 1
        first = counter[rej.reason] <= LOG_REJECTIONS_PER_REASON
        level = logging.WARNING if first else logging.DEBUG
        if counter[rej.reason] == LOG_REJECTIONS_PER_REASON + 1:
            log.warning(
                "%s: more %s rejections follow; they are counted in the summary (DEBUG logs each)",
                self.report.label,
                rej.reason,
            )
        if log.isEnabledFor(level):
            log.log(
                level,
                "%s: rejected %s (%s%s) from event %s, attribute %s (%s)",
                self.report.label,
                rej.value,
                rej.reason,
                f": {rej.detail}" if rej.detail else "",
                attr.event_id or (attr.Event.id if attr.Event else "?"),
                attr.uuid or attr.id,
                attr.type,
            )


class _SourceFetch:
    """Fetches one source into its own entries (merged only if the whole source succeeds)."""

    def __init__(
        self,
        *,
        source: IndicatorSource,
        config: Config,
        normalizer: Normalizer,
        now: float,
        report: ServerReport,
        progress_interval: float,
        warninglists: Warninglists | None = None,
    ) -> None:
        self.source = source
        self.warninglists = warninglists
        self.fetch = config.fetch_iocs
        self.normalizer = normalizer
        self.now = now
        self.report = report
        self.progress_interval = progress_interval
        self.entries: dict[str, IndicatorEntry] = {}
        self._events: dict[str, tuple[str, str, str, str]] = {}
        self._tags: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._shared: dict[str, str] = {}
        self._reject = _Rejections(report)
        periods = source.periods
        self.generic: timedelta = periods.generic.delta
        self.tag_limits: dict[str, float] = {}
        for tp in periods.tags:
            for name in tp.names:
                self.tag_limits[name.lower()] = tp.delta.total_seconds()

    def run(self) -> None:
        queries: list[tuple[tuple[str, ...] | None, timedelta]] = [(None, self.generic)]
        queries += [
            (tuple(tp.names), tp.delta)
            for tp in self.source.periods.tags
            if tp.delta > self.generic
        ]
        seen_uuids: set[str] | None = set() if len(queries) > 1 else None
        last_progress = time.monotonic()
        for names, delta in queries:
            since = int(self.now - delta.total_seconds())
            pages = self.source.pages(
                Query(
                    types=tuple(self.fetch.types),
                    to_ids=self.fetch.to_ids_only,
                    since=since,
                    tags=names,
                )
            )
            for page_no, page in enumerate(pages, start=1):
                for attr in page:
                    if seen_uuids is not None:
                        key = attr.uuid or str(attr.id)
                        if key in seen_uuids:
                            continue
                        seen_uuids.add(key)
                    self._attribute(attr)
                if time.monotonic() - last_progress >= self.progress_interval:
                    last_progress = time.monotonic()
                    log.info(
                        "%s: %d attributes so far (%s, page %d)",
                        self.report.label,
                        self.report.seen,
                        f"tags {', '.join(names)}" if names else "generic period",
                        page_no,
                    )
        self.report.values = len(self.entries)

    def _tags_of(self, attr: Attribute) -> tuple[str, ...]:
        names = [t.name for t in attr.Tag if t.name]
        if attr.Event is not None and attr.Event.Tag:
            names += [t.name for t in attr.Event.Tag if t.name]
        key = tuple(dict.fromkeys(names))
        return self._tags.setdefault(key, key)

    def _attribute(self, attr: Attribute) -> None:
        report = self.report
        report.seen += 1
        if self.fetch.to_ids_only and not attr.to_ids:
            report.not_to_ids += 1
            return
        tags = self._tags_of(attr)
        limit = self.generic.total_seconds()
        if self.tag_limits and tags:
            tagged = [self.tag_limits[t.lower()] for t in tags if t.lower() in self.tag_limits]
            if tagged:
                limit = max(tagged)
        if attr.timestamp < self.now - limit:
            report.too_old += 1
            return
        ctx: IocContext | None = None
        kept = False
        for result in self.normalizer.attribute(attr.type, attr.value):
            if isinstance(result, Rejection):
                self._reject(result, attr)
                continue
            if ctx is None:
                ctx = self._context(attr, tags)
            if self.warninglists is not None:
                hit = self.warninglists.check(attr.type, result.value)
                if hit is not None:
                    self._reject(
                        Rejection("warninglist", result.value, f"{hit.name}: {hit.entry}"), attr
                    )
                    continue
            entry = self.entries.get(result.value)
            if entry is None:
                self.entries[result.value] = IndicatorEntry(
                    value=result.value,
                    kind=result.kind,
                    added=0,
                    updated=attr.timestamp,
                    contexts=[ctx],
                )
            else:
                entry.contexts.append(ctx)
                entry.updated = max(entry.updated, attr.timestamp)
            kept = True
        if kept:
            report.kept += 1

    def _context(self, attr: Attribute, tags: tuple[str, ...]) -> IocContext:
        ev = attr.Event
        event_id = str(attr.event_id or (ev.id if ev is not None else ""))
        cached = self._events.get(event_id)
        if cached is None:
            url = self.source.event_url(event_id)
            if ev is not None:
                cached = (ev.uuid, ev.info, url, self.source.org_name(ev))
            else:
                cached = ("", "", url, "")
            self._events[event_id] = cached
        uuid, info, url, org = cached
        # Short comments repeat across attributes ("C2", "phishing"): share them.
        comment = attr.comment
        if len(comment) <= 64:
            comment = self._shared.setdefault(comment, comment)
        return IocContext(
            server=self.report.label,
            event_id=event_id,
            event_uuid=uuid,
            event_info=info,
            event_url=url,
            org=org,
            tags=tags,
            attribute_uuid=attr.uuid,
            attribute_type=sys.intern(attr.type),
            category=sys.intern(attr.category),
            comment=comment,
            timestamp=attr.timestamp,
            first_seen=attr.first_seen or "",
        )


def _merge(into: dict[str, IndicatorEntry], other: dict[str, IndicatorEntry]) -> None:
    for value, entry in other.items():
        mine = into.get(value)
        if mine is None:
            into[value] = entry
        else:
            mine.contexts.extend(entry.contexts)
            mine.updated = max(mine.updated, entry.updated)


def _carry_over(
    *,
    index_path: Path,
    entries: dict[str, IndicatorEntry],
    keep_labels: set[str],
    reports: dict[str, ServerReport],
) -> bool:
    """Bring ``added`` forward and the kept servers' contexts in; False if the index is unusable."""
    if not keep_labels:
        return _carry_added(index_path, entries)
    try:
        old_entries = iter_index(index_path)
        for old in old_entries:
            carried = [c for c in old.contexts if c.server in keep_labels] if keep_labels else []
            cur = entries.get(old.value)
            if cur is not None:
                if old.added:
                    cur.added = old.added
                if carried:
                    cur.contexts.extend(carried)
                    cur.updated = max(cur.updated, *(c.timestamp for c in carried))
            elif carried:
                entries[old.value] = IndicatorEntry(
                    value=old.value,
                    kind=old.kind,
                    added=old.added,
                    updated=max(c.timestamp for c in carried),
                    contexts=carried,
                )
            for label in {c.server for c in carried}:
                reports[label].carried += 1
    except FileNotFoundError:
        return False
    except (IndexFormatError, OSError) as exc:
        log.warning("previous IOC index unusable, indicators start afresh: %s", exc)
        return False
    return True


class _Added(msgspec.Struct):
    value: str
    added: int = 0


_added_decoder = msgspec.json.Decoder(_Added)


def _carry_added(index_path: Path, entries: dict[str, IndicatorEntry]) -> bool:
    """Only ``added`` from the previous index (contexts are skipped, not built)."""
    try:
        read_header(index_path)
        with index_path.open("rb") as fh:
            fh.readline()
            for lineno, line in enumerate(fh, start=2):
                if not line.strip():
                    continue
                try:
                    old = _added_decoder.decode(line)
                except msgspec.DecodeError as exc:
                    raise IndexFormatError(f"{index_path}:{lineno}: {exc}") from None
                cur = entries.get(old.value)
                if cur is not None and old.added:
                    cur.added = old.added
    except FileNotFoundError:
        return False
    except (IndexFormatError, OSError) as exc:
        log.warning("previous IOC index unusable, indicators start afresh: %s", exc)
        return False
    return True


def fetch_iocs(
    config: Config,
    sources: Sequence[IndicatorSource] | None = None,
    options: FetchOptions | None = None,
) -> FetchResult:
    """Run fetch-iocs over ``sources``; the result says what was written and which failed.

    ``sources`` are the ones to fetch this time (default: every configured
    source). A configured source not among them keeps its previous indicators.
    """
    options = options or FetchOptions()
    if sources is None:
        sources = sources_from_config(config)
    if not sources:
        raise FetchConfigError("no indicator source to fetch from")
    labels = [s.label for s in sources]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise FetchConfigError(f"two sources share the name {', '.join(twice)}")

    corr = config.correlation
    # Hundreds of thousands of long-lived containers, no cycles among them: the
    # cycle collector would only rescan them again and again (a quarter of the
    # CPU time on 500,000 attributes). It is switched back on when done.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        with step_lock(corr.state_dir, "fetch-iocs"):
            return _run(config, sources, options)
    finally:
        if gc_enabled:
            gc.enable()


def _run(config: Config, sources: Sequence[IndicatorSource], options: FetchOptions) -> FetchResult:
    now = time.time() if options.now is None else options.now
    known = configured(config) | {s.label: s.url for s in sources}
    selected = {s.label for s in sources}
    reports = {
        label: ServerReport(label, url, selected=label in selected) for label, url in known.items()
    }
    result = FetchResult(servers=list(reports.values()))
    entries = _fetch_all(
        config, sources, reports=reports, now=now, progress_interval=options.progress_interval
    )
    if entries is None:
        log.error("every selected source failed: previous lists and index left as they were")
    elif (
        _write(config, entries, known=known, reports=reports, result=result, now=now)
        and options.reload
    ):
        fetch_cfg = config.fetch_iocs
        result.reload = reload_collector(
            fetch_cfg.collector_pid_file if fetch_cfg.reload_collector else None,
            fetch_cfg.collector_process_match,
        )
    for report in result.servers:
        (log.error if report.error else log.info)("summary: %s", report.summary())
    return result


def _fetch_all(
    config: Config,
    sources: Sequence[IndicatorSource],
    *,
    reports: dict[str, ServerReport],
    now: float,
    progress_interval: float,
) -> dict[str, IndicatorEntry] | None:
    """Every source's indicators merged; None when all of them failed."""
    fetch_cfg = config.fetch_iocs
    normalizer = Normalizer(
        max_prefix_v4=fetch_cfg.max_prefix_v4, max_prefix_v6=fetch_cfg.max_prefix_v6
    )
    warninglists = _warninglists(fetch_cfg.warninglists_dir, sources)
    entries: dict[str, IndicatorEntry] = {}
    any_ok = False
    for source in sources:
        report = reports[source.label]
        started = time.monotonic()
        job = _SourceFetch(
            source=source,
            config=config,
            normalizer=normalizer,
            now=now,
            report=report,
            progress_interval=progress_interval,
            warninglists=None if source.applies_warninglists else warninglists,
        )
        log.info("%s: fetching from %s", source.label, source.url)
        try:
            job.run()
        except SourceError as exc:
            report.error = exc.reason
            log.error("%s", exc)  # noqa: TRY400 (one clear line, no traceback)
        except Exception as exc:  # one source's failure must not cost the others
            # Whatever went wrong (a bug, an answer no check foresaw), this
            # source keeps its previous indicators and the others are written.
            report.error = source.clean(f"internal error: {type(exc).__name__}: {exc}")
            log.error("%s (%s): %s", source.label, source.url, report.error)  # noqa: TRY400
            log.debug("%s: traceback", source.label, exc_info=True)
        else:
            any_ok = True
            _merge(entries, job.entries)
        report.seconds = time.monotonic() - started
        del job
    return entries if any_ok else None


def _warninglists(
    directory: Path | None, sources: Sequence[IndicatorSource]
) -> Warninglists | None:
    """The lists for the sources that do not apply them; refuses to go on without them."""
    if directory is None or all(s.applies_warninglists for s in sources):
        return None
    try:
        lists = Warninglists.load(directory)
    except WarninglistError as exc:
        raise FetchConfigError(f"fetch_iocs.warninglists_dir: {exc}") from None
    log.info("%d warninglists from %s for sources that do not apply them", len(lists), directory)
    return lists


def _write(
    config: Config,
    entries: dict[str, IndicatorEntry],
    *,
    known: dict[str, str],
    reports: dict[str, ServerReport],
    result: FetchResult,
    now: float,
) -> bool:
    """Carry over, then write index and lists; True when a list file changed."""
    corr = config.correlation
    keep_labels = {label for label, r in reports.items() if r.error or not r.selected}
    had_index = _carry_over(
        index_path=corr.ioc_index_file, entries=entries, keep_labels=keep_labels, reports=reports
    )
    if keep_labels and not had_index:
        old_domains = lists.read_values(corr.malicious_domains_file)
        old_ips = lists.read_values(corr.malicious_ips_file)
        if old_domains or old_ips:
            log.error(
                "no readable previous index to tell which listed values came from %s: "
                "previous lists and index left as they were",
                ", ".join(sorted(keep_labels)),
            )
            return False
    added_now = int(now)
    domains: list[str] = []
    ips: list[str] = []
    for value, entry in entries.items():
        if not entry.added:
            entry.added = added_now
        (domains if entry.kind == "domain" else ips).append(value)
    header = IndexHeader(
        format=FORMAT,
        version=VERSION,
        generated=added_now,
        servers=known,
    )
    write_index(corr.ioc_index_file, header, entries.values())
    changed_d = lists.replace_if_changed(
        corr.malicious_domains_file, lists.render(domains, lists.DOMAIN_PLACEHOLDER)
    )
    changed_i = lists.replace_if_changed(
        corr.malicious_ips_file, lists.render(ips, lists.IP_PLACEHOLDER)
    )
    result.written = True
    result.domains, result.ips = len(domains), len(ips)
    result.lists_changed = changed_d or changed_i
    log.info(
        "wrote %d domains to %s, %d IPs/networks to %s (%s), index %s",
        len(domains),
        corr.malicious_domains_file,
        len(ips),
        corr.malicious_ips_file,
        "lists changed" if result.lists_changed else "lists unchanged",
        corr.ioc_index_file,
    )
    return result.lists_changed
