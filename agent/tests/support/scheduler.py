# SPDX-License-Identifier: Apache-2.0
"""The agent's daemon as a real process, and waiting for what it does."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO


def start_daemon(config_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(config_path), "daemonize", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


class LogFollower:
    """Reads a daemon's stderr as it is written, so a test waits for a line, not a delay."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait_for(self, fragment: str, timeout: float = 30.0) -> None:
        """Until a line holding ``fragment`` has been logged (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while fragment not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"not logged in {timeout:.0f} s: {fragment!r}")
            time.sleep(0.05)

    def close(self, timeout: float = 30.0) -> str:
        """Everything logged, once the process has closed its stderr."""
        self._thread.join(timeout)
        return self.text()
