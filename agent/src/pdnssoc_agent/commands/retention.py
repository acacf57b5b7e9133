# SPDX-License-Identifier: Apache-2.0
"""``retention``: expire data by age and guard the free space (as ``daemonize`` does)."""

from __future__ import annotations

import argparse

from ..config import Config
from ..retention import run_retention


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Exit 0 when done, 1 when the data root stays below retention.min_free_percent, "
        "6 when another agent runs this step."
    )


def run(config: Config, _args: argparse.Namespace) -> int:
    report = run_retention(config)
    if report.rotated is not None:
        print(f"alerts file rotated to {report.rotated}")
    print(f"{len(report.expired)} expired file(s) removed")
    for why, count in sorted(report.held.items()):
        print(f"{count} expired file(s) kept for now: {why}")
    if report.low_space:
        print(
            f"free space low: {len(report.guard_removed)} file(s) removed, "
            f"{report.free_percent:.1f}% free now"
        )
    for what, error in sorted(report.failed.items()):
        print(f"{what}: {error}")
    return int(report.exit_code)
