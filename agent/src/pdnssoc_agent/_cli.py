# SPDX-License-Identifier: Apache-2.0
"""Command line: parse arguments, load the configuration, dispatch, map errors to exit codes.

Each subcommand lives in ``pdnssoc_agent.commands.<name>`` and exposes
``add_arguments(parser)`` and ``run(config, args) -> int``; the work itself is
in the library modules those call.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from . import __version__
from .config import DEFAULT_CONFIG_PATH, load_config
from .errors import STORAGE_ADVICE, AgentError, ExitCode, storage_failure
from .sanitize import LogSanitizer, SafeFormatter

log = logging.getLogger("pdnssoc_agent")

# (subcommand, module under pdnssoc_agent.commands, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("check-config", "check_config", "validate the configuration file and list every problem"),
    ("fetch-iocs", "fetch_iocs", "fetch indicators from MISP into the collector's lists"),
    ("correlate", "correlate", "match new DNS log lines against the indicators, write alerts"),
    ("retro", "retro", "search archived DNS logs for indicators added since the last run"),
    ("alert", "alert", "deliver undelivered alerts by e-mail, webhooks and MISP sightings"),
    ("retention", "retention", "remove data older than its retention age; guard free space"),
    (
        "daemonize",
        "daemonize",
        "run fetch-iocs, correlate, retro, alert and retention on their schedules",
    ),
    ("status", "status", "show each step's last run, delivery lag and indicator counts"),
    ("hunt", "hunt", "who resolved these domains or addresses, from the history store"),
    ("history", "history", "the passive-DNS history store: import query-log archives"),
    ("suppress", "suppress", "suppression rules: known false positives, counted, never notified"),
    ("rpz", "rpz", "response-policy zones from the indicators: build, check, install"),
    ("web", "web", "serve the analysts' web view: alerts, sensors, indicators, suppressions"),
]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


_VALUED = ("-c", "--config", "--log-level")
"""Global options that take the next word as their value."""


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option or an
    option's value), or None."""
    names = {name for name, _, _ in COMMANDS}
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _VALUED:
            skip = True
        elif not word.startswith("-"):
            return word if word in names else None
    return None


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported (each pulls in its own
    libraries: pyarrow, PyMISP, the web server), so a command starts without the others'."""
    chosen = _chosen(argv)
    parser = argparse.ArgumentParser(
        prog="pdnssoc-agent",
        description="Correlate passive DNS with MISP indicators and alert the CSIRT.",
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("PDNSSOC_AGENT_CONFIG", str(DEFAULT_CONFIG_PATH))),
        help="configuration file (default: $PDNSSOC_AGENT_CONFIG or %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="override logging_level from the configuration",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, module, help_text in COMMANDS:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            mod = importlib.import_module(f"{__package__}.commands.{module}")
            mod.add_arguments(sp)
            sp.set_defaults(_module=mod)
    return parser


def _fatal(code: ExitCode, message: str) -> NoReturn:
    log.error("%s", message)
    raise SystemExit(int(code))


def configure_logging(level: str) -> None:
    """Log to stderr (supervisord and systemd collect it)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    handler.addFilter(LogSanitizer())
    root.addHandler(handler)
    root.setLevel(level)
    # PyMISP and urllib3 are chatty at INFO and may log URLs with query data.
    for noisy in ("pymisp", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pdnssoc-agent`` console script."""
    words = sys.argv[1:] if argv is None else argv
    args = _parser(words).parse_args(words)
    configure_logging(args.log_level or "INFO")
    module = args._module
    try:
        if getattr(module, "NEEDS_CONFIG", True):
            config = load_config(args.config)  # ConfigError: exit 3
            configure_logging(args.log_level or config.logging_level)
            for warning in config.warnings:
                log.warning("%s: %s", args.config, warning)
        else:
            config = None
        return int(module.run(config, args))
    except AgentError as exc:
        _fatal(exc.exit_code, str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        problem = storage_failure(exc)
        if problem is None:
            raise
        _fatal(ExitCode.STORAGE, f"{args.command}: {problem}; {STORAGE_ADVICE}")
