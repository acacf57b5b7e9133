# SPDX-License-Identifier: Apache-2.0
"""Silent sensors: counted by correlate in its pass over the query log, announced
once by the alert step to the operators (summary mail and chat webhook on
loopback), with one recovery notice; listed by ``status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdnssoc_agent.alerts import run_alert
from pdnssoc_agent.config import Config, ConfigError, parse_config
from pdnssoc_agent.correlate import run_correlate
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.sensors import BOOK_FILE, SensorBook
from pdnssoc_agent.timefmt import format_rfc3339
from tests.support.alerts import Receiver, SmtpServer, start_receiver, start_smtp
from tests.support.correlate import dns_line, write_lists

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""The newest reply of the history the tests build (a Monday, noon UTC)."""


def ts(when: datetime) -> str:
    return format_rfc3339(when)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp("none")
    yield server
    server.stop()


@pytest.fixture
def chat() -> Iterator[Receiver]:
    rec = start_receiver()
    yield rec
    rec.stop()


def make(tmp_path: Path, smtp: SmtpServer, chat: Receiver, **sensors: Any) -> Config:
    data: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "history": {"enabled": False},
        "alerting": {
            "email": {
                "from": "pdnssoc@csirt.example",
                "summary_to": "soc@csirt.example",
                "server": "127.0.0.1",
                "port": smtp.port,
                "timeout": 5,
            },
            "mattermost": {"webhook_url": chat.url()},
        },
    }
    if sensors:
        data["sensors"] = sensors
    cfg = parse_config(data)
    write_lists(cfg, ["evil.example.com"], ["198.51.100.99"])
    return cfg


def append(cfg: Config, *lines: bytes) -> None:
    q = cfg.correlation.queries_file
    q.parent.mkdir(parents=True, exist_ok=True)
    with q.open("ab") as fh:
        fh.write(b"".join(lines))


def history(sensor: str, end: datetime, hours: float, every: timedelta) -> list[bytes]:
    """A reply from ``sensor`` every ``every`` for ``hours`` hours up to ``end``."""
    out, at = [], end - timedelta(hours=hours)
    while at <= end:
        out.append(dns_line("www.example.org", sensor=sensor, ts=ts(at)))
        at += every
    return out


def notices(smtp: SmtpServer, chat: Receiver) -> list[str]:
    """Subjects of the mails to the operators; the chat posts must say the same."""
    subjects = [str(m["Subject"]) for m in smtp.to("soc@csirt.example")]
    assert len(chat.bodies()) == len(subjects)
    for subject, body in zip(subjects, chat.bodies(), strict=True):
        assert subject.split(" - ", 1)[1] in json.dumps(body)
    return subjects


def test_correlate_counts_each_sensor_once_per_reply(tmp_path: Path) -> None:
    cfg = parse_config({"data_dir": str(tmp_path)})  # the history store on: wider records
    write_lists(cfg, ["evil.example.com"], [])
    append(cfg, *history("sensor-a", T0, 2, timedelta(minutes=30)))
    append(cfg, dns_line("evil.example.com", sensor="sensor-b", ts=ts(T0 - timedelta(hours=1))))
    minified = {"timestamp": ts(T0), "query": "www.example.org", "client_id": "inst-m"}
    append(cfg, json.dumps(minified).encode() + b"\n")  # pdnssoc's archived form
    run_correlate(cfg, now=T0 + timedelta(minutes=5))
    run_correlate(cfg, now=T0 + timedelta(minutes=6))  # nothing new: nothing counted again
    book = SensorBook.load(cfg.correlation.state_dir / BOOK_FILE)
    a, b = book.sensors["sensor-a"], book.sensors["sensor-b"]
    hour = int(T0.timestamp())
    assert a.hours == {hour - 7200: 2, hour - 3600: 2, hour: 1}
    assert (a.first, a.last) == (hour - 7200, hour)
    assert b.hours == {hour - 3600: 1}
    assert b.last == hour - 3600
    assert book.sensors["inst-m"].hours == {hour: 1}
    assert set(book.sensors) == {"sensor-a", "sensor-b", "inst-m"}


def test_silent_once_then_recovery_once(tmp_path: Path, smtp: SmtpServer, chat: Receiver) -> None:
    cfg = make(tmp_path, smtp, chat)
    # a sensor with a day of history (a reply every 10 minutes) and a new one
    append(cfg, *history("inst-a", T0, 26, timedelta(minutes=10)))
    append(cfg, *history("inst-new", T0, 0.5, timedelta(minutes=10)))
    run_correlate(cfg, now=T0 + timedelta(minutes=1))

    run_alert(cfg, now=T0 + timedelta(minutes=30))  # threshold: 4 x 10 min = 40 min
    assert notices(smtp, chat) == []

    report = run_alert(cfg, now=T0 + timedelta(minutes=45))
    assert report.sensors == {"inst-a": "silent"}
    assert notices(smtp, chat) == ["[pDNSSOC] DNS alert - sensor inst-a is silent"]
    body = smtp.messages[0].get_content()
    assert "since 2026-03-02T12:00:00Z" in body
    assert smtp.messages[0]["Auto-Submitted"] == "auto-generated"

    # still quiet, a day later, over a restart (a new process reads the same files)
    for later in (timedelta(hours=2), timedelta(hours=30)):
        assert run_alert(cfg, now=T0 + later).sensors == {}
    assert len(notices(smtp, chat)) == 1

    status = collect(cfg, now=T0 + timedelta(hours=2))
    rows = {s["sensor"]: s for s in status.sensors}
    assert rows["inst-a"]["silent"] and rows["inst-a"]["announced"]
    assert rows["inst-a"]["threshold_s"] == 2400
    assert rows["inst-a"]["replies_per_hour"] == 6.0
    assert rows["inst-new"]["threshold_s"] is None  # no history yet: not watched
    assert not rows["inst-new"]["silent"]
    assert [p for p in status.problems if "sensor" in p] == [
        "sensor inst-a is silent: no reply since 2026-03-02T12:00:00Z (2:00:00 ago, "
        "threshold 0:40:00); the operators were told"
    ]
    text = render(status)
    assert "inst-a" in text and "SILENT" in text and "not watched" in text

    # it sends again
    back = T0 + timedelta(hours=31)
    append(cfg, *history("inst-a", back, 0.2, timedelta(minutes=5)))
    run_correlate(cfg, now=back + timedelta(minutes=1))
    report = run_alert(cfg, now=back + timedelta(minutes=2))
    assert report.sensors == {"inst-a": "sending again"}
    assert run_alert(cfg, now=back + timedelta(minutes=3)).sensors == {}
    assert notices(smtp, chat) == [
        "[pDNSSOC] DNS alert - sensor inst-a is silent",
        "[pDNSSOC] DNS alert - sensor inst-a sends again",
    ]
    assert not collect(cfg, now=back + timedelta(minutes=3)).sensors[0]["silent"]


def test_sensors_silent_together_are_one_notice_and_one_recovery(
    tmp_path: Path, smtp: SmtpServer, chat: Receiver
) -> None:
    """The server's collector stopping silences every sensor: one message, not one each."""
    cfg = make(tmp_path, smtp, chat)
    names = ["inst-a", "inst-b", "inst-c"]
    for name in names:
        append(cfg, *history(name, T0, 26, timedelta(minutes=10)))
    run_correlate(cfg, now=T0 + timedelta(minutes=1))

    report = run_alert(cfg, now=T0 + timedelta(minutes=45))
    assert report.sensors == dict.fromkeys(names, "silent")
    assert notices(smtp, chat) == ["[pDNSSOC] DNS alert - 3 sensors are silent"]
    body = smtp.messages[0].get_content()
    for name in names:
        assert f"- {name}: none since 2026-03-02T12:00:00Z (0:45:00 ago; threshold 0:40:00)" in body
    assert "check the server's go-dnscollector" in body
    assert run_alert(cfg, now=T0 + timedelta(hours=2)).sensors == {}  # told once, all three

    back = T0 + timedelta(hours=3)
    for name in names:
        append(cfg, *history(name, back, 0.2, timedelta(minutes=5)))
    run_correlate(cfg, now=back + timedelta(minutes=1))
    report = run_alert(cfg, now=back + timedelta(minutes=2))
    assert report.sensors == dict.fromkeys(names, "sending again")
    assert notices(smtp, chat)[1:] == ["[pDNSSOC] DNS alert - 3 sensors send again"]
    body = smtp.messages[1].get_content()
    assert all(f"- {name}: newest reply" in body for name in names)


def test_a_new_sensor_is_not_announced_before_it_has_a_history(
    tmp_path: Path, smtp: SmtpServer, chat: Receiver
) -> None:
    cfg = make(tmp_path, smtp, chat, min_history={"hours": 6})
    append(cfg, *history("inst-new", T0, 5, timedelta(minutes=10)))
    run_correlate(cfg, now=T0)
    assert run_alert(cfg, now=T0 + timedelta(days=2)).sensors == {}
    assert notices(smtp, chat) == []
    # the same rhythm an hour longer is a history: announced
    append(cfg, *history("inst-old", T0, 6, timedelta(minutes=10)))
    run_correlate(cfg, now=T0 + timedelta(minutes=1))
    assert run_alert(cfg, now=T0 + timedelta(hours=1)).sensors == {"inst-old": "silent"}


def test_quiet_hours_are_respected(tmp_path: Path, smtp: SmtpServer, chat: Receiver) -> None:
    # Zurich is UTC+1 in March: the quiet hours 18:00-07:00 local are 17:00-06:00 UTC
    cfg = make(
        tmp_path,
        smtp,
        chat,
        timezone="Europe/Zurich",
        quiet_hours=[{"start": "18:00", "end": "07:00"}],
        overrides={"inst-a": {"silent_after": {"hours": 1}}},
    )
    last = T0.replace(hour=16, minute=30)  # 17:30 local, a reply every 10 minutes before
    append(cfg, *history("inst-a", last, 26, timedelta(minutes=10)))
    run_correlate(cfg, now=last)
    # 23:00 UTC: 6.5 h after the last reply, 30 min of it outside the quiet hours
    assert run_alert(cfg, now=last.replace(hour=23)).sensors == {}
    # 06:20 UTC the next day: 50 min outside the quiet hours, still under the hour
    day2 = last + timedelta(days=1)
    assert run_alert(cfg, now=day2.replace(hour=6, minute=20)).sensors == {}
    assert notices(smtp, chat) == []
    # 06:40 UTC: 70 minutes outside the quiet hours
    assert run_alert(cfg, now=day2.replace(hour=6, minute=40)).sensors == {"inst-a": "silent"}
    assert len(notices(smtp, chat)) == 1


def test_a_failed_notice_is_sent_on_the_next_run(tmp_path: Path, chat: Receiver) -> None:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "history": {"enabled": False},
            "alerting": {"slack": {"webhook_url": chat.url()}},
        }
    )
    write_lists(cfg, ["evil.example.com"], [])
    append(cfg, *history("inst-a", T0, 26, timedelta(minutes=10)))
    run_correlate(cfg, now=T0)
    chat.status = 500
    report = run_alert(cfg, now=T0 + timedelta(hours=1))
    assert report.sensors == {}
    assert "operators (slack)" in report.failed
    chat.status = 200
    assert run_alert(cfg, now=T0 + timedelta(hours=2)).sensors == {"inst-a": "silent"}
    assert run_alert(cfg, now=T0 + timedelta(hours=3)).sensors == {}
    assert [p for p, _b in chat.requests if not p.endswith("#refused")] == [
        "/hook/T0KEN-secret-123"
    ]


def test_bad_sensor_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "data_dir": str(tmp_path),
                "sensors": {
                    "timezone": "Mars/Olympus",
                    "quiet_hours": [{"start": "25:00", "end": "06:00"}],
                    "min_silence": {"hours": 2},
                    "max_silence": {"hours": 1},
                    "overrides": {"inst-a": {"silent_after": {"seconds": 5}}},
                },
            }
        )
    text = str(err.value)
    for expected in (
        "sensors.timezone: unknown time zone",
        "sensors.quiet_hours[0].start: expected a time of day HH:MM",
        "sensors.max_silence: must not be shorter than min_silence",
        "sensors.overrides.inst-a.silent_after: must be at least",
    ):
        assert expected in text


def test_status_cli_lists_sensors(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "history": {"enabled": False}}))
    cfg = parse_config(yaml.safe_load(path.read_text()))
    write_lists(cfg, ["evil.example.com"], [])
    now = datetime.now(UTC).replace(microsecond=0)
    append(cfg, *history("inst-a", now - timedelta(minutes=1), 2, timedelta(minutes=20)))
    run_correlate(cfg, now=now)
    out = subprocess.run(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(path), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        check=False,
    )
    data = json.loads(out.stdout)
    (row,) = data["sensors"]
    assert row["sensor"] == "inst-a"
    assert row["replies_per_hour"] == 3.0
    assert row["threshold_s"] is None  # two hours are not a day of history


def test_a_spooling_sensors_notice_says_when_its_spool_starts_dropping(
    tmp_path: Path, smtp: SmtpServer, chat: Receiver
) -> None:
    cfg = make(tmp_path, smtp, chat)
    append(cfg, *history("inst-a", T0, 26, timedelta(minutes=10)))
    run_correlate(cfg, now=T0 + timedelta(minutes=1))
    # its last report, shipped after its last good round (outgoing/ empty)
    shipped = tmp_path / "incoming" / ".sensors" / "inst-a"
    shipped.mkdir(parents=True)
    (shipped / "spool-report.json").write_text(
        json.dumps(
            {
                "updated": int(T0.timestamp()),
                "spool_bytes": 4096,
                "spool_files": 1,
                "oldest_waiting": None,
                "limit_bytes": 2048 * 2**20,
                "limit_seconds": 72 * 3600,
                "warn_percent": 75,
                "warned": False,
                "dropped": {"files": 0, "bytes": 0, "replies": 0},
            }
        )
    )

    assert run_alert(cfg, now=T0 + timedelta(minutes=45)).sensors == {"inst-a": "silent"}

    body = smtp.messages[0].get_content()
    assert (
        "Unless shipping resumes, it drops its oldest unshipped files from "
        "2026-03-05T12:00:00Z on (its age bound, 3 days, 0:00:00), sooner if they fill "
        "its size bound (2.0 GiB) first."
    ) in " ".join(body.split())
    assert "0 file(s) dropped so far" in body
