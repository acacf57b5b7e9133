# SPDX-License-Identifier: Apache-2.0
"""MISP warninglists applied by the agent, for sources that do not apply them.

A MISP server drops warninglisted values itself (``enforceWarninglist``); a
feed, a list, ThreatFox or a TAXII collection does not. For those,
fetch-iocs checks each indicator against the lists of
``fetch_iocs.warninglists_dir``: a copy of misp-warninglists
(``lists/<name>/list.json``, keys ``name``, ``type``, ``list``,
``matching_attributes``), matched as MISP 2.5's ``Warninglist`` model does:

* a list applies to an attribute type in its ``matching_attributes`` (all
  types when that is empty);
* ``string``: the value equals an entry;
* ``hostname``: the value or one of its parent domains equals an entry
  (entries lower-cased, outer dots trimmed);
* ``substring``: an entry occurs in the value;
* ``cidr``: the value (an address or a network no broader than the entry)
  lies inside an entry;
* ``regex``: a PCRE pattern with delimiters (``/.../i``) matches (a ``g``
  modifier, which some published lists carry, means nothing for a match
  test and is ignored).

A list that cannot be used (unreadable, an unknown type, a bad entry) is
left out with its reason in :attr:`Warninglists.skipped`, and the others
apply: leaving a list out only lets more indicators through. A directory
with no usable list is refused.

Without ``fetch_iocs.warninglists_dir`` the lists come from the
``pymispwarninglists`` package (MISP's own, a dependency of the agent):
:func:`bundled_directory`, only those named in ``fetch_iocs.warninglists``.

Values are checked after normalisation (lower case, punycode, canonical
addresses), so ``Google.COM.`` and ``google.com`` hit the same entry.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LIST_TYPES = ("string", "hostname", "substring", "cidr", "regex")
_PCRE_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class WarninglistError(ValueError):
    """A list file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Hit:
    """Which list a value is on, and the entry it matched."""

    name: str
    entry: str


def _parse_network(text: str) -> tuple[int, int, int]:
    """``(version, network as an int, prefix length)`` of an address or a
    network (host bits cleared, as ``ip_network(strict=False)``); the public
    resolvers' list alone has 60,000 entries, which ``ipaddress`` parses five
    times slower. Raises ValueError for anything else."""
    address, _, length_text = text.partition("/")
    family, width, version = (
        (socket.AF_INET6, 128, 6) if ":" in address else (socket.AF_INET, 32, 4)
    )
    try:
        packed = socket.inet_pton(family, address)
    except OSError:
        raise ValueError(f"not an IP address or network: {text[:80]!r}") from None
    if version == 4 and address.count(".") != 3:
        raise ValueError(f"not an IP address or network: {text[:80]!r}")
    if length_text:
        if not length_text.isdigit() or int(length_text) > width:
            raise ValueError(f"bad prefix length in {text[:80]!r}")
        length = int(length_text)
    else:
        length = width
    mask = ((1 << length) - 1) << (width - length)
    return version, int.from_bytes(packed, "big") & mask, length


class _Networks:
    """IP networks by prefix length: a containment test is one set lookup per length."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._by_len: dict[tuple[int, int], set[int]] = {}
        for entry in entries:
            version, base, length = _parse_network(entry.strip())
            self._by_len.setdefault((version, length), set()).add(base)
        self._lengths = sorted(self._by_len)

    def match(self, value: str) -> str | None:
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None
        width = net.max_prefixlen
        for version, length in self._lengths:
            if version != net.version or length > net.prefixlen:
                continue
            mask = ((1 << length) - 1) << (width - length)
            base = int(net.network_address) & mask
            if base in self._by_len[(version, length)]:
                address = (
                    ipaddress.IPv4Address(base) if version == 4 else ipaddress.IPv6Address(base)
                )
                return f"{address}/{length}"
        return None


def _pcre(pattern: str) -> re.Pattern[str]:
    """A PHP/PCRE pattern with delimiters (``/x/i``, ``#x#``) compiled for Python."""
    if len(pattern) < 2 or pattern[0].isalnum() or pattern[0] == "\\":
        raise ValueError(f"not a delimited PCRE pattern: {pattern[:80]!r}")
    closing = {"(": ")", "[": "]", "{": "}", "<": ">"}.get(pattern[0], pattern[0])
    end = pattern.rfind(closing)
    if end <= 0:
        raise ValueError(f"no closing delimiter in {pattern[:80]!r}")
    flags = 0
    for letter in pattern[end + 1 :]:
        if letter in _PCRE_FLAGS:
            flags |= _PCRE_FLAGS[letter]
        elif letter not in "uUDg":
            raise ValueError(f"unsupported PCRE modifier {letter!r}")
    return re.compile(pattern[1:end], flags)


@dataclass(frozen=True)
class Warninglist:
    name: str
    type: str
    types: frozenset[str]
    entries: Any

    def applies_to(self, attribute_type: str) -> bool:
        return not self.types or "ALL" in self.types or attribute_type in self.types

    def match(self, value: str) -> str | None:
        if self.type == "string":
            return value if value in self.entries else None
        if self.type == "hostname":
            labels = value.split(".")
            for start in range(len(labels)):
                candidate = ".".join(labels[start:])
                if candidate in self.entries:
                    return candidate
            return None
        if self.type == "substring":
            return next((e for e in self.entries if e in value), None)
        if self.type == "cidr":
            found: str | None = self.entries.match(value)
            return found
        return next((p.pattern for p in self.entries if p.search(value)), None)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Warninglist:
        if not isinstance(data, dict):
            raise WarninglistError(
                f"{where}: not a warninglist (a JSON object with name, type, list)"
            )
        name, kind, raw = data.get("name"), data.get("type"), data.get("list")
        if not isinstance(name, str) or not isinstance(raw, list):
            raise WarninglistError(f"{where}: a warninglist needs a 'name' and a 'list'")
        if kind not in LIST_TYPES:
            raise WarninglistError(f"{where}: unknown list type {kind!r} ({', '.join(LIST_TYPES)})")
        values = [str(v) for v in raw if v]
        entries: Any
        try:
            if kind == "string":
                entries = frozenset(values)
            elif kind == "hostname":
                entries = frozenset(v.strip(".").lower() for v in values)
            elif kind == "substring":
                entries = tuple(values)
            elif kind == "cidr":
                entries = _Networks(values)
            else:
                entries = tuple(_pcre(v) for v in values)
        except ValueError as exc:
            raise WarninglistError(f"{where}: a bad {kind} entry: {exc}") from None
        types = frozenset(str(t) for t in data.get("matching_attributes") or [])
        return cls(name, kind, types, entries)


def _applies_to_any(data: Any, attribute_types: Collection[str] | None) -> bool:
    """Whether a list's ``matching_attributes`` reach any of ``attribute_types``."""
    if attribute_types is None or not isinstance(data, dict):
        return True
    types = data.get("matching_attributes") or []
    if not isinstance(types, list) or not types or "ALL" in types:
        return True
    return any(t in types for t in attribute_types)


def bundled_directory() -> Path | None:
    """The lists the ``pymispwarninglists`` package ships, or None without it.

    The package is found, not imported: only its data is read, and its code
    imports jsonschema, which it does not declare as a dependency (so a
    deployment's virtual environment may not have it) and which takes about
    0.3 s to import on every configuration load.
    """
    spec = importlib.util.find_spec("pymispwarninglists")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        lists = Path(location) / "data" / "misp-warninglists" / "lists"
        if lists.is_dir():
            return lists
    return None


class Warninglists:
    """Every list of a directory; :meth:`check` says whether a value is on one."""

    def __init__(self, lists: Iterable[Warninglist], skipped: Iterable[str] = ()) -> None:
        self.lists = list(lists)
        self.skipped = list(skipped)
        """One line per list left out: the file and what is wrong with it."""
        self._for_type: dict[str, list[Warninglist]] = {}

    @classmethod
    def load(
        cls,
        directory: Path,
        attribute_types: Collection[str] | None = None,
        names: Collection[str] | None = None,
    ) -> Warninglists:
        """Every ``*.json`` below ``directory`` (only ``<name>/list.json`` for
        each of ``names`` when given) that applies to ``attribute_types`` (all
        lists when None); raises :class:`WarninglistError` when none is usable
        or a named list is not there."""
        if not directory.is_dir():
            raise WarninglistError(f"{directory}: not a directory of warninglists")
        if names is None:
            paths = sorted(directory.rglob("*.json"))
        else:
            paths = [directory / name / "list.json" for name in names]
            missing = [n for n, p in zip(names, paths, strict=True) if not p.is_file()]
            if missing:
                known = sorted(p.parent.name for p in directory.glob("*/list.json"))
                raise WarninglistError(
                    f"{directory}: no list named {', '.join(missing)} "
                    f"(there are: {', '.join(known)})"
                )
        lists = []
        skipped = []
        found = 0
        for path in paths:
            found += 1
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                skipped.append(f"{path}: unreadable: {exc}")
                continue
            if not _applies_to_any(data, attribute_types):
                continue
            try:
                lists.append(Warninglist.from_dict(data, str(path)))
            except WarninglistError as exc:
                skipped.append(str(exc))
        if not found:
            raise WarninglistError(f"{directory}: no warninglist (*.json) in it")
        if not lists and skipped:
            raise WarninglistError(f"{directory}: no usable warninglist: {skipped[0]}")
        return cls(lists, skipped)

    def check(self, attribute_type: str, value: str) -> Hit | None:
        """The first list ``value`` (of an attribute of that type) is on, or None."""
        applicable = self._for_type.get(attribute_type)
        if applicable is None:
            applicable = [wl for wl in self.lists if wl.applies_to(attribute_type)]
            self._for_type[attribute_type] = applicable
        for wl in applicable:
            entry = wl.match(value)
            if entry is not None:
                return Hit(wl.name, entry)
        return None

    def __len__(self) -> int:
        return len(self.lists)
