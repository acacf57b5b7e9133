# SPDX-License-Identifier: Apache-2.0
"""Benchmarks of the agent: figures, not pass/fail. ``python -m benchmarks [NAME]``."""
