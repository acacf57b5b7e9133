# SPDX-License-Identifier: Apache-2.0
"""The alert step over real loopback sockets: e-mail, chat and generic webhooks."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.alerts import Ledger, alerts_file, deliver, ledger_dir
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.state import read_pointer
from tests.support.alerts import (
    SMTP_PASSWORD,
    SMTP_USER,
    Receiver,
    SmtpServer,
    Tls,
    alert_line,
    append_alerts,
    free_port,
    start_receiver,
    start_smtp,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def make_config(tmp_path: Path, alerting: dict[str, Any], **extra: Any) -> Config:
    data = {"data_dir": str(tmp_path), "alerting": alerting, **extra}
    return parse_config(data)


def email_section(port: int, **kw: Any) -> dict[str, Any]:
    section = {
        "from": "pdnssoc@csirt.example",
        "summary_to": "soc@csirt.example",
        "server": "127.0.0.1",
        "port": port,
        "timeout": 5,
        "mappings": [{"client_id": "inst-a", "contact": "sec@inst-a.example"}],
    }
    section.update(kw)
    return section


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- e-mail ------------------------------------------------------------------


def test_email_summary_and_institution_over_starttls_with_auth(
    tmp_path: Path, tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    smtp = start_smtp("starttls", tls)
    try:
        (tmp_path / "smtp.pw").write_text(SMTP_PASSWORD + "\n")
        cfg = make_config(
            tmp_path,
            {
                "email": email_section(
                    smtp.port,
                    security="starttls",
                    username=SMTP_USER,
                    password_file=str(tmp_path / "smtp.pw"),
                    ca_file=str(tls.ca_file),
                )
            },
        )
        src = alerts_file(cfg)
        append_alerts(
            src,
            alert_line(sensor="inst-a", name="bad.example.com"),
            alert_line(sensor="inst-a", name="evil.example.net", client="192.0.2.11"),
            alert_line(sensor="inst-unmapped", name="bad.example.com"),
        )
        before = digest(src)
        with caplog.at_level(logging.WARNING):
            report = deliver(cfg, NOW)
        assert report.ok, report.failed
        assert report.sent == {"email-summary": 3, "email:inst-a": 2}
        assert smtp.logins == [SMTP_USER]
        summary = smtp.to("soc@csirt.example")
        institution = smtp.to("sec@inst-a.example")
        assert len(summary) == 1
        assert len(institution) == 1
        assert len(smtp.messages) == 2
        text = summary[0].get_body(("plain",))
        html = summary[0].get_body(("html",))
        assert text is not None
        assert html is not None
        assert "inst-unmapped" in text.get_content()
        assert "No contact is mapped for sensor(s) inst-unmapped" in text.get_content()
        assert 'href="https://misp.example.org/events/view/42"' in html.get_content()
        inst_text = institution[0].get_body(("plain",))
        assert inst_text is not None
        assert "evil.example.net" in inst_text.get_content()
        assert "inst-unmapped" not in inst_text.get_content()
        assert "inst-a" in str(institution[0]["Subject"])
        assert "no contact mapped for sensor 'inst-unmapped'" in caplog.text
        assert SMTP_PASSWORD not in caplog.text
        # The input is only read; the pointer records the run.
        assert digest(src) == before
        assert read_pointer(cfg.alerting.last_alerting_pointer_file) == NOW
        # A second run sends nothing new.
        again = deliver(cfg, NOW + timedelta(minutes=5))
        assert again.sent == {}
        assert len(smtp.messages) == 2
    finally:
        smtp.stop()


IMPLICIT_TLS_WARNING = "ignore:Requiring AUTH while not requiring TLS:UserWarning"


@pytest.mark.filterwarnings(IMPLICIT_TLS_WARNING)
def test_email_implicit_tls(tmp_path: Path, tls: Tls) -> None:
    smtp = start_smtp("tls", tls)
    try:
        cfg = make_config(
            tmp_path,
            {
                "email": email_section(
                    smtp.port,
                    security="tls",
                    username=SMTP_USER,
                    password=SMTP_PASSWORD,
                    ca_file=str(tls.ca_file),
                )
            },
        )
        append_alerts(alerts_file(cfg), alert_line())
        report = deliver(cfg, NOW)
        assert report.ok, report.failed
        assert len(smtp.messages) == 2
    finally:
        smtp.stop()


@pytest.mark.filterwarnings(IMPLICIT_TLS_WARNING)
def test_email_untrusted_certificate_is_refused(tmp_path: Path, tls: Tls) -> None:
    smtp = start_smtp("tls", tls)
    try:
        cfg = make_config(
            tmp_path,
            {"email": email_section(smtp.port, security="tls", username="u", password="p")},
        )
        append_alerts(alerts_file(cfg), alert_line())
        report = deliver(cfg, NOW)
        assert set(report.failed) == {"email-summary", "email:inst-a"}
        assert "SSLCertVerificationError" in report.failed["email-summary"]
        assert smtp.messages == []
    finally:
        smtp.stop()


def test_smtp_down_keeps_alerts_and_backs_off_then_recovers(
    tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    cfg = make_config(
        tmp_path,
        {
            "email": email_section(port),
            "webhook": {"url": receiver.url()},
            "retry_after": {"minutes": 5},
        },
    )
    append_alerts(alerts_file(cfg), alert_line(), alert_line(name="two.example.org"))
    report = deliver(cfg, NOW)
    # E-mail failed, the webhook went on.
    assert set(report.failed) == {"email-summary", "email:inst-a"}
    assert report.sent == {"webhook": 2}
    with Ledger(ledger_dir(cfg)) as ledger:
        states = {s.channel: s for s in ledger.channel_states()}
    assert states["email-summary"].pending == 2
    assert states["email-summary"].failures == 1
    assert states["webhook"].pending == 0

    # Within the back-off the channel is not tried.
    smtp = start_smtp("none", port=port)
    try:
        soon = deliver(cfg, NOW + timedelta(minutes=1))
        assert set(soon.deferred) == {"email-summary", "email:inst-a"}
        assert smtp.messages == []
        later = deliver(cfg, NOW + timedelta(minutes=6))
        assert later.ok
        assert later.sent == {"email-summary": 2, "email:inst-a": 2}
        assert len(smtp.messages) == 2
        assert len(receiver.requests) == 1  # the webhook was not sent twice
    finally:
        smtp.stop()


def test_smtp_temporary_refusal_is_retried(tmp_path: Path, smtp_plain: SmtpServer) -> None:
    cfg = make_config(tmp_path, {"email": email_section(smtp_plain.port)})
    append_alerts(alerts_file(cfg), alert_line())
    smtp_plain.refuse_with = "451 4.3.0 try again later"
    first = deliver(cfg, NOW)
    assert "451" in first.failed["email-summary"]
    smtp_plain.refuse_with = None
    second = deliver(cfg, NOW + timedelta(hours=1))
    assert second.ok
    assert len(smtp_plain.messages) == 2


def test_backoff_doubles_and_is_capped(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path,
        {
            "webhook": {"url": f"http://127.0.0.1:{free_port()}/x"},
            "retry_after": {"minutes": 5},
            "retry_max": {"minutes": 15},
        },
    )
    append_alerts(alerts_file(cfg), alert_line())
    t = NOW
    delays = []
    for _ in range(4):
        deliver(cfg, t)
        with Ledger(ledger_dir(cfg)) as ledger:
            (state,) = ledger.channel_states()
        delays.append(round(state.next_attempt - t.timestamp()))
        t = datetime.fromtimestamp(state.next_attempt, UTC)
    assert delays == [300, 600, 900, 900]


# -- webhooks ----------------------------------------------------------------


def test_chat_webhooks_group_per_sensor_and_cap(tmp_path: Path) -> None:
    receivers = {k: start_receiver() for k in ("slack", "mattermost", "teams", "webhook")}
    try:
        cfg = make_config(
            tmp_path,
            {
                k: {"webhook_url": r.url(f"/{k}"), "max_alerts_per_message": 3}
                for k, r in receivers.items()
            },
        )
        lines = [alert_line(sensor="inst-a", name=f"d{i}.bad.example") for i in range(5)]
        lines.append(alert_line(sensor="inst-b", name="x.bad.example"))
        append_alerts(alerts_file(cfg), *lines)
        report = deliver(cfg, NOW)
        assert report.ok, report.failed
        assert report.sent == {"slack": 6, "mattermost": 6, "teams": 6, "webhook": 6}

        slack = receivers["slack"].bodies()
        assert len(slack) == 2  # one message per sensor
        a_text = next(b["text"] for b in slack if "inst-a" in b["text"])
        assert "and 2 more" in a_text
        assert a_text.count(" resolved ") == 3
        assert "<https://misp.example.org/events/view/42|misp1 (MISP) event 42>" in a_text

        mm = receivers["mattermost"].bodies()
        assert len(mm) == 2
        link = "[misp1 \\(MISP\\) event 42](https://misp.example.org/events/view/42)"
        assert link in mm[0]["text"]  # Markdown punctuation of the text escaped

        teams = receivers["teams"].bodies()
        assert len(teams) == 2
        card = teams[0]["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["type"] == "AdaptiveCard"

        generic = receivers["webhook"].bodies()
        # The generic webhook carries every alert object, 3 per POST.
        assert sorted(len(b["alerts"]) for b in generic) == [1, 2, 3]
        ids = {a["id"] for b in generic for a in b["alerts"]}
        assert ids == {line["id"] for line in lines}
        assert generic[0]["alerts"][0]["schema_version"] == 1
    finally:
        for r in receivers.values():
            r.stop()


def test_chat_message_is_capped_in_characters(tmp_path: Path, receiver: Receiver) -> None:
    cfg = make_config(
        tmp_path,
        {"slack": {"webhook_url": receiver.url(), "max_message_chars": 600}},
    )
    append_alerts(
        alerts_file(cfg),
        *[alert_line(name=f"host{i}.{'x' * 40}.example") for i in range(12)],
    )
    report = deliver(cfg, NOW)
    assert report.sent == {"slack": 12}
    (body,) = receiver.bodies()
    assert len(body["text"]) <= 600
    assert "more" in body["text"]


def test_webhook_500_fails_only_that_channel_and_recovers(tmp_path: Path) -> None:
    bad = start_receiver(status=500)
    good = start_receiver()
    try:
        cfg = make_config(
            tmp_path,
            {"slack": {"webhook_url": bad.url()}, "webhook": {"webhook_url": good.url()}},
        )
        append_alerts(alerts_file(cfg), alert_line(), alert_line(sensor="inst-b"))
        report = deliver(cfg, NOW)
        assert report.failed == {"slack": "slack webhook: HTTP 500"}
        assert report.sent == {"webhook": 2}
        assert len(bad.requests) == 1  # stopped at the first refused message
        bad.status = 200
        report2 = deliver(cfg, NOW + timedelta(hours=1))
        assert report2.ok
        assert report2.sent == {"slack": 2}
        assert len(good.requests) == 2  # one per sensor, not sent again
    finally:
        bad.stop()
        good.stop()


@pytest.mark.slow
def test_webhook_timeout_keeps_alerts_pending(tmp_path: Path) -> None:
    slow = start_receiver(delay=2.5)
    try:
        cfg = make_config(tmp_path, {"teams": {"webhook_url": slow.url(), "timeout": 1}})
        append_alerts(alerts_file(cfg), alert_line())
        report = deliver(cfg, NOW)
        assert report.failed == {"teams": "teams webhook: no answer within 1s"}
        with Ledger(ledger_dir(cfg)) as ledger:
            assert [a.id for a in ledger.pending("teams")] == [alert_line()["id"]]
    finally:
        slow.stop()


def test_webhook_url_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    refused = f"http://127.0.0.1:{free_port()}/hooks/T0KEN-secret-123"
    env = "PDNSSOC_TEST_HOOK"
    cfg = make_config(
        tmp_path, {"mattermost": {"webhook_url_env": env}, "slack": {"webhook_url": refused}}
    )
    append_alerts(alerts_file(cfg), alert_line())
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.DEBUG):
        mp.setenv(env, refused)
        report = deliver(cfg, NOW)
    assert set(report.failed) == {"slack", "mattermost"}
    assert "T0KEN" not in caplog.text
    assert all("T0KEN" not in v for v in report.failed.values())
    with Ledger(ledger_dir(cfg)) as ledger:
        assert all("T0KEN" not in (s.last_error or "") for s in ledger.channel_states())


# -- at-least-once, de-duplication, re-notification -----------------------------


def test_dedup_and_renotify_window(tmp_path: Path, receiver: Receiver) -> None:
    cfg = make_config(
        tmp_path,
        {"webhook": {"webhook_url": receiver.url()}, "renotify_after": {"hours": 24}},
    )
    src = alerts_file(cfg)
    first = alert_line()
    append_alerts(src, first)
    assert deliver(cfg, NOW).sent == {"webhook": 1}

    # A revision update within the window is not re-sent.
    append_alerts(src, {**first, "revision": 2, "count": 5})
    assert deliver(cfg, NOW + timedelta(hours=1)).sent == {}
    # Nor is a new alert (next de-duplication window) for the same client and indicator.
    append_alerts(src, alert_line(window="2026-11-27T11:00:00Z"))
    assert deliver(cfg, NOW + timedelta(hours=2)).sent == {}
    # A different client is a different incident.
    append_alerts(src, alert_line(client="192.0.2.99"))
    assert deliver(cfg, NOW + timedelta(hours=2)).sent == {"webhook": 1}
    # After the window a new revision is sent again.
    append_alerts(src, {**first, "revision": 3, "count": 9})
    assert deliver(cfg, NOW + timedelta(hours=25)).sent == {"webhook": 1}
    bodies = receiver.bodies()
    assert [b["alerts"][0]["revision"] for b in bodies] == [1, 1, 3]
    assert bodies[2]["alerts"][0]["count"] == 9


def test_live_and_retro_finds_of_one_reply_are_one_notification(tmp_path: Path) -> None:
    """Retro also reads lines logged shortly before an indicator arrived, as live does."""
    rec = start_receiver(status=503)
    try:
        cfg = make_config(tmp_path, {"webhook": {"webhook_url": rec.url()}})
        src = alerts_file(cfg)
        append_alerts(src, alert_line(kind="live"), alert_line(kind="retro"))
        assert deliver(cfg, NOW).failed  # both taken in while the channel is down
        append_alerts(src, alert_line(kind="retro", window="2026-11-27T11:00:00Z"))
        deliver(cfg, NOW + timedelta(minutes=10))  # still down: queued behind the first
        rec.status = 200
        assert deliver(cfg, NOW + timedelta(hours=1)).sent == {"webhook": 1}
        body = rec.bodies()[-1]  # the earlier ones were refused with 503
        assert [a["kind"] for a in body["alerts"]] == ["live"]
        # another client resolving the same name is still its own incident
        append_alerts(src, alert_line(kind="retro", client="192.0.2.99"))
        assert deliver(cfg, NOW + timedelta(hours=2)).sent == {"webhook": 1}
    finally:
        rec.stop()


def test_a_ledger_from_before_incident_keys_is_upgraded_in_place(
    tmp_path: Path, receiver: Receiver
) -> None:
    cfg = make_config(tmp_path, {"webhook": {"webhook_url": receiver.url()}})
    ledger_dir(cfg).mkdir(parents=True)
    old = sqlite3.connect(ledger_dir(cfg) / "alert-ledger.sqlite3")
    old.execute(
        "CREATE TABLE outbox (channel TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL,"
        " state TEXT NOT NULL, queued_at REAL NOT NULL, done_at REAL, PRIMARY KEY (channel, id))"
    )
    sent_at = NOW.timestamp()
    old.execute(
        "INSERT INTO outbox VALUES ('webhook', 'old-alert', 1, 'sent', ?, ?)", (sent_at, sent_at)
    )
    old.commit()
    old.close()
    append_alerts(alerts_file(cfg), alert_line())
    assert deliver(cfg, NOW).sent == {"webhook": 1}
    with Ledger(ledger_dir(cfg)) as ledger:
        assert ledger.was_sent("webhook", "old-alert")
        assert ledger.was_sent("webhook", alert_line()["id"])


def test_revision_update_while_pending_sends_newest(tmp_path: Path) -> None:
    rec = start_receiver(status=503)
    try:
        cfg = make_config(tmp_path, {"slack": {"webhook_url": rec.url()}})
        src = alerts_file(cfg)
        first = alert_line()
        append_alerts(src, first)
        deliver(cfg, NOW)
        append_alerts(src, {**first, "revision": 2, "count": 7})
        rec.status = 200
        report = deliver(cfg, NOW + timedelta(hours=1))
        assert report.sent == {"slack": 1}
        assert "7x" in rec.bodies()[-1]["text"]
    finally:
        rec.stop()


def test_replaced_input_is_read_again_without_resending(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(
        tmp_path, {"webhook": {"webhook_url": receiver.url()}, "renotify_after": {"hours": 1}}
    )
    src = alerts_file(cfg)
    append_alerts(src, alert_line(), alert_line(name="b.example"))
    deliver(cfg, NOW)
    # The file is replaced (rotated): same alerts plus one new, long after the window.
    rotated = src.with_name("new.json")
    append_alerts(rotated, alert_line(), alert_line(name="b.example"), alert_line(name="c.example"))
    rotated.replace(src)
    with caplog.at_level(logging.WARNING):
        report = deliver(cfg, NOW + timedelta(days=2))
    assert "replaced or truncated" in caplog.text
    assert report.sent == {"webhook": 1}
    assert receiver.bodies()[-1]["alerts"][0]["query"]["name"] == "c.example"


def test_incomplete_and_bad_lines(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path, {"webhook": {"webhook_url": receiver.url()}})
    src = alerts_file(cfg)
    src.parent.mkdir(parents=True)
    good = alert_line()
    partial = alert_line(name="partial.example")
    import json

    with src.open("w") as fh:
        fh.write("not json\n")
        fh.write(json.dumps({**good, "id": "XYZ"}) + "\n")
        fh.write(json.dumps(good) + "\n")
        text = json.dumps(partial)
        fh.write(text[:30])  # the writer has not finished this line
    with caplog.at_level(logging.WARNING):
        report = deliver(cfg, NOW)
    assert report.read == 3
    assert report.bad == 2
    assert report.sent == {"webhook": 1}
    assert "id: expected 32 lower-case hex digits" in caplog.text
    with src.open("a") as fh:
        fh.write(text[30:] + "\n")
    report = deliver(cfg, NOW + timedelta(minutes=5))
    assert report.read == 1
    assert report.sent == {"webhook": 1}


def test_no_channels_configured_reads_and_records(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {})
    append_alerts(alerts_file(cfg), alert_line())
    report = deliver(cfg, NOW)
    assert report.read == 1
    assert report.queued == 0
    assert read_pointer(cfg.alerting.last_alerting_pointer_file) == NOW


def test_missing_input_is_not_an_error(tmp_path: Path, receiver: Receiver) -> None:
    cfg = make_config(tmp_path, {"webhook": {"webhook_url": receiver.url()}})
    report = deliver(cfg, NOW)
    assert report.ok
    assert report.read == 0


def test_failure_mid_channel_keeps_only_the_refused_messages(tmp_path: Path) -> None:
    rec = start_receiver()
    rec.fail_after = 1  # the first message is accepted, the next ones refused
    try:
        cfg = make_config(tmp_path, {"slack": {"webhook_url": rec.url()}})
        append_alerts(
            alerts_file(cfg),
            alert_line(sensor="inst-a"),
            alert_line(sensor="inst-b"),
            alert_line(sensor="inst-c"),
        )
        report = deliver(cfg, NOW)
        assert report.sent == {"slack": 1}
        assert report.failed == {"slack": "slack webhook: HTTP 500"}
        with Ledger(ledger_dir(cfg)) as ledger:
            assert {a.sensor for a in ledger.pending("slack")} == {"inst-b", "inst-c"}
        rec.fail_after = None
        report = deliver(cfg, NOW + timedelta(hours=1))
        assert report.sent == {"slack": 2}
        accepted = [b["text"] for p, b in rec.requests if not p.endswith("#refused")]
        assert len(accepted) == 3
        assert sum("inst-a" in t for t in accepted) == 1
    finally:
        rec.stop()


def test_smtp_server_that_never_answers_times_out(tmp_path: Path, receiver: Receiver) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts connections (kernel backlog) but never greets
    try:
        port = silent.getsockname()[1]
        cfg = make_config(
            tmp_path,
            {"email": email_section(port, timeout=1), "webhook": {"webhook_url": receiver.url()}},
        )
        append_alerts(alerts_file(cfg), alert_line())
        started = datetime.now(UTC)
        report = deliver(cfg, NOW)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        assert set(report.failed) == {"email-summary", "email:inst-a"}
        assert "timed out" in report.failed["email-summary"]
        assert report.sent == {"webhook": 1}
        assert elapsed < 5  # one connection attempt for all e-mail channels
    finally:
        silent.close()


# -- channel names ---------------------------------------------------------------


def test_a_sensor_named_summary_gets_its_own_mail(tmp_path: Path, smtp_plain: SmtpServer) -> None:
    section = email_section(smtp_plain.port)
    section["mappings"] = [{"client_id": "summary", "contact": "sec@summary-univ.example"}]
    cfg = make_config(tmp_path, {"email": section})
    append_alerts(alerts_file(cfg), alert_line(sensor="summary"))
    report = deliver(cfg, NOW)
    assert report.sent == {"email-summary": 1, "email:summary": 1}
    assert len(smtp_plain.to("sec@summary-univ.example")) == 1
    assert len(smtp_plain.to("soc@csirt.example")) == 1


def test_a_ledger_with_the_old_summary_channel_is_migrated_in_place(
    tmp_path: Path, smtp_plain: SmtpServer
) -> None:
    """Before, the summary channel was email:summary: pending, sent and health rows follow."""
    cfg = make_config(tmp_path, {"email": email_section(smtp_plain.port)})
    pending, sent = alert_line(name="pending.example"), alert_line(name="sent.example")
    append_alerts(alerts_file(cfg), sent)
    deliver(cfg, NOW)  # sent.example went out on the summary and to inst-a
    path = ledger_dir(cfg) / "alert-ledger.sqlite3"
    db = sqlite3.connect(path)
    with db:  # make the ledger what the previous version wrote
        for table in ("outbox", "delivered", "channels"):
            db.execute(
                f"UPDATE {table} SET channel = 'email:summary' "  # noqa: S608
                "WHERE channel = 'email-summary'"
            )
        db.execute(
            "INSERT INTO alerts VALUES (?, 1, ?, ?)",
            (pending["id"], json.dumps(pending), NOW.timestamp()),
        )
        db.execute(
            "INSERT INTO outbox VALUES ('email:summary', ?, 1, 'pending', ?, NULL, 'k')",
            (pending["id"], NOW.timestamp()),
        )
        db.execute("PRAGMA user_version = 0")
    db.close()
    smtp_plain.messages.clear()
    smtp_plain.envelopes.clear()
    report = deliver(cfg, NOW + timedelta(minutes=5))
    assert report.failed == {}
    assert report.sent == {"email-summary": 1}  # the pending one, once, to the operators
    (mail,) = smtp_plain.to("soc@csirt.example")
    body = mail.get_body(("plain",))
    assert body is not None
    assert "pending.example" in body.get_content()
    assert "sent.example" not in body.get_content()
    with Ledger(ledger_dir(cfg)) as ledger:
        channels = {s.channel for s in ledger.channel_states()}
        assert ledger.was_sent("email-summary", sent["id"])
    assert channels == {"email-summary", "email:inst-a"}
    # sent.example was already announced: a new revision within renotify_after is not
    append_alerts(alerts_file(cfg), {**sent, "revision": 2, "count": 3})
    assert deliver(cfg, NOW + timedelta(minutes=10)).sent == {}
