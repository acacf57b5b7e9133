# SPDX-License-Identifier: Apache-2.0
"""The matcher and the validation shared by the configuration and ``suppress add``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdnssoc_agent.suppress.rules import Matcher, RuleError, make_rule, parse_expiry

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def rule(**fields: Any) -> Any:
    return make_rule({"id": "r", "reason": "known", "author": "alice", **fields}, origin="cli")


def test_qname_suffix_matches_on_label_boundaries_any_case() -> None:
    m = Matcher([rule(qname_suffix="Sink.Inst-A.example.")])
    assert m.match(NOW, qname="sink.inst-a.example") is not None
    assert m.match(NOW, qname="x.SINK.inst-a.example.") is not None
    assert m.match(NOW, qname="evilsink.inst-a.example") is None
    assert m.match(NOW, qname="inst-a.example") is None


def test_every_criterion_given_must_hold_and_institution_scopes() -> None:
    r = rule(indicator="bad.example.com", client="10.1.0.0/16", institution="inst-a")
    m = Matcher([r])
    hit = {"indicator": "bad.example.com", "client": "10.1.2.0", "sensor": "inst-a"}
    assert m.match(NOW, **hit) is r
    assert m.match(NOW, **{**hit, "sensor": "inst-b"}) is None
    assert m.match(NOW, **{**hit, "client": "10.2.0.0"}) is None
    assert m.match(NOW, **{**hit, "indicator": "other.example"}) is None


def test_client_as_written_in_alerts_or_a_prefix() -> None:
    hashed = "a3f1c2d4e5"
    assert Matcher([rule(client=hashed)]).match(NOW, client=hashed) is not None
    assert Matcher([rule(client="192.0.2.0")]).match(NOW, client="192.0.2.0") is not None
    assert Matcher([rule(client="192.0.2.0")]).match(NOW, client="192.0.2.1") is None
    assert Matcher([rule(client="2001:db8::/32")]).match(NOW, client="2001:db8:1::") is not None
    assert Matcher([rule(client="2001:db8::/32")]).match(NOW, client=hashed) is None


def test_expired_rules_do_not_match_and_the_first_live_rule_wins() -> None:
    old = make_rule(
        {"id": "old", "reason": "x", "author": "a", "sensor": "inst-a", "expires": NOW},
        origin="config",
    )
    new = rule(sensor="inst-a")
    m = Matcher([old, new])
    assert m.match(NOW - timedelta(seconds=1), sensor="inst-a") is old
    assert m.match(NOW, sensor="inst-a") is new
    assert m.active(NOW) == [new]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"reason": "  "}, "reason: must not be empty"),
        ({"author": ""}, "author: must not be empty"),
        ({}, "nothing to match"),
        ({"institution": "inst-a"}, "nothing to match"),
        ({"qname_suffix": "co.uk"}, "'co.uk' is a public suffix"),
        ({"qname_suffix": "com"}, "'com' is a public suffix"),
        ({"qname_suffix": "bad name.example"}, "qname_suffix: not a domain name"),
        ({"client": "0.0.0.0/0"}, "/0 matches nearly every client"),
        ({"client": "::/8"}, "use at least /16"),
        ({"client": "10.0.0.0/33"}, "client: not an IP prefix"),
        ({"sensor": "inst-a", "institution": "inst-b"}, "could never match"),
        ({"indicator": "x.example", "id": "Bad Id"}, "id: expected 1-64 characters"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(fields: dict[str, Any], expected: str) -> None:
    base = {"id": "r", "reason": "known", "author": "alice"}
    with pytest.raises(RuleError, match=expected.replace("(", r"\(")):
        make_rule({**base, **fields}, origin="cli")


def test_expiry_relative_or_absolute() -> None:
    assert parse_expiry("30d", NOW) == NOW + timedelta(days=30)
    assert parse_expiry("12h", NOW) == NOW + timedelta(hours=12)
    assert parse_expiry("2w", NOW) == NOW + timedelta(weeks=2)
    assert parse_expiry("2026-12-31", NOW) == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_expiry("2026-12-31T10:00:00+01:00", NOW) == datetime(2026, 12, 31, 9, tzinfo=UTC)
    for bad in ("30", "0d", "soon", "-1d"):
        with pytest.raises(ValueError, match="expected a duration from now"):
            parse_expiry(bad, NOW)


def test_the_first_rule_wins_whatever_field_it_is_filed_under() -> None:
    by_prefix = make_rule(
        {"id": "a", "reason": "r", "author": "x", "client": "10.1.0.0/16"}, origin="config"
    )
    by_suffix = rule(qname_suffix="example.com", institution="inst-a")
    by_indicator = rule(indicator="bad.example.com")
    hit = {"sensor": "inst-a", "client": "10.1.0.0", "qname": "bad.example.com"}
    m = Matcher([by_prefix, by_suffix, by_indicator])
    assert m.match(NOW, indicator="bad.example.com", **hit) is by_prefix
    assert m.match(NOW, indicator="bad.example.com", **{**hit, "client": "10.2.0.0"}) is by_suffix
    other = {**hit, "client": "10.2.0.0", "sensor": "inst-b"}
    assert m.match(NOW, indicator="bad.example.com", **other) is by_indicator
    assert m.match(NOW, indicator="x.example.net", **other) is None
