# SPDX-License-Identifier: Apache-2.0
"""The zones as ``status`` shows them: the last build of each, and what needs a look."""

from __future__ import annotations

from typing import Any

from ..config import Config
from .publish import read_state


def rpz_status(config: Config) -> tuple[list[dict[str, Any]], list[str]]:
    """Every configured zone's last report, and the problems among them."""
    if not config.rpz.zones:
        return [], []
    recorded = read_state(config)
    zones: list[dict[str, Any]] = []
    problems: list[str] = []
    for zone in config.rpz.zones:
        name = zone.name.rstrip(".")
        report = recorded.get(name)
        if report is None:
            zones.append({"zone": name, "outcome": None})
            if config.rpz.enabled:
                problems.append(f"RPZ {name}: never built (fetch-iocs builds it; or rpz build)")
            continue
        zones.append(report)
        if report.get("outcome") == "failed":
            problems.append(
                f"RPZ {name}: last build failed, serial {report.get('serial')} is still "
                f"served: {report.get('error')}"
            )
        elif report.get("reload_pending"):
            problems.append(
                f"RPZ {name}: serial {report.get('serial')} installed but the DNS server "
                f"was not told: {report.get('reload')}"
            )
        elif not report.get("checked"):
            problems.append(f"RPZ {name}: installed without named-checkzone (not found)")
    return zones, problems


def render_rpz(zones: list[dict[str, Any]]) -> list[str]:
    """The text view's lines (none when no zone is configured)."""
    if not zones:
        return []
    out = ["", "Response-policy zones:"]
    for z in zones:
        if z.get("outcome") is None:
            out.append(f"  {z['zone']}: never built")
            continue
        out.append(
            f"  {z['zone']}: {z['outcome']} at {z.get('built_at')}, serial {z.get('serial')}, "
            f"{z.get('names', 0)} names, {z.get('networks', 0)} addresses/networks, "
            f"{sum(z.get('exempted', {}).values())} exempted, "
            f"{sum(z.get('refused', {}).values())} refused"
        )
    return out
