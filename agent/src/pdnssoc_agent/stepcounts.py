# SPDX-License-Identifier: Apache-2.0
"""What a step's result says it did, in numbers the scheduler records.

The scheduler keeps, per step in ``steps.json``, the last run's counts and
running totals (``status`` and the metrics read them there). Each step's
result object carries its own numbers; this module picks the ones that are
comparable between steps:

* ``lines``: lines read (query-log lines for correlate and retro, alert lines
  for alert);
* ``alerts``: alert lines written (correlate, retro) or good alert lines taken
  in for delivery (alert; each goes to one or more channels);
* ``sources``: for fetch-iocs, per indicator source asked, whether it
  answered and, when the lists were written, how many indicators it stands
  for in them (its previous ones when it failed).
"""

from __future__ import annotations

from typing import Any


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def counts_of(result: Any) -> dict[str, Any]:
    """The counts in a step's return value (empty when it has none)."""
    counts: dict[str, Any] = {}
    stats = getattr(result, "stats", None)
    lines, alerts = _int(getattr(stats, "lines", None)), _int(getattr(result, "alerts", None))
    read, bad = _int(getattr(result, "read", None)), _int(getattr(result, "bad", None))
    if lines is None and read is not None:  # the alert step: alert lines, good ones
        lines, alerts = read, read - (bad or 0)
    if lines is not None:
        counts["lines"] = lines
    if alerts is not None:
        counts["alerts"] = alerts
    servers = getattr(result, "servers", None)
    if isinstance(servers, list):
        written = bool(getattr(result, "written", False))
        sources: dict[str, dict[str, Any]] = {}
        for report in servers:
            label = getattr(report, "label", None)
            if not isinstance(label, str) or not getattr(report, "selected", True):
                continue  # not asked this time: nothing new about it
            failed = bool(getattr(report, "error", None))
            entry: dict[str, Any] = {"ok": not failed}
            if written:  # the lists now hold what it gave, or what it had before
                entry["indicators"] = _int(getattr(report, "carried" if failed else "values", 0))
            sources[label] = entry
        counts["sources"] = sources
    return counts
