# SPDX-License-Identifier: Apache-2.0
"""Owner names of a response-policy zone, per the RPZ draft (draft-vixie-dnsop-dns-rpz).

A name trigger is the name itself below the zone's origin (``evil.example``)
and, for every name below it, the wildcard (``*.evil.example``). An address or
network trigger is written under ``rpz-ip``: the prefix length, then the
address's parts in reverse order: IPv4 octets (``32.4.3.2.1.rpz-ip`` for
1.2.3.4/32), IPv6 16-bit groups in hex without leading zeros, the longest run
of zero groups written once as ``zz`` (``128.1.zz.db8.2001.rpz-ip`` for
2001:db8::1).

Values come from the indicator index, which fetch-iocs has normalised; they
are checked again here because whatever is written lands in a DNS server's
zone file: a name that cannot be an owner name is refused with a reason and
never written.
"""

from __future__ import annotations

import ipaddress
import re

MAX_NAME = 253
"""Longest domain name in text form (no trailing dot): 255 octets in wire form."""
MAX_LABEL = 63

_LABEL = re.compile(r"[a-z0-9_-]+")
TRIGGER_LABELS = frozenset({"rpz-ip", "rpz-nsip", "rpz-nsdname", "rpz-client-ip"})
"""Labels that turn a name into another kind of trigger: a name ending in one
would not be a name trigger (and no real name ends so)."""


class OwnerError(ValueError):
    """A value that cannot be written as a trigger; ``reason`` is a stable word for counts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def printable(value: str, limit: int = 80) -> str:
    """``value`` for a log line: escapes for anything not printable ASCII, cut to ``limit``."""
    text = value.encode("ascii", "backslashreplace").decode("ascii")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def name_owner(value: str, origin: str) -> str:
    """The name trigger for ``value`` (without the origin); OwnerError says why not.

    ``origin``: the zone's name; the wildcard owner with the origin must fit
    in a domain name too.
    """
    name = value.rstrip(".")
    if not name:
        raise OwnerError("empty", "empty name")
    labels = name.split(".")
    if any(not label for label in labels):
        raise OwnerError("empty_label", f"an empty label in {printable(value)}")
    for label in labels:
        if len(label) > MAX_LABEL:
            raise OwnerError(
                "label_too_long", f"a label of {len(label)} characters in {printable(value)}"
            )
        if not _LABEL.fullmatch(label):
            raise OwnerError(
                "invalid_character",
                f"a character outside letters, digits, '-', '_' in {printable(value)} "
                "(upper case is not expected: the index holds lower-case names)",
            )
    if len(labels) == 1:
        raise OwnerError("single_label", f"{name}: a top-level domain would block all below it")
    if labels[-1] in TRIGGER_LABELS:
        raise OwnerError("trigger_label", f"{name}: ends in {labels[-1]}, an RPZ trigger label")
    full = f"*.{name}.{origin.rstrip('.')}"
    if len(name) > MAX_NAME or len(full) > MAX_NAME:
        raise OwnerError(
            "name_too_long",
            f"{printable(value)}: {len(name)} characters; with '*.' and the zone's name "
            f"the owner would exceed {MAX_NAME}",
        )
    return name


def ip_owner(value: str) -> str:
    """The ``rpz-ip`` trigger (without the origin) for an address or network."""
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise OwnerError("invalid_ip", f"not an address or network: {printable(value)}") from None
    if net.version == 4:
        parts = str(net.network_address).split(".")
        return f"{net.prefixlen}.{'.'.join(reversed(parts))}.rpz-ip"
    packed = net.network_address.packed
    groups = [f"{packed[i] << 8 | packed[i + 1]:x}" for i in range(0, 16, 2)]
    start, length = _longest_zero_run(groups)
    if length >= 2:  # RFC 5952: one zero group is written as 0, a longer run as ::
        groups[start : start + length] = ["zz"]
    return f"{net.prefixlen}.{'.'.join(reversed(groups))}.rpz-ip"


def _longest_zero_run(groups: list[str]) -> tuple[int, int]:
    """(start, length) of the first longest run of "0" groups."""
    best = (0, 0)
    run_start, run = 0, 0
    for i, group in enumerate(groups):
        if group == "0":
            run_start, run = (run_start, run + 1) if run else (i, 1)
            if run > best[1]:
                best = (run_start, run)
        else:
            run = 0
    return best
