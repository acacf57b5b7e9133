# SPDX-License-Identifier: Apache-2.0
"""A stand-in for go-dnscollector: a real child process that records SIGHUP."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

# A stand-in for the collector: writes its pid file, counts SIGHUPs into a file.
CHILD = r"""
import os, signal, sys, time
pid_file, hup_file = sys.argv[1], sys.argv[2]
count = 0
def on_hup(signum, frame):
    global count
    count += 1
    with open(hup_file + ".tmp", "w") as fh:
        fh.write(str(count))
    os.replace(hup_file + ".tmp", hup_file)
signal.signal(signal.SIGHUP, on_hup)
with open(pid_file + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()}\n")
os.replace(pid_file + ".tmp", pid_file)
while True:
    time.sleep(0.05)
"""

TOKEN = "fake-dnscollector-for-tests"


class FakeCollector:
    def __init__(self, tmp: Path) -> None:
        self.pid_file = tmp / "dnscollector.pid"
        self.hup_file = tmp / "hups"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(self.pid_file), str(self.hup_file), TOKEN]
        )
        deadline = time.monotonic() + 10
        while not self.pid_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("fake collector did not start")
            time.sleep(0.02)

    def hups(self, expect: int | None = None, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            n = int(self.hup_file.read_text()) if self.hup_file.exists() else 0
            if expect is None or n >= expect or time.monotonic() > deadline:
                return n
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
