# SPDX-License-Identifier: Apache-2.0
"""Indicators: fetching them from MISP, normalising them, and the local IOC index."""
