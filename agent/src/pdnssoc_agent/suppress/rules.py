# SPDX-License-Identifier: Apache-2.0
"""Suppression rules and the one matcher: is this hit suppressed, and by which rule?

A rule names what it silences with one or more of ``indicator``,
``qname_suffix``, ``client`` and ``sensor`` (all given must match), optionally
only at one ``institution`` (the sensor identity its alerts carry). It has a
reason, an author and an optional expiry, after which it stops applying by
itself. The alert step asks :class:`Matcher` about every alert line; the RPZ
export asks the same question about an indicator.

Validation is shared by the configuration (``suppressions``) and the
``suppress add`` command: :func:`problems` names every field that is wrong.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from ..alertfile import Alert
from ..timefmt import format_rfc3339, parse_rfc3339

MATCH_FIELDS = ("indicator", "qname_suffix", "client", "sensor")
"""What a rule can match on; at least one must be given."""
ORIGINS = ("config", "cli")

MAX_TEXT = 500
"""Longest reason accepted (characters)."""
MIN_PREFIX = {4: 8, 6: 16}
"""Shortest client prefix accepted per IP version: a shorter one silences nearly everyone."""

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_RELATIVE = re.compile(r"([1-9][0-9]{0,4})([mhdw])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)


class RuleError(ValueError):
    """A rule that cannot be used; the message names every field that is wrong."""


@dataclass(frozen=True)
class Rule:
    """One suppression rule, from the configuration or from ``suppress add``."""

    id: str
    reason: str
    author: str
    origin: str
    """``config`` (rendered by the role) or ``cli`` (the rules file in the state dir)."""
    created: str = ""
    """When the rule was added (RFC 3339, UTC); empty for configuration rules."""
    expires: datetime | None = None
    indicator: str | None = None
    qname_suffix: str | None = None
    client: str | None = None
    sensor: str | None = None
    institution: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def matches(self, *, sensor: str, client: str, qname: str, indicator: str) -> bool:
        """All the rule's criteria hold for this hit (expiry is the matcher's business)."""
        if self.institution is not None and sensor != self.institution:
            return False
        if self.sensor is not None and sensor != self.sensor:
            return False
        if self.indicator is not None and normal_name(indicator) != self.indicator:
            return False
        if self.qname_suffix is not None and not under(normal_name(qname), self.qname_suffix):
            return False
        return self.client is None or client_in(client, self.client)

    def describe(self) -> str:
        """What the rule matches, in one line (``indicator=x, institution=y``)."""
        parts = [f"{k}={getattr(self, k)}" for k in (*MATCH_FIELDS, "institution")]
        return ", ".join(p for p in parts if not p.endswith("=None"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["expires"] = format_rfc3339(self.expires, seconds=True) if self.expires else None
        return data


def normal_name(name: str) -> str:
    """A domain or address as rules compare it: lower case, no trailing dot."""
    return name.strip().rstrip(".").lower()


def under(name: str, suffix: str) -> bool:
    """``name`` is ``suffix`` or a name below it (label boundary)."""
    return name == suffix or name.endswith("." + suffix)


def client_in(client: str, rule_client: str) -> bool:
    """The alert's (masked or hashed) client is the rule's client or inside its prefix."""
    if client == rule_client:
        return True
    if "/" not in rule_client:
        return False
    try:
        return ipaddress.ip_address(client) in ipaddress.ip_network(rule_client)
    except ValueError:
        return False


@functools.cache
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList  # noqa: PLC0415 - only for suffix rules

    return PublicSuffixList(accept_unknown=False)


def public_suffix(suffix: str) -> str | None:
    """Why ``suffix`` (a rule's ``qname_suffix``) is refused as a public suffix, or None.

    Loads the public-suffix list on first use (about 2 s, then cached).
    """
    name = normal_name(suffix.lstrip("*").lstrip("."))
    if not name or not _psl().is_public(name):
        return None
    return f"{name!r} is a public suffix: it would silence every name registered under it"


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from ``now``, or an RFC 3339 time or date.

    ValueError says what is accepted.
    """
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now + int(relative.group(1)) * _UNITS[relative.group(2)]
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00Z"
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise ValueError(
            "expected a duration from now (30d, 12h, 90m, 2w) or an RFC 3339 time "
            "(2026-12-31T00:00:00Z) or date (2026-12-31)"
        ) from None


def _check_name(value: str, what: str, out: list[str]) -> None:
    labels = value.split(".")
    if not value or len(value) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        out.append(f"{what}: not a domain name (letters, digits, '-', '_' between dots)")


def _check_client(value: str, out: list[str]) -> None:
    if "/" not in value:
        if not value.strip() or len(value) > 128 or value != value.strip():
            out.append("client: expected an address, a prefix such as 192.0.2.0/24, or a hash")
        return
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        out.append("client: not an IP prefix (such as 192.0.2.0/24)")
        return
    if net.prefixlen < MIN_PREFIX[net.version]:
        out.append(
            f"client: /{net.prefixlen} matches nearly every client; "
            f"use at least /{MIN_PREFIX[net.version]}"
        )


def problems(fields: dict[str, Any], *, public_suffixes: bool = True) -> list[str]:
    """Everything wrong with a rule's fields (``reason``, the match fields, ``institution``).

    An empty reason, no match field (a rule that would silence everything), a
    query-name suffix that is a public suffix (``com``, ``co.uk``), a client
    prefix shorter than :data:`MIN_PREFIX` are refused. ``public_suffixes=False``
    skips the public-suffix check (loading the list takes about 2 s) for rules
    that passed it when they were added and for the configuration load
    (check-config makes it: :func:`public_suffix`).
    """
    out: list[str] = []
    reason = fields.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        out.append("reason: must not be empty (say why these hits are not incidents)")
    elif len(reason) > MAX_TEXT:
        out.append(f"reason: longer than {MAX_TEXT} characters")
    author = fields.get("author")
    if not isinstance(author, str) or not author.strip():
        out.append("author: must not be empty")
    given = [k for k in MATCH_FIELDS if fields.get(k) is not None]
    if not given:
        out.append(
            "nothing to match: give at least one of indicator, qname_suffix, client, sensor "
            "(a rule without one would silence every alert)"
        )
    for key in ("indicator", "sensor", "institution"):
        value = fields.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            out.append(f"{key}: must not be empty")
    suffix = fields.get("qname_suffix")
    if isinstance(suffix, str):
        name = normal_name(suffix.lstrip("*").lstrip("."))
        _check_name(name, "qname_suffix", out)
        text = public_suffix(suffix) if name and public_suffixes else None
        if text is not None:
            out.append(f"qname_suffix: {text}")
    client = fields.get("client")
    if isinstance(client, str):
        _check_client(client, out)
    sensor, institution = fields.get("sensor"), fields.get("institution")
    if sensor is not None and institution is not None and sensor != institution:
        out.append(
            "sensor and institution differ: the institution is its sensor's identity, "
            "so this rule could never match"
        )
    return out


def make_rule(fields: dict[str, Any], *, origin: str, checked: bool = False) -> Rule:
    """A Rule from its fields; RuleError lists every problem.

    ``checked``: the fields passed :func:`problems` before (a stored rule).
    """
    found = problems(fields, public_suffixes=not checked)
    rule_id = fields.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        found.insert(0, "id: expected 1-64 characters: lower-case letters, digits, '.', '_', '-'")
    if found:
        raise RuleError("; ".join(found))
    suffix = fields.get("qname_suffix")
    indicator = fields.get("indicator")
    return Rule(
        id=str(rule_id),
        reason=str(fields["reason"]).strip(),
        author=str(fields["author"]).strip(),
        origin=origin,
        created=str(fields.get("created") or ""),
        expires=fields.get("expires"),
        indicator=normal_name(indicator) if indicator is not None else None,
        qname_suffix=normal_name(suffix.lstrip("*").lstrip(".")) if suffix is not None else None,
        client=fields.get("client"),
        sensor=fields.get("sensor"),
        institution=fields.get("institution"),
    )


class Matcher:
    """Answers "is this hit suppressed, and by which rule" for a set of rules.

    Rules are tried in the order given (configuration first, then the rules
    file); the first that matches and has not expired at ``now`` wins. Each
    rule is filed under its most selective field (indicator, query-name
    suffix, sensor, institution, client), so a hit is compared with the few
    rules that could match it, not with all of them.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: Sequence[Rule] = tuple(rules)
        self._by: dict[str, dict[str, list[int]]] = {
            k: {} for k in ("indicator", "qname_suffix", "sensor", "client")
        }
        self._scan: list[int] = []
        for i, rule in enumerate(self.rules):
            key, value = _filed_under(rule)
            if key is None or value is None:
                self._scan.append(i)
            else:
                self._by[key].setdefault(value, []).append(i)

    def active(self, now: datetime) -> list[Rule]:
        return [r for r in self.rules if not r.expired(now)]

    def _candidates(self, sensor: str, client: str, qname: str, indicator: str) -> set[int]:
        found = set(self._scan)
        found.update(self._by["indicator"].get(normal_name(indicator), ()))
        found.update(self._by["sensor"].get(sensor, ()))
        found.update(self._by["client"].get(client, ()))
        suffixes = self._by["qname_suffix"]
        if suffixes:
            labels = normal_name(qname).split(".")
            for i in range(len(labels)):
                found.update(suffixes.get(".".join(labels[i:]), ()))
        return found

    def match(
        self,
        now: datetime,
        *,
        sensor: str = "",
        client: str = "",
        qname: str = "",
        indicator: str = "",
    ) -> Rule | None:
        for i in sorted(self._candidates(sensor, client, qname, indicator)):
            rule = self.rules[i]
            if not rule.expired(now) and rule.matches(
                sensor=sensor, client=client, qname=qname, indicator=indicator
            ):
                return rule
        return None

    def match_alert(self, alert: Alert, now: datetime) -> Rule | None:
        """The rule that suppresses ``alert`` at ``now``, or None."""
        if not self.rules:
            return None
        return self.match(
            now,
            sensor=alert.sensor,
            client=alert.client,
            qname=alert.query.name,
            indicator=alert.match.indicator,
        )


def _filed_under(rule: Rule) -> tuple[str | None, str | None]:
    """The index and key a rule is found by (None: compared with every hit)."""
    if rule.indicator is not None:
        return "indicator", rule.indicator
    if rule.qname_suffix is not None:
        return "qname_suffix", rule.qname_suffix
    if rule.sensor is not None or rule.institution is not None:
        return "sensor", rule.sensor or rule.institution
    if rule.client is not None and "/" not in rule.client:
        return "client", rule.client
    return None, None
