# SPDX-License-Identifier: Apache-2.0
"""``daemonize``: run the steps on the intervals of ``schedules`` (for supervisord)."""

from __future__ import annotations

import argparse

from ..config import Config
from ..errors import ExitCode
from ..metrics_http import start_metrics
from ..scheduler import STEP_NAMES, Scheduler, select_steps


def _steps(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        select_steps(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps",
        type=_steps,
        default=None,
        help=f"comma-separated steps to run (default: all of {', '.join(STEP_NAMES)})",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run the steps that are due once, one after another, then exit "
        "(non-zero if one failed)",
    )
    parser.epilog = (
        "SIGTERM: finish the step in progress (a retro stops after its current chunk and "
        "resumes at the next start), exit 0. SIGHUP: reload the configuration "
        "(an invalid file is logged and the running configuration kept; a new metrics.listen "
        "takes effect at the next start). With metrics.listen set, the metrics are served "
        "on GET /metrics (not with --once)."
    )


def run(config: Config, args: argparse.Namespace) -> int:
    scheduler = Scheduler(
        config,
        args.config,
        select_steps(args.steps),
        log_level=getattr(args, "log_level", None),
        lanes=not args.once,  # once: every step in order, retro's alerts delivered in this run
    )
    scheduler.install_signal_handlers()
    if args.once:
        outcomes = scheduler.run_due()
        if any(o == "failed" for o in outcomes.values()):
            return int(ExitCode.FAILURE)
        if any(o == "busy" for o in outcomes.values()):
            return int(ExitCode.BUSY)
        return int(ExitCode.OK)
    server = start_metrics(config.metrics.listen, lambda: scheduler.config)
    try:
        return scheduler.run_forever()
    finally:
        if server is not None:
            server.stop()
