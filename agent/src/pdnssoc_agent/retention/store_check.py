# SPDX-License-Identifier: Apache-2.0
"""The history store's segments read in full once, by the retention step.

Segment files never change once listed, so each is read in full (every page's
checksum: :meth:`..history.HistoryStore.check`) once after it appears, and
again on every run while it is found damaged. What was found is kept in
``<state_dir>/history-check.json`` for ``status``, which itself only checks
each segment's size, footer and format (cheap enough for a monitoring probe).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import AgentError
from ..fsutil import atomic_write_text

log = logging.getLogger(__name__)

STATE_FILE = "history-check.json"


def state_path(config: Config) -> Path:
    return config.correlation.state_dir / STATE_FILE


def load(path: Path) -> dict[str, Any]:
    """The last check's record ({} when none or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_store(config: Config, now_iso: str) -> list[str]:
    """Read the segments not read in full before; the problems of the store now."""
    from ..history import HistoryStore  # noqa: PLC0415 - pyarrow only when used

    root = config.history.dir
    if not (root / "MANIFEST.json").is_file():
        return []
    path = state_path(config)
    done = set(load(path).get("verified", []))
    store = HistoryStore(root)
    try:
        segments = store.manifest().segments
    except AgentError as exc:
        problems = [str(exc)]
        verified: list[str] = []
    else:
        problems = []
        verified = []
        for seg in segments:
            if seg.path in done:
                verified.append(seg.path)
                continue
            problem = store.check(seg)
            if problem is None:
                verified.append(seg.path)
            else:
                problems.append(problem)
                log.warning("history store: %s", problem)
    atomic_write_text(
        path,
        json.dumps({"at": now_iso, "problems": problems, "verified": verified}, indent=1) + "\n",
    )
    return problems
