# SPDX-License-Identifier: Apache-2.0
"""The root logger's handlers and level, as the test had them, after a CLI run."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
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
