# SPDX-License-Identifier: Apache-2.0
"""``hunt``: who resolved these names or addresses, from the history store."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta

from ..config import Config
from ..errors import AgentError, ExitCode, UsageError
from ..state import utcnow
from ..timefmt import parse_rfc3339_or_none as parse_time

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> timedelta:
    """``90m``, ``12h``, ``30d``, ``2w`` (one number and one unit)."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a number and one of s, m, h, d, w (e.g. 30d)"
        )
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def moment(text: str) -> datetime:
    """An RFC 3339 time (UTC if no offset) or a date."""
    when = parse_time(text)
    if when is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use RFC 3339 (2026-01-05T08:00:00Z) or a date (2026-01-05)"
        )
    return when


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "values",
        nargs="+",
        metavar="VALUE",
        help="domain (with its subdomains and CNAMEs into it), IP address or CIDR network",
    )
    parser.add_argument(
        "--since", type=duration, metavar="DURATION",
        help="only replies seen within this long before --until (e.g. 7d, 12h; default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--until", type=moment, metavar="TIME",
        help="only replies seen up to this time (RFC 3339 or a date; default: now)",
    )  # fmt: skip
    parser.add_argument(
        "--sensor", action="append", default=[], metavar="NAME",
        help="only replies from this sensor (institution); repeatable",
    )  # fmt: skip
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text: a header and tab-separated columns; json: one object a "
                        "line")  # fmt: skip
    parser.epilog = (
        "Searches the history store (history.dir, or the ClickHouse cluster of "
        "history.clickhouse) that correlate fills and `history import` loads, and the "
        "lines of the recent query logs it does not hold yet. One line per "
        "distinct reply of a client: sensor, client, first and last seen, count, query name "
        "and answer, and what matched. Exit 0 with or without matches."
    )


def run(config: Config, args: argparse.Namespace) -> int:
    from ..history import HuntValueError, hunt  # noqa: PLC0415 - pyarrow
    from ..history.backend import open_store  # noqa: PLC0415
    from ..history.report import lines  # noqa: PLC0415
    from ..history.tail import applies  # noqa: PLC0415

    try:
        store = open_store(config)
    except ValueError as exc:
        raise AgentError(str(exc)) from None
    # an embedded store not written yet (its first commit) is searched empty, with the log
    if not store.exists() and not (applies(config) and config.history.engine == "embedded"):
        raise AgentError(
            f"no history store at {store.name}: correlate fills it (history.enabled) and "
            "`pdnssoc-agent history import PATH...` loads existing archives"
        )
    until = args.until or utcnow()
    since = until - args.since if args.since is not None else None
    try:
        result = hunt(
            store,
            args.values,
            since_us=_us(since) if since is not None else None,
            until_us=_us(until),
            sensors=args.sensor or None,
            config=config,
        )
    except HuntValueError as exc:
        raise UsageError(str(exc)) from None
    out = sys.stdout
    for line in lines(result.rows, args.format):
        out.write(line + "\n")
    out.flush()
    for problem in result.problems:
        sys.stderr.write(f"warning: skipped a damaged part of the store: {problem}\n")
    for problem in result.log_problems:
        sys.stderr.write(f"warning: {problem}\n")
    return int(ExitCode.OK)


def _us(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000 + when.microsecond
