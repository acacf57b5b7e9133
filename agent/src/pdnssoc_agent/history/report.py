# SPDX-License-Identifier: Apache-2.0
"""``hunt``'s output: one line per match, as text for a terminal or JSON lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ..sanitize import is_printable, printable
from .query import Row

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_text(us: int) -> str:
    """RFC 3339, UTC, with a Z; microseconds only when there are some."""
    day, us = divmod(us, 86_400_000_000)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = (_EPOCH + timedelta(days=day)).date().isoformat()
    s, frac = divmod(us, 1_000_000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if frac:
        return f"{date}T{h:02d}:{m:02d}:{s:02d}.{frac:06d}Z"
    return f"{date}T{h:02d}:{m:02d}:{s:02d}Z"


_DAYS: dict[int, str] = {}
"""Days since 1970 -> their date as text (few distinct ones: made once each)."""


def time_texts(values: list[int]) -> list[str]:
    """:func:`time_text` of each of ``values``, made by Arrow in bulk (a hunt of a busy
    domain has hundreds of thousands)."""
    us = pa.array(values, pa.int64())
    text = pc.cast(us.cast(pa.timestamp("us")), pa.string())  # 2026-01-05 08:07:06.000120
    secs = us.cast(pa.timestamp("us")).cast(pa.timestamp("s"), safe=False)
    whole = pc.equal(secs.cast(pa.timestamp("us")).cast(pa.int64()), us)
    text = pc.if_else(whole, pc.utf8_slice_codeunits(text, 0, 19), text)
    text = pc.replace_substring(text, " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", "").to_pylist()  # type: ignore[no-any-return]


def answer_text(row: Row) -> str:
    """The answer as the store keeps it: the CNAME chain, then the addresses."""
    parts = [f"CNAME {c}" for c in row.cnames] + list(row.ips)
    return ", ".join(parts) if parts else (row.rcode or "-")


def as_dict(row: Row, first: str | None = None, last: str | None = None) -> dict[str, object]:
    """A row as hunt's JSON shows it (``first`` and ``last``: its times as text already)."""
    return {
        "sensor": row.sensor,
        "client": row.client,
        "first_seen": time_text(row.first_us) if first is None else first,
        "last_seen": time_text(row.last_us) if last is None else last,
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
    rows = list(rows)
    firsts = time_texts([r.first_us for r in rows])
    lasts = time_texts([r.last_us for r in rows])
    if fmt == "json":
        for r, first, last in zip(rows, firsts, lasts, strict=True):
            yield _encoder.encode(as_dict(r, first, last)).decode()
        return
    yield HEADER
    for r, first, last in zip(rows, firsts, lasts, strict=True):
        match = "; ".join(f"{h[0]} {h[1]}" + (f" ({h[2]})" if h[2] != h[1] else "")
                          for h in r.hits)  # fmt: skip
        qtype = f" {r.qtype}" if r.qtype else ""
        fields = (first, last, str(r.count), r.sensor, r.client, f"{r.qname}{qtype}",
                  answer_text(r), match)  # fmt: skip
        # names and clients come from the network: no control characters to a terminal
        whole = "".join(fields)
        if len(whole) <= _LIMIT and is_printable(whole):  # nothing to escape or cut: all of it
            yield "\t".join(fields)
        else:
            yield "\t".join(printable(f, _LIMIT) for f in fields)


_LIMIT = 2000
"""Characters of a field shown at most."""
