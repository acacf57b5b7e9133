# SPDX-License-Identifier: Apache-2.0
"""The alerts these tests write follow the published alert schema, and the parser
accepts what the schema allows."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema

from pdnssoc_agent.alertfile import parse_alert
from tests.support.alerts import alert_line


def schema() -> dict[str, Any]:
    text = resources.files("pdnssoc_agent").joinpath("schemas/alert.schema.json").read_text()
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def test_fixture_alerts_follow_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    samples = [
        alert_line(),
        alert_line(kind="retro", revision=3, count=7),
        alert_line(name="<img src=x>.evil.example", comment="<script>"),
    ]
    for sample in samples:
        errors = sorted(validator.iter_errors(sample), key=lambda e: list(e.path))
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
        alert = parse_alert(sample)
        assert alert.id == sample["id"]
        assert alert.misp[0].tlp == "tlp:amber"


def test_minimal_schema_alert_parses() -> None:
    minimal = {
        "schema_version": 1,
        "id": "0" * 32,
        "revision": 1,
        "kind": "live",
        "detected_at": "2026-11-27T10:00:00Z",
        "first_seen": "2026-11-27T10:00:00Z",
        "last_seen": "2026-11-27T10:00:00Z",
        "count": 1,
        "sensor": "s",
        "client": "c",
        "query": {"name": "a.example", "type": "A", "rcode": "NXDOMAIN"},
        "answers": [],
        "match": {"how": "exact", "indicator": "a.example", "value": "a.example"},
        "misp": [],
        "ioc_added": None,
        "source": {"file": "/x"},
    }
    jsonschema.validate(minimal, schema())
    alert = parse_alert(minimal)
    assert alert.misp == ()
    assert alert.answers == ()
