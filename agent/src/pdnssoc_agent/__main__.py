# SPDX-License-Identifier: Apache-2.0
"""``python -m pdnssoc_agent``."""

from pdnssoc_agent._cli import main

raise SystemExit(main())
