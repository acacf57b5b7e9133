# SPDX-License-Identifier: Apache-2.0
"""Changes nobody ran a command for are logged and audited: the configuration's, expiries."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.suppress.store import AUDIT_FILE, add_rule, matcher_for_run

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RULE = {"id": "lab", "reason": "the lab", "author": "bob", "sensor": "inst-lab"}


def config(tmp_path: Path, *rules: dict[str, Any]) -> Config:
    return parse_config({"data_dir": str(tmp_path), "suppressions": list(rules)})


def audit(cfg: Config) -> list[tuple[str, str, str]]:
    path = cfg.correlation.state_dir / AUDIT_FILE
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [(e["who"], e["action"], e["rule"]["id"]) for e in entries]


def test_configuration_changes_and_expiry_are_logged_and_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pdnssoc_agent.suppress")
    matcher_for_run(config(tmp_path), NOW)  # first run: nothing in force
    assert "suppression rules in force: none" in caplog.text

    expiring = {**RULE, "expires": "2026-11-28T00:00:00Z"}
    cfg = config(tmp_path, expiring)
    matcher_for_run(cfg, NOW + timedelta(minutes=5))
    assert "suppression rule lab (config) now applies: sensor=inst-lab" in caplog.text
    assert audit(cfg) == [("configuration", "add", "lab")]

    caplog.clear()
    matcher_for_run(cfg, NOW + timedelta(minutes=10))  # nothing changed: nothing said
    assert caplog.text == ""

    add_rule(cfg, {"indicator": "x.example", "reason": "r", "author": "al"}, who="al", now=NOW)
    matcher_for_run(cfg, NOW + timedelta(hours=13))
    assert "suppression rule lab no longer applies: expired at 2026-11-28T00:00:00Z" in (
        caplog.text
    )
    assert "suppression rule 1 (cli) now applies: indicator=x.example" in caplog.text
    # the command audited its own change; the daemon adds the expiry only
    assert audit(cfg) == [
        ("configuration", "add", "lab"),
        ("al", "add", "1"),
        ("expiry", "expire", "lab"),
    ]

    caplog.clear()
    matcher_for_run(config(tmp_path, {**RULE, "id": "lab2"}), NOW + timedelta(hours=14))
    assert "suppression rule lab2 (config) now applies" in caplog.text
    matcher_for_run(config(tmp_path), NOW + timedelta(hours=15))
    assert "suppression rule lab2 no longer applies: removed" in caplog.text
    assert audit(cfg)[-2:] == [
        ("configuration", "add", "lab2"),
        ("configuration", "remove", "lab2"),
    ]
