# SPDX-License-Identifier: Apache-2.0
"""Where things are, whatever the depth of the test that asks."""

from __future__ import annotations

from pathlib import Path

AGENT_DIR = Path(__file__).resolve().parents[2]
"""The agent's directory (``agent/``: pyproject.toml, src/, tests/, benchmarks/)."""

REPO_ROOT = AGENT_DIR.parent
"""The checkout's root (README.md, docs/, templates/)."""

ASSETS = AGENT_DIR / "tests" / "assets"
"""Recorded collector logs and other fixed inputs (tests/assets/README.md)."""
