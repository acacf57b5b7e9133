# SPDX-License-Identifier: Apache-2.0
"""``retro``: search archived DNS logs for indicators that are new since the last run."""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from typing import TextIO

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
        progress=partial(Progress, stream=sys.stderr),
    )
    return int(ExitCode.OK)


class Progress:
    """Files, lines, rate and ETA on a terminal; nothing otherwise (the log summarises)."""

    def __init__(
        self, total_bytes: int, total_files: int, stream: TextIO | None, label: str = "retro"
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None and stream.isatty() else None
        self.total_bytes = max(1, total_bytes)
        self.total_files = total_files
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, files_done: int, lines: int, bytes_done: int, *, final: bool = False) -> None:
        if self.stream is None:
            return
        t = time.monotonic()
        if not final and t - self._last < 0.5:
            return
        self._last = t
        elapsed = max(t - self.started, 1e-6)
        rate = lines / elapsed
        frac = min(1.0, bytes_done / self.total_bytes)
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        eta_txt = "done" if final else f"ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        self.stream.write(
            f"\r{self.label}: file {min(files_done + 1, self.total_files)}/{self.total_files}, "
            f"{lines:,} lines, {rate:,.0f} lines/s, {frac:.0%}, {eta_txt}   "
        )
        if final:
            self.stream.write("\n")
        self.stream.flush()
