# SPDX-License-Identifier: Apache-2.0
"""``pdnssoc-agent suppress add|list|remove``: the round trip, the audit, bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdnssoc_agent._cli import main
from pdnssoc_agent.suppress.store import AUDIT_FILE, RULES_FILE


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SUDO_USER", "alice")
    path = tmp_path / "agent.yml"
    data = {
        "data_dir": str(tmp_path / "data"),
        "suppressions": [
            {
                "id": "scanner",
                "reason": "the CSIRT's own scanner",
                "author": "bob",
                "client": "10.9.0.0/16",
            }
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def cli(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["-c", str(config), "suppress", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def state(config: Path) -> Path:
    return config.parent / "data" / "state"


def test_add_list_remove_round_trip_with_audit(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        config_file,
        capsys,
        "add",
        "--qname-suffix", "sink.inst-a.example",
        "--institution", "inst-a",
        "--reason", "inst-a's sinkhole",
        "--expires", "30d",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("rule 1 added: qname_suffix=sink.inst-a.example, institution=inst-a")
    assert "suppression rule 1 added by alice" in err  # the agent's log
    code, out, _ = cli(
        config_file, capsys, "add", "--indicator", "Bad.Example.com", "--reason", "test event",
        "--author", "carol",
    )  # fmt: skip
    assert (code, out.split(":")[0]) == (0, "rule 2 added")

    code, out, _ = cli(config_file, capsys, "list", "--format", "json")
    rules = json.loads(out)["rules"]
    assert [(r["id"], r["origin"], r["author"]) for r in rules] == [
        ("scanner", "config", "bob"),
        ("1", "cli", "alice"),
        ("2", "cli", "carol"),
    ]
    assert rules[2]["matches"] == "indicator=bad.example.com"
    assert rules[1]["expires"] is not None and rules[1]["hits"] == 0
    code, text, _ = cli(config_file, capsys, "list")
    assert code == 0 and "1 (cli) qname_suffix=sink.inst-a.example" in text
    assert "reason: inst-a's sinkhole" in text

    code, out, err = cli(config_file, capsys, "remove", "1")
    assert (code, out.strip()) == (0, "rule 1 removed: qname_suffix=sink.inst-a.example, "
                                      "institution=inst-a")  # fmt: skip
    assert "suppression rule 1 removed by alice" in err
    # ids are never reused
    cli(config_file, capsys, "add", "--sensor", "inst-c", "--reason", "decommissioned")
    ids = [r["id"] for r in json.loads(cli(config_file, capsys, "list", "--format", "json")[1])[
        "rules"]]  # fmt: skip
    assert ids == ["scanner", "2", "3"]

    audit = state(config_file) / AUDIT_FILE
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["action"], e["rule"]["id"], e["who"]) for e in entries] == [
        ("add", "1", "alice"),
        ("add", "2", "alice"),
        ("remove", "1", "alice"),
        ("add", "3", "alice"),
    ]
    assert entries[1]["rule"]["author"] == "carol"
    assert entries[0]["rule"]["reason"] == "inst-a's sinkhole" and entries[0]["at"].endswith("Z")
    for name in (AUDIT_FILE, RULES_FILE):
        assert not stat.S_IMODE((state(config_file) / name).stat().st_mode) & stat.S_IROTH


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--indicator", "x.example", "--reason", ""], "reason: must not be empty"),
        (["--reason", "everything"], "nothing to match"),
        (["--qname-suffix", "ac.uk", "--reason", "r"], "'ac.uk' is a public suffix"),
        (
            ["--indicator", "x.example", "--reason", "r", "--expires", "2020-01-01"],
            "expires: 2020-01-01T00:00:00Z is in the past",
        ),
        (["--indicator", "x.example", "--reason", "r", "--expires", "soon"], "expires: expected"),
        (["--client", "10.9.0.0/16", "--reason", "again"], "already suppressed by rule scanner"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    config_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, _out, err = cli(config_file, capsys, "add", *args)
    assert code == 2
    assert expected in err
    assert not (state(config_file) / RULES_FILE).exists()
    assert not (state(config_file) / AUDIT_FILE).exists()


def test_an_unknown_option_is_a_usage_error(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(config_file, capsys, "add", "--domain", "x.example", "--reason", "r")
    assert code == 2 and "unrecognized arguments: --domain" in err


def test_remove_names_what_cannot_be_removed(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(config_file, capsys, "remove", "scanner")
    assert code == 2 and "comes from the configuration" in err
    code, _out, err = cli(config_file, capsys, "remove", "7")
    assert code == 2 and "no rule '7'" in err


def test_a_damaged_rules_file_is_named_and_left_alone(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = state(config_file) / RULES_FILE
    path.parent.mkdir(parents=True)
    damaged: dict[str, Any] = {"version": 1, "next_id": 2, "rules": [{"id": "1", "x": 1}]}
    path.write_text(json.dumps(damaged))
    code, _out, err = cli(config_file, capsys, "add", "--sensor", "s", "--reason", "r")
    assert code == 2 and "rules[0]: unknown field(s) x" in err
    assert json.loads(path.read_text()) == damaged
    code, out, _err = cli(config_file, capsys, "list")
    assert code == 1 and "PROBLEM: suppression rules file not used" in out


def test_a_rules_file_the_agent_cannot_read_is_named(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (state(config_file) / RULES_FILE).mkdir(parents=True)  # not a file: cannot be read
    code, out, _err = cli(config_file, capsys, "list")
    assert code == 1 and f"{RULES_FILE}: cannot read: Is a directory" in out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the state directory away")
def test_root_cannot_write_rules_the_agent_could_not_read(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state(config_file).mkdir(parents=True)
    os.chown(state(config_file), 65534, 65534)
    code, _out, err = cli(config_file, capsys, "add", "--sensor", "s", "--reason", "r")
    assert code == 2 and "run this as that user (sudo -u" in err
    assert not (state(config_file) / RULES_FILE).exists()
