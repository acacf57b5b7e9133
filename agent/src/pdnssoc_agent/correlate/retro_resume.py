# SPDX-License-Identifier: Apache-2.0
"""The checkpoint a stopped retro leaves, and its next run resumes from.

When the daemon is asked to stop, retro stops at the next chunk boundary
(:mod:`pdnssoc_agent.stopping`). It drops what it found in the file it was
reading, commits the alerts of the files it finished, and writes this
checkpoint: the run's time (so the same look-back), the indicators it
searched for, the snapshot of every indicator it would have written, and
the files (with the byte ranges the history store did not answer for) still
to read, the interrupted one first and whole. ``retro.last`` does not move.

The next run reads the rest of the files for the same indicators and then
finishes as the stopped run would have: nothing is read twice, nothing is
skipped. The checkpoint is ``<state_dir>/retro.resume.json``, written
atomically before the state that names it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..timefmt import format_rfc3339, parse_rfc3339_or_none
from .retro_store import Gaps

log = logging.getLogger(__name__)

RESUME_FILE = "retro.resume.json"
STATE_KEY = "retro_resume"
"""Key of the retro state naming the checkpoint (absent: none)."""


@dataclass(frozen=True)
class Checkpoint:
    now: datetime
    """The stopped run's time: the resumed run searches the same look-back."""
    domains: list[str]
    networks: list[str]
    """The indicators it searched for."""
    snapshot: str
    """File name (in the state directory) of every indicator of the run."""
    files: list[tuple[Path, Gaps | None]]
    """Files still to read; the ranges the history store left (None: all of it)."""


def save(state_dir: Path, cp: Checkpoint) -> str:
    """Write ``cp`` atomically; its file name, for the retro state."""
    body = {
        "version": 1,
        "now": format_rfc3339(cp.now),
        "domains": cp.domains,
        "networks": cp.networks,
        "snapshot": cp.snapshot,
        "files": [
            {"path": str(p), "gaps": None if g is None else [list(r) for r in g]}
            for p, g in cp.files
        ],
    }
    atomic_write_text(state_dir / RESUME_FILE, json.dumps(body) + "\n")
    return RESUME_FILE


def read(state_dir: Path, extra: dict[str, Any]) -> Checkpoint | None:
    """The checkpoint the retro state names; None when there is none or it is unusable."""
    name = extra.get(STATE_KEY)
    if not isinstance(name, str):
        return None
    path = state_dir / name
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        now = parse_rfc3339_or_none(body["now"])
        files = [(Path(f["path"]), _gaps(f["gaps"])) for f in body["files"]]
        cp = Checkpoint(
            now=now,  # type: ignore[arg-type]  # checked below
            domains=[str(d) for d in body["domains"]],
            networks=[str(n) for n in body["networks"]],
            snapshot=str(body["snapshot"]),
            files=files,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("retro: checkpoint %s unusable (%s); searching from the start", path, exc)
        return None
    if cp.now is None or not (state_dir / cp.snapshot).is_file():
        log.warning("retro: checkpoint %s incomplete; searching from the start", path)
        return None
    return cp


def _gaps(value: Any) -> Gaps | None:
    if value is None:
        return None
    return [(int(lo), None if hi is None else int(hi)) for lo, hi in value]


def discard(state_dir: Path) -> None:
    """Remove the checkpoint file (once the state no longer names it)."""
    (state_dir / RESUME_FILE).unlink(missing_ok=True)
