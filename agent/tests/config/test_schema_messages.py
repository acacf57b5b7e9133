# SPDX-License-Identifier: Apache-2.0
"""Configuration errors name the key and the expected type, never a secret's value;
``misp_servers[].args`` is checked against what the agent can pass to MISP."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import ConfigError, parse_config

SECRET = "S3cr3tKeyValue0123456789"

MISPLACED = [
    (
        f"misp_servers: {{domain: https://m.example/, api_key: {SECRET}}}\n",
        "misp_servers: expected a list, got a mapping with keys domain, api_key",
    ),
    (
        f"alerting:\n  slack: https://hooks.slack.example/services/T0/B0/{SECRET}\n",
        "alerting.slack: expected a mapping, got a string of",
    ),
    (
        "alerting:\n  email: {from: a@b.example, username: u, security: tls, "
        f"password: [{SECRET}]}}\n",
        "alerting.email.password: expected a string, got a list of 1 item(s)",
    ),
    (
        f"alerting:\n  webhook: {{webhook_url: {{url: https://h.example/{SECRET}}}}}\n",
        "alerting.webhook.webhook_url: expected a string, got a mapping with keys url",
    ),
    (
        f"alerting:\n  slack: {{'https://hooks.example/{SECRET}': x}}\n",
        "alerting.slack.<a key of",
    ),
    (
        f"misp_servers:\n  - {{domain: 'https://user:{SECRET}@m.example/', api_key: k}}\n",
        "misp_servers[0].domain: must not carry a user name or password",
    ),
    (
        f"misp_servers:\n  - {{domain: 'ftp://{SECRET}@m.example/', api_key: k}}\n",
        "misp_servers[0].domain: expected an http(s) URL",
    ),
    (
        f"misp_servers:\n  - domain: https://m.example/\n    api_key: {SECRET}: oops\n",
        "not valid YAML: line 3, column",
    ),
    (
        f'misp_servers:\n  - domain: https://m.example/\n    api_key: "{SECRET}\n',
        "not valid YAML: line",
    ),
    (
        f"alerting:\n  email: {{from: a@b.example, password: {{{SECRET}: 1}}}}\n",
        "alerting.email.password: expected a string, got a mapping with keys <a key of",
    ),
]


@pytest.mark.parametrize(("text", "expect"), MISPLACED, ids=range(len(MISPLACED)))
def test_a_secret_in_the_wrong_place_is_not_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expect: str
) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(text)
    assert main(["-c", str(path), "check-config"]) == 3
    out = capsys.readouterr()
    assert expect in out.out
    for shown in (out.out, out.err):
        assert SECRET not in shown
        assert SECRET[-15:] not in shown
    # Other commands report the same problems through the log.
    with pytest.raises(SystemExit) as exit_info:
        main(["-c", str(path), "status"])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert expect in err
    assert SECRET not in err and SECRET[-15:] not in err


def test_a_numeric_password_is_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"alerting": {"email": {"from": "a@b", "password": 98765432123}}})
    assert "98765432123" not in str(info.value)
    assert "alerting.email.password: expected a string, got an integer" in str(info.value)


# -- misp_servers[].args -------------------------------------------------------------


def _server(args: dict[str, object]) -> dict[str, object]:
    return {"misp_servers": [{"domain": "https://m.example/", "api_key": "k", "args": args}]}


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("type_attribute", ["ip-src"], "set by the agent itself (types are set by fetch_iocs"),
        ("type", "domain", "set by the agent itself"),
        ("controller", "events", "set by the agent itself (the agent always searches attributes"),
        ("pythonify", True, "set by the agent itself (the agent decodes the raw JSON"),
        ("return_format", "csv", "set by the agent itself"),
        ("returnFormat", "csv", "set by the agent itself"),
        ("limit", 10, "set by the agent itself (paging is set by page_size)"),
        ("include_event_tags", False, "set by the agent itself"),
        ("to_ids", 0, "set by the agent itself (set by fetch_iocs.to_ids_only)"),
        ("quickFilter", "x", "not supported: makes MISP ignore every other filter"),
        ("metadata", True, "not supported: would leave the attributes out"),
        ("requested_attributes", "value", "not supported: CSV export only"),
    ],
)
def test_args_the_agent_sets_or_that_change_the_answer_are_refused(
    key: str, value: object, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_server({key: value}))
    (problem,) = info.value.problems
    assert problem.path == f"misp_servers[0].args.{key}"
    assert problem.message.startswith(reason), problem


@pytest.mark.parametrize(
    "value",
    [{"OR": [{"deep": [1]}]}, [[1]], {"a": {"b": 1}}, float("nan")],
    ids=["mapping-of-mappings", "list-of-lists", "nested-mapping", "nan"],
)
def test_args_values_are_plain(value: object) -> None:
    with pytest.raises(ConfigError, match=r"misp_servers\[0\]\.args\.published: expected a value"):
        parse_config(_server({"published": value}))


def test_args_that_misp_understands_are_passed_and_unknown_ones_warned() -> None:
    cfg = parse_config(
        _server(
            {
                "enforce_warninglist": True,  # pdnssoc-cli's own example
                "excludeDecayed": True,
                "decayingModel": [3],
                "event_tags": {"OR": ["apt"], "NOT": ["tlp:red"]},
                "modelOverrides": {"threshold": 30},
                "exludeDecayed": True,
            }
        )
    )
    assert cfg.misp_servers[0].args["event_tags"] == {"OR": ["apt"], "NOT": ["tlp:red"]}
    (warning,) = [w for w in cfg.warnings if ".args." in w.path]
    assert warning.path == "misp_servers[0].args.exludeDecayed"
    assert "did you mean 'excludeDecayed'?" in warning.message


def test_plain_http_misp_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.yml"
    path.write_text("misp_servers:\n  - {domain: 'http://misp.example/', api_key_env: K}\n")
    assert main(["-c", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "warning: misp_servers[0].domain: plain http: the API key and the indicators" in out
