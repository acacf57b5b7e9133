# SPDX-License-Identifier: Apache-2.0
"""A stand-in for the part of MISP's REST API that pDNSSOC uses.

Standard library only, so it runs with a plain ``python3`` on a lab host::

    from misp_standin import MispStandin

    with MispStandin(api_keys={"KEY...": "ORGNAME"}, events=[event]) as misp:
        PyMISP(misp.url, "KEY...", ssl=False).search(controller="attributes", ...)

See docs/misp-standin.md for what it implements and how it is validated.
"""

from misp_standin.server import FAULTS, MISP_VERSION, MispStandin
from misp_standin.store import StoreError
from misp_standin.warninglists import WarninglistError, Warninglists

__all__ = [
    "FAULTS",
    "MISP_VERSION",
    "MispStandin",
    "StoreError",
    "WarninglistError",
    "Warninglists",
]
