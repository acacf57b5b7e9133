# SPDX-License-Identifier: Apache-2.0
"""Shared test fixtures.

The MISP stand-in comes from the lab package (``lab/``), installed into the
environment as any other dependency (``make venv`` installs it editable).
Reference data from outside the project is found through ``$PDNSSOC_SHARED``
(default: ``../shared`` beside the checkout); tests needing it skip without it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

# The loopback receivers' fixtures (tls, smtp_plain, receiver) and keep_root_logging,
# for every test.
pytest_plugins = ["tests.support.alerts", "tests.support.logs"]


def pytest_configure(config: pytest.Config) -> None:
    """Stop at once, saying what to do, when the lab package is not installed."""
    if importlib.util.find_spec("misp_standin") is None:
        raise pytest.UsageError(
            "the agent's tests need the MISP stand-in of the lab package: "
            "pip install --no-deps -e lab (make venv does)"
        )


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
