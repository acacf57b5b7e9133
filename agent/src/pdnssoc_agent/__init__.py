# SPDX-License-Identifier: Apache-2.0
"""pdnssoc-agent: passive-DNS correlation with MISP indicators for CSIRTs."""

__version__ = "0.1.0"
