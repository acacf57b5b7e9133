# SPDX-License-Identifier: Apache-2.0
"""The configuration: pdnssoc-cli files load as they are; mistakes are reported per key."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import ConfigError, load_config, parse_config, read_secret
from pdnssoc_agent.config._schema import Problem, build

# The configuration tree pdnssoc-cli 0.0.5 reads (shared/reference/pdnssoc-cli-config.md).
PDNSSOC_CLI_CONFIG = textwrap.dedent(
    """\
    logging_level: INFO
    misp_servers:
      - domain: https://misp.example.org/
        api_key: "secret-key"
        verify_ssl: true
        debug: false
        args: {enforce_warninglist: true}
        periods:
          generic: {delta: {days: 7}}
          tags:
            - names: [apt, "tlp:amber"]
              delta: {days: 150}
    correlation:
      input_dir: /var/dnscollector/matches
      output_dir: /var/dnscollector/alerts
      archive_dir: /var/dnscollector/archive
      malicious_domains_file: /var/dnscollector/misp/misp_domains.txt
      malicious_ips_file: /var/dnscollector/misp/misp_ips.txt
      last_correlation_pointer_file: /var/dnscollector/correlation.last
      last_retro_pointer_file: /var/dnscollector/retro.last
    alerting:
      last_alerting_pointer_file: /var/dnscollector/alert.last
      email:
        from: security@example.org
        subject: "[pDNSSOC] DNS alert"
        summary_to: soc@example.org
        server: localhost
        port: 25
        template: /etc/pdnssoccli/alert_email.html
        mappings:
          - client_id: client_1
            contact: sec-team@institution.example
    schedules:
      fetch_iocs: {interval: 60}
      correlation: {interval: 1}
      retro: {interval: 1440}
      alerting: {interval: 7}
    """
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yml"
    path.write_text(text)
    return path


def test_pdnssoc_cli_config_loads_with_same_meaning(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, PDNSSOC_CLI_CONFIG))
    server = cfg.misp_servers[0]
    assert server.label == "misp.example.org"
    assert server.api_key == "secret-key"
    assert server.args == {"enforce_warninglist": True}
    assert server.periods.generic.delta == timedelta(days=7)
    assert server.periods.tags[0].names == ["apt", "tlp:amber"]
    assert server.periods.tags[0].delta == timedelta(days=150)
    assert cfg.correlation.input_dir == Path("/var/dnscollector/matches")
    assert cfg.alerting.email is not None
    assert cfg.alerting.email.from_ == "security@example.org"
    assert cfg.alerting.email.mappings[0].client_id == "client_1"
    assert cfg.schedules.alerting.interval == 7


def test_defaults_follow_the_seed_deployment() -> None:
    cfg = parse_config({})
    assert cfg.correlation.input_dir == Path("/var/dnscollector/matches")
    assert cfg.correlation.malicious_domains_file == Path("/var/dnscollector/misp/misp_domains.txt")
    assert cfg.schedules.fetch_iocs.interval == 60
    assert cfg.schedules.alerting.interval == 5
    assert cfg.fetch_iocs.max_prefix_v4 == 16
    assert cfg.fetch_iocs.max_prefix_v6 == 32


def test_relative_paths_resolve_against_data_dir() -> None:
    cfg = parse_config({"data_dir": "/srv/pdnssoc", "correlation": {"input_dir": "m"}})
    assert cfg.correlation.input_dir == Path("/srv/pdnssoc/m")
    assert cfg.correlation.output_dir == Path("/srv/pdnssoc/alerts")
    assert cfg.alerting.last_alerting_pointer_file == Path("/srv/pdnssoc/alert.last")


def test_every_problem_is_reported_with_its_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "misp_servers": [
                    {"domain": "https://a/", "api_key": "k", "verfy_ssl": False},
                    {"url": "ftp://b"},
                ],
                "correlation": {"match_subdomains": "yes"},
                "schedules": {"retro": {"interval": 0}},
                "colour": "blue",
            }
        )
    text = {str(p) for p in info.value.problems}
    assert any(
        t.startswith("misp_servers[0].verfy_ssl: unknown key; did you mean 'verify_ssl'")
        for t in text
    )
    assert (
        "misp_servers[1].domain: expected an http(s) URL such as https://misp.example.org/, "
        "got scheme 'ftp'"
    ) in text
    assert any(t.startswith("misp_servers[1].api_key: one of api_key") for t in text)
    assert "correlation.match_subdomains: expected true or false, got 'yes'" in text
    assert (
        "schedules.retro.interval: must be at least 1 (allowed: 1 to 525600 minutes), got 0"
    ) in text
    assert any(t.startswith("colour: unknown key") for t in text)
    assert len(info.value.problems) == 6


def test_duration_units_are_checked() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"correlation": {"retro_lookback": {"dayz": 3}}})
    assert str(info.value.problems[0]).startswith("correlation.retro_lookback.dayz: unknown")


def test_legacy_keys_are_accepted_with_a_warning() -> None:
    cfg = parse_config({"correlation": {"alerts_database": "/x", "alerts_database_max_size": 300}})
    assert [w.path for w in cfg.warnings] == [
        "correlation.alerts_database",
        "correlation.alerts_database_max_size",
    ]


def test_duplicate_server_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"same name 'misp\.example\.org'"):
        parse_config(
            {
                "misp_servers": [
                    {"domain": "https://misp.example.org", "api_key": "a"},
                    {"domain": "https://misp.example.org/", "api_key": "b"},
                ]
            }
        )


def test_password_in_clear_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"alerting\.email\.security"):
        parse_config({"alerting": {"email": {"from": "a@b", "username": "u", "password": "p"}}})


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "key"
    key.write_text("from-file\n")
    assert read_secret("k", None, key, None) == "from-file"
    monkeypatch.setenv("MISP_KEY", "from-env")
    assert read_secret("k", None, None, "MISP_KEY") == "from-env"
    assert repr(read_secret("k", "inline", None, None)) == "Secret('***')"
    with pytest.raises(ValueError, match="MISSING_VAR is not set"):
        read_secret("k", None, None, "MISSING_VAR")


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, PDNSSOC_CLI_CONFIG)
    assert main(["-c", str(good), "check-config"]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text("misp_servers:\n  - domain: https://m/\n    api_kee: x\n")
    assert main(["-c", str(bad), "check-config"]) == 3
    out = capsys.readouterr().out
    assert "misp_servers[0].api_kee: unknown key; did you mean 'api_key'?" in out
    assert "secret" not in out


def test_check_config_secrets_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "misp_servers:\n  - domain: https://m/\n    api_key_file: /nonexistent\n")
    assert main(["-c", str(cfg), "check-config"]) == 0
    assert main(["-c", str(cfg), "check-config", "--secrets"]) == 3
    assert "cannot read /nonexistent" in capsys.readouterr().out


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1,\n"))


@dataclass(frozen=True)
class _Section:
    pid_file: Path | None = Path("/run/x.pid")
    port: int = 25


def test_explicit_null_on_optional_field_stays_null() -> None:
    problems: list[Problem] = []
    assert build(_Section, {"pid_file": None}, "s", problems).pid_file is None
    assert problems == []
    # A bad value falls back to the default (so later checks run) and is reported.
    assert build(_Section, {"port": "x"}, "s", problems).port == 25
    assert [str(p) for p in problems] == ["s.port: expected an integer, got 'x'"]


def _paths(value: object, where: str = "") -> Iterator[tuple[str, Path]]:
    if isinstance(value, Path):
        yield where, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _paths(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _paths(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, f"{where}.{k}")


def test_every_path_in_every_section_is_absolute_after_parsing(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "misp_servers": [
                {
                    "domain": "https://misp.example/",
                    "api_key_file": "secrets/misp.key",
                    "ca_file": "ca/misp.pem",
                }
            ],
            "fetch_iocs": {"collector_pid_file": "run/dnscollector.pid"},
            "alerting": {
                "email": {
                    "from": "a@csirt.example",
                    "summary_to": "soc@csirt.example",
                    "server": "smtp.example",
                    "username": "agent",
                    "security": "starttls",
                    "password_file": "secrets/smtp",
                },
                "webhook": {"webhook_url_file": "secrets/hook"},
            },
        }
    )
    found = dict(_paths(cfg))
    relative = {k: p for k, p in found.items() if not p.is_absolute()}
    assert not relative
    assert found[".misp_servers[0].api_key_file"] == tmp_path / "secrets/misp.key"
    assert found[".misp_servers[0].ca_file"] == tmp_path / "ca/misp.pem"
    assert found[".fetch_iocs.collector_pid_file"] == tmp_path / "run/dnscollector.pid"
    assert found[".alerting.email.password_file"] == tmp_path / "secrets/smtp"
