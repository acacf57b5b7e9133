# SPDX-License-Identifier: Apache-2.0
"""Indicator sets and the matcher: cost per lookup independent of how many IOCs.

Domains live in one set; a query name is looked up as is and then label by
label towards the root (``a.b.evil.example`` -> ``b.evil.example`` ->
``evil.example`` -> ``example``), so a subdomain check costs one hash lookup
per label. IPs and CIDRs are integers grouped by prefix length: an address
is masked once per prefix length present (at most 33 for IPv4, 129 for IPv6,
in practice a handful) and looked up in that length's dict. No per-network
scan. Results for recently seen names and addresses are cached, since DNS
traffic repeats itself.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import msgspec

from ..iocs.index import read_header
from ..iocs.lists import DOMAIN_PLACEHOLDER, is_placeholder

log = logging.getLogger(__name__)

CACHE_MAX = 200_000

# A list file made only of these characters holds one normalised name a line
# (no spaces, comments, upper case or non-ASCII), as fetch-iocs writes it.
_PLAIN_NAMES = re.compile(r"[a-z0-9.\-_\n]*")

# (how, indicator) - how is "exact"|"subdomain" for names, "ip"|"cidr" for addresses
NameHit = tuple[str, str]
MISS: NameHit = ("", "")


def normalise_domain(value: str) -> str:
    """Lower case, no trailing dot, IDNA (punycode) for non-ASCII names; '' if unusable."""
    v = value.strip().rstrip(".").lower()
    if not v or " " in v:
        return ""
    if not v.isascii():
        try:
            v = v.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return v


def read_list(path: Path) -> Iterable[str]:
    """Non-empty, non-comment lines of a plain list file, without the empty-list placeholder."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            v = line.strip()
            if v and not v.startswith("#") and not is_placeholder(v):
                yield v


def _parse_network(t: str) -> tuple[int, int, int, str] | None:
    """(version, prefix length, network address, canonical text) of an IPv6 address or a
    CIDR written with a prefix length, as ``ipaddress.ip_network(t, strict=False)`` gives
    them; None when ipaddress should decide (IPv4 inside IPv6, scopes, netmasks, errors).
    The C library's inet_ntop writes IPv6 as ipaddress does (RFC 5952) except for an
    embedded IPv4 address, which is left to ipaddress."""
    addr, slash, plen_text = t.partition("/")
    v6 = ":" in addr
    family, bits = (socket.AF_INET6, 128) if v6 else (socket.AF_INET, 32)
    if slash and not (plen_text.isascii() and plen_text.isdigit() and int(plen_text) <= bits):
        return None
    try:
        packed = socket.inet_pton(family, addr)
    except OSError:
        return None
    plen = int(plen_text) if slash else bits
    host = bits - plen
    value = int.from_bytes(packed) >> host << host
    net_text = socket.inet_ntop(family, value.to_bytes(bits // 8))
    if v6 and "." in net_text:
        return None
    return (6 if v6 else 4, plen, value, net_text if plen == bits else f"{net_text}/{plen}")


class Matcher:
    """Domains, IPs and CIDRs to look DNS data up against."""

    def __init__(
        self,
        domains: Iterable[str] = (),
        networks: Iterable[str] = (),
        *,
        subdomains: bool = True,
        cnames: bool = True,
    ) -> None:
        self.subdomains = subdomains
        self.cnames = cnames
        self.domains: set[str] = set()
        self.invalid: list[str] = []
        for d in domains:
            self.add_domain(d)
        # prefix length -> {network int: indicator text}
        self._v4: dict[int, dict[int, str]] = {}
        self._v6: dict[int, dict[int, str]] = {}
        self.network_count = 0
        self.exact4: dict[str, str] = {}
        """IPv4 indicators (text) by their text: the common case costs one lookup."""
        self._octet4: dict[int, dict[str, str]] = {24: {}, 16: {}, 8: {}}
        self.prefix4: set[str] = set()
        """First three octets ("192.0.2") of every IPv4 address and /24 indicator: an
        answer whose address text is cut to a prefix not in here matches neither."""
        self.v4_bit_aligned = True
        """Every IPv4 network is a /8, /16 or /24: matched on the address text."""
        self.v4_cidrs = False
        self.v6 = False
        self._cidr_lens4: list[int] = []
        self._lens6: list[int] = []
        for text in networks:
            self.add_network(text)
        self.name_cache: dict[str, NameHit | None] = {}
        self.ip_cache: dict[str, NameHit | None] = {}

    def add_domain(self, text: str) -> bool:
        """Add a domain; False (and remembered in ``invalid``) if it is not one."""
        v = text.strip()
        # fast path: already normalised, as fetch-iocs writes the lists
        if v and v.isascii() and v == v.lower() and not v.endswith(".") and " " not in v:
            self.domains.add(v)
            return True
        n = normalise_domain(v)
        if n:
            self.domains.add(n)
            return True
        self.invalid.append(text)
        return False

    def add_domain_file(self, path: Path) -> None:
        """Add every name of a list file; the same as :meth:`add_domain` on each line
        of :func:`read_list`, done in bulk when the file is already normalised."""
        with path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
            text = fh.read()
        if _PLAIN_NAMES.fullmatch(text) and ".\n" not in text and not text.endswith("."):
            names = text.split("\n")
            self.domains.update(names)
            self.domains.discard("")  # from blank lines: never a domain
            self.domains.discard(DOMAIN_PLACEHOLDER)  # what an empty list holds
            return
        for v in read_list(path):
            self.add_domain(v)

    def add_network(self, text: str) -> bool:
        """Add an IP or CIDR; False (and remembered in ``invalid``) if it is not one."""
        t = text.strip()
        if "/" not in t and ":" not in t:
            try:
                packed = socket.inet_pton(socket.AF_INET, t)
            except OSError:
                self.invalid.append(text)
                return False
            return self._add(4, 32, int.from_bytes(packed), ".".join(map(str, packed)))
        fast = _parse_network(t)
        if fast is not None:
            return self._add(*fast)
        try:
            net = ipaddress.ip_network(t, strict=False)
        except ValueError:
            self.invalid.append(text)
            return False
        bits = net.max_prefixlen
        text_form = str(net.network_address) if net.prefixlen == bits else str(net)
        return self._add(net.version, net.prefixlen, int(net.network_address), text_form)

    def _add(self, version: int, plen: int, address: int, text_form: str) -> bool:
        table = self._v4 if version == 4 else self._v6
        bits = 32 if version == 4 else 128
        key = address >> (bits - plen)
        bucket = table.setdefault(plen, {})
        if key not in bucket:
            self.network_count += 1
        bucket[key] = text_form
        if version == 4 and plen == bits:
            self.exact4[text_form] = text_form
            self.prefix4.add(text_form[: text_form.rfind(".")])
        elif version == 4 and plen in (8, 16, 24):
            # "a.b.c" for a /24: found by cutting an address's text at a dot
            octets = ".".join(str((address >> (24 - 8 * i)) & 0xFF) for i in range(plen // 8))
            self._octet4[plen][octets] = text_form
            if plen == 24:
                self.prefix4.add(octets)
        elif version == 4:
            self.v4_bit_aligned = False
        if len(bucket) == 1:
            self._lens6 = sorted(self._v6, reverse=True)
            self._cidr_lens4 = sorted((n for n in self._v4 if n < 32), reverse=True)
        self.v4_cidrs = bool(self._cidr_lens4)
        self.v6 = bool(self._v6)
        return True

    def prefixes(self, version: int) -> dict[int, set[int]]:
        """The IPv4 (4) or IPv6 (6) networks as {prefix length: {address >> host bits}}."""
        table = self._v4 if version == 4 else self._v6
        return {plen: set(bucket) for plen, bucket in table.items() if bucket}

    def network_values(self) -> list[str]:
        """Every IP/CIDR indicator as written in alerts (canonical text)."""
        return [
            v
            for table in (self._v4, self._v6)
            for bucket in table.values()
            for v in bucket.values()
        ]

    @property
    def empty(self) -> bool:
        return not self.domains and not self.network_count

    @property
    def indicator_count(self) -> int:
        return len(self.domains) + self.network_count

    # ------------------------------------------------------------------ names

    def match_name(self, name: str) -> NameHit | None:
        """('exact'|'subdomain', indicator) for a DNS name, or None."""
        cache = self.name_cache
        hit = cache.get(name, MISS)
        if hit is not MISS:
            return hit
        hit = None
        q = name.lower()
        if q.endswith("."):
            q = q.rstrip(".")
        domains = self.domains
        if q in domains:
            hit = ("exact", q)
        elif self.subdomains:
            i = q.find(".")
            while i >= 0:
                i += 1
                if q[i:] in domains:
                    hit = ("subdomain", q[i:])
                    break
                i = q.find(".", i)
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[name] = hit
        return hit

    # ------------------------------------------------------------------ addresses

    def match_ip(self, text: str) -> NameHit | None:
        """('ip'|'cidr', indicator) for an address in an A/AAAA answer, or None."""
        cache = self.ip_cache
        hit = cache.get(text, MISS)
        if hit is not MISS:
            return hit
        hit = None
        exact = self.exact4.get(text)
        if exact is not None:
            hit = ("ip", exact)
        elif ":" in text:
            hit = self._lookup(text, socket.AF_INET6, self._v6, self._lens6, 128)
        elif self._cidr_lens4:
            hit = self._lookup(text, socket.AF_INET, self._v4, self._cidr_lens4, 32)
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[text] = hit
        return hit

    @property
    def slash24(self) -> dict[str, str]:
        """IPv4 /24 indicators by their first three octets ("192.0.2")."""
        return self._octet4[24]

    @property
    def has_slash16_or_8(self) -> bool:
        return bool(self._octet4[16] or self._octet4[8])

    @property
    def v4_by_prefix(self) -> bool:
        """Every IPv4 indicator is an address or a /24: :attr:`prefix4` rules answers out."""
        return self.v4_bit_aligned and not self.has_slash16_or_8

    def match_ip4_text(self, text: str) -> NameHit | None:
        """('ip'|'cidr', indicator) for an IPv4 address text when :attr:`v4_by_prefix`."""
        found = self.exact4.get(text)
        if found is not None:
            return ("ip", found)
        found = self._octet4[24].get(text[: text.rfind(".")])
        return None if found is None else ("cidr", found)

    def match_ip4_cidr(self, text: str) -> NameHit | None:
        """('cidr', network) for an IPv4 address text in a /24, /16 or /8 indicator."""
        o = self._octet4
        j = text.rfind(".")
        found = o[24].get(text[:j])
        if found is None and o[16]:
            j = text.rfind(".", 0, j)
            found = o[16].get(text[:j])
        if found is None and o[8]:
            found = o[8].get(text[: text.find(".")])
        return None if found is None else ("cidr", found)

    @staticmethod
    def _lookup(
        text: str, family: int, table: dict[int, dict[int, str]], lens: list[int], bits: int
    ) -> NameHit | None:
        if not lens:
            return None
        try:
            value = int.from_bytes(socket.inet_pton(family, text.split("%", 1)[0]))
        except OSError:
            return None
        for plen in lens:
            found = table[plen].get(value >> (bits - plen))
            if found is not None:
                return ("ip" if plen == bits else "cidr", found)
        return None


class _IndexDates(msgspec.Struct):
    value: str
    kind: str = ""
    added: int = 0
    updated: int = 0


_dates_decoder = msgspec.json.Decoder(_IndexDates)


def index_dates(path: Path, field: Literal["added", "updated"] = "added") -> dict[str, int]:
    """value -> ``added`` (or ``updated``), epoch s, for every entry of the IOC index,
    contexts skipped."""
    read_header(path)  # validates the format; raises IndexFormatError
    out: dict[str, int] = {}
    with path.open("rb") as fh:
        fh.readline()
        for line in fh:
            if not line.strip():
                continue
            try:
                e = _dates_decoder.decode(line)
            except msgspec.DecodeError:
                continue
            out[e.value] = e.added if field == "added" else e.updated
    return out
