# SPDX-License-Identifier: Apache-2.0
"""Tests of ``pdnssoc_agent.config``."""
