# SPDX-License-Identifier: Apache-2.0
"""``hunt``'s output: one line per match, as text for a terminal or JSON lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import msgspec

from ..sanitize import printable
from .query import Row

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_text(us: int) -> str:
    """RFC 3339, UTC, with a Z; microseconds only when there are some."""
    t = _EPOCH + timedelta(microseconds=us)
    return t.isoformat(timespec="microseconds" if t.microsecond else "seconds").replace(
        "+00:00", "Z"
    )


def answer_text(row: Row) -> str:
    """The answer as the store keeps it: the CNAME chain, then the addresses."""
    parts = [f"CNAME {c}" for c in row.cnames] + list(row.ips)
    return ", ".join(parts) if parts else (row.rcode or "-")


def as_dict(row: Row) -> dict[str, object]:
    return {
        "sensor": row.sensor,
        "client": row.client,
        "first_seen": time_text(row.first_us),
        "last_seen": time_text(row.last_us),
        "count": row.count,
        "query": {"name": row.qname, "type": row.qtype, "rcode": row.rcode},
        "cnames": row.cnames,
        "addresses": row.ips,
        "matches": [{"how": h[0], "value": h[1], "matched": h[2]} for h in row.hits],
    }


_encoder = msgspec.json.Encoder()

HEADER = "first_seen\tlast_seen\tcount\tsensor\tclient\tquery\tanswer\tmatch"


def lines(rows: Iterable[Row], fmt: str) -> Iterator[str]:
    """``text``: a header then tab-separated columns; ``json``: one object a line."""
    if fmt == "json":
        for r in rows:
            yield _encoder.encode(as_dict(r)).decode()
        return
    yield HEADER
    for r in rows:
        match = "; ".join(f"{h[0]} {h[1]}" + (f" ({h[2]})" if h[2] != h[1] else "")
                          for h in r.hits)  # fmt: skip
        qtype = f" {r.qtype}" if r.qtype else ""
        # names and clients come from the network: no control characters to a terminal
        yield "\t".join(printable(f, 2000) for f in (
            time_text(r.first_us), time_text(r.last_us), str(r.count), r.sensor, r.client,
            f"{r.qname}{qtype}", answer_text(r), match,
        ))  # fmt: skip
