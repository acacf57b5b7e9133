# SPDX-License-Identifier: Apache-2.0
"""Normalisation and validation of MISP attribute values (every rejection rule)."""

from __future__ import annotations

import pytest

from pdnssoc_agent.iocs.normalize import REASONS, Indicator, Normalizer, Rejection


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return Normalizer(max_prefix_v4=16, max_prefix_v6=32)


def one(norm: Normalizer, attr_type: str, value: str) -> Indicator | Rejection:
    (result,) = list(norm.attribute(attr_type, value))
    return result


@pytest.mark.parametrize(
    ("attr_type", "value", "expected"),
    [
        ("domain", "Evil.Example.COM", "evil.example.com"),
        ("domain", "evil.example.com.", "evil.example.com"),
        ("hostname", "*.evil.example.com", "evil.example.com"),
        ("domain", "bücher.example", "xn--bcher-kva.example"),
        ("domain", "BÜCHER.example.", "xn--bcher-kva.example"),
        ("domain", "xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("domain", "_dmarc.evil.example", "_dmarc.evil.example"),
        ("domain", "example.co.uk", "example.co.uk"),
        ("hostname", "x.blogspot.com", "x.blogspot.com"),
        ("domain", "a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_domains_normalised(norm: Normalizer, attr_type: str, value: str, expected: str) -> None:
    assert one(norm, attr_type, value) == Indicator("domain", expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.1", Indicator("ip", "192.0.2.1")),
        ("2001:DB8:0:0::1", Indicator("ip", "2001:db8::1")),
        ("::ffff:192.0.2.7", Indicator("ip", "192.0.2.7")),
        ("198.51.100.0/24", Indicator("cidr", "198.51.100.0/24")),
        ("198.51.100.77/24", Indicator("cidr", "198.51.100.0/24")),
        ("198.51.100.77/32", Indicator("ip", "198.51.100.77")),
        ("10.20.0.0/16", Indicator("cidr", "10.20.0.0/16")),
        ("2001:db8:abcd::/48", Indicator("cidr", "2001:db8:abcd::/48")),
        ("2001:db8::/32", Indicator("cidr", "2001:db8::/32")),
        ("2001:db8::5/128", Indicator("ip", "2001:db8::5")),
    ],
)
def test_ips_normalised(norm: Normalizer, value: str, expected: Indicator) -> None:
    assert one(norm, "ip-dst", value) == expected
    assert one(norm, "ip-src", value) == expected


def test_composites_split(norm: Normalizer) -> None:
    assert list(norm.attribute("domain|ip", "Evil.Example|192.0.2.9")) == [
        Indicator("domain", "evil.example"),
        Indicator("ip", "192.0.2.9"),
    ]
    assert list(norm.attribute("hostname|port", "c2.evil.example|8443")) == [
        Indicator("domain", "c2.evil.example")
    ]
    assert list(norm.attribute("ip-dst|port", "2001:db8::7|443")) == [
        Indicator("ip", "2001:db8::7")
    ]
    assert list(norm.attribute("ip-src|port", "192.0.2.10|53")) == [Indicator("ip", "192.0.2.10")]
    # One bad part does not hide the good one.
    res = list(norm.attribute("domain|ip", "com|192.0.2.11"))
    assert isinstance(res[0], Rejection) and res[0].reason == "public_suffix"
    assert res[1] == Indicator("ip", "192.0.2.11")


# Every rejection reason, each with at least one example.
REJECTED: list[tuple[str, str, str]] = [
    ("domain", "evil.example\n", "control_character"),
    ("domain", "evil.example\nother.example", "control_character"),
    ("domain", "evil .example", "control_character"),
    ("domain", " evil.example", "control_character"),
    ("domain", "evil\x00.example", "control_character"),
    ("domain", "evil\t.example", "control_character"),
    ("domain", "evil\x7f.example", "control_character"),
    ("domain", "evil\u200b.example", "control_character"),
    ("domain", "evil\u202e.example", "control_character"),
    ("ip-dst", "192.0.2.1\r", "control_character"),
    ("domain", "", "empty"),
    ("domain", ".", "empty"),
    ("ip-dst", "", "empty"),
    ("domain", "evil..example", "invalid_domain"),
    ("domain", ".evil.example", "invalid_domain"),
    ("domain", "evil/path.example", "invalid_domain"),
    ("domain", "http://evil.example", "invalid_domain"),
    ("domain", "evil.example:80", "invalid_domain"),
    ("domain", "192.0.2.1", "invalid_domain"),
    ("domain", "evil\u2764.example", "invalid_idna"),
    ("domain", "a" * 64 + ".example", "label_too_long"),
    ("domain", ".".join(["a" * 60] * 5), "name_too_long"),
    ("domain", "com", "public_suffix"),
    ("domain", "COM.", "public_suffix"),
    ("domain", "co.uk", "public_suffix"),
    ("domain", "blogspot.com", "public_suffix"),
    ("hostname", "localhost", "public_suffix"),
    ("domain", "evil", "public_suffix"),
    ("domain", "*.com", "public_suffix"),
    ("ip-dst", "192.0.2.256", "invalid_ip"),
    ("ip-dst", "192.0.2", "invalid_ip"),
    ("ip-dst", "01.2.3.4", "invalid_ip"),
    ("ip-dst", "evil.example", "invalid_ip"),
    ("ip-dst", "192.0.2.1:80", "invalid_ip"),
    ("ip-dst", "fe80::1%eth0", "invalid_ip"),
    ("ip-dst", "192.0.2.0/33", "invalid_ip"),
    ("ip-dst", "10.0.0.0/8", "cidr_too_broad"),
    ("ip-dst", "0.0.0.0/0", "cidr_too_broad"),
    ("ip-dst", "172.16.0.0/15", "cidr_too_broad"),
    ("ip-dst", "2001:db8::/31", "cidr_too_broad"),
    ("ip-dst", "::/0", "cidr_too_broad"),
    ("ip-dst", "0.0.0.0", "reserved_ip"),  # noqa: S104 (a value, not a bind address)
    ("ip-dst", "127.0.0.1", "reserved_ip"),
    ("ip-dst", "::", "reserved_ip"),
    ("ip-dst", "::1", "reserved_ip"),
    ("ip-dst", "224.0.0.251", "reserved_ip"),
    ("ip-dst", "255.255.255.255", "reserved_ip"),
    ("ip-dst", "ff02::1", "reserved_ip"),
    ("ip-dst|port", "192.0.2.1", "invalid_composite"),
    ("domain|ip", "evil.example", "invalid_composite"),
    ("url", "http://evil.example/x", "unsupported_type"),
    ("email-src", "a@evil.example", "unsupported_type"),
]


@pytest.mark.parametrize(("attr_type", "value", "reason"), REJECTED)
def test_rejections(norm: Normalizer, attr_type: str, value: str, reason: str) -> None:
    result = one(norm, attr_type, value)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert "\n" not in result.value and "\x00" not in result.value


def test_every_reason_is_exercised() -> None:
    assert {r for _, _, r in REJECTED} == set(REASONS)


def test_prefix_limits_are_configurable() -> None:
    strict = Normalizer(max_prefix_v4=24, max_prefix_v6=64)
    (r,) = strict.attribute("ip-dst", "198.51.100.0/23")
    assert isinstance(r, Rejection) and r.reason == "cidr_too_broad"
    (r,) = strict.attribute("ip-dst", "2001:db8::/48")
    assert isinstance(r, Rejection) and r.reason == "cidr_too_broad"
    loose = Normalizer(max_prefix_v4=8, max_prefix_v6=16)
    assert list(loose.attribute("ip-dst", "10.0.0.0/8")) == [Indicator("cidr", "10.0.0.0/8")]


def test_rejected_value_is_shortened_for_logs(norm: Normalizer) -> None:
    result = norm.domain("x" * 1000 + "\n")
    assert isinstance(result, Rejection)
    assert len(result.value) <= 120
