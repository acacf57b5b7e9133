# SPDX-License-Identifier: Apache-2.0
"""Plain indicator lists over HTTP(S): one value a line, a CSV column, a hosts file.

Every value of a list has the one type the configuration declares
(``indicator_type``). Lines starting with ``#`` or ``;`` are comments, and so
is the rest of a line after `` #`` or `` ;`` (Spamhaus DROP writes
``1.10.16.0/20 ; SBL256894``). In a hosts file (URLhaus's hostfile, or any
``/etc/hosts``-style list) the first field is the address the name is pointed
at, and every further field is a name; the names every hosts file starts
with (``localhost``, ``broadcasthost``, ``ip6-allnodes``...) are skipped.

A list says what is bad now: each record is stamped with the time of the
fetch, so age limits never drop a listed value; a value leaves the index when
it leaves the list. A line that is not UTF-8 is decoded with replacement
characters and then rejected by the value checks (counted and logged), never
silently dropped. An empty answer or an HTML page (an error or login page
served with status 200) fails the source, which then keeps its last good
indicators: either would otherwise empty its share of the lists.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator

from .http import HttpSource
from .source import Attribute

_INLINE_COMMENT = re.compile(r"\s[#;].*$")
# The names every hosts file starts with (/etc/hosts of Linux, BSD and macOS):
# not indicators, and not worth a rejection warning on every run.
_HOSTS_BOILERPLATE = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",  # noqa: S104 (a name some hosts files list, not an address bound)
    }
)
_HTML = re.compile(rb"\s*(<!doctype html|<html|<head|<body)", re.IGNORECASE)


class ListSource(HttpSource):
    """One configured list (``sources[].type: list``)."""

    def event_url(self, event_id: str) -> str:
        return self.url

    def records(self, since: int) -> list[Attribute]:
        body = self.request(self.url).content
        if not body.strip():
            raise self.error("empty answer: no list")
        if _HTML.match(body[:512]):
            raise self.error("an HTML page, not a list")
        text = body.decode("utf-8", errors="replace")
        stamp = int(time.time())
        kind = self.config.indicator_type or "domain"
        return [
            Attribute(
                value=value,
                type=kind,
                id=f"{lineno}:{n}",
                category="Network activity",
                timestamp=stamp,
                comment=f"line {lineno}",
            )
            for lineno, values in self._lines(text)
            for n, value in enumerate(values)
        ]

    def _lines(self, text: str) -> Iterator[tuple[int, list[str]]]:
        cfg = self.config
        lines = text.splitlines()
        start = cfg.skip_lines
        for lineno, raw in enumerate(lines[start:], start=start + 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if cfg.format == "csv":
                row = next(csv.reader([line], delimiter=cfg.delimiter))
                if len(row) < cfg.column:
                    raise self.error(
                        f"line {lineno} has {len(row)} column(s), the value is in column "
                        f"{cfg.column}"
                    )
                yield lineno, [row[cfg.column - 1].strip()]
                continue
            line = _INLINE_COMMENT.sub("", line).strip()
            if cfg.format == "hosts":
                fields = line.split()
                if len(fields) < 2:
                    raise self.error(f"line {lineno}: expected an address and a name")
                names = [f for f in fields[1:] if f.lower() not in _HOSTS_BOILERPLATE]
                if names:
                    yield lineno, names
            else:
                yield lineno, [line]
