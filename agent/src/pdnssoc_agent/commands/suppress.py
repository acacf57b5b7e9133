# SPDX-License-Identifier: Apache-2.0
"""``suppress add|list|remove``: suppression rules an analyst manages on the server."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from dataclasses import asdict

from ..config import Config
from ..errors import ExitCode, UsageError
from ..state import utcnow
from ..suppress.rules import RuleError
from ..suppress.stats import rule_stats
from ..suppress.store import add_rule, remove_rule


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="suppress_command", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="add a rule: matching alerts are written and counted, never notified",
        description="Add a suppression rule to the agent's rules file. Every match option "
        "given must hold; at least one is required. The alert step applies it from its "
        "next run, to new alerts and to alerts still waiting for a channel.",
    )
    add.add_argument("--indicator", help="the indicator (domain or address) of the alert")
    add.add_argument("--qname-suffix", help="a query name and every name below it")
    add.add_argument("--client", help="a client as alerts show it, or a prefix (192.0.2.0/24)")
    add.add_argument("--sensor", help="every alert of this sensor")
    add.add_argument("--institution", help="only at this institution (its sensor identity)")
    add.add_argument("--reason", required=True, help="why these hits are not incidents")
    add.add_argument("--author", help="who decided (default: the invoking user)")
    add.add_argument("--expires", help="30d, 12h, 90m, 2w from now, or an RFC 3339 time or date")
    lst = sub.add_parser("list", help="list the rules and what they silenced")
    lst.add_argument("--all", action="store_true", help="expired rules too")
    lst.add_argument("--format", choices=["text", "json"], default="text")
    rm = sub.add_parser("remove", help="remove a rule added with suppress add")
    rm.add_argument("id", help="the rule's id (suppress list shows it)")


def invoking_user() -> str:
    """The person at the terminal: the sudo caller when run through sudo."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def run(config: Config, args: argparse.Namespace) -> int:
    now = utcnow()
    who = invoking_user()
    try:
        if args.suppress_command == "add":
            fields = {
                "indicator": args.indicator,
                "qname_suffix": args.qname_suffix,
                "client": args.client,
                "sensor": args.sensor,
                "institution": args.institution,
                "reason": args.reason,
                "author": who if args.author is None else args.author,
                "expires": args.expires,
            }
            rule = add_rule(config, fields, who=who, now=now)
            print(f"rule {rule.id} added: {rule.describe()}")
            return int(ExitCode.OK)
        if args.suppress_command == "remove":
            rule = remove_rule(config, args.id, who=who, now=now)
            print(f"rule {rule.id} removed: {rule.describe()}")
            return int(ExitCode.OK)
    except RuleError as exc:
        raise UsageError(f"suppress {args.suppress_command}: {exc}") from None
    stats, problems = rule_stats(config, now)
    shown = [s for s in stats if args.all or not s.expired]
    if args.format == "json":
        print(json.dumps({"rules": [asdict(s) for s in shown], "problems": problems}, indent=2))
    else:
        for s in shown:
            until = "no expiry"
            if s.expires:
                until = ("expired " if s.expired else "until ") + s.expires
            print(
                f"{s.id} ({s.origin}) {s.matches}\n    reason: {s.reason}\n"
                f"    by {s.author}{', ' + s.created if s.created else ''}; {until}; "
                f"{s.hits} hit(s), last {s.last_hit or '-'}"
            )
        if not shown:
            print("no rules" if args.all or not stats else "no rules in force (--all: expired)")
        for p in problems:
            print(f"PROBLEM: {p}")
    return int(ExitCode.FAILURE if problems else ExitCode.OK)
