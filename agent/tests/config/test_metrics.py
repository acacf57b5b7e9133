# SPDX-License-Identifier: Apache-2.0
"""``metrics.listen``: off by default; an address that cannot be listened on is named."""

from __future__ import annotations

import pytest

from pdnssoc_agent.config import ConfigError, parse_config


def test_off_by_default_and_addresses_accepted() -> None:
    assert parse_config({}).metrics.listen is None
    for listen in ("127.0.0.1:9470", "[::1]:9470", "0.0.0.0:1"):
        assert parse_config({"metrics": {"listen": listen}}).metrics.listen == listen


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("localhost:9470", "'localhost' is not an IP address"),
        ("127.0.0.1", "expected ADDRESS:PORT"),
        (":9470", "expected ADDRESS:PORT"),
        ("127.0.0.1:0", "port '0' is not a number from 1 to 65535"),
        ("127.0.0.1:http", "port 'http' is not a number"),
        ("::1:9470", "write an IPv6 address in brackets: [::1]:9470"),
        ("[127.0.0.1:9470", "'[127.0.0.1' is not an IP address"),
    ],
)
def test_bad_addresses_are_named(listen: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"metrics": {"listen": listen}})
    assert f"metrics.listen: {message}" in str(exc.value)
