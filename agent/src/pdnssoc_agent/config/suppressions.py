# SPDX-License-Identifier: Apache-2.0
"""``suppressions``: known false positives that are recorded but never notified."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..suppress.rules import problems, public_suffix
from ..timefmt import parse_rfc3339
from ._schema import Problem

_CONFIG_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Suppression:
    """One rule. Every match field given must match; at least one is required."""

    id: str = field(metadata={"doc": "a stable name such as univ-a-sinkhole"})
    reason: str = field(metadata={"doc": "why these hits are not incidents"})
    author: str = field(metadata={"doc": "who decided"})
    indicator: str | None = None
    """An indicator (domain or address, as in the alert's match.indicator)."""
    qname_suffix: str | None = None
    """A query name and every name below it (not a public suffix)."""
    client: str | None = None
    """A client as alerts carry it (masked address or hash) or a prefix (/8 or longer)."""
    sensor: str | None = None
    """Every alert of this sensor."""
    institution: str | None = None
    """Only at this institution (its sensor identity); default: everywhere."""
    expires: Any = None
    """RFC 3339 time or date (YYYY-MM-DD, midnight UTC) after which the rule no longer applies
    (YAML may read an unquoted date or time as such: both are accepted)."""

    def _check(self, path: str, found: list[Problem]) -> None:
        bad_id = not _CONFIG_ID.fullmatch(self.id or "a") or (self.id or "a").isdigit()
        if bad_id:  # a missing id is reported already
            found.append(
                Problem(
                    f"{path}.id",
                    "expected 1-64 characters: lower-case letters, digits, '.', '_', '-', "
                    "not only digits (numbers are the ids of rules added with suppress add)",
                )
            )
        # The public-suffix check loads a list (about 2 s): check-config and
        # suppress add make it (public_suffix_problems), not every configuration load.
        for text in problems(vars(self), public_suffixes=False):
            key, sep, message = text.partition(": ")
            if key in ("reason", "author") and getattr(self, key) is None:
                continue  # missing or empty: reported already
            where = f"{path}.{key}" if sep and " " not in key else path
            found.append(Problem(where, message if sep and " " not in key else text))
        if self.expires is not None and expiry(self.expires) is None:
            found.append(Problem(f"{path}.expires", "expected an RFC 3339 time or a date"))


def public_suffix_problems(rules: list[Suppression]) -> list[Problem]:
    """Rules whose ``qname_suffix`` is a public suffix (``com``, ``co.uk``).

    Such a rule would silence every name registered under the suffix. Kept
    out of the configuration load, which the daemon repeats on every reload:
    reading the public-suffix list takes about 2 s. ``check-config`` (which
    the Ansible role runs before installing a configuration) refuses them.
    """
    out = []
    for i, rule in enumerate(rules):
        text = public_suffix(rule.qname_suffix) if rule.qname_suffix is not None else None
        if text is not None:
            out.append(Problem(f"suppressions[{i}].qname_suffix", text))
    return out


def expiry(value: Any) -> datetime | None:
    """A configured expiry as a time (a date is its midnight, UTC), None if unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return parse_rfc3339(text + "T00:00:00Z" if _DATE.fullmatch(text) else text)
    except ValueError:
        return None


def suppression_warnings(rules: list[Suppression], now: datetime) -> list[Problem]:
    """Duplicate ids are problems elsewhere; here: rules that have expired (no error:
    a rule expiring must not stop the agent from starting)."""
    out = []
    for i, rule in enumerate(rules):
        when = expiry(rule.expires) if rule.expires is not None else None
        if when is not None and when <= now:
            out.append(
                Problem(
                    f"suppressions[{i}] ({rule.id})",
                    f"expired on {rule.expires}: it no longer applies; remove it",
                )
            )
    return out
