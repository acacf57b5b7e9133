# SPDX-License-Identifier: Apache-2.0
"""The ``alert`` step: deliver every undelivered alert on every configured channel.

1. New complete lines of ``<correlation.output_dir>/matches.json`` (after the
   position kept in the ledger) are queued on their channels; the queue and
   the new position are committed together.
2. Each channel with pending alerts and no back-off in force gets them; each
   message is recorded in the ledger once the channel accepted it. A failing
   channel keeps its alerts and backs off; the other channels go on.
3. ``alert.last`` records when the step last completed.

The alert file is only read: it is never truncated, emptied or deleted. A
line that is not an alert (or one this version refuses, see
:mod:`pdnssoc_agent.alertfile`) is counted, logged and skipped for good: the read position
moves past it, so it cannot stop the step on every run. Lines are read up to
:data:`MAX_ALERT_LINE` bytes, far above what ``correlate`` writes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ..alertfile import Alert, AlertFormatError, alerts_path, decode_alert
from ..config import Config
from ..errors import DeliveryError, ExitCode
from ..state import step_lock, utcnow, write_pointer
from ..suppress.rules import Matcher
from ..suppress.store import matcher_for_run
from .email import INSTITUTION_PREFIX, SUMMARY, EmailSink
from .ledger import Ledger, SourcePosition
from .render import Templates
from .sightings import SightingsSink
from .sink import Sink
from .tlp import level_of
from .webhooks import KINDS, WebhookSink

__all__ = [
    "Alert",
    "AlertReport",
    "DeliveryError",
    "Ledger",
    "Sink",
    "alerts_file",
    "build_sinks",
    "deliver",
    "ledger_dir",
    "run_alert",
]

log = logging.getLogger(__name__)

BATCH_LINES = 2000
MAX_ALERT_LINE = 1 << 20
"""Longest alert line read (1 MiB). ``correlate`` keeps its lines under 32 KiB."""
LOGGED_BAD_LINES = 10
"""Bad lines logged one by one per run; the rest are counted in one line."""


@dataclass
class AlertReport:
    """What one run of the step did."""

    read: int = 0
    bad: int = 0
    queued: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, float] = field(default_factory=dict)
    """Channels skipped because their back-off is in force (until epoch)."""
    capped: dict[str, int] = field(default_factory=dict)
    """Alerts left pending for the next run by the per-run message cap, per channel."""
    sensors: dict[str, str] = field(default_factory=dict)
    """Sensor -> "silent" or "sending again": the operators were told this run."""
    muted: dict[str, int] = field(default_factory=dict)
    """Suppression rule id -> alerts it silenced this run (new lines and pending ones)."""

    _muted_ids: set[str] = field(default_factory=set, repr=False)

    def count_muted(self, rule: str, alert_id: str) -> None:
        """Count an alert once, however many channels it was pending on."""
        if alert_id not in self._muted_ids:
            self._muted_ids.add(alert_id)
            self.muted[rule] = self.muted.get(rule, 0) + 1

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> ExitCode:
        """UPSTREAM when a channel failed (its alerts are kept for the next run)."""
        return ExitCode.UPSTREAM if self.failed else ExitCode.OK


def alerts_file(config: Config) -> Path:
    """Where correlate and retro append alerts."""
    return alerts_path(config.correlation.output_dir)


def ledger_dir(config: Config) -> Path:
    return config.correlation.state_dir


def build_sinks(config: Config, now: datetime) -> dict[str, Sink]:
    """Sinks of the configured channels, keyed by channel name or prefix."""
    alerting = config.alerting
    templates = Templates(alerting.templates_dir)
    sinks: dict[str, Sink] = {}
    unmarked = level_of(alerting.tlp_unmarked)
    if alerting.email is not None:
        sinks["email"] = EmailSink(alerting.email, templates, now, unmarked)
    for kind in KINDS:
        hook = getattr(alerting, kind)
        if hook is not None:
            sinks[kind] = WebhookSink(
                kind,
                hook,
                templates,
                now,
                max_messages=alerting.max_messages_per_run,
                tlp_unmarked=unmarked,
            )
    for server in config.misp_servers:
        if server.sightings.enabled:
            sinks[f"sightings:{server.label}"] = SightingsSink(
                server, alerting.max_sightings_per_run
            )
    return sinks


def _sink_for(sinks: dict[str, Sink], channel: str) -> Sink | None:
    if channel in sinks:
        return sinks[channel]
    if channel == SUMMARY or channel.startswith(INSTITUTION_PREFIX):
        return sinks.get("email")
    return None


def _skip_rest(fh: BinaryIO, max_line: int) -> bool:
    """Read on to the end of an over-long line in bounded chunks; False if it has no end yet."""
    while True:
        rest = fh.readline(max_line)
        if not rest:
            return False
        if rest.endswith(b"\n"):
            return True


def _read_new(
    path: Path, ledger: Ledger, max_line: int, report: AlertReport
) -> Iterator[tuple[list[tuple[int, bytes]], SourcePosition]]:
    """Batches of (offset, complete line) after the stored position.

    A line longer than ``max_line`` is counted in ``report.bad`` and skipped.
    """
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return
    with fh:
        st = os.fstat(fh.fileno())
        pos = ledger.position(path)
        offset = 0
        if pos is not None:
            if (pos.dev, pos.ino) == (st.st_dev, st.st_ino) and pos.offset <= st.st_size:
                offset = pos.offset
            else:
                log.warning(
                    "%s was replaced or truncated since the last run: reading it from the start "
                    "(alerts already delivered are not sent again)",
                    path,
                )
        fh.seek(offset)
        batch: list[tuple[int, bytes]] = []
        while True:
            line = fh.readline(max_line + 1)
            if not line.endswith(b"\n"):
                if len(line) > max_line and _skip_rest(fh, max_line):
                    report.read += 1
                    _bad(report, path, offset, f"longer than {max_line} bytes")
                    offset = fh.tell()
                    continue
                break  # an incomplete last line: the writer is not done with it
            batch.append((offset, line))
            offset += len(line)
            if len(batch) >= BATCH_LINES:
                yield batch, SourcePosition(st.st_dev, st.st_ino, offset)
                batch = []
        yield batch, SourcePosition(st.st_dev, st.st_ino, offset)


def _bad(report: AlertReport, path: Path, offset: int, reason: str) -> None:
    report.bad += 1
    if report.bad <= LOGGED_BAD_LINES:
        log.warning("%s:@%d: not an alert, skipped: %s", path, offset, reason)


def take_in(
    config: Config,
    ledger: Ledger,
    sinks: dict[str, Sink],
    now: datetime,
    matcher: Matcher | None = None,
) -> AlertReport:
    """Queue the new alert lines on their channels; those a suppression rule
    silences are counted against the rule and queued on none."""
    report = AlertReport()
    matcher = matcher or Matcher(())
    path = alerts_file(config)
    max_line = max(MAX_ALERT_LINE, config.correlation.max_line_bytes)
    for batch, position in _read_new(path, ledger, max_line, report):
        parsed: list[tuple[Alert, list[str]]] = []
        muted: list[tuple[Alert, str]] = []
        for offset, line in batch:
            if not line.strip():
                continue
            report.read += 1
            try:
                alert = decode_alert(line)
            except AlertFormatError as exc:
                _bad(report, path, offset, str(exc))
                continue
            rule = matcher.match_alert(alert, now)
            if rule is not None:
                muted.append((alert, rule.id))
                report.count_muted(rule.id, alert.id)
                continue
            channels = list(
                dict.fromkeys(c for sink in sinks.values() for c in sink.channels(alert))
            )
            parsed.append((alert, channels))
        report.queued += ledger.take_in(
            path, position, parsed, config.alerting.renotify_after, now, muted=muted
        )
    if report.bad > LOGGED_BAD_LINES:
        log.warning(
            "%s: %d more line(s) were not alerts and were skipped",
            path,
            report.bad - LOGGED_BAD_LINES,
        )
    return report


def run_alert(config: Config, now: datetime | None = None) -> AlertReport:
    """The ``alert`` step under its lock (raises BusyError if another agent runs it)."""
    from ..sensors.watch import check  # noqa: PLC0415 - the step's second job

    with step_lock(config.correlation.state_dir, "alert"):
        report = deliver(config, now)
        report.sensors, failed = check(config, now or utcnow())
        report.failed.update(failed)
        return report


def deliver(config: Config, now: datetime | None = None) -> AlertReport:
    """Run the alert step once (without the step lock: callers hold it)."""
    now = now or utcnow()
    alerting = config.alerting
    sinks = build_sinks(config, now)
    matcher = matcher_for_run(config, now)
    with Ledger(ledger_dir(config)) as ledger:
        try:
            report = take_in(config, ledger, sinks, now, matcher)
            for channel in ledger.pending_channels():
                _deliver_channel(
                    config,
                    ledger=ledger,
                    sinks=sinks,
                    channel=channel,
                    now=now,
                    report=report,
                    matcher=matcher,
                )
        finally:
            for sink in sinks.values():
                sink.close()
        ledger.prune(now, max(alerting.ledger_retention, alerting.renotify_after))
    write_pointer(alerting.last_alerting_pointer_file, now)
    sent = ", ".join(f"{c} {n}" for c, n in sorted(report.sent.items())) or "nothing"
    muted = ", ".join(f"rule {r} {n}" for r, n in sorted(report.muted.items())) or "none"
    log.info(
        "alert: %d new line(s), %d not alerts, %d queued, suppressed: %s, sent: %s%s",
        report.read,
        report.bad,
        report.queued,
        muted,
        sent,
        f"; failing: {', '.join(sorted(report.failed))}" if report.failed else "",
    )
    return report


def _unless_muted(
    ledger: Ledger,
    channel: str,
    *,
    pending: list[Alert],
    matcher: Matcher,
    now: datetime,
    report: AlertReport,
) -> list[Alert]:
    """``pending`` without the alerts a rule added since they were queued now silences."""
    muted: list[tuple[Alert, str]] = []
    keep: list[Alert] = []
    for alert in pending:
        rule = matcher.match_alert(alert, now)
        if rule is None:
            keep.append(alert)
        else:
            muted.append((alert, rule.id))
            report.count_muted(rule.id, alert.id)
    if muted:
        ledger.mute(channel, muted, now)
    return keep


def _deliver_channel(
    config: Config,
    *,
    ledger: Ledger,
    sinks: dict[str, Sink],
    channel: str,
    now: datetime,
    report: AlertReport,
    matcher: Matcher,
) -> None:
    sink = _sink_for(sinks, channel)
    pending = _unless_muted(
        ledger,
        channel,
        pending=ledger.pending(channel, now),
        matcher=matcher,
        now=now,
        report=report,
    )
    if not pending:
        return
    if sink is None:
        log.warning(
            "%s: %d alert(s) pending but the channel is no longer configured", channel, len(pending)
        )
        return
    ready, next_attempt = ledger.channel_ready(channel, now)
    if not ready:
        report.deferred[channel] = next_attempt
        log.info(
            "%s: backing off after failures; %d alert(s) wait until %s",
            channel,
            len(pending),
            datetime.fromtimestamp(next_attempt, now.tzinfo).isoformat(timespec="seconds"),
        )
        return

    def record(batch: Sequence[Alert]) -> None:
        ledger.record_sent(channel, batch, now)
        report.sent[channel] = report.sent.get(channel, 0) + len(batch)

    error: Exception | None = None
    try:
        sink.deliver(channel, pending, record)
    except DeliveryError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - one channel must not stop the others
        # Only the type: the message of an arbitrary exception may carry a webhook URL.
        error = DeliveryError(f"{channel}: internal error {type(exc).__name__}")
    if error is not None:
        report.failed[channel] = str(error)
        failures, until = ledger.record_failure(
            channel, str(error), now, config.alerting.retry_after, config.alerting.retry_max
        )
        log.error(
            "%s: delivery failed (%d in a row), %d alert(s) kept for retry after %s: %s",
            channel,
            failures,
            ledger.pending_count(channel),
            datetime.fromtimestamp(until, now.tzinfo).isoformat(timespec="seconds"),
            error,
        )
        return
    ledger.record_success(channel, now)
    left = ledger.pending_count(channel)
    if left:
        report.capped[channel] = left
        log.info(
            "%s: %d alert(s) wait for the next run (at most %d message(s) a run)",
            channel,
            left,
            config.alerting.max_sightings_per_run
            if channel.startswith("sightings:")
            else config.alerting.max_messages_per_run,
        )
