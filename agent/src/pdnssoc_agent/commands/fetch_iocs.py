# SPDX-License-Identifier: Apache-2.0
"""``fetch-iocs``: pull indicators from MISP, write the collector's lists, reload it."""

from __future__ import annotations

import argparse

from ..config import Config
from ..iocs.configured import sources_from_config
from ..iocs.fetch import FetchOptions, fetch_iocs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        action="append",
        metavar="NAME",
        help="fetch only this server (repeatable; the others keep their previous indicators)",
    )
    parser.add_argument(
        "--no-reload",
        action="store_true",
        help="do not send SIGHUP to the collector after the lists change",
    )


def run(config: Config, args: argparse.Namespace) -> int:
    sources = sources_from_config(config, only=args.server)
    result = fetch_iocs(config, sources, FetchOptions(reload=not args.no_reload))
    for report in result.failed:
        print(f"fetch-iocs: {report.label} ({report.url}) FAILED: {report.error}")
    if result.written:
        print(
            f"fetch-iocs: {result.domains} domains, {result.ips} IPs/networks "
            f"({'lists changed' if result.lists_changed else 'lists unchanged'})"
        )
    else:
        print("fetch-iocs: nothing written; the previous lists and index are kept")
    for zone in result.rpz:
        print(
            f"fetch-iocs: RPZ {zone.zone}: {zone.outcome}, serial {zone.serial}"
            + (f" ({zone.error})" if zone.error else "")
        )
    return int(result.exit_code)
