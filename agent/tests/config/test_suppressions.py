# SPDX-License-Identifier: Apache-2.0
"""``suppressions`` in the configuration, as check-config reports it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import publicsuffixlist
import pytest
import yaml

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import load_config
from pdnssoc_agent.suppress import rules
from pdnssoc_agent.suppress.store import config_rules

GOOD = {"id": "sinkhole", "reason": "own sinkhole", "author": "alice", "sensor": "inst-a"}


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], rules: list[Any]) -> tuple[int, str]:
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "suppressions": rules}))
    code = main(["-c", str(path), "check-config"])
    return code, capsys.readouterr().out


def test_every_bad_rule_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(
        tmp_path,
        capsys,
        [
            {**GOOD, "reason": ""},
            {**GOOD, "id": "b", "colour": "red"},
            {"id": "c", "reason": "r", "author": "a", "institution": "inst-a"},
            {**GOOD, "id": "d", "sensor": None, "qname_suffix": "-bad-.example"},
            {**GOOD, "id": "sinkhole"},
            {**GOOD, "id": "7"},
            {**GOOD, "id": "e", "expires": "next week"},
        ],
    )
    assert code == 3
    assert "suppressions[0].reason: must not be empty" in out
    assert "suppressions[1].colour: unknown key" in out
    assert "suppressions[2]: nothing to match" in out
    assert "suppressions[3].qname_suffix: not a domain name" in out
    assert "suppressions[5].id: expected 1-64 characters" in out
    assert "suppressions[6].expires: expected an RFC 3339 time or a date" in out


def test_check_config_refuses_a_public_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, capsys, [GOOD, {**GOOD, "id": "d", "qname_suffix": "*.co.uk"}])
    assert code == 3
    assert "INVALID, 1 problem(s)" in out
    assert "suppressions[1].qname_suffix: 'co.uk' is a public suffix" in out


class _UnreadableList:
    """Stands in for publicsuffixlist's list: reading it fails the test."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the public-suffix list was read")


def test_loading_the_configuration_does_not_read_the_public_suffix_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon loads its configuration on every start and reload: no 2 s list read."""
    monkeypatch.setattr(publicsuffixlist, "PublicSuffixList", _UnreadableList)
    rules._psl.cache_clear()
    path = tmp_path / "agent.yml"
    rule = {**GOOD, "sensor": None, "qname_suffix": "sinkhole.example.org"}
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "suppressions": [rule]}))
    cfg = load_config(path)
    (loaded,) = config_rules(cfg)
    assert loaded.qname_suffix == "sinkhole.example.org"
    with pytest.raises(AssertionError, match="public-suffix list was read"):
        rules.public_suffix("com")  # where it is needed, it is read
    monkeypatch.undo()
    rules._psl.cache_clear()


def test_duplicate_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(tmp_path, capsys, [GOOD, {**GOOD, "indicator": "x.example"}])
    assert code == 3 and "suppressions[1].id: same id as suppressions[0]" in out


def test_an_expired_rule_is_a_warning_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule expiring by itself must not stop the agent from starting."""
    code, out = check(tmp_path, capsys, [{**GOOD, "expires": "2020-01-01"}])
    assert code == 0
    assert "warning: suppressions[0] (sinkhole): expired on 2020-01-01" in out


def test_unquoted_yaml_dates_and_times_are_expiries(tmp_path: Path) -> None:
    """YAML reads ``expires: 2027-06-30`` as a date (the role renders what it is given)."""
    path = tmp_path / "agent.yml"
    path.write_text(
        f"data_dir: {tmp_path}\nsuppressions:\n"
        "  - {id: a, reason: r, author: x, sensor: s, expires: 2027-06-30}\n"
        "  - {id: b, reason: r, author: x, sensor: t, expires: 2027-06-30T12:00:00Z}\n"
    )
    rules = config_rules(load_config(path))
    assert [r.expires.isoformat() if r.expires else None for r in rules] == [
        "2027-06-30T00:00:00+00:00",
        "2027-06-30T12:00:00+00:00",
    ]
