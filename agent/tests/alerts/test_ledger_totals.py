# SPDX-License-Identifier: Apache-2.0
"""The ledger's per-channel totals (the metrics' counters): they only grow, pruning
leaves them alone, and a ledger written before them is read and extended in place."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pdnssoc_agent.alertfile import decode_alert
from pdnssoc_agent.alerts.ledger import LEDGER_NAME, Ledger

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LINE = (
    b'{"schema_version":1,"id":"%s","revision":1,"kind":"live","detected_at":'
    b'"2026-11-27T10:06:00Z","first_seen":"2026-11-27T10:05:00Z","last_seen":'
    b'"2026-11-27T10:05:00Z","count":1,"sensor":"inst-a","client":"192.0.2.10",'
    b'"query":{"name":"bad.example.com","type":"A","rcode":"NOERROR"},"answers":[],'
    b'"match":{"how":"exact","indicator":"bad.example.com","value":"bad.example.com"},'
    b'"misp":[],"ioc_added":"2026-11-26T00:00:00Z","source":{"file":"m.json"}}'
)


def test_totals_grow_and_survive_pruning(tmp_path: Path) -> None:
    alerts = [decode_alert(LINE % f"{n:032x}".encode()) for n in range(3)]
    with Ledger(tmp_path) as ledger:
        ledger.record_sent("slack", alerts[:2], T0)
        ledger.record_sent("slack", alerts[2:], T0)
        ledger.record_failure("slack", "HTTP 500", T0, timedelta(minutes=1), timedelta(hours=1))
        ledger.record_failure("teams", "HTTP 500", T0, timedelta(minutes=1), timedelta(hours=1))
        ledger.record_failure("teams", "HTTP 500", T0, timedelta(minutes=1), timedelta(hours=1))
        ledger.record_success("teams", T0)
        ledger.prune(T0 + timedelta(days=400), timedelta(days=1))
    with Ledger(tmp_path, readonly=True) as ledger:
        states = {s.channel: s for s in ledger.channel_states()}
    assert (states["slack"].delivered_total, states["slack"].failed_total) == (3, 1)
    assert (states["teams"].delivered_total, states["teams"].failed_total) == (0, 2)
    assert states["teams"].failures == 0  # the consecutive count starts again; the total not


def test_a_ledger_from_before_the_totals(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / LEDGER_NAME)
    db.executescript(
        "CREATE TABLE outbox (channel TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL,"
        " state TEXT NOT NULL, queued_at REAL NOT NULL, done_at REAL, key TEXT,"
        " PRIMARY KEY (channel, id));"
        "CREATE TABLE channels (channel TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0,"
        " next_attempt REAL NOT NULL DEFAULT 0, last_error TEXT, last_attempt REAL,"
        " last_success REAL);"
        "INSERT INTO channels (channel, failures) VALUES ('slack', 2);"
        "PRAGMA user_version = 1;"
    )
    db.close()
    with Ledger(tmp_path, readonly=True) as ledger:  # status: read as it is
        (slack,) = ledger.channel_states()
    assert (slack.failures, slack.delivered_total, slack.failed_total) == (2, 0, 0)
    with Ledger(tmp_path) as ledger:  # the alert step: the columns are added
        ledger.record_failure("slack", "HTTP 500", T0, timedelta(minutes=1), timedelta(hours=1))
        (slack,) = ledger.channel_states()
    assert (slack.failures, slack.failed_total) == (3, 1)
