# SPDX-License-Identifier: Apache-2.0
"""Owner names: the RPZ draft's forms, and hostile values refused with a reason."""

from __future__ import annotations

import pytest

from pdnssoc_agent.rpz.names import OwnerError, ip_owner, name_owner

ZONE = "rpz.example.org"


@pytest.mark.parametrize(
    ("value", "owner"),
    [
        ("1.2.3.4", "32.4.3.2.1.rpz-ip"),
        ("192.0.2.0/24", "24.0.2.0.192.rpz-ip"),
        ("2001:db8::1", "128.1.zz.db8.2001.rpz-ip"),
        ("2001:db8::/32", "32.zz.db8.2001.rpz-ip"),
        ("2001:db8:0:0:1::", "128.zz.1.0.0.db8.2001.rpz-ip"),  # the longest run of zeros
        ("2001:db8:0:0:1:0:0:1", "128.1.0.0.1.zz.db8.2001.rpz-ip"),  # a tie: the first
        ("::/0", "0.zz.rpz-ip"),
        ("2001:db8:1:2:3:4:5:6", "128.6.5.4.3.2.1.db8.2001.rpz-ip"),
        ("2001:db8:0:1:2:3:4:5", "128.5.4.3.2.1.0.db8.2001.rpz-ip"),  # one zero group stays
        ("::ffff:1.2.3.4", "128.304.102.ffff.zz.rpz-ip"),
    ],
)
def test_address_and_network_triggers(value: str, owner: str) -> None:
    assert ip_owner(value) == owner


def test_a_network_with_host_bits_is_refused() -> None:
    with pytest.raises(OwnerError) as err:
        ip_owner("192.0.2.1/24")
    assert err.value.reason == "invalid_ip"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a" * 64 + ".example", "label_too_long"),
        (".".join(["abcdefghi"] * 25) + ".example", "name_too_long"),
        ("evil\n.example", "invalid_character"),
        ("evil .example", "invalid_character"),
        ("ev;il.example", "invalid_character"),
        ("evil.example\x00", "invalid_character"),
        ("*.evil.example", "invalid_character"),
        ("\u00e9vil.example", "invalid_character"),
        ("EVIL.example", "invalid_character"),
        ("evil..example", "empty_label"),
        ("", "empty"),
        ("com", "single_label"),
        ("32.4.3.2.1.rpz-ip", "trigger_label"),
        ("ns.evil.rpz-nsdname", "trigger_label"),
    ],
)
def test_hostile_names_are_refused_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(OwnerError) as err:
        name_owner(value, ZONE)
    assert err.value.reason == reason
    assert "\n" not in str(err.value)
    assert "\x00" not in str(err.value)


def test_the_zone_name_counts_towards_the_length() -> None:
    name = ".".join(["a" * 60] * 3) + ".example"  # 191 characters: fine alone
    assert name_owner(name, "x.org") == name
    with pytest.raises(OwnerError) as err:
        name_owner(name, "a-long-zone-name." + "z" * 50 + ".example.org")
    assert err.value.reason == "name_too_long"


def test_underscores_hyphens_and_a_trailing_dot() -> None:
    assert name_owner("_dmarc.x-y.example.", ZONE) == "_dmarc.x-y.example"
