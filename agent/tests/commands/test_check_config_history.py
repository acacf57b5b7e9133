# SPDX-License-Identifier: Apache-2.0
"""check-config and the history store on a ClickHouse cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdnssoc_agent._cli import main

MISP = "misp_servers:\n  - {domain: 'https://m.example/', api_key: 'k0k1k2k3k4k5k6k7k8k9ka'}\n"


def _config(tmp_path: Path, clickhouse: str) -> Path:
    cfg = tmp_path / "agent.yml"
    cfg.write_text(f"data_dir: {tmp_path}\n{MISP}history:\n  engine: clickhouse\n{clickhouse}")
    return cfg


def test_the_cluster_password_file_is_checked_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, "  clickhouse: {url: 'http://ch1.example:8123/', "
                  "password_file: secrets/ch.key}\n")  # fmt: skip
    assert main(["-c", str(cfg), "check-config", "--secrets"]) != 0
    out = capsys.readouterr()
    assert "history.clickhouse password" in out.out + out.err
    (tmp_path / "secrets").mkdir()
    key = tmp_path / "secrets" / "ch.key"
    key.write_text("s3cret-cluster-password\n")
    key.chmod(0o600)
    assert main(["-c", str(cfg), "check-config", "--secrets"]) == 0
    out = capsys.readouterr()
    assert "ClickHouse cluster through http://ch1.example:8123/ (database pdnssoc)" in out.out
    assert "s3cret" not in out.out + out.err


def test_a_url_with_credentials_or_no_password_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, "  clickhouse: {url: 'http://u:p@ch1.example:8123/'}\n")
    assert main(["-c", str(cfg), "check-config"]) != 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "history.clickhouse.url: must carry no user name, password or query" in text
    assert "history.clickhouse.password_file: is required" in text
