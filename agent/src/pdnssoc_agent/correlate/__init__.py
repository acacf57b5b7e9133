# SPDX-License-Identifier: Apache-2.0
"""Correlation of passive DNS with indicators, live (``correlate``) and retroactive (``retro``)."""

from __future__ import annotations

from .indicators import Matcher
from .live import run_correlate
from .retro import run_retro
from .step import RunResult

__all__ = ["Matcher", "RunResult", "run_correlate", "run_retro"]
