# SPDX-License-Identifier: Apache-2.0
"""The alert step's view of which rules are in force, and what changed since its last run.

``suppress add`` and ``suppress remove`` log and audit their own changes. The
configuration's rules change with the file (the role, an editor) and any rule
stops applying when it expires: nobody runs a command for those. The alert
step keeps the rules in force at its last run in
``<correlation.state_dir>/suppressions-seen.json`` and, when they differ,
logs each rule that now applies, changed or no longer applies, and appends
the configuration's changes and the expiries to the audit file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..config import Config
from ..fsutil import append_durably, atomic_write_text
from ..timefmt import format_rfc3339
from .rules import Rule

log = logging.getLogger(__name__)

SEEN_FILE = "suppressions-seen.json"


def _seen(rule: Rule) -> dict[str, Any]:
    return {k: v for k, v in rule.to_dict().items() if v is not None}


def _read(config: Config) -> dict[str, Any] | None:
    path = config.correlation.state_dir / SEEN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("%s: not JSON; the rules in force are recorded anew", path)
        return None
    return data if isinstance(data, dict) else None


def note_changes(config: Config, rules: Sequence[Rule], now: datetime, audit: str) -> None:
    """Log (and audit, where no command did) how the rules in force changed."""
    current = {r.id: _seen(r) for r in rules if not r.expired(now)}
    before = _read(config)
    if before == current:
        return
    if before is None:
        log.info("suppression rules in force: %s", ", ".join(sorted(current)) or "none")
        before = current
    known = {r.id: r for r in rules}
    entries: list[dict[str, Any]] = []
    stamp = format_rfc3339(now, seconds=True)
    for rule_id, seen in current.items():
        if before.get(rule_id) == seen:
            continue
        what = "now applies" if rule_id not in before else "changed"
        rule = known[rule_id]
        log.info(
            "suppression rule %s (%s) %s: %s (reason: %s; author %s)",
            rule_id, rule.origin, what, rule.describe(), rule.reason, rule.author,
        )  # fmt: skip
        if rule.origin == "config":
            action = "add" if rule_id not in before else "change"
            entries.append({"at": stamp, "who": "configuration", "action": action, "rule": seen})
    for rule_id, seen in before.items():
        if rule_id in current or not isinstance(seen, dict):
            continue
        gone = known.get(rule_id)
        expired = gone is not None and gone.expired(now)
        log.info(
            "suppression rule %s no longer applies: %s",
            rule_id,
            f"expired at {seen.get('expires')}" if expired else "removed",
        )
        if expired:
            entries.append({"at": stamp, "who": "expiry", "action": "expire", "rule": seen})
        elif seen.get("origin") == "config":
            entries.append({"at": stamp, "who": "configuration", "action": "remove", "rule": seen})
    if entries:
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
        append_durably(config.correlation.state_dir / audit, text.encode())
    atomic_write_text(config.correlation.state_dir / SEEN_FILE, json.dumps(current, indent=1))
