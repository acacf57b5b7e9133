# SPDX-License-Identifier: Apache-2.0
"""``web``: serve the analysts' web view until SIGTERM (for supervisord; docs/web.md)."""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import threading
from types import FrameType

from ..config import Config, ConfigError, load_config
from ..errors import AgentError, ExitCode, UsageError
from ..web.serve import WebServer

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Serves web.listen with the authentication of web.auth. SIGTERM: stop (requests in "
        "progress finish, up to 5 s). SIGHUP: "
        "re-read the configuration (analysts, limits; an invalid file is logged and the "
        "running one kept); a new address, certificate or key takes effect at the next start."
    )


class _Current:
    def __init__(self, config: Config) -> None:
        self.config = config


def run(config: Config, args: argparse.Namespace) -> int:
    if not config.web.listen:
        raise UsageError("web: web.listen is not set in the configuration (docs/web.md)")
    current = _Current(config)
    try:
        server = WebServer(lambda: current.config)
    except (OSError, ssl.SSLError) as exc:
        raise AgentError(
            f"web: cannot serve {config.web.listen}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        try:
            current.config = load_config(args.config)
        except ConfigError as exc:
            log.error("web: %s; the running configuration is kept", exc)  # noqa: TRY400
            return
        log.info("web: configuration re-read from %s", args.config)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    server.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    return int(ExitCode.OK)
