# SPDX-License-Identifier: Apache-2.0
"""MISP warninglists, matched the way MISP's ``Warninglist`` model matches them.

A list is a misp-warninglists ``list.json`` (keys ``name``, ``type``,
``matching_attributes``, ``list``). Matching follows MISP 2.5
(``app/Model/Warninglist.php``):

* a list applies to an attribute when its ``matching_attributes`` holds the
  attribute type (or is empty, which MISP stores as ``ALL``);
* composite values (``domain|ip``, ``ip-dst|port``...) are split at the first
  ``|`` and each half is checked;
* ``string``: exact, case-sensitive match (``.google.com`` only matches the
  literal ``.google.com``, as in MISP);
* ``hostname``: the value (scheme and path dropped, trailing dot removed) or
  one of its parent domains equals an entry (entries lower-cased, dots trimmed);
* ``substring``: an entry occurs in the value;
* ``cidr``: the value is an IP (or a network no broader than the entry) inside
  an entry;
* ``regex``: a PCRE pattern with delimiters (``/.../i``) matches.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LIST_TYPES = ("string", "hostname", "substring", "cidr", "regex")
_PCRE_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class WarninglistError(ValueError):
    """A warninglist file that cannot be used; the message names the file and the problem."""


class CidrSet:
    """IP networks, looked up by prefix length (as MISP's CidrTool does)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._nets: dict[int, dict[int, set[int]]] = {4: {}, 6: {}}
        for entry in entries:
            net = ipaddress.ip_network(entry.strip(), strict=False)
            bits = net.max_prefixlen - net.prefixlen
            by_len = self._nets[net.version].setdefault(net.prefixlen, set())
            by_len.add(int(net.network_address) >> bits)
        self._lengths = {v: sorted(d) for v, d in self._nets.items()}

    def match(self, value: str) -> str | None:
        """The entry containing ``value`` (an address or a network), or None."""
        address, _, mask = value.partition("/")
        parsed = _parse_ip(address)
        if parsed is None:
            return None
        version, as_int = parsed
        width = 32 if version == 4 else 128
        value_len = width
        if mask:
            if not mask.isdigit() or int(mask) > width:
                return None
            value_len = int(mask)
        nets = self._nets[version]
        for length in self._lengths[version]:
            if length > value_len:
                break
            prefix = as_int >> (width - length)
            if prefix in nets[length]:
                network = ipaddress.ip_address(prefix << (width - length))
                return f"{network}/{length}"
        return None


def _parse_ip(text: str) -> tuple[int, int] | None:
    """(version, integer) of an IP address, or None; IPv4 without the ipaddress module."""
    if ":" not in text:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
            return None
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) > 255:
            return None
        return 4, (a << 24) | (b << 16) | (c << 8) | d
    try:
        ip = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return 6, int(ip)


def _compile_pcre(pattern: str) -> re.Pattern[str]:
    """Compile a PHP/PCRE pattern with delimiters (``/x/i``, ``#x#``) for Python."""
    if len(pattern) < 2 or pattern[0].isalnum() or pattern[0] == "\\":
        raise ValueError(f"not a delimited PCRE pattern: {pattern!r}")
    closing = {"(": ")", "[": "]", "{": "}", "<": ">"}.get(pattern[0], pattern[0])
    end = pattern.rfind(closing)
    if end <= 0:
        raise ValueError(f"no closing delimiter in {pattern!r}")
    flags = 0
    for letter in pattern[end + 1 :]:
        if letter in _PCRE_FLAGS:
            flags |= _PCRE_FLAGS[letter]
        elif letter not in "uUD":
            raise ValueError(f"unsupported PCRE modifier {letter!r} in {pattern!r}")
    return re.compile(pattern[1:end], flags)


def _hostname_of(value: str) -> str:
    """What MISP's ``__evalHostname`` treats as the host part of a value."""
    parts = value.split("/")
    host = parts[2] if "//" in value and len(parts) > 2 else parts[0]
    return host.rstrip(".")


@dataclass
class Warninglist:
    """One loaded list."""

    name: str
    type: str
    matching_attributes: frozenset[str]
    entries: Any = field(repr=False)
    source: str = ""

    def applies_to(self, attribute_type: str) -> bool:
        return "ALL" in self.matching_attributes or attribute_type in self.matching_attributes

    def match_one(self, value: str) -> str | None:
        """The entry that ``value`` hits (one side of a composite), or None."""
        if self.type == "string":
            return value if value in self.entries else None
        if self.type == "hostname":
            labels = _hostname_of(value).split(".")
            for start in range(len(labels) - 1, -1, -1):
                candidate = ".".join(labels[start:])
                if candidate in self.entries:
                    return candidate
            return None
        if self.type == "substring":
            return next((e for e in self.entries if e in value), None)
        if self.type == "cidr":
            result: str | None = self.entries.match(value)
            return result
        for pattern in self.entries:  # regex
            if pattern.search(value):
                return str(pattern.pattern)
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> Warninglist:
        """Build a list from the ``list.json`` structure; raises WarninglistError."""
        try:
            name = str(data["name"])
            list_type = str(data["type"])
            raw = data["list"]
        except (KeyError, TypeError) as exc:
            raise WarninglistError(f"{source}: missing key {exc}") from exc
        if list_type not in LIST_TYPES:
            raise WarninglistError(f"{source}: unknown list type {list_type!r}")
        values = [str(v) for v in (raw if isinstance(raw, list) else dict(raw)) if v]
        matching = frozenset(data.get("matching_attributes") or ["ALL"])
        entries: Any
        try:
            if list_type == "string":
                entries = frozenset(values)
            elif list_type == "hostname":
                entries = frozenset(v.strip(".").lower() for v in values)
            elif list_type == "substring":
                entries = tuple(values)
            elif list_type == "cidr":
                entries = CidrSet(values)
            else:
                entries = tuple(_compile_pcre(v) for v in values)
        except ValueError as exc:
            raise WarninglistError(f"{source}: bad {list_type} entry: {exc}") from exc
        return cls(name, list_type, matching, entries, source)


class Warninglists:
    """The enabled warninglists of the stand-in."""

    def __init__(self, lists: Iterable[Warninglist] = ()) -> None:
        self.lists: list[Warninglist] = list(lists)
        self._by_type: dict[str, list[Warninglist]] = {}

    @classmethod
    def from_dir(cls, directory: Path) -> Warninglists:
        """Load every ``*.json`` below ``directory`` (flat files or ``<name>/list.json``)."""
        if not directory.is_dir():
            raise WarninglistError(f"{directory}: not a directory")
        lists = []
        for path in sorted(directory.rglob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise WarninglistError(f"{path}: unreadable warninglist: {exc}") from exc
            lists.append(Warninglist.from_dict(data, str(path)))
        log.info("loaded %d warninglists from %s", len(lists), directory)
        return cls(lists)

    def check(self, attribute_type: str, value: str) -> tuple[Warninglist, str, str] | None:
        """First (list, matched entry, value part) hit for an attribute, or None."""
        if attribute_type == "malware-sample" or "|" in attribute_type:
            parts = value.split("|", 1)
        else:
            parts = [value]
        applicable = self._by_type.get(attribute_type)
        if applicable is None:
            applicable = [wl for wl in self.lists if wl.applies_to(attribute_type)]
            self._by_type[attribute_type] = applicable
        for wl in applicable:
            for part in parts:
                hit = wl.match_one(part)
                if hit is not None:
                    return wl, hit, part
        return None

    def __len__(self) -> int:
        return len(self.lists)
