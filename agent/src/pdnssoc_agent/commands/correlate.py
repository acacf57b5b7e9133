# SPDX-License-Identifier: Apache-2.0
"""``correlate``: match new DNS log lines against the indicators and write alerts."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config
from ..correlate import run_correlate
from ..dnslog import GZIP_BACKENDS
from ..errors import ExitCode


def add_common(parser: argparse.ArgumentParser, default_paths: str) -> None:
    """Arguments shared by ``correlate`` and ``retro``."""
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=f"DNS log files or directories, searched recursively (default: {default_paths})",
    )
    parser.add_argument(
        "--malicious-domains-file",
        dest="domain_files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="domain list to use instead of correlation.malicious_domains_file (repeatable)",
    )
    parser.add_argument(
        "--malicious-ips-file",
        dest="ip_files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="IP/CIDR list to use instead of correlation.malicious_ips_file (repeatable)",
    )
    parser.add_argument(
        "--gzip",
        choices=GZIP_BACKENDS,
        default="zlib",
        help="gzip decompression: inline (default) or in a helper thread, which can use "
        "a second idle core",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "the query log and what rotated since the previous run")
    parser.epilog = (
        "Each file is read from where the previous run stopped to its last complete line; "
        "alerts are appended to <correlation.output_dir>/matches.json. Exit 0 whether or "
        "not there were matches; unreadable lines are counted, skipped and logged."
    )


def run(config: Config, args: argparse.Namespace) -> int:
    run_correlate(
        config,
        args.paths,
        domain_files=args.domain_files,
        ip_files=args.ip_files,
        gzip_backend=args.gzip,
    )
    return int(ExitCode.OK)
