# SPDX-License-Identifier: Apache-2.0
"""What each suppression rule silenced: for ``status`` and the metrics.

Read-only: the counts are kept in the delivery ledger by the alert step
(table ``rule_hits``), the rules come from the configuration and the rules
file.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from ..alerts.ledger import Ledger
from ..config import Config
from ..timefmt import format_rfc3339
from .rules import Rule, RuleError
from .store import config_rules, read_rules_file, rules_path


@dataclass(frozen=True)
class RuleStats:
    """One rule and what it silenced."""

    id: str
    origin: str
    matches: str
    """What the rule matches, in one line."""
    reason: str
    author: str
    created: str
    expires: str | None
    expired: bool
    hits: int
    """Alerts silenced (each once, whatever its revisions)."""
    last_hit: str | None
    """DNS time (last_seen) of the latest alert silenced."""


def _stats(rule: Rule, now: datetime, hits: dict[str, tuple[int, str | None]]) -> RuleStats:
    count, last = hits.get(rule.id, (0, None))
    return RuleStats(
        id=rule.id,
        origin=rule.origin,
        matches=rule.describe(),
        reason=rule.reason,
        author=rule.author,
        created=rule.created,
        expires=format_rfc3339(rule.expires, seconds=True) if rule.expires else None,
        expired=rule.expired(now),
        hits=count,
        last_hit=last,
    )


def rule_stats(config: Config, now: datetime) -> tuple[list[RuleStats], list[str]]:
    """Every rule (configuration first, expired ones included) with its counts,
    and the problems met reading them (an unusable rules file, an unreadable ledger)."""
    found: list[str] = []
    rules = config_rules(config)
    try:
        rules += read_rules_file(rules_path(config)).rules
    except RuleError as exc:
        found.append(f"suppression rules file not used by the alert step: {exc}")
    hits: dict[str, tuple[int, str | None]] = {}
    try:
        with Ledger(config.correlation.state_dir, readonly=True) as ledger:
            hits = ledger.rule_hits()
    except FileNotFoundError:
        pass
    except sqlite3.Error as exc:
        found.append(f"cannot read suppression counts from the delivery ledger: {exc}")
    return [_stats(r, now, hits) for r in rules], found
