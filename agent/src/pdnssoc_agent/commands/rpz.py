# SPDX-License-Identifier: Apache-2.0
"""``rpz build``: build the response-policy zones now (fetch-iocs does it when ``rpz.enabled``)."""

from __future__ import annotations

import argparse

from ..config import Config
from ..errors import ExitCode, UsageError
from ..rpz.publish import build_zones


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rpz_command", metavar="ACTION", required=True)
    build = sub.add_parser(
        "build",
        help="build, check and install every configured zone; tell the DNS server",
        description="Build every zone of rpz.zones from the indicator index, check it "
        "with named-checkzone and install it in place of the previous one (a zone "
        "that fails the check is not installed). Works also when rpz.enabled is false.",
    )
    build.add_argument(
        "--no-reload", action="store_true", help="do not run rpz.reload_command after an install"
    )


def run(config: Config, args: argparse.Namespace) -> int:
    if not config.rpz.zones:
        raise UsageError("rpz build: no zone in rpz.zones of the configuration")
    reports = build_zones(config, announce=not args.no_reload)
    for r in reports:
        line = f"rpz: {r.zone}: {r.outcome}, serial {r.serial if r.serial is not None else '-'}"
        if r.outcome != "failed":
            line += f", {r.names} names, {r.networks} addresses/networks, {r.passthru} passthru"
        if r.refused:
            line += ", refused " + ", ".join(f"{k} {v}" for k, v in r.refused.items())
        if not r.checked and r.outcome == "installed":
            line += ", NOT CHECKED (named-checkzone missing)"
        if r.reload not in (None, "ok"):
            line += f"; reload: {r.reload}"
        if r.error:
            line += f"; {r.error}"
        print(line)
    failed = any(r.outcome == "failed" or r.reload_pending for r in reports)
    return int(ExitCode.FAILURE if failed else ExitCode.OK)
