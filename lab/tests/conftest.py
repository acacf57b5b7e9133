# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures of the lab package's tests.

Reference data from outside the project is found through ``$PDNSSOC_SHARED``
(default: ``../shared`` beside the checkout); tests needing it skip without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_path() -> Path:
    """Where the shared reference data is expected."""
    return Path(os.environ.get("PDNSSOC_SHARED", str(REPO_ROOT.parent / "shared")))


@pytest.fixture
def shared_dir() -> Path:
    """The shared reference directory; skips the test when it is absent."""
    path = shared_path()
    if not (path / "reference").is_dir():
        pytest.skip(f"shared reference data not found at {path} (set PDNSSOC_SHARED)")
    return path
