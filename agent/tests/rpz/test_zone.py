# SPDX-License-Identifier: Apache-2.0
"""The zone's text for each kind of indicator, exemptions and suppression rules."""

from __future__ import annotations

from datetime import UTC, datetime

from pdnssoc_agent.rpz.exempt import exemptions_for
from pdnssoc_agent.rpz.zone import build_content
from pdnssoc_agent.suppress.rules import Rule, make_rule
from tests.support.rpz import ZONE, entry

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def records(text: str) -> list[str]:
    """The trigger lines (no comments, directives, SOA or NS)."""
    return [line for line in text.splitlines() if line and not line.startswith((";", "$", "@ "))]


def test_each_kind_of_indicator_and_the_header() -> None:
    entries = [
        entry("evil.example"),
        entry("_srv.c2.example"),
        entry("192.0.2.7", "ip"),
        entry("198.51.100.0/24", "cidr"),
        entry("2001:db8::66", "ip"),
        entry("2001:db8:bad::/48", "cidr"),
    ]
    text = build_content(ZONE, entries, exemptions_for([], [], None, NOW)).render(1764504000, 300)
    lines = text.splitlines()
    assert f"$ORIGIN {ZONE}." in lines
    assert "$TTL 300" in lines
    assert "@ SOA localhost. hostmaster.localhost. 1764504000 3600 600 1209600 60" in lines
    assert "@ NS localhost." in lines
    assert records(text) == [
        "_srv.c2.example CNAME .",
        "*._srv.c2.example CNAME .",
        "evil.example CNAME .",
        "*.evil.example CNAME .",
        "128.66.zz.db8.2001.rpz-ip CNAME .",
        "24.0.100.51.198.rpz-ip CNAME .",
        "32.7.2.0.192.rpz-ip CNAME .",
        "48.zz.bad.db8.2001.rpz-ip CNAME .",
    ]


def test_hostile_values_are_counted_and_never_written() -> None:
    entries = [
        entry("ok.example"),
        entry("bad\nname.example"),
        entry("x" * 64 + ".example"),
        entry("inject.example. 0 IN NS attacker.example"),
        entry("1.2.3.4/33", "cidr"),
        entry("$INCLUDE.example"),
    ]
    content = build_content(ZONE, entries, exemptions_for([], [], None, NOW))
    text = content.render(1, 300)
    assert records(text) == ["ok.example CNAME .", "*.ok.example CNAME ."]
    assert content.refused == {"invalid_character": 3, "label_too_long": 1, "invalid_ip": 1}
    assert "attacker" not in text and "INCLUDE" not in text
    assert all("\n" not in ex for exs in content.examples.values() for ex in exs)


def test_exemptions_leave_out_names_below_and_pass_names_under_an_indicator() -> None:
    entries = [
        entry("example.org"),
        entry("cdn.univ-a.example"),
        entry("evil.example"),
        entry("203.0.113.9", "ip"),
        entry("198.51.100.0/24", "cidr"),
    ]
    exempt = ["univ-a.example", "www.example.org", "203.0.113.0/28", "198.51.100.53"]
    content = build_content(ZONE, entries, exemptions_for(exempt, [], "univ-a", NOW))
    assert records(content.render(1, 300)) == [
        "evil.example CNAME .",
        "*.evil.example CNAME .",
        "example.org CNAME .",
        "*.example.org CNAME .",
        "24.0.100.51.198.rpz-ip CNAME .",
        "www.example.org CNAME rpz-passthru.",
        "*.www.example.org CNAME rpz-passthru.",
        "32.53.100.51.198.rpz-ip CNAME rpz-passthru.",
    ]
    assert content.exempted == {"exemption": 2}


def test_suppressions_about_the_indicator_apply_for_their_institution_only() -> None:
    def rule(rule_id: str, **fields: object) -> Rule:
        return make_rule(
            {"id": rule_id, "reason": "r", "author": "a", **fields}, origin="config", checked=True
        )

    rules = [
        rule("global", indicator="sinkhole.example"),
        rule("univ-a", indicator="intranet.example", institution="univ-a"),
        rule("suffix", qname_suffix="updates.vendor.example"),
        rule("client", indicator="client-only.example", client="192.0.2.1"),
        rule("sensor", sensor="univ-a"),
        rule("old", indicator="expired.example", expires=datetime(2026, 1, 1, tzinfo=UTC)),
    ]
    entries = [
        entry(v)
        for v in (
            "sinkhole.example",
            "intranet.example",
            "a.updates.vendor.example",
            "client-only.example",
            "expired.example",
            "evil.example",
        )
    ]

    def names(institution: str | None) -> list[str]:
        content = build_content(ZONE, entries, exemptions_for([], rules, institution, NOW))
        return content.names

    assert names("univ-a") == ["client-only.example", "evil.example", "expired.example"]
    assert names("univ-b") == [
        "client-only.example",
        "evil.example",
        "expired.example",
        "intranet.example",
    ]
