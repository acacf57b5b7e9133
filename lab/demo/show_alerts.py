# SPDX-License-Identifier: Apache-2.0
"""Print pDNSSOC alert lines (alerts/matches.json, JSON lines) readably.

... | python3 show_alerts.py                  one block per alert line
... | python3 show_alerts.py --count-queries  how many distinct query names alerted
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def describe(alert: dict[str, Any]) -> str:
    """A few lines saying what was seen, where, and what MISP knows of it."""
    query = alert.get("query") or {}
    match = alert.get("match") or {}
    answers = ", ".join(
        f"{a.get('type')} {a.get('data')}"
        for a in alert.get("answers") or []
        if isinstance(a, dict)
    )
    lines = [
        f"  [{alert.get('kind', '?')}] {query.get('name')} ({query.get('type')}, "
        f"{query.get('rcode')})  sensor={alert.get('sensor')}  client={alert.get('client')}",
        f"      match: {match.get('how')} on indicator {match.get('indicator')!r}"
        f" (value {match.get('value')!r})  count={alert.get('count')}"
        f"  first_seen={alert.get('first_seen')}  revision={alert.get('revision')}",
    ]
    if answers:
        lines.append(f"      answers: {answers}")
    for ctx in alert.get("misp") or []:
        if not isinstance(ctx, dict):
            continue
        tags = ", ".join(str(t) for t in ctx.get("tags") or [])
        event = ctx.get("event_info") or ctx.get("info") or ctx.get("event_id")
        lines.append(
            f"      MISP: {event}  org={ctx.get('org')}  tlp={ctx.get('tlp')}  tags=[{tags}]"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count-queries", action="store_true")
    parser.add_argument("--summary", nargs="+", metavar="NAME")
    args = parser.parse_args(argv)
    quiet = args.count_queries or args.summary
    first: dict[str, dict[str, Any]] = {}
    names: set[str] = set()
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        try:
            alert = json.loads(line)
        except ValueError:
            if not quiet:
                print(f"  (not JSON: {line[:120]})")
            continue
        name = str((alert.get("query") or {}).get("name")).rstrip(".")
        names.add(name)
        first.setdefault(name, alert)
        if not quiet:
            print(describe(alert))
    if args.count_queries:
        print(len(names))
    for name in args.summary or []:
        found = first.get(name)
        if found is None:
            print(f"  {name:<34} no alert")
        else:
            match = found.get("match") or {}
            print(
                f"  {name:<34} {found.get('kind')} alert: {match.get('how')} "
                f"on {match.get('indicator')}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
