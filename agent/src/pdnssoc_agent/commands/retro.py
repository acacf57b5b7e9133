# SPDX-License-Identifier: Apache-2.0
"""``retro``: search archived DNS logs for indicators that are new since the last run."""

from __future__ import annotations

import argparse
import sys

from ..config import Config
from ..correlate import run_retro
from ..errors import ExitCode
from .correlate import add_common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "correlation.archive_dir and correlation.queries_file")
    parser.epilog = (
        "Indicators added after retro.last (IOC index dates; with plain lists, values the "
        "previous run did not have) are searched for in DNS answers logged before they were "
        "added, within correlation.retro_lookback. Progress is shown on a terminal."
    )


def run(config: Config, args: argparse.Namespace) -> int:
    run_retro(
        config,
        args.paths,
        domain_files=args.domain_files,
        ip_files=args.ip_files,
        gzip_backend=args.gzip,
        progress=sys.stderr,
    )
    return int(ExitCode.OK)
