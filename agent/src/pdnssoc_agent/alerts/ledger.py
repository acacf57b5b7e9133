# SPDX-License-Identifier: Apache-2.0
"""The delivery ledger: which alert went out on which channel, and what is still owed.

One SQLite database (``<state_dir>/alert-ledger.sqlite3``, synchronous=FULL)
holds four things, each changed in a transaction:

* the read position in the alert file (device, inode, byte offset) together
  with the alerts taken in up to there, so a crash re-reads at most the lines
  whose ``outbox`` rows were not committed;
* ``outbox``: one row per (channel, alert id), ``pending`` until the channel
  accepted it, then ``sent`` (or ``suppressed`` by the re-notification
  window). Rows are marked, never deleted to mark them done; old rows are
  pruned after ``alerting.ledger_retention``; a row whose stored alert this
  version refuses is marked ``rejected``, one a suppression rule silenced
  while it waited is marked ``muted``;
* ``delivered``: per (channel, incident key) the last alert id, revision and
  time sent, which drives ``alerting.renotify_after``;
* ``channels``: consecutive failures and back-off per channel, and its running
  totals of alerts delivered and of failed attempts (never pruned: the
  metrics' counters).
* ``muted`` and ``rule_hits``: the alerts a suppression rule silenced (which
  rule, when; pruned like ``outbox``) and, per rule, how many and the last
  hit's DNS time (kept). An alert is counted once, whatever its revisions.

A delivery is recorded only after the channel accepted the message. A crash
between the two re-sends that one message on the next run: duplicates are
bounded to the message in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..alertfile import Alert, AlertFormatError, decode_alert, encode_alert, show
from .email import SUMMARY

log = logging.getLogger(__name__)

LEDGER_NAME = "alert-ledger.sqlite3"
LEDGER_VERSION = 1
"""``PRAGMA user_version`` of a current ledger (0: written before version 1)."""
OLD_SUMMARY_CHANNEL = "email:summary"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS source (
    path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, revision INTEGER NOT NULL, body TEXT NOT NULL, queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    channel TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL,
    state TEXT NOT NULL, queued_at REAL NOT NULL, done_at REAL, key TEXT,
    PRIMARY KEY (channel, id)
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, channel);
CREATE TABLE IF NOT EXISTS delivered (
    channel TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL,
    sent_at REAL NOT NULL, PRIMARY KEY (channel, key)
);
CREATE TABLE IF NOT EXISTS channels (
    channel TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0, last_error TEXT, last_attempt REAL,
    last_success REAL, delivered_total INTEGER NOT NULL DEFAULT 0,
    failed_total INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS muted (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_hits (
    rule TEXT PRIMARY KEY, hits INTEGER NOT NULL, last_hit TEXT
);
"""
_TOTALS = ("delivered_total", "failed_total")
"""Columns of ``channels`` a ledger written before the metrics lacks (added when opened)."""
_CHANNEL_STATES = (
    "SELECT c.channel, COALESCE(p.n, 0), p.oldest, COALESCE(h.failures, 0), "
    "COALESCE(h.next_attempt, 0), h.last_error, h.last_success, "
    "COALESCE(h.delivered_total, 0), COALESCE(h.failed_total, 0) FROM "
    "(SELECT channel FROM outbox UNION SELECT channel FROM channels) c "
    "LEFT JOIN (SELECT channel, COUNT(*) n, MIN(queued_at) oldest FROM outbox "
    "WHERE state = 'pending' GROUP BY channel) p ON p.channel = c.channel "
    "LEFT JOIN channels h ON h.channel = c.channel ORDER BY c.channel"
)
_CHANNEL_STATES_OLD = _CHANNEL_STATES.replace(
    "COALESCE(h.delivered_total, 0), COALESCE(h.failed_total, 0)", "0, 0"
)


@dataclass(frozen=True)
class SourcePosition:
    """How far the alert file has been taken in."""

    dev: int
    ino: int
    offset: int


@dataclass(frozen=True)
class ChannelState:
    """Health of one channel."""

    channel: str
    pending: int
    oldest_pending: float | None
    failures: int
    next_attempt: float
    last_error: str | None
    last_success: float | None
    delivered_total: int = 0
    """Alerts the channel accepted, ever (rows pruned from ``outbox`` included)."""
    failed_total: int = 0
    """Failed delivery attempts, ever."""


def _open_readonly(path: Path) -> sqlite3.Connection:
    """The ledger for reading only; also where its directory cannot be written.

    SQLite needs to create a shared-memory file beside a WAL database even to
    read it; on a read-only file system (or without write access to the
    directory) it cannot, and the file is then read as it is (``immutable``).
    """
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        db.close()
        db = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True, isolation_level=None)
    return db


class Ledger:
    """Open (creating if needed) the ledger in ``state_dir``."""

    def __init__(self, state_dir: Path, *, readonly: bool = False) -> None:
        self.path = state_dir / LEDGER_NAME
        self._parsed: dict[str, tuple[str, Alert]] = {}
        """Alerts parsed from their stored body, shared by the channels of a run."""
        if readonly:
            # For status: never create or change anything (FileNotFoundError if absent).
            if not self.path.exists():
                raise FileNotFoundError(self.path)
            self._db = _open_readonly(self.path)
            return
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        os.close(fd)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        if "key" not in columns:  # a ledger written before outbox carried the incident key
            self._db.execute("ALTER TABLE outbox ADD COLUMN key TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_key ON outbox (channel, key, state)")
        for column in _TOTALS:
            if column not in self._channel_columns():
                self._db.execute(
                    f"ALTER TABLE channels ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                )
        self._migrate()

    def _channel_columns(self) -> set[str]:
        return {r[1] for r in self._db.execute("PRAGMA table_info(channels)")}

    def _migrate(self) -> None:
        """Bring a ledger written by an older version to :data:`LEDGER_VERSION`, in place.

        Version 1: the e-mail summary channel was ``email:summary``, the name a
        sensor called ``summary`` also got; it is now ``email-summary``.
        """
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version >= LEDGER_VERSION:
            return
        with self.transaction() as db:
            for table in ("outbox", "delivered", "channels"):
                db.execute(
                    f"UPDATE {table} SET channel = ? WHERE channel = ?",  # noqa: S608 - fixed names
                    (SUMMARY, OLD_SUMMARY_CHANNEL),
                )
            db.execute(f"PRAGMA user_version = {LEDGER_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- the read position ------------------------------------------------

    def position(self, source: Path) -> SourcePosition | None:
        row = self._db.execute(
            "SELECT dev, ino, offset FROM source WHERE path = ?", (str(source),)
        ).fetchone()
        return SourcePosition(*row) if row else None

    def take_in(
        self,
        source: Path,
        position: SourcePosition,
        alerts: Iterable[tuple[Alert, list[str]]],
        renotify_after: timedelta,
        now: datetime,
        *,
        muted: Iterable[tuple[Alert, str]] = (),
    ) -> int:
        """Queue ``alerts`` on their channels and move the read position, atomically.

        ``muted``: (alert, rule id) of the alerts a suppression rule silenced,
        counted in the same transaction. Returns the number of (channel,
        alert) rows newly pending.
        """
        ts = now.timestamp()
        window = renotify_after.total_seconds()
        queued = 0
        with self.transaction() as db:
            for alert, channels in alerts:
                db.execute(
                    "INSERT INTO alerts (id, revision, body, queued_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, "
                    "body = excluded.body WHERE excluded.revision > alerts.revision",
                    (alert.id, alert.revision, encode_alert(alert).decode(), ts),
                )
                for channel in channels:
                    queued += self._queue(db, channel, alert, ts, window)
            self._count_muted(db, muted, ts)
            db.execute(
                "INSERT INTO source (path, dev, ino, offset) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "
                "offset = excluded.offset",
                (str(source), position.dev, position.ino, position.offset),
            )
        return queued

    @staticmethod
    def _queue(db: sqlite3.Connection, channel: str, alert: Alert, ts: float, window: float) -> int:
        row = db.execute(
            "SELECT revision, state FROM outbox WHERE channel = ? AND id = ?", (channel, alert.id)
        ).fetchone()
        if row is not None:
            revision, state = row
            if state == "pending" and alert.revision > revision:
                # Not sent yet: the newer revision goes out instead.
                db.execute(
                    "UPDATE outbox SET revision = ? WHERE channel = ? AND id = ?",
                    (alert.revision, channel, alert.id),
                )
            if state == "pending" or alert.revision <= revision:
                return 0
        sent = db.execute(
            "SELECT id, revision, sent_at FROM delivered WHERE channel = ? AND key = ?",
            (channel, alert.incident_key),
        ).fetchone()
        state = "pending"
        if sent is not None:
            sent_id, sent_revision, sent_at = sent
            if ts - sent_at < window or (sent_id == alert.id and alert.revision <= sent_revision):
                state = "suppressed"
        owed = db.execute(
            "SELECT 1 FROM outbox WHERE channel = ? AND key = ? AND state = 'pending' AND id != ?",
            (channel, alert.incident_key, alert.id),
        ).fetchone()
        if owed is not None:  # the same incident is already on its way
            state = "suppressed"
        if state == "suppressed" and row is not None:
            return 0
        db.execute(
            "INSERT INTO outbox (channel, id, revision, state, queued_at, done_at, key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, id) DO UPDATE SET "
            "revision = excluded.revision, state = excluded.state, "
            "queued_at = excluded.queued_at, done_at = excluded.done_at, key = excluded.key",
            (
                channel,
                alert.id,
                alert.revision,
                state,
                ts,
                ts if state != "pending" else None,
                alert.incident_key,
            ),
        )
        return 1 if state == "pending" else 0

    @staticmethod
    def _count_muted(db: sqlite3.Connection, muted: Iterable[tuple[Alert, str]], ts: float) -> None:
        for alert, rule in muted:
            new = db.execute(
                "INSERT INTO muted (id, rule, at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (alert.id, rule, ts),
            ).rowcount
            db.execute(
                "INSERT INTO rule_hits (rule, hits, last_hit) VALUES (?, ?, ?) "
                "ON CONFLICT (rule) DO UPDATE SET hits = hits + excluded.hits, "
                "last_hit = max(COALESCE(last_hit, ''), excluded.last_hit)",
                (rule, new, alert.last_seen or alert.detected_at),
            )

    def mute(self, channel: str, muted: Iterable[tuple[Alert, str]], now: datetime) -> None:
        """Pending alerts a suppression rule now silences: marked ``muted``, counted."""
        ts = now.timestamp()
        muted = list(muted)
        with self.transaction() as db:
            db.executemany(
                "UPDATE outbox SET state = 'muted', done_at = ? WHERE channel = ? AND id = ? "
                "AND state = 'pending'",
                [(ts, channel, alert.id) for alert, _rule in muted],
            )
            self._count_muted(db, muted, ts)

    def rule_hits(self) -> dict[str, tuple[int, str | None]]:
        """Rule id -> (alerts silenced, DNS time of the last one), for every rule that hit."""
        try:
            rows = self._db.execute("SELECT rule, hits, last_hit FROM rule_hits").fetchall()
        except sqlite3.OperationalError:  # a ledger from before suppressions, opened read-only
            return {}
        return {rule: (int(hits), last or None) for rule, hits, last in rows}

    # -- what is owed -----------------------------------------------------

    def pending_channels(self) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT channel FROM outbox WHERE state = 'pending' ORDER BY channel"
        ).fetchall()
        return [r[0] for r in rows]

    def pending(self, channel: str, now: datetime | None = None) -> list[Alert]:
        """Alerts owed on ``channel``, oldest first (newest revision of each).

        A row this version cannot use (queued by an older version that let a
        bad line through) is marked ``rejected`` with a warning, once, instead
        of stopping the channel on every run.
        """
        rows = self._db.execute(
            "SELECT a.id, a.body FROM outbox o JOIN alerts a ON a.id = o.id "
            "WHERE o.channel = ? AND o.state = 'pending' ORDER BY o.queued_at, o.rowid",
            (channel,),
        ).fetchall()
        out: list[Alert] = []
        rejected: list[str] = []
        for alert_id, body in rows:
            cached = self._parsed.get(alert_id)
            if cached is not None and cached[0] == body:
                out.append(cached[1])
                continue
            try:
                alert = decode_alert(body)
                self._parsed[alert_id] = (body, alert)
                out.append(alert)
            except (ValueError, RecursionError) as exc:  # AlertFormatError is a ValueError
                rejected.append(alert_id)
                log.warning(
                    "%s: queued alert %s cannot be delivered, dropped from the queue: %s",
                    channel,
                    show(alert_id),
                    exc if isinstance(exc, AlertFormatError) else type(exc).__name__,
                )
        if rejected:
            ts = now.timestamp() if now is not None else time.time()
            with self.transaction() as db:
                db.executemany(
                    "UPDATE outbox SET state = 'rejected', done_at = ? "
                    "WHERE channel = ? AND id = ?",
                    [(ts, channel, i) for i in rejected],
                )
        return out

    def pending_count(self, channel: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE channel = ? AND state = 'pending'", (channel,)
        ).fetchone()
        return int(row[0])

    def record_sent(self, channel: str, alerts: Iterable[Alert], now: datetime) -> None:
        """The channel accepted a message carrying ``alerts``: mark them sent."""
        ts = now.timestamp()
        alerts = list(alerts)
        with self.transaction() as db:
            db.executemany(
                "UPDATE outbox SET state = 'sent', done_at = ?, revision = ? "
                "WHERE channel = ? AND id = ?",
                [(ts, alert.revision, channel, alert.id) for alert in alerts],
            )
            db.executemany(
                "INSERT INTO delivered (channel, key, id, revision, sent_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, key) DO UPDATE SET "
                "id = excluded.id, revision = excluded.revision, sent_at = excluded.sent_at",
                [(channel, alert.incident_key, alert.id, alert.revision, ts) for alert in alerts],
            )
            db.execute(
                "INSERT INTO channels (channel, delivered_total) VALUES (?, ?) "
                "ON CONFLICT (channel) DO UPDATE SET "
                "delivered_total = delivered_total + excluded.delivered_total",
                (channel, len(alerts)),
            )

    def was_sent(self, channel: str, alert_id: str) -> bool:
        row = self._db.execute(
            "SELECT state FROM outbox WHERE channel = ? AND id = ?", (channel, alert_id)
        ).fetchone()
        return bool(row) and row[0] == "sent"

    # -- channel health ---------------------------------------------------

    def channel_ready(self, channel: str, now: datetime) -> tuple[bool, float]:
        """Whether ``channel`` may be tried now, and when it may be tried next."""
        row = self._db.execute(
            "SELECT next_attempt FROM channels WHERE channel = ?", (channel,)
        ).fetchone()
        next_attempt = float(row[0]) if row else 0.0
        return now.timestamp() >= next_attempt, next_attempt

    def record_success(self, channel: str, now: datetime) -> None:
        ts = now.timestamp()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO channels (channel, failures, next_attempt, last_attempt, "
                "last_success) VALUES (?, 0, 0, ?, ?) ON CONFLICT (channel) DO UPDATE SET "
                "failures = 0, next_attempt = 0, last_attempt = excluded.last_attempt, "
                "last_success = excluded.last_success",
                (channel, ts, ts),
            )

    def record_failure(
        self, channel: str, error: str, now: datetime, first: timedelta, longest: timedelta
    ) -> tuple[int, float]:
        """Count a failure; return (consecutive failures, next attempt epoch)."""
        ts = now.timestamp()
        with self.transaction() as db:
            row = db.execute(
                "SELECT failures FROM channels WHERE channel = ?", (channel,)
            ).fetchone()
            failures = (int(row[0]) if row else 0) + 1
            delay = min(first.total_seconds() * 2 ** min(failures - 1, 30), longest.total_seconds())
            next_attempt = ts + delay
            db.execute(
                "INSERT INTO channels (channel, failures, next_attempt, last_error, last_attempt, "
                "failed_total) VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (channel) DO UPDATE SET "
                "failures = excluded.failures, next_attempt = excluded.next_attempt, "
                "last_error = excluded.last_error, last_attempt = excluded.last_attempt, "
                "failed_total = failed_total + 1",
                (channel, failures, next_attempt, error[:500], ts),
            )
        return failures, next_attempt

    def channel_states(self) -> list[ChannelState]:
        """Pending count, oldest pending, back-off and totals of every channel known."""
        # (a ledger of an older version opened read-only has no totals yet)
        totals = set(_TOTALS) <= self._channel_columns()
        rows = self._db.execute(_CHANNEL_STATES if totals else _CHANNEL_STATES_OLD).fetchall()
        return [ChannelState(*r) for r in rows]

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Forget finished rows and delivery records older than ``keep``."""
        cutoff = now.timestamp() - keep.total_seconds()
        with self.transaction() as db:
            n = db.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND done_at < ?", (cutoff,)
            ).rowcount
            db.execute("DELETE FROM delivered WHERE sent_at < ?", (cutoff,))
            db.execute("DELETE FROM muted WHERE at < ?", (cutoff,))
            db.execute(
                "DELETE FROM alerts WHERE queued_at < ? AND id NOT IN (SELECT id FROM outbox)",
                (cutoff,),
            )
        return int(n)

    def stats(self) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT COUNT(*), SUM(state = 'pending'), SUM(state = 'sent'), "
            "SUM(state = 'suppressed') FROM outbox"
        ).fetchone()
        return {
            "rows": row[0] or 0,
            "pending": row[1] or 0,
            "sent": row[2] or 0,
            "suppressed": row[3] or 0,
        }
