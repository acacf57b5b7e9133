# SPDX-License-Identifier: Apache-2.0
"""The stores the history benchmark compares, beside the one the agent ships.

* ``sqlite``: one SQLite database per day (WAL), a row per reply per bucket
  made unique by an index so repeats are folded in by UPSERT (that index,
  led by the reversed query name, also serves the name searches), and index
  tables (address -> row, reversed CNAME target -> row) for the other matches;
* ``duckdb``: DuckDB's SQL over the agent's own Parquet files (the same bytes
  on disk), matching by joins: equality and range joins on the reversed
  name, on unnested CNAME targets and on addresses as integers/blobs.

Both fold replies with the agent's :class:`~pdnssoc_agent.history.aggregate.Batch`,
so they differ only in how rows are kept and found.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.history.aggregate import reverse_name

_SQLITE_SCHEMA = """
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY, bucket INTEGER NOT NULL, rname TEXT NOT NULL, qname TEXT,
    qtype TEXT NOT NULL, rcode TEXT NOT NULL, sensor TEXT NOT NULL, client TEXT NOT NULL,
    answers TEXT NOT NULL, count INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS rows_key
    ON rows (rname, bucket, sensor, client, qtype, rcode, answers);
CREATE TABLE IF NOT EXISTS ip (ip BLOB NOT NULL, row INTEGER NOT NULL,
    PRIMARY KEY (ip, row)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cname (rname TEXT NOT NULL, row INTEGER NOT NULL,
    PRIMARY KEY (rname, row)) WITHOUT ROWID;
"""

_UPSERT = """
INSERT INTO rows (bucket, rname, qname, qtype, rcode, sensor, client, answers, count, first, last)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (rname, bucket, sensor, client, qtype, rcode, answers) DO UPDATE SET
    count = count + excluded.count, first = min(first, excluded.first),
    last = max(last, excluded.last)
RETURNING id
"""


def _ip4_blob(v: int) -> bytes:
    return b"\x00" * 10 + b"\xff\xff" + v.to_bytes(4)


class SqliteStore:
    """One database per day under ``root``."""

    def __init__(self, root: Path, bucket_seconds: int = 3600) -> None:
        self.root = root
        self.bucket_seconds = bucket_seconds
        root.mkdir(parents=True, exist_ok=True)
        self._dbs: dict[str, sqlite3.Connection] = {}

    def _db(self, day: str) -> sqlite3.Connection:
        db = self._dbs.get(day)
        if db is None:
            db = sqlite3.connect(self.root / f"day={day}.sqlite", isolation_level=None)
            db.executescript(_SQLITE_SCHEMA)
            self._dbs[day] = db
        return db

    def ingest(self, table: pa.Table) -> None:
        """Add a batch's rows (one transaction per day touched)."""
        c = {name: table[name].to_pylist() for name in table.column_names}
        first = table["first"].cast(pa.int64()).to_pylist()
        last = [f + d for f, d in zip(first, table["span_us"].to_pylist(), strict=True)]
        by_day: dict[str, list[int]] = {}
        for i, us in enumerate(first):
            day = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%d")
            by_day.setdefault(day, []).append(i)
        for day, rows in by_day.items():
            db = self._db(day)
            db.execute("BEGIN")
            for i in rows:
                ip4, ip6, cn = c["ip4"][i], c["ip6"][i], c["cnames"][i]
                answers = "\x00".join(cn) + "|" + ",".join(map(str, ip4)) + "|" + \
                    b"".join(ip6).hex()  # fmt: skip
                (rid,) = db.execute(
                    _UPSERT,
                    (first[i] // 1_000_000 // self.bucket_seconds, c["rname"][i], c["qname"][i],
                     c["qtype"][i], c["rcode"][i], c["sensor"][i], c["client"][i], answers,
                     c["count"][i], first[i], last[i]),
                ).fetchone()  # fmt: skip
                blobs = [_ip4_blob(v) for v in ip4] + list(ip6)
                if blobs:
                    db.executemany(
                        "INSERT OR IGNORE INTO ip VALUES (?, ?)", [(b, rid) for b in blobs]
                    )
                if cn:
                    db.executemany(
                        "INSERT OR IGNORE INTO cname VALUES (?, ?)",
                        [(reverse_name(x), rid) for x in cn],
                    )
            db.execute("COMMIT")

    def close(self) -> None:
        for db in self._dbs.values():
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
        self._dbs = {}

    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.iterdir() if p.is_file())

    def search(self, matcher: Matcher, days: list[str]) -> tuple[int, int]:
        """(rows, replies) matching, over ``days``; the same rows the agent's search finds."""
        doms = sorted(matcher.domains)
        nets = [ipaddress.ip_network(t) for t in matcher.network_values()]
        ranges: list[tuple[bytes, bytes]] = []
        for n in nets:
            lo, hi = int(n.network_address), int(n.broadcast_address)
            if n.version == 4:
                ranges.append((_ip4_blob(lo), _ip4_blob(hi)))
            else:
                ranges.append((lo.to_bytes(16), hi.to_bytes(16)))
        rows = replies = 0
        for day in days:
            path = self.root / f"day={day}.sqlite"
            if not path.exists():
                continue
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            ids: set[int] = set()
            for d in doms:
                r = reverse_name(d)
                q = "SELECT id FROM rows WHERE rname = ? OR (rname >= ? AND rname < ?)"
                ids.update(x for (x,) in db.execute(q, (r, r + ".", r + "/")))
                if matcher.cnames:
                    q = "SELECT row FROM cname WHERE rname = ? OR (rname >= ? AND rname < ?)"
                    ids.update(x for (x,) in db.execute(q, (r, r + ".", r + "/")))
            for low, high in ranges:
                q = "SELECT row FROM ip WHERE ip BETWEEN ? AND ?"
                ids.update(x for (x,) in db.execute(q, (low, high)))
            if ids:
                marks = ",".join("?" * len(ids))
                (n, c) = db.execute(
                    # only "?" placeholders are put into the text; the ids are bound
                    f"SELECT count(*), sum(count) FROM rows WHERE id IN ({marks})",  # noqa: S608
                    list(ids),
                ).fetchone()
                rows += n
                replies += c or 0
            db.close()
        return rows, replies


def duckdb_search(files: list[Path], matcher: Matcher) -> tuple[int, int]:
    """(rows, replies) matching, by SQL joins over the agent's Parquet segments."""
    import duckdb  # noqa: PLC0415 - only this candidate needs it

    con = duckdb.connect()
    con.execute("SET threads TO 1")
    doms = [reverse_name(d) for d in matcher.domains]
    v4: list[tuple[int, int]] = []
    v6: list[tuple[bytes, bytes]] = []
    for t in matcher.network_values():
        n = ipaddress.ip_network(t)
        lo, hi = int(n.network_address), int(n.broadcast_address)
        if n.version == 4:
            v4.append((lo, hi))
        else:
            v6.append((lo.to_bytes(16), hi.to_bytes(16)))
    con.execute("CREATE TABLE d (r VARCHAR, lo VARCHAR, hi VARCHAR)")
    con.executemany("INSERT INTO d VALUES (?, ?, ?)", [(r, r + ".", r + "/") for r in doms])
    con.execute("CREATE TABLE n4 (lo UBIGINT, hi UBIGINT)")
    if v4:
        con.executemany("INSERT INTO n4 VALUES (?, ?)", v4)
    con.execute("CREATE TABLE n6 (lo BLOB, hi BLOB)")
    if v6:
        con.executemany("INSERT INTO n6 VALUES (?, ?)", v6)
    con.read_parquet([str(f) for f in files], file_row_number=True, filename=True).create_view(
        "segments"
    )
    sql = """
    WITH p AS (SELECT filename, file_row_number AS i, rname, cnames, ip4, ip6, count
               FROM segments),
    hits AS (
      SELECT filename, i FROM p JOIN d ON p.rname = d.r
      UNION SELECT filename, i FROM p JOIN d ON p.rname >= d.lo AND p.rname < d.hi
      UNION SELECT filename, i FROM (SELECT filename, i, reverse(rtrim(lower(c), '.')) AS rc
          FROM (SELECT filename, i, unnest(cnames) AS c FROM p)) x
        JOIN d ON x.rc = d.r OR (x.rc >= d.lo AND x.rc < d.hi)
      UNION SELECT filename, i FROM (SELECT filename, i, unnest(ip4) AS a FROM p) x
        JOIN n4 ON x.a >= n4.lo AND x.a <= n4.hi
      UNION SELECT filename, i FROM (SELECT filename, i, unnest(ip6) AS a FROM p) x
        JOIN n6 ON x.a::BLOB >= n6.lo AND x.a::BLOB <= n6.hi
    )
    SELECT count(*), sum(p.count) FROM p SEMI JOIN hits USING (filename, i)
    """
    rows, replies = con.execute(sql).fetchone()  # type: ignore[misc]
    con.close()
    return int(rows), int(replies or 0)


def days_of(first_day: datetime, n: int) -> list[str]:
    return [datetime.fromtimestamp(first_day.timestamp() + 86400 * k, UTC).strftime("%Y-%m-%d")
            for k in range(n)]  # fmt: skip
