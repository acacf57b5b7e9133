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
skipped. Files are known by their content, as correlate knows them (the
fingerprint of their first bytes, decompressed): a file rotated, renamed or
compressed in between is still the same file, one read to the end is not
read again, and one not seen by the stopped run (the new live query log) is
read whole. The checkpoint is ``<state_dir>/retro.resume.json``, written
atomically before the state that names it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..dnslog import head_bytes
from ..fsutil import atomic_write_text
from ..timefmt import format_rfc3339, parse_rfc3339_or_none
from .inputs import FP_LEN, fingerprint
from .retro_store import Gaps

log = logging.getLogger(__name__)

RESUME_FILE = "retro.resume.json"
STATE_KEY = "retro_resume"
"""Key of the retro state naming the checkpoint (absent: none)."""


Ident = tuple[str, int]
"""A file's content: the fingerprint of its first bytes, and how many there were."""


def ident(path: Path) -> Ident:
    """What identifies ``path``'s content (its first :data:`FP_LEN` bytes, decompressed)."""
    head = head_bytes(path, FP_LEN)
    return fingerprint(head), len(head)


@dataclass(frozen=True)
class FileLeft:
    """A file the stopped run had not read to the end."""

    path: Path
    ident: Ident
    gaps: Gaps | None
    """The ranges the history store left (None: all of it)."""


@dataclass(frozen=True)
class Checkpoint:
    now: datetime
    """The stopped run's time: the resumed run searches the same look-back."""
    domains: list[str]
    networks: list[str]
    """The indicators it searched for."""
    snapshot: str
    """File name (in the state directory) of every indicator of the run."""
    files: list[FileLeft]
    """Files still to read."""
    done: list[Ident]
    """Files read to the end (by this run or the runs it resumes)."""


def save(state_dir: Path, cp: Checkpoint) -> str:
    """Write ``cp`` atomically; its file name, for the retro state."""
    body = {
        "version": 1,
        "now": format_rfc3339(cp.now),
        "domains": cp.domains,
        "networks": cp.networks,
        "snapshot": cp.snapshot,
        "files": [
            {
                "path": str(f.path),
                "ident": list(f.ident),
                "gaps": None if f.gaps is None else [list(r) for r in f.gaps],
            }
            for f in cp.files
        ],
        "done": [list(d) for d in cp.done],
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
        files = [
            FileLeft(Path(f["path"]), _ident(f["ident"]), _gaps(f["gaps"])) for f in body["files"]
        ]
        cp = Checkpoint(
            now=now,  # type: ignore[arg-type]  # checked below
            domains=[str(d) for d in body["domains"]],
            networks=[str(n) for n in body["networks"]],
            snapshot=str(body["snapshot"]),
            files=files,
            done=[_ident(d) for d in body["done"]],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("retro: checkpoint %s unusable (%s); searching from the start", path, exc)
        return None
    if cp.now is None or not (state_dir / cp.snapshot).is_file():
        log.warning("retro: checkpoint %s incomplete; searching from the start", path)
        return None
    return cp


def _ident(value: Any) -> Ident:
    fp, length = value
    return str(fp), int(length)


def _gaps(value: Any) -> Gaps | None:
    if value is None:
        return None
    return [(int(lo), None if hi is None else int(hi)) for lo, hi in value]


def discard(state_dir: Path) -> None:
    """Remove the checkpoint file (once the state no longer names it)."""
    (state_dir / RESUME_FILE).unlink(missing_ok=True)


def _matches(head: bytes, known: Ident) -> bool:
    fp, length = known
    if length == 0:
        return not head
    return len(head) >= length and fingerprint(head[:length]) == fp


def plan(cp: Checkpoint, candidates: list[Path]) -> list[tuple[Path, Gaps | None]]:
    """What the resumed run reads of ``candidates`` (the files in the look-back now).

    A file the stopped run left is read (with the store's gaps), one it read
    to the end is not, and one it never saw is read whole.
    """
    left = list(cp.files)
    done = list(cp.done)
    out: list[tuple[Path, Gaps | None]] = []
    for path in candidates:
        head = head_bytes(path, FP_LEN)
        was = next((f for f in left if _matches(head, f.ident)), None)
        if was is not None:
            left.remove(was)
            out.append((path, was.gaps))
            continue
        read = next((d for d in done if _matches(head, d)), None)
        if read is not None:
            done.remove(read)
            continue
        out.append((path, None))
    for f in left:
        log.warning("retro: %s, left by the stopped run, is gone: not searched", f.path)
    return out
