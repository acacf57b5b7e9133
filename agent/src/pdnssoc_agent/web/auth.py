# SPDX-License-Identifier: Apache-2.0
"""Who is asking: the identity the server vouched for, checked against ``web.analysts``.

The server (:mod:`.serve`) puts the identity in the WSGI environment under
:data:`USER_KEY`, a key no request header can produce (headers arrive as
``HTTP_*``): the subject CN of the client certificate it verified, or the
proxy's header (``web.auth: proxy-header``, loopback only). No identity: 401;
an identity not among the analysts: 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.web import Web

USER_KEY = "pdnssoc.user"


@dataclass(frozen=True)
class Verdict:
    user: str | None
    status: int
    """200: admitted; 401: no identity; 403: not an analyst."""
    reason: str


def admit(environ: dict[str, Any], web: Web) -> Verdict:
    user = environ.get(USER_KEY)
    if not isinstance(user, str) or not user:
        how = (
            "a client certificate of the CSIRT's CA"
            if web.auth == "client-certificate"
            else f"a login through the proxy (header {web.proxy_header})"
        )
        return Verdict(None, 401, f"not authenticated: this view needs {how}")
    if user not in web.analysts:
        return Verdict(user, 403, "authenticated, but not listed in web.analysts")
    return Verdict(user, 200, "")
