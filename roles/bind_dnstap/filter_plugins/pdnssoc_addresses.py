# SPDX-License-Identifier: Apache-2.0
"""Filter of the bind_dnstap role: which of a host's addresses a list of networks covers.

``addresses | pdnssoc_covered_by(networks)`` gives ``[[address, network], ...]`` for each
address inside one of the networks (addresses or CIDRs, as in
``dnscollector_sensor_drop_query_ips``). Standard library only (``ipaddress``): the
controller needs no netaddr. An entry that is not an address or network is an error
that names it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from ansible.errors import AnsibleFilterError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(text: object) -> Network:
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError as err:
        raise AnsibleFilterError(
            f"pdnssoc_covered_by: {text!r} is not an IP address or network ({err})"
        ) from err


def covered_by(addresses: Iterable[object], networks: Iterable[object]) -> list[list[str]]:
    """Each address with the first network that contains it."""
    nets = [_network(n) for n in networks]
    found: list[list[str]] = []
    for text in addresses:
        address = _network(text).network_address
        for net in nets:
            if address.version == net.version and address in net:
                found.append([str(address), str(net)])
                break
    return found


class FilterModule:
    """The role's filters."""

    def filters(self) -> dict[str, Callable[..., list[list[str]]]]:
        return {"pdnssoc_covered_by": covered_by}
