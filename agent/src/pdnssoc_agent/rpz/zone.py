# SPDX-License-Identifier: Apache-2.0
"""The text of a response-policy zone, from the indicator index.

Every name indicator becomes ``name CNAME .`` and ``*.name CNAME .`` (the
name and every name below it answer NXDOMAIN); every address or network
becomes an ``rpz-ip`` trigger with ``CNAME .`` (an answer holding it is
replaced by NXDOMAIN). What a resolver does with a trigger (block, or only
log) is its own choice (``policy`` in BIND's ``response-policy``), so one zone
serves institutions in either mode.

The text is fully determined by the indicators, the exemptions and the
serial: rendering the same content twice gives the same bytes, which is how
a rebuild with nothing changed is recognised.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..iocs.index import IndicatorEntry
from .exempt import Exemptions, Network
from .names import OwnerError, ip_owner, name_owner, printable

REFRESH, RETRY, EXPIRE, MINIMUM = 3600, 600, 1209600, 60
"""SOA timers: secondaries are told of changes by NOTIFY; refresh is the fallback.
Expire is two weeks: a secondary cut off from the server keeps its copy that long."""
NXDOMAIN = "."
PASSTHRU = "rpz-passthru."
MAX_EXAMPLES = 5
"""Refused values named in the log per reason (the counts cover all)."""


@dataclass
class ZoneContent:
    """The triggers of one zone and what was left out, with the reasons counted."""

    origin: str
    names: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    passthru: list[str] = field(default_factory=list)
    exempted: Counter[str] = field(default_factory=Counter)
    """Why -> indicators left out (``exemption``, ``suppression <id>``)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Reason -> indicators that cannot be written as triggers."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """Reason -> a few refused values, escaped for a log line."""

    def refuse(self, reason: str, detail: str) -> None:
        self.refused[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(detail)

    def render(self, serial: int, ttl: int) -> str:
        """The zone file's text with ``serial``."""
        origin = self.origin.rstrip(".") + "."
        lines = [
            f"; response-policy zone {origin} built by pdnssoc-agent from its indicator index",
            f"; {len(self.names)} names, {len(self.networks)} addresses and networks, "
            f"{len(self.passthru)} passthru triggers for exemptions",
            f"$ORIGIN {origin}",
            f"$TTL {ttl}",
            f"@ SOA localhost. hostmaster.localhost. {serial} {REFRESH} {RETRY} {EXPIRE} {MINIMUM}",
            "@ NS localhost.",
        ]
        for name in self.names:
            lines.append(f"{name} CNAME {NXDOMAIN}")
            lines.append(f"*.{name} CNAME {NXDOMAIN}")
        lines += [f"{owner} CNAME {NXDOMAIN}" for owner in self.networks]
        lines += [f"{owner} CNAME {PASSTHRU}" for owner in self.passthru]
        return "\n".join(lines) + "\n"


def build_content(
    origin: str, entries: Iterable[IndicatorEntry], exemptions: Exemptions
) -> ZoneContent:
    """The triggers for ``entries`` minus ``exemptions``; refused values are counted."""
    content = ZoneContent(origin)
    names: set[str] = set()
    networks: dict[str, Network] = {}
    for entry in entries:
        value = entry.value
        try:
            if entry.kind == "domain":
                name = name_owner(value, origin)
                why = exemptions.why_name(name)
                if why is None:
                    names.add(name)
            else:
                net = _network(value)
                why = exemptions.why_network(value, net)
                if why is None:
                    networks[ip_owner(value)] = net
        except OwnerError as exc:
            content.refuse(exc.reason, str(exc))
            continue
        if why is not None:
            content.exempted[why] += 1
    content.names = sorted(names)
    content.networks = sorted(networks)
    for exempt in exemptions.passthru_names(names):
        try:
            owner = name_owner(exempt, origin)
        except OwnerError as exc:  # an exemption too long for this zone's name
            content.refuse(exc.reason, f"exemption {exc}")
            continue
        content.passthru += [owner, f"*.{owner}"]
    for net in exemptions.passthru_networks(list(networks.values())):
        content.passthru.append(ip_owner(str(net)))
    return content


def _network(value: str) -> Network:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise OwnerError("invalid_ip", f"not an address or network: {printable(value)}") from None
