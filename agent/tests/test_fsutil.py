# SPDX-License-Identifier: Apache-2.0
"""Atomic replacement: the new content lands whole, or the old file stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdnssoc_agent.fsutil import atomic_write_text


class RefusedError(Exception):
    pass


def test_a_refused_check_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "zone.db"
    target.write_text("old\n")
    seen: list[str] = []

    def refuse(candidate: Path) -> None:
        seen.append(candidate.read_text())
        raise RefusedError(candidate.name)

    with pytest.raises(RefusedError):
        atomic_write_text(target, "new\n", check=refuse)
    assert seen == ["new\n"]  # the check read the complete new content
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zone.db"]


def test_an_accepted_check_replaces_the_file_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "zone.db"
    target.write_text("old\n")
    atomic_write_text(target, "new\n", 0o640, check=lambda candidate: None)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zone.db"]
