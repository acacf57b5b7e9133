# SPDX-License-Identifier: Apache-2.0
"""What each page shows, gathered afresh per request from the agent's files (reads only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..alerts import alerts_file
from ..config import Config
from ..health import collect
from ..sensors.book import SensorBook
from ..sensors.watch import book_path
from ..suppress.rules import Matcher, RuleError
from ..suppress.stats import rule_stats
from ..suppress.store import config_rules, load_matcher
from . import chart
from .alerts import Filters, read_alerts


def _matcher(config: Config) -> tuple[Matcher, list[str]]:
    try:
        return load_matcher(config), []
    except RuleError as exc:
        return Matcher(config_rules(config)), [f"suppression rules file not used: {exc}"]


def alerts_page(config: Config, f: Filters, now: datetime) -> dict[str, Any]:
    matcher, problems = _matcher(config)
    page = read_alerts(
        alerts_file(config),
        f,
        limit=config.web.max_alerts,
        scan_bytes=config.web.scan_bytes,
        matcher=matcher,
        now=now,
    )
    return {"page": page, "filters": f, "problems": problems}


def sensors_page(config: Config, now: datetime) -> dict[str, Any]:
    status = collect(config, now)
    book = SensorBook.load(book_path(config))
    charts: dict[str, Any] = {}
    for name, seen in book.sensors.items():
        days = chart.daily(seen, now)
        width, height = chart.size(days)
        charts[name or "(no identity)"] = {
            "bars": chart.bars(days),
            "width": width,
            "height": height,
            "days": days,
        }
    return {"sensors": status.sensors, "charts": charts, "spools": status.spools}


def indicators_page(config: Config, now: datetime) -> dict[str, Any]:
    status = collect(config, now)
    return {"sources": status.sources, "iocs": status.iocs}


def suppressions_page(config: Config, now: datetime) -> dict[str, Any]:
    stats, problems = rule_stats(config, now)
    return {"rules": stats, "problems": problems}
