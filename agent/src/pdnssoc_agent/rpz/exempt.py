# SPDX-License-Identifier: Apache-2.0
"""What a zone leaves out: an institution's exemptions and the suppression rules.

An exemption is a name (with every name below it) or an address or network
that the zone never blocks. The suppression rules of the triage work apply
too, where they are about the indicator alone: a rule with only ``indicator``
or ``qname_suffix`` (and, for an institution's zone, ``institution``) says
"this is not an incident"; a rule about a client or a sensor silences alerts,
it says nothing about the indicator, and is not applied here.

An indicator at or below an exempt name, or inside an exempt network, is left
out. An exempt name below an indicator (``www.example.org`` exempt,
``example.org`` listed, whose wildcard would cover it) is written as a
``rpz-passthru.`` trigger: a name trigger that matches exactly wins over a
wildcard, and for addresses the longest prefix wins, so the exempt part
passes and the rest stays blocked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from ..suppress.rules import Rule
from .names import OwnerError, name_owner

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(value: str) -> Network | None:
    """``value`` as an address or network (an address is its /32 or /128), or None."""
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def exemption_problem(value: str) -> str | None:
    """Why ``value`` cannot be an exemption (None: it can)."""
    if parse_network(value) is not None:
        return None
    try:
        name_owner(value.strip().lower(), "")
    except OwnerError as exc:
        if exc.reason != "single_label":
            return f"neither an address, a network nor a domain name: {exc}"
    return None


def suffixes(name: str) -> list[str]:
    """``name`` and every name above it (``a.b.c``, ``b.c``, ``c``)."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


@dataclass
class Exemptions:
    """The names and networks one zone leaves out, with why (for the counts)."""

    names: dict[str, str] = field(default_factory=dict)
    """Exempt name -> where it comes from (``exemption`` or ``suppression <id>``)."""
    indicators: dict[str, str] = field(default_factory=dict)
    """Exact indicator values left out -> ``suppression <id>``."""
    networks: list[tuple[Network, str]] = field(default_factory=list)

    def why_name(self, name: str) -> str | None:
        """Why the name indicator ``name`` is left out, or None."""
        if name in self.indicators:
            return self.indicators[name]
        for suffix in suffixes(name):
            if suffix in self.names:
                return self.names[suffix]
        return None

    def why_network(self, value: str, net: Network) -> str | None:
        """Why the address or network indicator is left out, or None."""
        if value in self.indicators:
            return self.indicators[value]
        for exempt, why in self.networks:
            if net.version == exempt.version and net.subnet_of(exempt):  # type: ignore[arg-type]
                return why
        return None

    def passthru_names(self, listed: set[str]) -> list[str]:
        """Exempt names strictly below a listed name: they need a passthru trigger."""
        return sorted(name for name in self.names if any(s in listed for s in suffixes(name)[1:]))

    def passthru_networks(self, listed: list[Network]) -> list[Network]:
        """Exempt networks strictly inside a listed network."""
        return sorted(
            (
                exempt
                for exempt, _ in self.networks
                if any(
                    n.version == exempt.version
                    and n.prefixlen < exempt.prefixlen
                    and exempt.subnet_of(n)  # type: ignore[arg-type]
                    for n in listed
                )
            ),
            key=lambda n: (n.version, n.network_address, n.prefixlen),
        )


def applicable_rules(rules: list[Rule], institution: str | None, now: datetime) -> list[Rule]:
    """The rules in force that are about the indicator alone, for this zone's institution."""
    return [
        r
        for r in rules
        if not r.expired(now)
        and r.client is None
        and r.sensor is None
        and (r.indicator is not None or r.qname_suffix is not None)
        and (r.institution is None or r.institution == institution)
    ]


def exemptions_for(
    configured: list[str], rules: list[Rule], institution: str | None, now: datetime
) -> Exemptions:
    """The zone's exemptions: its configured ones and the applicable suppression rules."""
    out = Exemptions()
    for item in configured:
        net = parse_network(item)
        if net is not None:
            out.networks.append((net, "exemption"))
        else:
            out.names.setdefault(item.strip().rstrip(".").lower(), "exemption")
    for rule in applicable_rules(rules, institution, now):
        why = f"suppression {rule.id}"
        if rule.qname_suffix is not None and rule.indicator is None:
            out.names.setdefault(rule.qname_suffix, why)
        elif rule.qname_suffix is None and rule.indicator is not None:
            out.indicators.setdefault(rule.indicator, why)
        elif (
            rule.indicator is not None
            and rule.qname_suffix is not None
            and _at_or_below(rule.indicator, rule.qname_suffix)
        ):
            # Both given: every hit of the indicator is under the suffix only when the
            # indicator is at or below it; then the indicator is left out.
            out.indicators.setdefault(rule.indicator, why)
    return out


def _at_or_below(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)
