# SPDX-License-Identifier: Apache-2.0
"""``status``: per step last run and outcome, delivery lag, IOC counts (or the metrics)."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import Config
from ..errors import ExitCode
from ..health import collect, render
from ..metrics import exposition


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json", "prometheus"),
        default=None,
        help="text (default), json, or prometheus: the metrics in the text exposition "
        "format, for node_exporter's textfile collector",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.epilog = (
        "Exit 0 when every step succeeded within twice its interval, "
        "5 when one is stale (or never ran); always 0 with --format prometheus "
        "(the metrics say which step is stale)."
    )


def run(config: Config, args: argparse.Namespace) -> int:
    status = collect(config)
    form = args.format or ("json" if args.json else "text")
    if args.json and form != "json":
        print(f"status: --json and --format {form} disagree", file=sys.stderr)
        return int(ExitCode.USAGE)
    if form == "json":
        print(json.dumps(status.to_dict(), indent=2))
    elif form == "prometheus":
        # Staleness is in the metrics (pdnssoc_step_stale): exit 0, so that a job writing
        # the textfile collector's file with "&& mv" writes it also when a step is stale.
        sys.stdout.write(exposition(status))
        return int(ExitCode.OK)
    else:
        print(render(status))
    return int(ExitCode.STALE if status.stale else ExitCode.OK)
