# SPDX-License-Identifier: Apache-2.0
"""The root logger's handlers and level, as the test had them, after a CLI run.

``main`` replaces the root logger's handlers with one on the ``sys.stderr`` of the
moment, which pytest closes after the test: a later test's log record (a server
thread's, say) would go to a closed stream. Every test gets its handlers back."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def keep_root_logging() -> Iterator[None]:
    """``main`` installs its own stderr handler; the test's handlers come back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
