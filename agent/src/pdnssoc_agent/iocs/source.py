# SPDX-License-Identifier: Apache-2.0
"""Where indicators come from: the interface every indicator source implements.

A source only fetches. It answers a :class:`Query` with pages of
:class:`Attribute` records and names what it is; everything else happens
once, in the shared fetch path (:mod:`pdnssoc_agent.iocs.fetch`), for every
source alike: the IDS-flag filter, the age limits by tag period, the checks
against poisoned intel (:mod:`pdnssoc_agent.iocs.normalize`), merging sources,
and keeping a failed source's last good indicators.

:class:`~pdnssoc_agent.iocs.misp.MispSource` is one implementation. Another
source (a feed, a CSV file, a TAXII collection) subclasses
:class:`IndicatorSource`, maps its records onto :class:`Attribute` (MISP's
attribute model, the shape MISP feeds already use), raises
:class:`SourceError` when it fails, and is built from the configuration in
:mod:`pdnssoc_agent.iocs.configured`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from ..config import Periods
from ..errors import UpstreamError
from ..sanitize import printable

# -- records ------------------------------------------------------------------


class Tag(msgspec.Struct):
    name: str = ""


class Org(msgspec.Struct):
    name: str = ""


class EventRef(msgspec.Struct):
    """The event an attribute belongs to (MISP attaches it to each search result)."""

    id: int | str = ""
    uuid: str = ""
    info: str = ""
    orgc_id: int | str = ""
    Orgc: Org | None = None
    Tag: list[Tag] = []


class Attribute(msgspec.Struct):
    """One indicator record as a source hands it over (the fields fetch-iocs uses).

    ``timestamp`` (epoch seconds) is what the age limits compare; ``to_ids``
    is MISP's IDS flag; tags of the attribute and of its event both count.
    """

    value: str
    type: str
    id: int | str = ""
    uuid: str = ""
    category: str = ""
    to_ids: bool = True
    timestamp: int = 0
    comment: str = ""
    first_seen: str | None = None
    """When the source first saw it, ISO 8601 text as MISP writes it (None: not said)."""
    event_id: int | str = ""
    Event: EventRef | None = None
    Tag: list[Tag] = []


# -- the interface ------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What the fetch path asks a source for."""

    types: tuple[str, ...]
    """Attribute types wanted (``fetch_iocs.types``)."""
    to_ids: bool
    """Only attributes with the IDS flag (a source may also leave this to the fetch path)."""
    since: int
    """Only attributes changed at or after this time (epoch seconds)."""
    tags: tuple[str, ...] | None = None
    """Only attributes carrying one of these tags (of their own or of their event)."""


class SourceError(UpstreamError):
    """One source failed; ``reason`` says how, without naming the source."""

    def __init__(self, label: str, url: str, reason: str) -> None:
        super().__init__(f"{label} ({url}): {reason}")
        self.label = label
        self.reason = reason


class IndicatorSource(ABC):
    """One configured place indicators come from."""

    label: str
    """Short name used in logs, reports, alerts and the IOC index; unique among sources."""
    url: str
    """Where it is, for people (reports, the index header); never carries a secret."""
    periods: Periods
    """Age limits: the generic one, and longer or shorter ones by tag."""

    @abstractmethod
    def pages(self, query: Query) -> Iterator[list[Attribute]]:
        """The attributes matching ``query``, a page at a time.

        Raises :class:`SourceError` (also part-way through) when the source
        fails; the fetch path then keeps this source's previous indicators.
        """

    @property
    def applies_warninglists(self) -> bool:
        """Whether the source applies MISP's warninglists itself (a MISP server does).

        When it does not, fetch-iocs checks its values against
        ``fetch_iocs.warninglists_dir`` (:mod:`pdnssoc_agent.iocs.warninglists`).
        """
        return False

    def org_name(self, event: EventRef) -> str:
        """The name of the organisation that created ``event``; empty when unknown."""
        return event.Orgc.name if event.Orgc is not None else ""

    def event_url(self, event_id: str) -> str:
        """Where an analyst reads the event (put into alerts); empty when there is none."""
        return ""

    def clean(self, text: str) -> str:
        """``text`` (an unexpected error's message) safe to log: one line, no secret."""
        return printable(text, 300)
