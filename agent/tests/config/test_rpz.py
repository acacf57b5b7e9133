# SPDX-License-Identifier: Apache-2.0
"""The ``rpz`` section: off by default, every wrong value named."""

from __future__ import annotations

import pytest

from pdnssoc_agent.config import ConfigError, parse_config


def test_off_by_default_with_the_bind_commands() -> None:
    rpz = parse_config({"data_dir": "/srv/pdnssoc"}).rpz
    assert not rpz.enabled and rpz.zones == []
    assert str(rpz.zone_dir) == "/srv/pdnssoc/rpz"
    assert rpz.reload_command == ["/usr/sbin/rndc", "reload"]


def test_every_problem_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "rpz": {
                    "enabled": True,
                    "checkzone_command": "named-checkzone",
                    "reload_command": ["rndc", "reload"],
                    "ttl": 0,
                    "zones": [
                        {"name": "rpz"},
                        {"name": "Bad Zone.example", "exemptions": ["ok.example", "no way"]},
                    ],
                }
            }
        )
    text = str(err.value)
    for expected in (
        "rpz.checkzone_command: must be an absolute path",
        "rpz.reload_command[0]: must be an absolute path",
        "rpz.ttl",
        "rpz.zones[0].name: one label would shadow a top-level domain",
        "rpz.zones[1].name: expected a lower-case domain name",
        "rpz.zones[1].exemptions[1]: neither an address, a network nor a domain name",
    ):
        assert expected in text
    assert "zones[1].exemptions[0]" not in text
    assert "no zone is listed" not in text  # the zones are wrong, not missing


def test_a_zone_listed_twice_is_refused() -> None:
    zones = [{"name": "a.rpz.example.org"}, {"name": "a.rpz.example.org."}]
    with pytest.raises(ConfigError, match=r"rpz.zones\[1\].name: same zone as zones\[0\]"):
        parse_config({"rpz": {"zones": zones}})


def test_enabled_without_zones_is_refused() -> None:
    with pytest.raises(ConfigError, match="enabled but no zone is listed"):
        parse_config({"rpz": {"enabled": True}})
