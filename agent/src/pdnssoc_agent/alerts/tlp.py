# SPDX-License-Identifier: Apache-2.0
"""TLP ceilings: which MISP details a channel may carry.

MISP marks events and attributes with tags of its ``tlp`` taxonomy:
``tlp:clear`` (formerly ``tlp:white``), ``tlp:green``, ``tlp:amber``,
``tlp:amber+strict`` and ``tlp:red``, plus ``tlp:ex:chr`` (Chatham House
Rule: the source must not be named). An alert carries, per MISP attribute,
the attribute's and its event's tags; the level that applies is the most
restrictive one among them. Each channel has a ceiling: above it, the
message still names the indicator, the sensor, the client and the time, and
links to the MISP event, but leaves out the event's title, comment, tags and
organisation and says they were withheld by TLP.

A ``tlp:`` tag of no known level (``tlp:unclear``, a typo) counts as
``red``; an attribute with no TLP tag at all counts as
``alerting.tlp_unmarked``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msgspec.structs import replace

from ..alertfile import Alert, MispAttribute, alert_object

LEVELS = ("clear", "green", "amber", "amber+strict", "red")
"""TLP 2.0 levels, least restrictive first."""
ALIASES = {"white": "clear"}
CHATHAM_HOUSE = "ex:chr"


def normalise(label: str) -> str | None:
    """``clear``, ``green``, ... for a tag or level name (``tlp:AMBER``), else None."""
    value = label.strip().lower().removeprefix("tlp:")
    value = ALIASES.get(value, value)
    return value if value in LEVELS else None


def level_of(setting: str) -> str:
    """A configured level (``white`` is ``clear``) as one of :data:`LEVELS`."""
    level = normalise(setting)
    if level is None:
        raise ValueError(f"not a TLP level: {setting!r}")
    return level


def rank(level: str) -> int:
    return LEVELS.index(level)


@dataclass(frozen=True)
class Marking:
    """What TLP says about one MISP attribute."""

    level: str
    """The most restrictive level of its tags (or the level of unmarked ones)."""
    marked: bool
    """Whether any ``tlp:`` tag was present."""
    chatham_house: bool
    """``tlp:ex:chr``: the source (the creator organisation) must not be named."""


def marking(ctx: MispAttribute, unmarked: str) -> Marking:
    """The TLP of one MISP attribute of an alert."""
    labels = [t for t in ctx.tags if t.strip().lower().startswith("tlp:")]
    if ctx.tlp:
        labels.append(ctx.tlp)
    chr_rule = False
    worst = -1
    for label in labels:
        value = label.strip().lower().removeprefix("tlp:")
        if value == CHATHAM_HOUSE:
            chr_rule = True
            continue
        level = normalise(label)
        worst = max(worst, rank(level) if level is not None else rank("red"))
    if worst < 0:
        return Marking(unmarked, False, chr_rule)
    return Marking(LEVELS[worst], True, chr_rule)


@dataclass(frozen=True)
class Ceiling:
    """The most a channel may carry, and the level of attributes without a TLP tag."""

    level: str = "red"
    unmarked: str = "amber"

    def allows(self, mark: Marking) -> bool:
        return rank(mark.level) <= rank(self.level)

    @property
    def label(self) -> str:
        return f"TLP:{self.level.upper()}"


def withhold(alert: Alert, ceiling: Ceiling) -> tuple[dict[str, Any], int]:
    """The alert object for a JSON receiver, and how many MISP entries it withholds.

    An entry above the ceiling keeps its server, event id and uuid, link,
    attribute uuid and type, category, time and TLP; its event title
    (``event_info``), comment and organisation become empty and its tags keep
    only the ``tlp:`` ones. The object is otherwise the line as written.
    """
    out: list[MispAttribute] = []
    withheld = 0
    for ctx in alert.misp:
        mark = marking(ctx, ceiling.unmarked)
        if not ceiling.allows(mark):
            withheld += 1
            tags = tuple(t for t in ctx.tags if t.lower().startswith("tlp:"))
            ctx = replace(ctx, event_info="", comment="", org="", tags=tags)  # noqa: PLW2901
        elif mark.chatham_house:
            ctx = replace(ctx, org="")  # noqa: PLW2901
        out.append(ctx)
    return alert_object(replace(alert, misp=tuple(out))), withheld
