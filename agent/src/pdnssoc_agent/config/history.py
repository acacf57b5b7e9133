# SPDX-License-Identifier: Apache-2.0
"""``history``: the passive-DNS history store that correlate fills and retro and hunt read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._schema import Problem


@dataclass(frozen=True)
class History:
    """Paths are relative to ``data_dir`` unless absolute."""

    enabled: bool = True
    """correlate folds every reply it reads into the store; retro searches it
    for the part of its look-back it covers; ``hunt`` reads it."""
    dir: Path = Path("history")
    """The store's directory (Parquet day partitions and a manifest)."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        prefix = f"{path}." if path else ""
        if self.dir == Path() or str(self.dir).strip() == "":
            problems.append(Problem(f"{prefix}dir", "must name a directory"))
