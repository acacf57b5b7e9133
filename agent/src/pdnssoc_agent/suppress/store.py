# SPDX-License-Identifier: Apache-2.0
"""Where suppression rules live: the configuration, and a rules file the CLI manages.

``<correlation.state_dir>/suppressions.json`` holds the rules added with
``suppress add``; ids are numbers, given once and never reused. Changes are
made under a lock (``suppressions.lock``) and written atomically, so the
alert step, which reads the file on every run without the lock, always sees a
whole file. Every change is appended to ``suppressions-audit.jsonl`` (one JSON
object a line: when, who, what, the rule) and logged.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..config.suppressions import expiry
from ..fsutil import append_durably, atomic_write_text, locked
from ..timefmt import format_rfc3339, parse_rfc3339
from .changes import note_changes
from .rules import MATCH_FIELDS, Matcher, Rule, RuleError, make_rule, parse_expiry

log = logging.getLogger(__name__)

RULES_FILE = "suppressions.json"
AUDIT_FILE = "suppressions-audit.jsonl"
LOCK_FILE = "suppressions.lock"
FILE_VERSION = 1
_STORED = {"id", "reason", "author", "created", "expires", "institution", *MATCH_FIELDS}


def rules_path(config: Config) -> Path:
    return config.correlation.state_dir / RULES_FILE


def audit_path(config: Config) -> Path:
    return config.correlation.state_dir / AUDIT_FILE


def config_rules(config: Config) -> list[Rule]:
    """The rules of the configuration's ``suppressions`` (validated when it was loaded)."""
    out = []
    for item in config.suppressions:
        fields = dict(vars(item))
        fields["expires"] = expiry(item.expires) if item.expires is not None else None
        out.append(make_rule(fields, origin="config", checked=True))
    return out


@dataclass
class RulesFile:
    next_id: int
    rules: list[Rule]


def _rule_from_json(obj: Any, where: str) -> Rule:
    if not isinstance(obj, dict):
        raise RuleError(f"{where}: expected an object")
    unknown = sorted(str(k) for k in obj if k not in _STORED)
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {', '.join(unknown)}")
    fields = dict(obj)
    try:
        fields["expires"] = parse_rfc3339(obj["expires"]) if obj.get("expires") else None
    except (ValueError, TypeError):
        raise RuleError(f"{where}.expires: not an RFC 3339 time") from None
    try:
        return make_rule(fields, origin="cli", checked=True)
    except RuleError as exc:
        raise RuleError(f"{where}: {exc}") from None


def read_rules_file(path: Path) -> RulesFile:
    """The rules file (empty when absent); RuleError names the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RulesFile(1, [])
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RuleError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise RuleError(f"{path}: expected an object with version {FILE_VERSION}")
    next_id, items = data.get("next_id"), data.get("rules")
    if not isinstance(next_id, int) or not isinstance(items, list):
        raise RuleError(f"{path}: expected next_id (an integer) and rules (a list)")
    rules = [_rule_from_json(obj, f"{path}: rules[{i}]") for i, obj in enumerate(items)]
    return RulesFile(next_id, rules)


def _write(path: Path, rules_file: RulesFile) -> None:
    items = []
    for rule in rules_file.rules:
        data = rule.to_dict()
        items.append({k: v for k, v in data.items() if k in _STORED and v is not None})
    text = json.dumps(
        {"version": FILE_VERSION, "next_id": rules_file.next_id, "rules": items}, indent=2
    )
    atomic_write_text(path, text + "\n")


def load_matcher(config: Config) -> Matcher:
    """Every rule: the configuration's first, then the rules file's.

    RuleError when the rules file cannot be used (the caller decides whether
    to go on with the configuration's rules alone).
    """
    return Matcher([*config_rules(config), *read_rules_file(rules_path(config)).rules])


def _audit(config: Config, action: str, who: str, rule: Rule, now: datetime) -> None:
    stored = {k: v for k, v in rule.to_dict().items() if v is not None}
    entry: dict[str, Any] = {"at": format_rfc3339(now, seconds=True), "who": who}
    entry.update(action=action, rule=stored)
    append_durably(audit_path(config), (json.dumps(entry, sort_keys=True) + "\n").encode())
    log.info(
        "suppression rule %s %s by %s: %s (reason: %s; author %s; expires %s)",
        rule.id,
        "added" if action == "add" else "removed",
        who,
        rule.describe(),
        rule.reason,
        rule.author,
        stored.get("expires", "never"),
    )


def check_owner(config: Config) -> None:
    """Refuse to write the rules as another user than the state directory's owner:
    the agent could not read a file root created (RuleError says how to run it)."""
    state_dir = config.correlation.state_dir
    try:
        owner = state_dir.stat().st_uid
    except FileNotFoundError:
        return
    if os.geteuid() != owner:
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = str(owner)
        raise RuleError(
            f"{state_dir} belongs to {name}: run this as that user "
            f"(sudo -u {name} pdnssoc-agent suppress ...), so the agent can read the rules"
        )


def add_rule(config: Config, fields: dict[str, Any], *, who: str, now: datetime) -> Rule:
    """Validate ``fields`` (``expires`` as text), store the rule with a new id, audit it."""
    fields = dict(fields)
    expires = fields.get("expires")
    if expires is not None:
        try:
            when = parse_expiry(str(expires), now)
        except ValueError as exc:
            raise RuleError(f"expires: {exc}") from None
        if when <= now:
            raise RuleError(f"expires: {format_rfc3339(when, seconds=True)} is in the past")
        fields["expires"] = when
    fields["created"] = format_rfc3339(now, seconds=True)
    path = rules_path(config)
    check_owner(config)
    with locked(config.correlation.state_dir / LOCK_FILE):
        current = read_rules_file(path)
        rule = make_rule({**fields, "id": str(current.next_id)}, origin="cli")
        for other in [*config_rules(config), *current.rules]:
            if not other.expired(now) and _same_match(other, rule):
                raise RuleError(
                    f"already suppressed by rule {other.id} ({other.origin}): {other.describe()}"
                )
        _write(path, RulesFile(current.next_id + 1, [*current.rules, rule]))
        _audit(config, "add", who, rule, now)
    return rule


def _same_match(a: Rule, b: Rule) -> bool:
    return all(getattr(a, k) == getattr(b, k) for k in (*MATCH_FIELDS, "institution"))


def remove_rule(config: Config, rule_id: str, *, who: str, now: datetime) -> Rule:
    """Remove a rule of the rules file and audit it; RuleError when there is none."""
    if any(r.id == rule_id for r in config_rules(config)):
        raise RuleError(
            f"rule {rule_id} comes from the configuration: remove it from the "
            "suppressions list there (role variable pdnssoc_agent_suppressions)"
        )
    path = rules_path(config)
    check_owner(config)
    with locked(config.correlation.state_dir / LOCK_FILE):
        current = read_rules_file(path)
        found = [r for r in current.rules if r.id == rule_id]
        if not found:
            raise RuleError(f"no rule {rule_id!r} (suppress list --all shows every rule)")
        _write(path, RulesFile(current.next_id, [r for r in current.rules if r.id != rule_id]))
        _audit(config, "remove", who, found[0], now)
    return found[0]


def matcher_for_run(config: Config, now: datetime) -> Matcher:
    """The rules for one run of the alert step (changes since the last run are logged).

    A rules file that cannot be used is logged as an error and left out: the
    alerts its rules would silence are delivered (noise, but nothing lost).
    """
    try:
        matcher = load_matcher(config)
    except RuleError as exc:
        log.error(  # noqa: TRY400 - the message says it all; no traceback
            "suppression rules file not used, its rules do not apply this run: %s; "
            "fix it or remove the rule with suppress remove",
            exc,
        )
        return Matcher(config_rules(config))
    note_changes(config, matcher.rules, now, AUDIT_FILE)
    return matcher
