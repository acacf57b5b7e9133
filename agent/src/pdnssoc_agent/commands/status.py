# SPDX-License-Identifier: Apache-2.0
"""``status``: per step last run and outcome, delivery lag, IOC counts."""

from __future__ import annotations

import argparse
import json

from ..config import Config
from ..errors import ExitCode
from ..health import collect, render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.epilog = (
        "Exit 0 when every step succeeded within twice its interval, "
        "5 when one is stale (or never ran)."
    )


def run(config: Config, args: argparse.Namespace) -> int:
    status = collect(config)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
    else:
        print(render(status))
    return int(ExitCode.STALE if status.stale else ExitCode.OK)
