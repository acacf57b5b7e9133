# SPDX-License-Identifier: Apache-2.0
"""Secret files: the first line is the secret; loose files are reported; a secret
never reaches a log line, the output, the ledger or ``status`` in any escaped form."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from misp_standin import MispStandin
from pdnssoc_agent._cli import main
from pdnssoc_agent.alerts import alerts_file, ledger_dir
from pdnssoc_agent.config import load_config, read_secret
from pdnssoc_agent.sanitize import printable, redact
from tests.support.alerts import alert_line, append_alerts
from tests.support.iocs import attr
from tests.support.iocs import event as fresh_event
from tests.support.sightings import event

KEY = "two-line-key-0123456789abcdef0123456789"


@pytest.fixture
def misp() -> Iterator[MispStandin]:
    with MispStandin(api_keys={KEY: "CERT-X"}, events=[event("1", "bad.example.com")]) as s:
        yield s


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "misp.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(cfg), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def write_config(tmp_path: Path, misp: MispStandin, key: Path) -> Path:
    path = tmp_path / "agent.yml"
    server = {
        "domain": misp.url,
        "name": "misp1",
        "api_key_file": str(key),
        "timeout": 5,
        "sightings": {"enabled": True},
    }
    data = {
        "data_dir": str(tmp_path),
        "misp_servers": [server],
        "fetch_iocs": {"reload_collector": False},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_only_the_first_line_is_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = key_file(tmp_path, "  first-line-secret \nsecond line\n\n")
    with caplog.at_level(logging.WARNING):
        assert read_secret("k", None, path, None) == "first-line-secret"
    assert "has more than one line; only the first is used" in caplog.text
    assert "second line" not in caplog.text and "first-line-secret" not in caplog.text
    with pytest.raises(ValueError, match=r"the first line of .* is empty"):
        read_secret("k", None, key_file(tmp_path, "\nkey-on-line-two\n"), None)


def test_fetch_with_a_two_line_key_file_leaks_nothing(tmp_path: Path, misp: MispStandin) -> None:
    misp.add_event(fresh_event("fresh", [attr("domain", "fresh.example")]))
    cfg = write_config(tmp_path, misp, key_file(tmp_path, f"{KEY}\nthe second line\n"))
    proc = cli(cfg, "fetch-iocs")
    assert proc.returncode == 0, proc.stderr
    assert "fetch-iocs: 1 domains" in proc.stdout
    assert "has more than one line; only the first is used" in proc.stderr
    assert KEY not in proc.stdout + proc.stderr


def test_sightings_with_a_two_line_key_file_leak_nothing(tmp_path: Path, misp: MispStandin) -> None:
    cfg_path = write_config(tmp_path, misp, key_file(tmp_path, f"{KEY}\nthe second line\n"))
    cfg = load_config(cfg_path)
    append_alerts(alerts_file(cfg), alert_line(name="bad.example.com"))
    proc = cli(cfg_path, "alert")
    assert proc.returncode == 0, proc.stderr
    assert "sightings:misp1: sent 1 alert(s)" in proc.stdout
    status = cli(cfg_path, "status", "--json")
    for text in (proc.stdout, proc.stderr, status.stdout, status.stderr):
        assert KEY not in text
    for stored in ledger_dir(cfg).iterdir():
        assert KEY.encode() not in stored.read_bytes(), stored
    assert len(misp.sightings) == 1


def test_loose_key_files_and_plain_http_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = key_file(tmp_path, "k" * 40 + "\n", 0o644)
    other_group = tmp_path / "other.key"
    other_group.write_text("o" * 40 + "\n")
    other_group.chmod(0o640)
    os.chown(other_group, -1, 54321)  # a group this process is not in
    own_group = tmp_path / "own.key"
    own_group.write_text("p" * 40 + "\nextra\n")
    own_group.chmod(0o640)
    os.chown(own_group, -1, os.getegid())
    cfg = tmp_path / "agent.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path),
                "misp_servers": [
                    {"domain": "http://a.example/", "name": "a", "api_key_file": str(world)},
                    {"domain": "https://b.example/", "name": "b", "api_key_file": str(other_group)},
                    {"domain": "https://c.example/", "name": "c", "api_key_file": str(own_group)},
                ],
            }
        )
    )
    assert main(["-c", str(cfg), "check-config", "--secrets"]) == 0
    out = capsys.readouterr().out
    assert "misp_servers[0].domain: plain http" in out
    assert f"misp_servers[0] (a) api key: {world} is readable by every user (mode 0644)" in out
    assert f"misp_servers[1] (b) api key: {other_group} is readable by group 54321" in out
    assert f"{own_group} is readable" not in out
    assert f"misp_servers[2] (c) api key: {own_group} has more than one line" in out
    assert "k" * 40 not in out and "o" * 40 not in out
    # The plain check (without --secrets) does not open secret files.
    assert main(["-c", str(cfg), "check-config"]) == 0
    assert "readable" not in capsys.readouterr().out


def test_check_config_secrets_reads_relative_files_under_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "secrets").mkdir()
    key_file(tmp_path / "secrets", "k" * 40 + "\n")
    cfg = tmp_path / "agent.yml"
    cfg.write_text(
        f"data_dir: {tmp_path}\n"
        "misp_servers:\n  - {domain: 'https://m.example/', api_key_file: secrets/misp.key}\n"
    )
    assert main(["-c", str(cfg), "check-config", "--secrets"]) == 0, capsys.readouterr().out


# -- redaction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    ["plain0123456789abcdef", 'a"quote\\back/slash é+plus&amp 42', "tab\there-and-new\nline-0123"],
    ids=["plain", "specials", "controls"],
)
def test_redaction_covers_escaped_forms(secret: str) -> None:
    forms = {
        "as is": secret,
        "json": json.dumps(secret)[1:-1],
        "json ascii": json.dumps(secret, ensure_ascii=True)[1:-1],
        "repr": repr(secret)[1:-1],
        "url": quote(secret, safe=""),
        "url path": quote(secret),
        "form": quote_plus(secret),
        "printable": printable(secret),
    }
    for name, form in forms.items():
        text = f"error: header value {form!s} refused"
        cleaned = redact(text, secret)
        assert form not in cleaned, name
        assert cleaned.startswith("error: header value ") and cleaned.endswith(" refused")


def test_printable_escapes_and_bounds() -> None:
    text = "a\nb\r\x1b[31m\u2028\x85" + "x" * 1000
    out = printable(text, 100)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\u2028" not in out
    assert out.startswith("a\\nb\\r\\x1b[31m\\u2028\\x85")
    assert len(out) <= 100 + 30


def test_sightings_read_a_relative_key_file_under_data_dir(
    tmp_path: Path, misp: MispStandin
) -> None:
    (tmp_path / "secrets").mkdir()
    key_file(tmp_path / "secrets", f"{KEY}\n")
    cfg_path = write_config(tmp_path, misp, Path("secrets/misp.key"))
    cfg = load_config(cfg_path)
    append_alerts(alerts_file(cfg), alert_line(name="bad.example.com"))
    proc = cli(cfg_path, "alert")  # run from the test's directory, not data_dir
    assert proc.returncode == 0, proc.stderr
    assert "sightings:misp1: sent 1 alert(s)" in proc.stdout
    assert len(misp.sightings) == 1
