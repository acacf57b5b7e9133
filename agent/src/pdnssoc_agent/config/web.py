# SPDX-License-Identifier: Apache-2.0
"""``web``: the analysts' web view (``pdnssoc-agent web``; docs/web.md). Off by default."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._schema import Problem
from .metrics import split_listen

_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")


@dataclass(frozen=True)
class Web:
    """Who may see the view and how they prove it (docs/web.md, "Authentication")."""

    listen: str | None = None
    """``ADDRESS:PORT`` ``pdnssoc-agent web`` serves on; unset: the command refuses to start."""
    auth: Literal["client-certificate", "proxy-header"] = "client-certificate"
    """``client-certificate``: the view speaks TLS itself and admits a browser only
    with a certificate of ``tls_client_ca`` whose subject CN is in ``analysts``.
    ``proxy-header``: an authenticating reverse proxy (OIDC, SAML) on this host
    terminates TLS and passes the user in ``proxy_header``; the view then listens
    on loopback only and trusts the header from loopback only."""
    tls_cert: Path | None = None
    """The view's certificate (PEM; chain after it), for ``client-certificate``."""
    tls_key: Path | None = None
    """Its private key (PEM; mode 0600 or 0640 with the agent's group)."""
    tls_client_ca: Path | None = None
    """The CA (PEM) whose certificates identify analysts, for ``client-certificate``."""
    proxy_header: str = "X-Remote-User"
    """The header the proxy puts the authenticated user in, for ``proxy-header``."""
    analysts: list[str] = field(default_factory=list)
    """Who may use the view: certificate subject CNs or the proxy's user names."""
    max_alerts: int = field(default=500, metadata={"min": 1, "max": 100000})
    """Most alert lines one page shows (the newest that match the filters)."""
    scan_bytes: int = field(
        default=16 << 20, metadata={"min": 1 << 16, "max": 1 << 34, "doc": "bytes"}
    )
    """Most bytes read from the end of the alert file per page (its newest lines)."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        if self.listen is None:
            return
        try:
            host, _ = split_listen(self.listen)
        except ValueError as exc:
            problems.append(Problem(f"{prefix}listen", str(exc)))
            return
        if not self.analysts:
            problems.append(Problem(f"{prefix}analysts", "list at least one analyst"))
        for i, name in enumerate(self.analysts):
            if isinstance(name, str) and name != name.strip():
                problems.append(Problem(f"{prefix}analysts[{i}]", "no spaces around the name"))
        if self.auth == "client-certificate":
            for key in ("tls_cert", "tls_key", "tls_client_ca"):
                if getattr(self, key) is None:
                    problems.append(
                        Problem(f"{prefix}{key}", "required with auth client-certificate")
                    )
        elif self.auth == "proxy-header":
            if not ipaddress.ip_address(host).is_loopback:
                problems.append(
                    Problem(
                        f"{prefix}listen",
                        "with auth proxy-header the view trusts a header: listen on loopback "
                        "(127.0.0.1 or [::1]) behind the proxy",
                    )
                )
            if not _HEADER.fullmatch(self.proxy_header):
                problems.append(Problem(f"{prefix}proxy_header", "letters, digits and '-' only"))
