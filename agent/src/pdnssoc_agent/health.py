# SPDX-License-Identifier: Apache-2.0
"""``status``: is the agent keeping up?

Read-only: it opens the step state, the delivery ledger and the IOC files
without changing them, so it is safe to run as often as a monitoring probe
likes. A step is *stale* when it has not succeeded for more than twice its
interval (or never has); ``status`` then exits 5.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .alerts import alerts_file, ledger_dir
from .alerts.ledger import Ledger
from .config import Config
from .correlate.history_feed import store_lag
from .correlate.inputs import input_problems
from .errors import IndexFormatError, StateError
from .iocs.index import read_header
from .iocs.lists import count_values
from .scheduler import STEPS, read_steps, state_path
from .state import read_pointer, utcnow
from .timefmt import format_rfc3339, parse_rfc3339_or_none


@dataclass
class StepHealth:
    name: str
    interval_min: int
    last_start: str | None = None
    last_success: str | None = None
    outcome: str | None = None
    duration_s: float | None = None
    error: str | None = None
    age_s: float | None = None
    """Seconds since the last start."""
    success_age_s: float | None = None
    stale: bool = True
    last_counts: dict[str, int] = field(default_factory=dict)
    """The last run's lines read and alerts written (see :mod:`.stepcounts`)."""
    totals: dict[str, Any] = field(default_factory=dict)
    """Running totals recorded by the scheduler: lines, alerts, runs per outcome."""


@dataclass
class ChannelHealth:
    channel: str
    pending: int
    oldest_pending_age_s: float | None
    failures: int
    retry_in_s: float | None
    last_error: str | None
    last_success: str | None
    delivered_total: int = 0
    failed_total: int = 0


@dataclass
class SourceHealth:
    """One indicator source as fetch-iocs last saw it (recorded by the scheduler)."""

    source: str
    ok: bool | None
    """Whether it answered at the last fetch; None: not asked yet."""
    indicators: int | None
    """Indicators the lists hold for it (its previous ones while it fails)."""
    last_success: str | None
    success_age_s: float | None


@dataclass
class Status:
    generated_at: str
    steps: list[StepHealth] = field(default_factory=list)
    channels: list[ChannelHealth] = field(default_factory=list)
    alerts_file: str = ""
    alert_lines_not_taken_in: int | None = None
    """Complete lines of the alert file that the alert step has not read yet."""
    pointers: dict[str, dict[str, Any]] = field(default_factory=dict)
    iocs: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)
    """The free-space guard's view (``<state_dir>/retention.json``)."""
    history: dict[str, Any] = field(default_factory=dict)
    """The history store: how far behind correlate it is (see ``store_lag``)."""
    sensors: list[dict[str, Any]] = field(default_factory=list)
    """Every sensor correlate has seen: last reply, volume, threshold, silent."""
    spools: list[dict[str, Any]] = field(default_factory=list)
    """The spool reports of spooling sensors (``sensors/spool.py``)."""
    sources: list[SourceHealth] = field(default_factory=list)
    """Every configured indicator source: did it answer, how many indicators, since when."""
    suppressions: list[dict[str, Any]] = field(default_factory=list)
    """Every suppression rule with the alerts it silenced (see ``rule_stats``)."""
    rpz: list[dict[str, Any]] = field(default_factory=list)
    """Every response-policy zone's last build (``rpz/status.py``)."""
    problems: list[str] = field(default_factory=list)

    @property
    def stale(self) -> list[str]:
        return [s.name for s in self.steps if s.stale]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stale"] = self.stale
        return data


def _iso(ts: float | None, now: datetime) -> str | None:
    if not ts:
        return None
    return format_rfc3339(datetime.fromtimestamp(ts, now.tzinfo), seconds=True)


def _parse(text: Any) -> datetime | None:
    return parse_rfc3339_or_none(text) if isinstance(text, str) else None


def _steps(config: Config, now: datetime, status: Status) -> None:
    try:
        records = read_steps(state_path(config))
    except StateError as exc:
        status.problems.append(str(exc))
        records = {}
    for step in STEPS:
        interval = step.interval(config.schedules)
        rec = records.get(step.name, {})
        health = StepHealth(step.name, int(interval.total_seconds() // 60))
        health.last_start = rec.get("last_start")
        health.last_success = rec.get("last_success")
        health.outcome = rec.get("outcome")
        health.duration_s = rec.get("duration_s")
        health.error = rec.get("error")
        health.last_counts = _counts(rec.get("counts"))
        totals = rec.get("totals")
        if isinstance(totals, dict):
            health.totals = {**_counts(totals), "runs": _counts(totals.get("runs"))}
        start, success = _parse(health.last_start), _parse(health.last_success)
        if start:
            health.age_s = round((now - start).total_seconds(), 1)
        if success:
            health.success_age_s = round((now - success).total_seconds(), 1)
            health.stale = now - success > 2 * interval
        status.steps.append(health)
    _sources(config, now, records.get("fetch-iocs", {}).get("sources"), status)


def _counts(data: Any) -> dict[str, int]:
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}


def _sources(config: Config, now: datetime, recorded: Any, status: Status) -> None:
    """Every configured source (one removed from the configuration is no longer shown)."""
    recorded = recorded if isinstance(recorded, dict) else {}
    labels = [s.label for s in config.misp_servers] + [s.label for s in config.sources]
    for label in dict.fromkeys(labels):
        rec = recorded.get(label) if isinstance(recorded.get(label), dict) else {}
        ok, indicators = rec.get("ok"), rec.get("indicators")
        success = _parse(rec.get("last_success"))
        status.sources.append(
            SourceHealth(
                source=label,
                ok=ok if isinstance(ok, bool) else None,
                indicators=indicators if isinstance(indicators, int) else None,
                last_success=rec.get("last_success") if success else None,
                success_age_s=round((now - success).total_seconds(), 1) if success else None,
            )
        )


def _lines_after(path: Path, offset: int) -> int:
    count = 0
    with path.open("rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _channels(config: Config, now: datetime, status: Status) -> None:
    src = alerts_file(config)
    status.alerts_file = str(src)
    try:
        ledger = Ledger(ledger_dir(config), readonly=True)
    except FileNotFoundError:
        ledger = None
    try:
        offset = 0
        if ledger is not None:
            for state in ledger.channel_states():
                status.channels.append(
                    ChannelHealth(
                        channel=state.channel,
                        pending=state.pending,
                        oldest_pending_age_s=(
                            round(now.timestamp() - state.oldest_pending, 1)
                            if state.oldest_pending
                            else None
                        ),
                        failures=state.failures,
                        retry_in_s=(
                            round(state.next_attempt - now.timestamp(), 1)
                            if state.next_attempt > now.timestamp()
                            else None
                        ),
                        last_error=state.last_error,
                        last_success=_iso(state.last_success, now),
                        delivered_total=state.delivered_total,
                        failed_total=state.failed_total,
                    )
                )
            pos = ledger.position(src)
            if pos is not None:
                st = src.stat() if src.exists() else None
                same = st is not None and (st.st_dev, st.st_ino) == (pos.dev, pos.ino)
                offset = pos.offset if same else 0
        if src.exists():
            status.alert_lines_not_taken_in = _lines_after(src, offset)
    except sqlite3.Error as exc:
        status.problems.append(f"{ledger_dir(config)}: cannot read the delivery ledger: {exc}")
    finally:
        if ledger is not None:
            ledger.close()


def _pointers(config: Config, now: datetime, status: Status) -> None:
    for name, path in (
        ("correlation", config.correlation.last_correlation_pointer_file),
        ("retro", config.correlation.last_retro_pointer_file),
        ("alert", config.alerting.last_alerting_pointer_file),
    ):
        try:
            when = read_pointer(path)
        except StateError as exc:
            status.problems.append(str(exc))
            continue
        status.pointers[name] = {
            "file": str(path),
            "at": format_rfc3339(when, seconds=True) if when else None,
            "age_s": round((now - when).total_seconds(), 1) if when else None,
        }


def _iocs(config: Config, now: datetime, status: Status) -> None:
    corr = config.correlation
    status.iocs["domains"] = count_values(corr.malicious_domains_file)
    status.iocs["ips"] = count_values(corr.malicious_ips_file)
    try:
        header = read_header(corr.ioc_index_file)
    except FileNotFoundError:
        status.iocs["index"] = None
        return
    except (IndexFormatError, OSError) as exc:
        status.problems.append(str(exc))
        return
    generated = datetime.fromtimestamp(header.generated, now.tzinfo)
    status.iocs["index"] = {
        "file": str(corr.ioc_index_file),
        "generated": format_rfc3339(generated),
        "age_s": round((now - generated).total_seconds(), 1),
        "servers": sorted(header.servers),
    }


def _retention(config: Config, status: Status) -> None:
    from .retention.guard import GuardState  # noqa: PLC0415 - status stays light

    state = GuardState.load(config.correlation.state_dir / "retention.json")
    status.retention = state.to_dict()
    if state.low:
        status.problems.append(
            f"free space on {config.data_dir}'s file system was {state.free_percent}% at the "
            f"last retention run, below retention.min_free_percent ({state.watermark}%), "
            f"since {state.since}; the guard removed {state.removed_files} file(s) "
            f"({state.removed_bytes:,} bytes), {state.protected_files} may not be removed yet"
        )


def _store(config: Config, status: Status) -> None:
    """The store's size and rows, and its damaged files: each segment's size, footer
    and format checked now, and what the retention step found reading them in full."""
    from .history import HistoryStore  # noqa: PLC0415 - status stays light
    from .history.manifest import StoreError  # noqa: PLC0415
    from .retention.store_check import load, state_path  # noqa: PLC0415

    root = config.history.dir
    if not (root / "MANIFEST.json").is_file():
        return
    store = HistoryStore(root)
    try:
        m = store.manifest()
    except StoreError as exc:
        if "problem" not in status.history:
            status.problems.append(f"history store: {exc}")
        return
    problems = [p for seg in m.segments if (p := store.check(seg, full=False)) is not None]
    listed = {str(store.segment_path(seg)) for seg in m.segments}
    checked = load(state_path(config))
    for p in checked.get("problems", []):
        if p not in problems and str(p).split(": ", 1)[0] in listed:
            problems.append(str(p))
    status.history.update(
        size_bytes=store.size_on_disk(),
        rows=sum(seg.rows for seg in m.segments),
        checked_at=checked.get("at"),
        damaged=problems,
    )
    status.problems += [
        f"history store: {p} (searches skip this file; the others still answer)" for p in problems
    ]


def collect(config: Config, now: datetime | None = None) -> Status:
    """Gather the health view (reads only)."""
    now = now or utcnow()
    status = Status(generated_at=format_rfc3339(now, seconds=True))
    _steps(config, now, status)
    _channels(config, now, status)
    _pointers(config, now, status)
    _iocs(config, now, status)
    _retention(config, status)
    status.history = store_lag(config)
    if status.history.get("problem"):
        status.problems.append(f"history store: {status.history['problem']}")
    _store(config, status)
    status.problems += [str(p) for p in input_problems(config)]
    _sensors(config, now, status)
    _suppressions(config, now, status)
    _rpz(config, status)
    return status


def _rpz(config: Config, status: Status) -> None:
    from .rpz.status import rpz_status  # noqa: PLC0415 - status stays light

    status.rpz, problems = rpz_status(config)
    status.problems += problems


def _suppressions(config: Config, now: datetime, status: Status) -> None:
    from .suppress.stats import rule_stats  # noqa: PLC0415 - status stays light

    stats, problems = rule_stats(config, now)
    status.suppressions = [asdict(s) for s in stats]
    status.problems += problems


def _sensors(config: Config, now: datetime, status: Status) -> None:
    from .sensors.spool import problem as spool_problem  # noqa: PLC0415 - status stays light
    from .sensors.spool import read_reports  # noqa: PLC0415
    from .sensors.watch import as_dict, view  # noqa: PLC0415

    views = view(config, now)
    status.sensors = as_dict(views)
    reports, problems = read_reports(config.sensors.spool_reports)
    status.spools = [r.as_dict() for r in reports.values()]
    status.problems += problems + [p for p in map(spool_problem, reports.values()) if p]
    for v in views:
        if v.silent:
            status.problems.append(
                f"sensor {v.sensor} is silent: no reply since {v.last_seen} "
                f"({_age(v.age_s)} ago, threshold {_age(v.threshold_s)})"
                + ("; the operators were told" if v.announced else "")
            )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=int(seconds)))


def _held(h: dict[str, Any]) -> str:
    """Why the store is behind: the daemon's batch (what it holds, when it commits)."""
    every = timedelta(seconds=h.get("commit_every_s") or 0)
    held = h.get("held")
    if held:
        return (
            f": the daemon (pid {held['pid']}) holds {held['replies']:,} of their replies in "
            f"memory since {held['since']} and commits them by {held['due']} (every {every}); "
            "hunt and retro read them from the query log"
        )
    if every:
        return (
            f" (the daemon commits every {every}; hunt and retro read the rest from the query log)"
        )
    return ""


def _history(h: dict[str, Any]) -> str:
    if not h.get("enabled"):
        return "not filled (history.enabled: false, or correlation.live_input: matches)"
    if "bytes_behind" not in h:
        return f"{h['dir']}: unreadable"
    lag = (
        "up to date with correlate"
        if not h["bytes_behind"]
        else f"{h['bytes_behind']:,} byte(s) of {h['files_behind']} query-log file(s) behind "
        "correlate" + _held(h)
    )
    size = (
        f" in {h['rows']:,} rows, {h['size_bytes']:,} bytes"
        if h.get("size_bytes") is not None
        else ""
    )
    return f"{h['dir']}: {h['replies']:,} replies{size}, newest {h['newest'] or '-'}; {lag}"


def render(status: Status) -> str:
    """The human-readable view (printable: what UTF-8 cannot carry, such as a lone surrogate
    in a sensor name from a JSON escape in the query log, is shown as a backslash escape)."""
    out = [f"pDNSSOC agent status at {status.generated_at}", "", "Steps:"]
    out.append(f"  {'step':<11} {'every':>6} {'last run':<21} {'ago':>16} {'outcome':<8} stale")
    for s in status.steps:
        out.append(
            f"  {s.name:<11} {str(s.interval_min) + 'm':>6} {s.last_start or 'never':<21} "
            f"{_age(s.age_s):>16} {s.outcome or '-':<8} {'STALE' if s.stale else 'no'}"
        )
        if s.outcome not in (None, "ok") and s.error:
            out.append(f"      {s.error[:200]}")
    out += ["", "Delivery:"]
    if status.alert_lines_not_taken_in is not None:
        out.append(f"  {status.alert_lines_not_taken_in} alert line(s) not read yet")
    if not status.channels:
        out.append("  no delivery recorded yet")
    for c in status.channels:
        line = f"  {c.channel:<24} pending {c.pending:>6}"
        if c.pending:
            line += f", oldest {_age(c.oldest_pending_age_s)}"
        if c.failures:
            line += f", {c.failures} failure(s) in a row, retry in {_age(c.retry_in_s)}"
        out.append(line)
        if c.failures and c.last_error:
            out.append(f"      {c.last_error[:200]}")
    out += ["", "Pointers:"]
    for name, p in status.pointers.items():
        out.append(f"  {name:<12} {p['at'] or 'never':<21} {_age(p['age_s']):>16} ago")
    out += _render_indicators(status)
    last_action = status.retention.get("last_action")
    if last_action:
        out += ["", "Retention:", f"  free-space guard last acted at {last_action}"]
    out += ["", "History store:", f"  {_history(status.history)}"]
    out += _render_sensors(status)
    out += _render_suppressions(status)
    if status.rpz:
        from .rpz.status import render_rpz  # noqa: PLC0415 - only with zones configured

        out += render_rpz(status.rpz)
    for problem in status.problems:
        out.append(f"PROBLEM: {problem}")
    if status.stale:
        out += ["", f"STALE: {', '.join(status.stale)} (no success within twice the interval)"]
    return "\n".join(out).encode("utf-8", "backslashreplace").decode("utf-8")


def _render_indicators(status: Status) -> list[str]:
    out: list[str] = []
    out += ["", "Indicators:"]
    idx = status.iocs.get("index")
    out.append(
        f"  domains {status.iocs.get('domains') if status.iocs.get('domains') is not None else '-'}"
        f", IPs {status.iocs.get('ips') if status.iocs.get('ips') is not None else '-'}"
        + (
            f", index generated {idx['generated']} ({_age(idx['age_s'])} ago) from "
            f"{', '.join(idx['servers']) or 'no server'}"
            if idx
            else ", no index"
        )
    )
    for src in status.sources:
        state = {True: "answered", False: "FAILED", None: "not fetched yet"}[src.ok]
        count = "-" if src.indicators is None else f"{src.indicators:,}"
        out.append(
            f"  source {src.source:<24} {state:<16} indicators {count:>9}, last success "
            f"{src.last_success or 'never'}"
            + (f" ({_age(src.success_age_s)} ago)" if src.success_age_s is not None else "")
        )
    return out


def _render_sensors(status: Status) -> list[str]:
    out: list[str] = []
    out += ["", "Sensors:"]
    if not status.sensors:
        out.append("  none seen yet (correlate counts them in the query log)")
    else:
        out.append(
            f"  {'sensor':<24} {'last seen':<21} {'ago':>16} {'last hour':>9} "
            f"{'per hour':>9} {'threshold':>16} state"
        )
    for v in status.sensors:
        limit = v["threshold_s"]
        state = "SILENT" if v["silent"] else ("not watched" if limit is None else "ok")
        out.append(
            f"  {v['sensor']:<24} {v['last_seen']:<21} {_age(v['age_s']):>16} "
            f"{v['replies_last_hour']:>9} {v['replies_per_hour']:>9} "
            f"{_age(limit) if limit is not None else '-':>16} {state}"
        )
    if status.spools:
        from .sensors.spool import SpoolReport, describe  # noqa: PLC0415 - status stays light

        out += ["", "Sensor spools (as last shipped by each sensor):"]
        now = _parse(status.generated_at) or utcnow()
        out += [f"  {describe(SpoolReport(**s), now)}" for s in status.spools]
    return out


def _render_suppressions(status: Status) -> list[str]:
    out: list[str] = []
    out += ["", "Suppressions:"]
    if not status.suppressions:
        out.append("  no rules (pdnssoc-agent suppress add, or suppressions in the configuration)")
    for r in status.suppressions:
        state = "EXPIRED" if r["expired"] else f"until {r['expires']}" if r["expires"] else ""
        out.append(
            f"  {r['id']:<16} {r['origin']:<6} {r['hits']:>7} hit(s), last {r['last_hit'] or '-'}"
            f"  {r['matches']}  {state}".rstrip()
        )
    return out
