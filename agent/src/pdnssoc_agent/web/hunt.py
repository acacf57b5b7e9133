# SPDX-License-Identifier: Apache-2.0
"""The hunt form's answer: who resolved these names or addresses, from the history store.

The same search as ``pdnssoc-agent hunt`` (:func:`pdnssoc_agent.history.hunt`),
newest replies first, at most ``web.max_alerts`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from .alerts import FilterError, parse_time

MAX_VALUES = 50


@dataclass
class HuntAnswer:
    values: str = ""
    institution: str = ""
    since: str = ""
    until: str = ""
    searched: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)
    more: int = 0
    problems: list[str] = field(default_factory=list)


def _us(text: str, key: str) -> int | None:
    when = parse_time(text, key)
    return None if when is None else int(when.timestamp() * 1_000_000)


def run_hunt(config: Config, query: dict[str, str]) -> HuntAnswer:
    """The answer to the form ``query`` (FilterError: a value or time the search cannot use)."""
    from ..history import HuntValueError, hunt, matcher_for  # noqa: PLC0415 - pyarrow, when asked
    from ..history.backend import open_store  # noqa: PLC0415
    from ..history.report import as_dict  # noqa: PLC0415
    from ..history.tail import applies  # noqa: PLC0415

    answer = HuntAnswer(
        values=query.get("values", "").strip(),
        institution=query.get("institution", "").strip(),
        since=query.get("since", "").strip(),
        until=query.get("until", "").strip(),
    )
    values = answer.values.replace(",", " ").split()
    if not values:
        return answer
    if len(values) > MAX_VALUES:
        raise FilterError(f"values: at most {MAX_VALUES} at once")
    since_us, until_us = _us(answer.since, "since"), _us(answer.until, "until")
    try:
        matcher_for(values)
    except HuntValueError as exc:
        raise FilterError(f"values: {exc}") from None
    try:
        store = open_store(config)
    except ValueError as exc:
        answer.problems.append(str(exc))
        return answer
    if not store.exists() and not (applies(config) and config.history.engine == "embedded"):
        answer.problems.append(
            f"no history store at {store.name}: correlate fills it (history.enabled)"
        )
        return answer
    try:
        result = hunt(
            store,
            values,
            since_us=since_us,
            until_us=until_us,
            sensors=[answer.institution] if answer.institution else None,
            config=config,
        )
    except HuntValueError as exc:
        raise FilterError(f"values: {exc}") from None
    answer.searched = True
    rows = list(reversed(result.rows))
    answer.more = max(0, len(rows) - config.web.max_alerts)
    answer.rows = [as_dict(r) for r in rows[: config.web.max_alerts]]
    answer.problems += [f"skipped a damaged part of the store: {p}" for p in result.problems]
    answer.problems += result.log_problems
    return answer
