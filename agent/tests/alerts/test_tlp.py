# SPDX-License-Identifier: Apache-2.0
"""TLP ceilings per channel: the indicator always goes out, details only within the ceiling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.alertfile import MispAttribute
from pdnssoc_agent.alerts import alerts_file, deliver
from pdnssoc_agent.alerts.tlp import marking
from pdnssoc_agent.config import ConfigError, parse_config
from tests.support.alerts import Receiver, SmtpServer, alert_line, append_alerts, start_receiver

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEVELS = ["clear", "green", "amber", "amber+strict", "red", None]


def ctx(*tags: str, tlp: str | None = None) -> MispAttribute:
    return MispAttribute(server="m", event_id="1", tags=tags, tlp=tlp)


def test_the_most_restrictive_tag_of_event_and_attribute_applies() -> None:
    assert marking(ctx("tlp:green", "malware", "tlp:red"), "amber").level == "red"
    assert marking(ctx("TLP:AMBER+STRICT"), "amber").level == "amber+strict"
    assert marking(ctx("tlp:white"), "amber").level == "clear"
    assert marking(ctx("tlp:green", tlp="tlp:amber"), "amber").level == "amber"
    unmarked = marking(ctx("malware"), "green")
    assert (unmarked.level, unmarked.marked) == ("green", False)
    assert marking(ctx("tlp:unclear"), "clear").level == "red"  # unknown: strictest
    chr_rule = marking(ctx("tlp:green", "tlp:ex:chr"), "amber")
    assert (chr_rule.level, chr_rule.chatham_house) == ("green", True)


def test_misp_fixture_tags_are_read_as_misp_writes_them(shared_dir: Path) -> None:
    fixture = shared_dir / "reference" / "misp" / "pymisp-fixtures" / "existing_event.json"
    event = json.loads(fixture.read_text())  # PyMISP keeps it without the "Event" wrapper
    tags = tuple(t["name"] for t in event["Tag"])
    assert "tlp:white" in tags
    assert marking(ctx(*tags), "amber").level == "clear"


def tlp_alert(level: str | None) -> dict[str, Any]:
    name = f"{(level or 'unmarked').replace('+', '-')}.tlp.example"
    alert = alert_line(
        name=name,
        event_info=f"TITLE-{level}",
        comment=f"COMMENT-{level}",
        event_url=f"https://misp.example.org/events/view/{LEVELS.index(level) + 1}",
    )
    tags = [f"tlp:{level}"] if level else []
    alert["misp"][0].update(tags=[*tags, f"TAG-{level}"], tlp=tags[0] if tags else None)
    alert["misp"][0]["event_id"] = str(LEVELS.index(level) + 1)
    return alert


@pytest.fixture
def chat() -> Iterator[dict[str, Receiver]]:
    receivers = {k: start_receiver() for k in ("slack", "mattermost", "teams", "webhook")}
    yield receivers
    for r in receivers.values():
        r.stop()


def shown(text: str, level: str | None) -> bool:
    return f"TITLE-{level}" in text or f"COMMENT-{level}" in text or f"TAG-{level}" in text


def test_default_ceilings_withhold_details_but_alert_the_indicator(
    tmp_path: Path, smtp_plain: SmtpServer, chat: dict[str, Receiver]
) -> None:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "alerting": {
                "email": {
                    "from": "pdnssoc@csirt.example",
                    "summary_to": "soc@csirt.example",
                    "server": "127.0.0.1",
                    "port": smtp_plain.port,
                    "mappings": [
                        {"client_id": "inst-a", "contact": "sec@inst-a.example"},
                        {
                            "client_id": "inst-b",
                            "contact": "sec@inst-b.example",
                            "tlp_ceiling": "green",
                        },
                    ],
                },
                **{k: {"webhook_url": r.url()} for k, r in chat.items()},
            },
        }
    )
    alerts = [tlp_alert(level) for level in LEVELS]
    alerts_b = [dict(a, sensor="inst-b", id=a["id"][:-1] + "b") for a in alerts]
    append_alerts(alerts_file(cfg), *alerts, *alerts_b)
    report = deliver(cfg, NOW)
    assert report.ok, report.failed

    def mail_texts(address: str) -> list[str]:
        (msg,) = smtp_plain.to(address)
        parts = [msg.get_body((s,)) for s in ("plain", "html")]
        return [p.get_content() for p in parts if p is not None]

    # What each channel may carry by default: chat GREEN, institutions AMBER,
    # the operators' summary AMBER+STRICT, the generic webhook AMBER+STRICT;
    # an event without a TLP tag counts as AMBER.
    expected = {
        "slack": {"clear", "green"},
        "mattermost": {"clear", "green"},
        "teams": {"clear", "green"},
        "sec@inst-a.example": {"clear", "green", "amber", None},
        "sec@inst-b.example": {"clear", "green"},  # its own ceiling
        "soc@csirt.example": {"clear", "green", "amber", "amber+strict", None},
    }
    texts: dict[str, list[str]] = {}
    for kind in ("slack", "mattermost", "teams"):
        texts[kind] = [
            json.dumps(b, ensure_ascii=False).replace("\\\\", "") for b in chat[kind].bodies()
        ]
    for address in ("sec@inst-a.example", "sec@inst-b.example", "soc@csirt.example"):
        texts[address] = mail_texts(address)
    for where, allowed in expected.items():
        for text in texts[where]:
            for level in LEVELS:
                assert shown(text, level) == (level in allowed), (where, level)
                # The indicator, and a link to read the details, always go out.
                name = f"{(level or 'unmarked').replace('+', '-')}.tlp.example"
                assert name.replace(".", "\\.") in text or name in text, (where, level)
                assert f"misp.example.org/events/view/{LEVELS.index(level) + 1}" in text
            assert "withheld" in text, where
    # Where a detail is withheld, the message says which TLP and the ceiling.
    assert "TLP:RED" in texts["slack"][0]
    assert "TLP:GREEN ceiling" in texts["sec@inst-b.example"][0]

    generic = chat["webhook"].bodies()
    entries = {a["query"]["name"]: a["misp"][0] for body in generic for a in body["alerts"]}
    assert sum(b["withheld_by_tlp"] for b in generic) == 2  # red, for each sensor
    assert {b["tlp_ceiling"] for b in generic} == {"TLP:AMBER+STRICT"}
    red = entries["red.tlp.example"]
    assert (red["event_info"], red["comment"], red["org"], red["tags"]) == ("", "", "", ["tlp:red"])
    assert red["event_url"] == "https://misp.example.org/events/view/5"
    assert entries["amber-strict.tlp.example"]["event_info"] == "TITLE-amber+strict"


def test_ceilings_are_configurable(tmp_path: Path, chat: dict[str, Receiver]) -> None:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "alerting": {
                "tlp_unmarked": "clear",
                "slack": {"webhook_url": chat["slack"].url(), "tlp_ceiling": "red"},
                "webhook": {"webhook_url": chat["webhook"].url(), "tlp_ceiling": "white"},
            },
        }
    )
    append_alerts(alerts_file(cfg), *[tlp_alert(level) for level in LEVELS])
    assert deliver(cfg, NOW).ok
    (slack,) = chat["slack"].bodies()
    assert all(shown(slack["text"].replace("\\", ""), level) for level in LEVELS)
    (generic,) = chat["webhook"].bodies()
    kept = {a["misp"][0]["event_info"] for a in generic["alerts"]} - {""}
    assert kept == {"TITLE-clear", "TITLE-None"}  # white is clear; unmarked counts as clear


def test_tlp_keys_are_validated() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "alerting": {
                    "tlp_unmarked": "orange",
                    "slack": {"webhook_url": "https://x.example/h", "tlp_ceiling": "tlp:green"},
                    "email": {
                        "from": "a@b.example",
                        "summary_tlp_ceiling": "RED",
                        "mappings": [{"client_id": "x", "contact": "c@x", "tlp_ceiling": 3}],
                    },
                }
            }
        )
    text = str(err.value)
    for key in (
        "alerting.tlp_unmarked",
        "alerting.slack.tlp_ceiling",
        "alerting.email.summary_tlp_ceiling",
        "alerting.email.mappings[0].tlp_ceiling",
    ):
        assert key in text
    assert "'amber+strict'" in text  # the choices are listed
