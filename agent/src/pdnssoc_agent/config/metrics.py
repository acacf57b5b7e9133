# SPDX-License-Identifier: Apache-2.0
"""``metrics``: where the daemon serves its Prometheus metrics (off by default)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ._schema import Problem


def split_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) -> (address, port); ValueError says what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError("expected ADDRESS:PORT, e.g. 127.0.0.1:9470 or [::1]:9470")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port_text}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address (a host name is not accepted)") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


@dataclass(frozen=True)
class Metrics:
    """The metrics are always printed by ``status --format prometheus``."""

    listen: str | None = None
    """``ADDRESS:PORT`` the daemon serves ``GET /metrics`` on; unset: not served.
    They carry no secret but tell who runs what: keep it on loopback or on an
    address only the Prometheus server reaches."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        if self.listen is None:
            return
        try:
            split_listen(self.listen)
        except ValueError as exc:
            problems.append(Problem(f"{path}.listen" if path else "listen", str(exc)))
