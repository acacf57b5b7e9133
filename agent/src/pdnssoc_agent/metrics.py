# SPDX-License-Identifier: Apache-2.0
"""The agent's health as Prometheus metrics (text exposition format 0.0.4).

Everything here comes from :func:`pdnssoc_agent.health.collect`, the view
``status`` prints: the scheduler's step records and totals, the delivery
ledger, the IOC files, the sensor book. Nothing is counted twice and nothing
is kept here; rendering only reads.

Naming follows Prometheus' conventions: a ``pdnssoc_`` prefix, base units
(seconds), counters end in ``_total``, points in time are
``..._timestamp_seconds`` (an age is computed by the query, ``time() - x``, so
that a scraped or textfile value never goes stale). Labels name only things
from the configuration or from the sensors' own identity: ``step``,
``outcome``, ``channel``, ``source``, ``kind``, ``sensor`` and ``rule`` (a
suppression rule's id: its configured name or the number ``suppress add`` gave
it, never the value it matches). No label ever holds a query name, a client
address or an indicator value.

Adding a family: write a function ``(status, out)`` that calls
``out.family(...)`` and ``out.sample(...)``, and list it in :data:`FAMILIES`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable

from .health import Status
from .timefmt import parse_rfc3339_or_none

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "pdnssoc_"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def escape_label_value(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and line feed escaped;
    what UTF-8 cannot carry (a lone surrogate from a JSON escape) replaced."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Builds the text: one HELP and TYPE line per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._current: str | None = None
        self._seen: set[str] = set()
        self._series: set[str] = set()

    def family(self, name: str, kind: str, help_text: str) -> None:
        name = PREFIX + name
        if not _NAME.match(name) or name in self._seen:
            raise ValueError(f"metric family {name!r}: bad or repeated name")
        if kind not in ("counter", "gauge"):
            raise ValueError(f"metric family {name!r}: type {kind!r}")
        if (kind == "counter") != name.endswith("_total"):
            raise ValueError(f"metric family {name!r}: only counters end in _total")
        self._seen.add(name)
        self._current = name
        self.lines += [f"# HELP {name} {_escape_help(help_text)}", f"# TYPE {name} {kind}"]

    def sample(self, value: float | None, **labels: str) -> None:
        """One sample of the current family; None (not known) writes nothing."""
        if self._current is None:
            raise ValueError("sample before family")
        if value is None:
            return
        for key in labels:
            if not _LABEL.match(key) or key.startswith("__"):
                raise ValueError(f"label name {key!r}")
        text = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
        series = f"{self._current}{{{text}}}" if text else self._current
        if series in self._series:
            # Two names that read the same once escaped (a sensor called "(no identity)"
            # beside one without identity): a repeated series would fail the whole scrape.
            log.warning("metrics: %s repeated; only its first value is given", series)
            return
        self._series.add(series)
        self.lines.append(f"{series} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _epoch(text: str | None) -> float | None:
    when = parse_rfc3339_or_none(text) if text else None
    return when.timestamp() if when is not None else None


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def _steps(status: Status, out: Exposition) -> None:
    steps = status.steps
    out.family("step_last_success_timestamp_seconds", "gauge", "When the step last succeeded.")
    for s in steps:
        out.sample(_epoch(s.last_success), step=s.name)
    out.family("step_last_run_timestamp_seconds", "gauge", "When the step last started.")
    for s in steps:
        out.sample(_epoch(s.last_start), step=s.name)
    out.family("step_last_duration_seconds", "gauge", "How long the step's last run took.")
    for s in steps:
        out.sample(s.duration_s, step=s.name)
    out.family("step_last_run_succeeded", "gauge", "1 when the step's last run succeeded, else 0.")
    for s in steps:
        out.sample(None if s.outcome is None else _flag(s.outcome == "ok"), step=s.name)
    out.family("step_interval_seconds", "gauge", "How often the step is scheduled.")
    for s in steps:
        out.sample(s.interval_min * 60, step=s.name)
    out.family(
        "step_stale", "gauge", "1 when the step has not succeeded within twice its interval."
    )
    for s in steps:
        out.sample(_flag(s.stale), step=s.name)
    out.family(
        "step_runs_total", "counter", "Runs of the step, by outcome (ok, failed, busy, stopped)."
    )
    for s in steps:
        for outcome, n in sorted(s.totals.get("runs", {}).items()):
            out.sample(n, step=s.name, outcome=outcome)
    out.family(
        "step_lines_total",
        "counter",
        "Lines read by the step: query-log lines (correlate, retro), alert lines (alert).",
    )
    for s in steps:
        out.sample(s.totals.get("lines"), step=s.name)
    out.family(
        "step_alerts_total",
        "counter",
        "Alerts written (correlate, retro) or taken in for delivery (alert).",
    )
    for s in steps:
        out.sample(s.totals.get("alerts"), step=s.name)
    out.family("step_last_lines", "gauge", "Lines read by the step's last run.")
    for s in steps:
        out.sample(s.last_counts.get("lines"), step=s.name)
    out.family("step_last_alerts", "gauge", "Alerts of the step's last run.")
    for s in steps:
        out.sample(s.last_counts.get("alerts"), step=s.name)


def _channels(status: Status, out: Exposition) -> None:
    chans = status.channels
    now = _epoch(status.generated_at) or 0.0
    out.family("channel_alerts_delivered_total", "counter", "Alerts the channel accepted.")
    for c in chans:
        out.sample(c.delivered_total, channel=c.channel)
    out.family("channel_delivery_failures_total", "counter", "Failed delivery attempts.")
    for c in chans:
        out.sample(c.failed_total, channel=c.channel)
    out.family("channel_pending_alerts", "gauge", "Alerts waiting for the channel.")
    for c in chans:
        out.sample(c.pending, channel=c.channel)
    out.family(
        "channel_oldest_pending_timestamp_seconds",
        "gauge",
        "When the oldest alert still waiting for the channel was queued.",
    )
    for c in chans:
        age = c.oldest_pending_age_s
        out.sample(None if age is None else round(now - age, 1), channel=c.channel)
    out.family("channel_consecutive_failures", "gauge", "Failed attempts since the last success.")
    for c in chans:
        out.sample(c.failures, channel=c.channel)
    out.family(
        "channel_last_success_timestamp_seconds", "gauge", "When the channel last took a message."
    )
    for c in chans:
        out.sample(_epoch(c.last_success), channel=c.channel)
    out.family("alert_lines_unread", "gauge", "Complete alert lines the alert step has not read.")
    out.sample(None if status.alert_lines_not_taken_in is None else status.alert_lines_not_taken_in)


def _sources(status: Status, out: Exposition) -> None:
    out.family(
        "source_up", "gauge", "1 when the indicator source answered at the last fetch, else 0."
    )
    for src in status.sources:
        out.sample(None if src.ok is None else _flag(src.ok), source=src.source)
    out.family("source_indicators", "gauge", "Indicators the lists hold for the source.")
    for src in status.sources:
        out.sample(src.indicators, source=src.source)
    out.family(
        "source_last_success_timestamp_seconds",
        "gauge",
        "When the source last answered a fetch (its list age is time() minus this).",
    )
    for src in status.sources:
        out.sample(_epoch(src.last_success), source=src.source)
    out.family("indicators", "gauge", "Indicators in the collector's lists, by kind.")
    for kind, key in (("domain", "domains"), ("ip", "ips")):
        value = status.iocs.get(key)
        out.sample(value if isinstance(value, int) else None, kind=kind)
    out.family(
        "ioc_index_generated_timestamp_seconds", "gauge", "When the IOC index was last written."
    )
    index = status.iocs.get("index")
    out.sample(_epoch(index.get("generated")) if isinstance(index, dict) else None)


def _sensors(status: Status, out: Exposition) -> None:
    sensors = status.sensors
    out.family(
        "sensor_last_seen_timestamp_seconds", "gauge", "Time stamp of the sensor's newest reply."
    )
    for v in sensors:
        out.sample(_epoch(v["last_seen"]), sensor=v["sensor"])
    out.family("sensor_replies_last_hour", "gauge", "Replies the sensor sent in the current hour.")
    for v in sensors:
        out.sample(v["replies_last_hour"], sensor=v["sensor"])
    out.family(
        "sensor_replies_per_hour",
        "gauge",
        "The sensor's average replies per hour over its kept history.",
    )
    for v in sensors:
        out.sample(v["replies_per_hour"], sensor=v["sensor"])
    out.family(
        "sensor_silence_threshold_seconds",
        "gauge",
        "Silence after which the agent announces the sensor (absent: not watched).",
    )
    for v in sensors:
        out.sample(v["threshold_s"], sensor=v["sensor"])
    out.family("sensor_silent", "gauge", "1 when the sensor is silent beyond its threshold.")
    for v in sensors:
        out.sample(_flag(bool(v["silent"])), sensor=v["sensor"])


def _spools(status: Status, out: Exposition) -> None:
    spools = status.spools
    out.family(
        "sensor_spool_report_timestamp_seconds",
        "gauge",
        "When the spooling sensor wrote the spool report the server last received.",
    )
    for r in spools:
        out.sample(r["updated"], sensor=r["sensor"])
    out.family("sensor_spool_bytes", "gauge", "Bytes waiting in the sensor's spool.")
    for r in spools:
        out.sample(r["spool_bytes"], sensor=r["sensor"])
    out.family("sensor_spool_limit_bytes", "gauge", "The sensor's spool size bound.")
    for r in spools:
        out.sample(r["limit_bytes"], sensor=r["sensor"])
    out.family(
        "sensor_spool_dropped_files_total", "counter", "Spool files the sensor dropped unshipped."
    )
    for r in spools:
        out.sample(r["dropped_files"], sensor=r["sensor"])
    out.family(
        "sensor_spool_dropped_replies_total",
        "counter",
        "Replies in the spool files the sensor dropped unshipped.",
    )
    for r in spools:
        out.sample(r["dropped_replies"], sensor=r["sensor"])


def _suppressions(status: Status, out: Exposition) -> None:
    rules = status.suppressions
    out.family(
        "suppression_hits_total",
        "counter",
        "Alerts the suppression rule silenced (written and counted, never notified).",
    )
    for r in rules:
        out.sample(r["hits"], rule=r["id"])
    out.family("suppression_expired", "gauge", "1 when the suppression rule has expired.")
    for r in rules:
        out.sample(_flag(bool(r["expired"])), rule=r["id"])


def _agent(status: Status, out: Exposition) -> None:
    out.family("problems", "gauge", "Problems status reports (details: pdnssoc-agent status).")
    out.sample(len(status.problems))
    out.family("status_generated_timestamp_seconds", "gauge", "When these metrics were gathered.")
    out.sample(_epoch(status.generated_at))


FAMILIES: tuple[Callable[[Status, Exposition], None], ...] = (
    _steps,
    _channels,
    _sources,
    _sensors,
    _spools,
    _suppressions,
    _agent,
)


def exposition(status: Status) -> str:
    """The metrics of ``status`` in the text exposition format."""
    out = Exposition()
    for family in FAMILIES:
        family(status, out)
    return out.text()
