# SPDX-License-Identifier: Apache-2.0
"""``web``: the view cannot be configured open to everyone or trusting a header from afar."""

from __future__ import annotations

from typing import Any

import pytest

from pdnssoc_agent.config import ConfigError, parse_config


def problems(web: dict[str, Any]) -> list[str]:
    try:
        parse_config({"web": web})
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_off_by_default_and_nothing_required_then() -> None:
    assert parse_config({}).web.listen is None
    assert problems({"analysts": []}) == []


def test_client_certificate_needs_its_files_and_analysts() -> None:
    assert problems({"listen": "0.0.0.0:8443"}) == [
        "web.analysts: list at least one analyst",
        "web.tls_cert: required with auth client-certificate",
        "web.tls_key: required with auth client-certificate",
        "web.tls_client_ca: required with auth client-certificate",
    ]


def test_a_complete_client_certificate_setting_is_accepted() -> None:
    web = {
        "listen": "[::]:8443",
        "tls_cert": "/etc/pdnssoc/web.crt",
        "tls_key": "/etc/pdnssoc/web.key",
        "tls_client_ca": "/etc/pdnssoc/ca.crt",
        "analysts": ["alice"],
    }
    assert problems(web) == []


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        (
            {"listen": "192.0.2.1:8080", "auth": "proxy-header", "analysts": ["a"]},
            "web.listen: with auth proxy-header the view trusts a header: listen on loopback",
        ),
        (
            {"listen": "127.0.0.1:8080", "auth": "proxy-header", "analysts": ["a"],
             "proxy_header": "X Remote"},
            "web.proxy_header: letters, digits and '-' only",
        ),
        ({"listen": "localhost:8080", "analysts": ["a"]}, "web.listen: 'localhost' is not an IP"),
        ({"listen": "127.0.0.1:1", "auth": "basic"}, "web.auth: expected"),
        ({"listen": "127.0.0.1:1", "auth": "proxy-header", "analysts": [" a"]}, "no spaces"),
    ],
)  # fmt: skip
def test_refused(web: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) or expected in p for p in problems(web))
