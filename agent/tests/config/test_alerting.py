# SPDX-License-Identifier: Apache-2.0
"""The alerting fields added for delivery: defaults, parsing and validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pdnssoc_agent.config import ConfigError, parse_config


def test_alerting_defaults() -> None:
    cfg = parse_config({"data_dir": "/srv/d"})
    a = cfg.alerting
    assert a.renotify_after == timedelta(hours=24)
    assert a.retry_after == timedelta(minutes=5)
    assert a.retry_max == timedelta(hours=6)
    assert a.ledger_retention == timedelta(days=30)
    assert a.templates_dir is None


def test_alerting_fields_parse_and_resolve() -> None:
    cfg = parse_config(
        {
            "data_dir": "/srv/d",
            "alerting": {
                "templates_dir": "templates",
                "retry_after": {"minutes": 1},
                "retry_max": {"hours": 1},
                "email": {
                    "from": "a@b.example",
                    "ca_file": "/etc/ssl/ca.pem",
                    "summary_template": "s.html.j2",
                    "max_alerts_per_message": 50,
                },
                "teams": {"webhook_url": "https://x.example/h", "max_message_chars": 1000},
            },
        }
    )
    a = cfg.alerting
    assert a.templates_dir == Path("/srv/d/templates")
    assert a.email is not None
    assert a.email.ca_file == Path("/etc/ssl/ca.pem")
    assert a.email.summary_template == Path("/srv/d/s.html.j2")
    assert a.email.max_alerts_per_message == 50
    assert a.teams is not None
    assert a.teams.max_message_chars == 1000
    assert repr(a.teams.webhook_url) == "Secret('***')"


def test_bad_alerting_values_are_named() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "alerting": {
                    "slack": {"webhook_url": "https://x.example/h", "max_message_chars": 10},
                    "retry_after": {"minutes": 0},
                }
            }
        )
    text = str(err.value)
    assert "alerting.slack.max_message_chars" in text
    assert "alerting.retry_after" in text
