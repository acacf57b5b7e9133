# SPDX-License-Identifier: Apache-2.0
"""Taking over a data root from the tool that correlated it before (pdnssoc-cli).

pdnssoc-cli records in ``correlation.last`` the time up to which it has
correlated (the newest match it reported, or its run's start) and in
``retro.last`` when its retro search last ran. When this agent first runs
``correlate`` or ``retro`` on a data root, before it has any state of its own,
it records those two pointers once in ``<state_dir>/handover.json``. Until a
step has completed its first scheduled run (a run without PATH), and in every
run over given PATHs (a catch-up over the predecessor's files), a match is
taken as already handled, and not alerted again, when:

* the DNS answer is dated at or before the predecessor's pointer
  (``correlation.last`` for ``correlate``; the later of both for ``retro``,
  whose archive also holds what the predecessor's live runs read);
* it is a match the predecessor could make: the query name itself, or an A or
  AAAA answer (``exact``, ``ip``, ``cidr``; pdnssoc-cli saw no subdomains and no
  CNAMEs, so those are new and are alerted);
* and the predecessor could know the indicator: the IOC index (when there is
  one) has no MISP attribute for it newer than the pointer.

A data root without pointer files, or one this agent already worked on, has no
predecessor: nothing is held back.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import Config
from ..errors import IndexFormatError, StateError
from ..fsutil import atomic_write_text, locked
from ..state import read_pointer
from ..timefmt import format_rfc3339, parse_rfc3339_or_none
from .indicators import index_dates
from .scan import Hit

log = logging.getLogger(__name__)

HANDOVER_FILE = "handover.json"
STATE_FILES = ("correlate.state.json", "retro.state.json")
HANDLED_HOW = frozenset({"exact", "ip", "cidr"})
"""Match kinds pdnssoc-cli made (whole query names, A/AAAA answers in networks)."""


@dataclass(frozen=True)
class Pointers:
    """The predecessor's pointers as they were when this agent first ran."""

    correlation_last: datetime | None
    retro_last: datetime | None


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    with locked(state_dir / f".{HANDOVER_FILE}.lock"):
        yield


def _pointer(path: Path) -> datetime | None:
    try:
        return read_pointer(path)
    except StateError as exc:
        log.warning("%s; taken as no pointer", exc)
        return None


def _time(value: object) -> datetime | None:
    return parse_rfc3339_or_none(value) if isinstance(value, str) else None


def predecessor_pointers(config: Config) -> Pointers:
    """The pointers recorded at this agent's first run (recorded now if this is it)."""
    corr = config.correlation
    path = corr.state_dir / HANDOVER_FILE
    with _locked(corr.state_dir):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = None
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); taken as no predecessor", path, exc)
            return Pointers(None, None)
        if isinstance(data, dict):
            return Pointers(_time(data.get("correlation_last")), _time(data.get("retro_last")))
        if any((corr.state_dir / name).exists() for name in STATE_FILES):
            found = Pointers(None, None)  # this agent ran here before the file existed
        else:
            found = Pointers(
                _pointer(corr.last_correlation_pointer_file),
                _pointer(corr.last_retro_pointer_file),
            )
        record = {
            "correlation_last": format_rfc3339(found.correlation_last)
            if found.correlation_last
            else None,
            "retro_last": format_rfc3339(found.retro_last) if found.retro_last else None,
        }
        atomic_write_text(path, json.dumps(record) + "\n")
        if found.correlation_last or found.retro_last:
            log.info(
                "first run on this data root: matches up to correlation.last %s / retro.last "
                "%s were handled before (pdnssoc-cli) and are not alerted again",
                record["correlation_last"],
                record["retro_last"],
            )
        return found


class Predecessor:
    """Tells the matches the predecessor handled from those it did not."""

    def __init__(self, until: datetime, index_file: Path | None) -> None:
        self.until = until
        self.until_s = until.timestamp()
        self.updated: dict[str, int] | None = None
        self.held_back = 0
        if index_file is not None:
            try:
                self.updated = index_dates(index_file, "updated")
            except (OSError, IndexFormatError) as exc:
                log.warning("IOC index unusable, taking every indicator as known before: %s", exc)

    def new(self, hits: list[Hit], when: datetime) -> list[Hit]:
        """The hits of one DNS message that the predecessor did not report."""
        if when > self.until:
            return hits
        updated = self.updated
        keep = [
            h
            for h in hits
            if h[0] not in HANDLED_HOW
            or (updated is not None and updated.get(h[1], 0) > self.until_s)
        ]
        self.held_back += len(hits) - len(keep)
        return keep

    def report(self, step: str) -> None:
        if self.held_back:
            log.info(
                "%s: %d match(es) dated up to %s not alerted: handled before this agent's "
                "first run (docs/migration.md)",
                step,
                self.held_back,
                format_rfc3339(self.until),
            )


def for_step(config: Config, step: str, index_file: Path | None) -> Predecessor | None:
    """The predecessor filter of ``step`` (``correlate`` or ``retro``), or None."""
    p = predecessor_pointers(config)
    until = (
        p.correlation_last
        if step == "correlate"
        else max((t for t in (p.correlation_last, p.retro_last) if t is not None), default=None)
    )
    return Predecessor(until, index_file) if until is not None else None
