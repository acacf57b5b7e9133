# SPDX-License-Identifier: Apache-2.0
"""Normalise and validate MISP attribute values before they reach the list files.

Pure functions, no I/O. A MISP attribute becomes zero, one or two indicators
(``domain|ip`` carries both); every part that cannot be used is a
:class:`Rejection` with a stable ``reason`` that fetch-iocs counts and logs.

What is done to a value:

* domains: lower case, one trailing dot removed, a leading ``*.`` wildcard
  removed (subdomain matching covers it), internationalised names converted to
  punycode (IDNA 2008 with UTS 46 mapping);
* IPs: canonical text (``ipaddress``), IPv4-mapped IPv6 turned into IPv4 (the
  collector prints such AAAA answers in dotted form), a CIDR with host bits set
  reduced to its network, a /32 or /128 CIDR written as a plain address;
* composite types are split on the last ``|``: ``domain|ip`` gives both parts,
  ``hostname|port`` the name, ``ip-src|port``/``ip-dst|port`` the address.

Rejection reasons (a value is rejected rather than repaired when repairing
would be a guess):

``control_character``  newline, tab, space or another control/format character
``empty``              nothing left after normalisation
``invalid_domain``     a character no DNS name in a list file may hold, an empty
                       label, or an all-numeric top-level label
``invalid_idna``       a non-ASCII name that IDNA cannot encode
``label_too_long``     a label over 63 octets
``name_too_long``      a name over 253 octets
``public_suffix``      the whole name is a public suffix or TLD (``com``,
                       ``co.uk``, ``blogspot.com``): it would match everyone
``invalid_ip``         not an IP address or network
``cidr_too_broad``     a network broader than ``max_prefix_v4``/``max_prefix_v6``
``reserved_ip``        unspecified, loopback, multicast or limited broadcast:
                       sinkholes answer with these, so they would match
                       blocked lookups everywhere
``invalid_composite``  a composite type without its ``|`` separator
``unsupported_type``   an attribute type DNS cannot reveal
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import idna
from publicsuffixlist import PublicSuffixList

Kind = Literal["domain", "ip", "cidr"]

SUPPORTED_TYPES: dict[str, tuple[str, ...]] = {
    # attribute type -> what each "|"-separated part is ("-" = ignored)
    "domain": ("domain",),
    "hostname": ("domain",),
    "domain|ip": ("domain", "ip"),
    "hostname|port": ("domain", "-"),
    "ip-src": ("ip",),
    "ip-dst": ("ip",),
    "ip-src|port": ("ip", "-"),
    "ip-dst|port": ("ip", "-"),
}
"""Attribute types whose values DNS traffic can reveal, and how they split."""

REASONS = (
    "control_character",
    "empty",
    "invalid_domain",
    "invalid_idna",
    "label_too_long",
    "name_too_long",
    "public_suffix",
    "invalid_ip",
    "cidr_too_broad",
    "reserved_ip",
    "invalid_composite",
    "unsupported_type",
)

MAX_LABEL = 63
MAX_NAME = 253

# After lower-casing: letters, digits, hyphen and underscore (SRV/DKIM-style
# names occur in intel), dot-separated, no empty label.
_ASCII_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_PLAIN_NAME = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")
# Any whitespace or C0/C1 control character, DEL included.
_CONTROL = re.compile(r"[\x00-\x20\x7f-\xa0\s]")


@dataclass(frozen=True, slots=True)
class Indicator:
    """One normalised value ready for a list file."""

    kind: Kind
    value: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A part of an attribute value that must not reach the list files."""

    reason: str
    """One of :data:`REASONS`."""
    value: str
    """The offending value, made printable (``repr``) for logs."""
    detail: str = ""


class Normalizer:
    """Turns MISP attribute (type, value) pairs into indicators or rejections."""

    def __init__(
        self,
        *,
        max_prefix_v4: int = 16,
        max_prefix_v6: int = 32,
        psl: PublicSuffixList | None = None,
    ) -> None:
        self.max_prefix_v4 = max_prefix_v4
        self.max_prefix_v6 = max_prefix_v6
        self._psl = psl or PublicSuffixList(accept_unknown=True)

    def attribute(self, attr_type: str, value: str) -> Iterator[Indicator | Rejection]:
        """Every indicator (or rejection) carried by one attribute value."""
        parts_spec = SUPPORTED_TYPES.get(attr_type)
        if parts_spec is None:
            yield Rejection("unsupported_type", _printable(value), attr_type)
            return
        if len(parts_spec) == 1:
            parts = [value]
        else:
            head, sep, tail = value.rpartition("|")
            if not sep:
                yield Rejection("invalid_composite", _printable(value), f"{attr_type} without '|'")
                return
            parts = [head, tail]
        for what, part in zip(parts_spec, parts, strict=True):
            if what == "domain":
                yield self.domain(part)
            elif what == "ip":
                yield self.ip(part)

    def domain(self, value: str) -> Indicator | Rejection:
        """A normalised domain name, or why it cannot be one."""
        name = value.lower()
        if len(name) <= MAX_NAME and _PLAIN_NAME.fullmatch(name):
            # The common case: plain ASCII labels of valid length, no trailing dot.
            if name.rpartition(".")[2].isdigit():
                return Rejection("invalid_domain", _printable(value), "numeric top-level label")
            if self._psl.is_public(name):
                return Rejection("public_suffix", _printable(value))
            return Indicator("domain", name)
        return self._domain_slow(value)

    def _domain_slow(self, value: str) -> Indicator | Rejection:
        if _CONTROL.search(value) or _has_format_char(value):
            return Rejection("control_character", _printable(value))
        name = value.lower()
        if name.endswith("."):
            name = name[:-1]
        if name.startswith("*."):
            name = name[2:]
        if not name:
            return Rejection("empty", _printable(value))
        if not name.isascii():
            try:
                name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
            except idna.IDNAError as exc:
                return Rejection("invalid_idna", _printable(value), str(exc))
            except UnicodeError as exc:  # a label idna cannot even split
                return Rejection("invalid_idna", _printable(value), str(exc))
        if _ASCII_NAME.fullmatch(name) is None:
            return Rejection("invalid_domain", _printable(value), "character or empty label")
        if len(name) > MAX_NAME:
            return Rejection("name_too_long", _printable(value), f"{len(name)} > {MAX_NAME}")
        labels = name.split(".")
        if any(len(label) > MAX_LABEL for label in labels):
            return Rejection("label_too_long", _printable(value), f"a label over {MAX_LABEL}")
        if labels[-1].isdigit():
            return Rejection("invalid_domain", _printable(value), "numeric top-level label")
        if self._psl.is_public(name):
            return Rejection("public_suffix", _printable(value))
        return Indicator("domain", name)

    def ip(self, value: str) -> Indicator | Rejection:
        """A canonical IP address or network, or why it cannot be one."""
        if _CONTROL.search(value) or _has_format_char(value):
            return Rejection("control_character", _printable(value))
        if not value:
            return Rejection("empty", _printable(value))
        if "%" in value:  # a scoped (link-local) address names a local interface
            return Rejection("invalid_ip", _printable(value), "scoped address")
        if _DOTTED_QUAD.fullmatch(value):
            fast = _plain_ipv4(value)
            if fast is not None:
                return fast
        net: ipaddress.IPv4Network | ipaddress.IPv6Network
        try:
            if "/" in value:
                net = ipaddress.ip_network(value, strict=False)
            else:
                addr = ipaddress.ip_address(value)
                net = ipaddress.ip_network(addr)
        except ValueError as exc:
            return Rejection("invalid_ip", _printable(value), str(exc))
        if isinstance(net, ipaddress.IPv6Network):
            mapped = net.network_address.ipv4_mapped
            if mapped is not None and net.prefixlen >= 96:
                net = ipaddress.IPv4Network((mapped, net.prefixlen - 96), strict=False)
        limit = self.max_prefix_v4 if net.version == 4 else self.max_prefix_v6
        if net.prefixlen < limit:
            return Rejection("cidr_too_broad", _printable(value), f"/{net.prefixlen} < /{limit}")
        addr0 = net.network_address
        if (
            addr0.is_unspecified
            or addr0.is_loopback
            or addr0.is_multicast
            or (net.version == 4 and net.broadcast_address == _LIMITED_BROADCAST)
        ):
            return Rejection("reserved_ip", _printable(value))
        if net.prefixlen == net.max_prefixlen:
            return Indicator("ip", str(addr0))
        return Indicator("cidr", str(net))


_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_DOTTED_QUAD = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")


def _plain_ipv4(value: str) -> Indicator | Rejection | None:
    """Fast path for the common case, a canonical dotted quad; None: use ipaddress."""
    octets = [int(o) for o in value.split(".")]
    if any(o > 255 for o in octets):
        return None
    first = octets[0]
    if value == "0.0.0.0" or first == 127 or 224 <= first <= 239 or value == "255.255.255.255":  # noqa: S104
        return Rejection("reserved_ip", _printable(value))
    return Indicator("ip", value)


def _has_format_char(value: str) -> bool:
    """Invisible Unicode (zero-width, bidi controls): categories Cc, Cf, Zl, Zp, Zs."""
    if value.isascii():
        return False
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Zs") for ch in value)


def _printable(value: str, limit: int = 120) -> str:
    """The value as a safe one-line log token (escaped, shortened)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
