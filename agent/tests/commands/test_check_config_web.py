# SPDX-License-Identifier: Apache-2.0
"""``check-config --secrets`` loads the web view's certificate, key and analysts' CA."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
import yaml

from pdnssoc_agent._cli import main


def write(tmp_path: Path, **files: str) -> Path:
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("pdnssoc.example.net")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "web.crt"))
    server.private_key_pem.write_to_path(str(tmp_path / "web.key"))
    other.issue_cert("x.example.net").private_key_pem.write_to_path(str(tmp_path / "other.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    (tmp_path / "web.key").chmod(0o600)
    web = {
        "listen": "127.0.0.1:8443",
        "analysts": ["alice"],
        "tls_cert": str(tmp_path / "web.crt"),
        "tls_key": str(tmp_path / "web.key"),
        "tls_client_ca": str(tmp_path / "ca.crt"),
    }
    web.update({k: str(tmp_path / v) for k, v in files.items()})
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "web": web}))
    return path


def run(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-c", str(path), "check-config", "--secrets"])
    return code, capsys.readouterr().out


def test_loadable_files_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(write(tmp_path), capsys)
    assert code == 0, out
    assert "web" not in out.split(": OK")[0]


def test_a_missing_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(write(tmp_path, tls_key="absent.key"), capsys)
    assert code == 3
    assert f"web.tls_key: cannot read {tmp_path / 'absent.key'}: No such file" in out


def test_a_key_of_another_certificate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(write(tmp_path, tls_key="other.key"), capsys)
    assert code == 3
    assert "do not make a TLS server" in out
    assert "PRIVATE KEY" not in out


def test_a_key_readable_by_everyone_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    (tmp_path / "web.key").chmod(0o644)
    code, out = run(path, capsys)
    assert code == 0
    assert "warning: web.tls_key:" in out and "readable by every user (mode 0644)" in out
