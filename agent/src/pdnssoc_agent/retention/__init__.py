# SPDX-License-Identifier: Apache-2.0
"""The ``retention`` step: expire data by age, and guard the data root's free space.

1. The alerts file is rotated when :attr:`~..config.Retention.alerts_rotate`
   has passed and ``alert`` has taken in every line of it (:mod:`.rotate`).
2. Files older than their target's age are removed (:mod:`.targets`), except
   what :mod:`.protect` holds: the live files, archive files correlate or
   retro have not read yet or the history store does not hold yet. The
   history store's days go whole, through the store's own writer
   (:mod:`.store_target`).
3. When the free space on the data root's file system is below
   ``retention.min_free_percent``, the operators get one message, the oldest
   files retention may remove go (archive first, then the history store's
   days, then rotated alert files) until the watermark is reached or nothing
   else may go, and the operators
   get one more message saying what was removed. ``status`` shows the
   shortage until it is over; the step fails while it lasts.

4. The history store's segment files written since the last run are read in
   full (every page's checksum) and what is damaged is recorded for
   ``status`` (:mod:`.store_check`).

The delivery ledger's rows are pruned by ``alert`` after
``alerting.ledger_retention``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..alerts.operators import notify_operators
from ..config import Config
from ..errors import AgentError, BusyError, ExitCode
from ..state import step_lock, utcnow
from .guard import STATE_FILE, Disk, DiskProbe, GuardState, disk_usage
from .protect import Protection, protection
from .rotate import rotate_alerts
from .store_check import check_store
from .targets import Candidate, Target, targets

__all__ = ["Disk", "RetentionReport", "run_retention", "state_file"]

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    """What one run did."""

    rotated: Path | None = None
    expired: list[Path] = field(default_factory=list)
    guard_removed: list[Path] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)
    """Expired files kept, per reason."""
    free_percent: float = 100.0
    low_space: bool = False
    failed: dict[str, str] = field(default_factory=dict)
    store_problems: list[str] = field(default_factory=list)
    """Damaged history-store files found by reading them in full."""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILURE if self.failed else ExitCode.OK


def state_file(config: Config) -> Path:
    return config.correlation.state_dir / STATE_FILE


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _remove(target: Target, c: Candidate, report: RetentionReport) -> int | None:
    """Bytes freed by removing ``c``; None when it could not go now (recorded)."""
    try:
        target.remove(c)
    except FileNotFoundError:
        return 0
    except BusyError as exc:
        why = f"{target.name} busy, tried again next run"
        report.held[why] = report.held.get(why, 0) + 1
        log.info("retention: %s", exc)
        return None
    except (AgentError, OSError) as exc:
        report.failed[target.name] = f"cannot remove {c.path}: {exc}"
        log.warning("retention: cannot remove %s: %s", c.path, exc)
        return None
    return c.size


def run_retention(
    config: Config, now: datetime | None = None, *, disk: DiskProbe = disk_usage
) -> RetentionReport:
    """One retention pass (see the module's description)."""
    now = now or utcnow()
    r = config.retention
    report = RetentionReport()
    with step_lock(config.correlation.state_dir, "retention"):
        path = state_file(config)
        state = GuardState.load(path)
        if r.enabled:
            _rotate(config, now, state, report)
        tgts = targets(config)
        prot = protection(config, now)
        if r.enabled:
            _expire([*tgts, *_cluster(config)], prot, now, report)
        state = _guard(config, tgts, prot, now, state, report, disk)
        state.save(path)
        try:
            report.store_problems = check_store(config, _iso(now))
        except OSError as exc:
            log.warning("retention: history store not checked: %s", exc)
    return report


def _cluster(config: Config) -> list[Target]:
    """This node's shard of the history on a cluster (age only: not the guard's)."""
    if not config.history.enabled or config.history.engine != "clickhouse":
        return []
    from .cluster_target import cluster_targets  # noqa: PLC0415 - pyarrow only when used

    return list(cluster_targets(config))


def _rotate(config: Config, now: datetime, state: GuardState, report: RetentionReport) -> None:
    last = state.alerts_rotated_at
    if last is None:
        state.alerts_rotated_at = _iso(now)  # the clock starts now
        return
    when = datetime.fromisoformat(last.replace("Z", "+00:00"))
    if now - when >= config.retention.alerts_rotate:
        report.rotated = rotate_alerts(config, now)
        if report.rotated is not None:
            state.alerts_rotated_at = _iso(now)


def _expire(tgts: list[Target], prot: Protection, now: datetime, report: RetentionReport) -> None:
    for t in tgts:
        limit = (now - t.max_age).timestamp()
        removed = 0
        for c in t.candidates():
            if c.mtime >= limit:
                break  # oldest first: the rest are younger
            why = prot.reason(c)
            if why is not None:
                report.held[why] = report.held.get(why, 0) + 1
                continue
            size = _remove(t, c, report)
            if size is None:
                break  # the rest of this target waits for the next run
            removed += size
            report.expired.append(c.path)
        count = sum(1 for p in report.expired if _owned(t, p))
        if count:
            log.info("retention: %s: %d file(s) older than %s removed", t.name, count, t.max_age)
    for why, n in sorted(report.held.items()):
        log.info("retention: %d expired file(s) kept for now: %s", n, why)


def _owned(t: Target, path: Path) -> bool:
    root = getattr(t, "root", None)
    return isinstance(root, Path) and path.is_relative_to(root)


def _guard(  # noqa: PLR0917 - one pass's pieces
    config: Config,
    tgts: list[Target],
    prot: Protection,
    now: datetime,
    state: GuardState,
    report: RetentionReport,
    disk: DiskProbe,
) -> GuardState:
    r, root = config.retention, config.data_dir
    try:
        usage = disk(root)
    except OSError as exc:
        report.failed["free space"] = f"cannot measure the free space of {root}: {exc.strerror}"
        return state
    report.free_percent = usage.free_percent
    if usage.free_percent >= r.min_free_percent:
        if state.low:
            log.info(
                "retention: free space back at %.1f%%; the shortage is over", usage.free_percent
            )
        return GuardState(alerts_rotated_at=state.alerts_rotated_at, last_action=state.last_action)
    report.low_space = True
    if not state.low:
        state.low, state.since = True, _iso(now)
    state.watermark = r.min_free_percent
    removable: list[tuple[Target, Candidate]] = []
    protected = 0
    for t in tgts:
        for c in t.candidates():
            if prot.reason(c) is None:
                removable.append((t, c))
            else:
                protected += 1
    state.protected_files = protected
    before = usage
    if not state.told_before:
        state.told_before = True
        state.notices.update(
            notify_operators(
                config,
                f"free space low on {root}",
                _before_text(config, usage, removable, protected),
                what="retention",
            )
        )
    if r.enabled:
        for t, c in removable:
            if usage.free_percent >= r.min_free_percent:
                break
            size = _remove(t, c, report)
            if size is None:
                continue
            report.guard_removed.append(c.path)
            state.removed_files += 1
            state.removed_bytes += size
            log.warning(
                "retention: free space low: removed %s (%s, %d bytes)", c.path, t.name, size
            )
            usage = disk(root)
    report.free_percent = state.free_percent = round(usage.free_percent, 2)
    if usage.free_percent < r.min_free_percent:
        report.failed["free space"] = (
            f"{usage.free_percent:.1f}% free on {root}, below retention.min_free_percent "
            f"{r.min_free_percent}%; {protected} file(s) are not removable yet"
        )
    if not state.told_after and report.guard_removed:
        state.told_after = True
        state.notices.update(
            notify_operators(
                config,
                f"free space on {root}: {len(report.guard_removed)} file(s) removed",
                _after_text(config, before, usage, report, protected),
                what="retention",
            )
        )
    if report.guard_removed:
        state.last_action = (
            f"{_iso(now)}: free space was {before.free_percent:.1f}%, "
            f"{len(report.guard_removed)} file(s) removed, now {usage.free_percent:.1f}%"
        )
    if usage.free_percent >= r.min_free_percent:  # the guard ended the shortage
        return GuardState(alerts_rotated_at=state.alerts_rotated_at, last_action=state.last_action)
    return state


def _before_text(
    config: Config, usage: Disk, removable: list[tuple[Target, Candidate]], protected: int
) -> str:
    r = config.retention
    what = (
        f"The oldest of {len(removable)} removable file(s) "
        f"({sum(c.size for _, c in removable):,} bytes) are removed now, archive first, "
        "then the history store's days, then rotated alert files, until the watermark is "
        "reached."
        if r.enabled and removable
        else "Nothing is removed: "
        + ("retention is disabled." if not r.enabled else "no file may be removed yet.")
    )
    return (
        f"Free space on the file system of {config.data_dir} is {usage.free_percent:.1f}% "
        f"({usage.free:,} of {usage.total:,} bytes), below retention.min_free_percent "
        f"({r.min_free_percent}%).\n{what}\n{protected} file(s) are kept because they are "
        "written to, not read by correlate or retro yet, or not in the history store yet."
    )


def _after_text(
    config: Config, before: Disk, after: Disk, report: RetentionReport, protected: int
) -> str:
    r = config.retention
    names = "\n".join(f"  {p}" for p in report.guard_removed[:50])
    more = len(report.guard_removed) - 50
    state = (
        "back above the watermark"
        if after.free_percent >= r.min_free_percent
        else f"still below the watermark ({protected} file(s) may not be removed yet): "
        "free space on this file system or lower the retention ages"
    )
    return (
        f"Removed {len(report.guard_removed)} file(s); free space went from "
        f"{before.free_percent:.1f}% to {after.free_percent:.1f}%: {state}.\n"
        + (names + (f"\n  and {more} more" if more > 0 else "") if names else "")
    )
