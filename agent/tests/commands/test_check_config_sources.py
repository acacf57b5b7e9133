# SPDX-License-Identifier: Apache-2.0
"""check-config --secrets reads the keys of ``sources`` entries too."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdnssoc_agent._cli import main


def test_a_missing_source_key_file_is_a_problem_and_a_loose_one_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "agent.yml"
    cfg.write_text(
        f"data_dir: {tmp_path}\n"
        "sources:\n"
        "  - {type: threatfox, name: tf, api_key_file: secrets/threatfox.key}\n"
        "  - {type: list, name: l, url: 'https://l.example/x', indicator_type: domain,"
        " api_key_file: loose.key}\n"
    )
    (tmp_path / "loose.key").write_text("k" * 32 + "\n")
    (tmp_path / "loose.key").chmod(0o644)
    assert main(["-c", str(cfg), "check-config", "--secrets"]) == 3
    out = capsys.readouterr().out
    assert f"sources[0] (tf) api key: cannot read {tmp_path}/secrets/threatfox.key" in out
    assert f"warning: sources[1] (l) api key: {tmp_path}/loose.key is readable by every user" in out
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "threatfox.key").write_text("t" * 32 + "\n")
    (tmp_path / "secrets" / "threatfox.key").chmod(0o600)
    assert main(["-c", str(cfg), "check-config", "--secrets"]) == 0
    assert (
        "MISP servers: none; other sources: tf (threatfox), l (list); " in capsys.readouterr().out
    )
