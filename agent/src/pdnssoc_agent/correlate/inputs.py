# SPDX-License-Identifier: Apache-2.0
"""What ``correlate`` and ``retro`` read without PATH, and whether it is there.

A configured input that does not exist means that nothing is detected, so it
is never silent: the run logs a WARNING and exits with
:attr:`~pdnssoc_agent.errors.ExitCode.NO_INPUT`, ``status`` shows a problem
line and ``check-config`` a warning. The checks only look (``stat`` and, for a
directory, its first file), so ``status`` can run them as often as it likes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import Config


@dataclass(frozen=True)
class InputProblem:
    """One input of a step that is not there."""

    step: str
    """``correlate`` or ``retro``."""
    message: str
    no_input: bool
    """True when the step has nothing at all to read (its run exits NO_INPUT)."""

    def __str__(self) -> str:
        return f"{self.step}: {self.message}"


def has_file(directory: Path) -> bool:
    """True when ``directory`` holds a regular file (searched recursively, hidden names skipped)."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(not f.startswith(".") and (Path(root) / f).is_file() for f in files):
            return True
    return False


def correlate_problems(config: Config) -> list[InputProblem]:
    """Why ``correlate`` without PATH would have nothing to read (empty when it has)."""
    corr = config.correlation
    if corr.live_input == "matches":
        if not corr.input_dir.is_dir():
            what = "does not exist"
        elif not has_file(corr.input_dir):
            what = "holds no file"
        else:
            return []
        return [
            InputProblem(
                "correlate",
                f"correlation.input_dir {corr.input_dir} {what}, so nothing is correlated "
                "(correlation.live_input: matches); point it at the collector's matches "
                f"directory, or set live_input: query_log to read {corr.queries_file}",
                no_input=True,
            )
        ]
    if corr.queries_file.is_file():
        return []
    hint = ""
    if corr.input_dir.is_dir() and has_file(corr.input_dir):
        hint = (
            f"; {corr.input_dir} holds files: set correlation.live_input: matches to "
            "read correlation.input_dir, as pdnssoc-cli did"
        )
    return [
        InputProblem(
            "correlate",
            f"correlation.queries_file {corr.queries_file} does not exist, so nothing is "
            "correlated (correlation.live_input: query_log); point it at the collector's "
            f"query log{hint}",
            no_input=True,
        )
    ]


def retro_problems(config: Config) -> list[InputProblem]:
    """Why ``retro`` without PATH would read less than configured, or nothing."""
    corr = config.correlation
    archive, log = corr.archive_dir.is_dir(), corr.queries_file.is_file()
    if archive:
        return []
    if log:
        return [
            InputProblem(
                "retro",
                f"correlation.archive_dir {corr.archive_dir} does not exist, so only the "
                f"query log {corr.queries_file} is searched",
                no_input=False,
            )
        ]
    return [
        InputProblem(
            "retro",
            f"neither correlation.archive_dir {corr.archive_dir} nor correlation.queries_file "
            f"{corr.queries_file} exists, so nothing is searched",
            no_input=True,
        )
    ]


def input_problems(config: Config) -> list[InputProblem]:
    """Both steps' problems, for ``status`` and ``check-config``."""
    return correlate_problems(config) + retro_problems(config)
