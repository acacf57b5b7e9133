# SPDX-License-Identifier: Apache-2.0
"""Stand-ins for the indicator sources beside MISP: feeds, lists, ThreatFox, TAXII 2.1.

Standard library only, so it runs with a plain ``python3`` on a lab host::

    from source_standins import SourceStandins

    with SourceStandins(root=folder, keys={"KEY..."}) as web:
        web.url("/feeds/osint/manifest.json")

See docs/source-standins.md for what each serves and the formats it follows.
"""

from source_standins.server import TAXII_MEDIA_TYPE, SourceStandins

__all__ = ["TAXII_MEDIA_TYPE", "SourceStandins"]
