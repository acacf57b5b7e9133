# SPDX-License-Identifier: Apache-2.0
"""``alert``: deliver undelivered alerts on every configured channel."""

from __future__ import annotations

import argparse

from ..alerts import run_alert
from ..config import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Exit 0 when every channel accepted what it was given, 4 when a channel failed "
        "(its alerts stay pending for the next run), 6 when another agent runs this step."
    )


def run(config: Config, _args: argparse.Namespace) -> int:
    report = run_alert(config)
    for channel, error in sorted(report.failed.items()):
        print(f"{channel}: FAILED ({error}); alerts kept for the next run")
    for channel, count in sorted(report.sent.items()):
        print(f"{channel}: sent {count} alert(s)")
    for channel, left in sorted(report.capped.items()):
        print(f"{channel}: {left} alert(s) wait for the next run (per-run message cap)")
    for rule, count in sorted(report.muted.items()):
        print(f"suppression rule {rule}: {count} alert(s) recorded, not notified")
    for sensor, what in sorted(report.sensors.items()):
        print(f"sensor {sensor or '(no identity)'}: {what}; the operators were told")
    if report.bad:
        print(f"{report.bad} line(s) of the alert file were not alerts: skipped (see the log)")
    return int(report.exit_code)
