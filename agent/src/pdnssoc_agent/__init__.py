# SPDX-License-Identifier: Apache-2.0
"""pdnssoc-agent: passive-DNS correlation with MISP indicators for CSIRTs."""

__version__ = "0.2.0"
"""The agent's version: its one source (pyproject.toml reads it; docs/releasing.md)."""
