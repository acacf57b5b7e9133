# SPDX-License-Identifier: Apache-2.0
"""The passive-DNS history store: aggregated replies in day partitions of Parquet files.

Filled from records the query-log reader has already decoded
(:class:`.writer.Writer`), searched with correlate's matching
(:func:`.query.search`, :func:`.hunt.hunt`), expired by whole days
(:meth:`.writer.Writer.expire`). See docs/history-store.md.
"""

from __future__ import annotations

from .aggregate import Batch, reverse_name
from .hunt import HuntValueError, hunt, matcher_for
from .manifest import StoreError
from .query import QueryResult, Row, search
from .records import Record, decode_chunk
from .retention import Plan
from .segment import SegmentError
from .store import HistoryStore
from .writer import CommitResult, Source, Writer

__all__ = [
    "Batch",
    "CommitResult",
    "HistoryStore",
    "HuntValueError",
    "Plan",
    "QueryResult",
    "Record",
    "Row",
    "SegmentError",
    "Source",
    "StoreError",
    "Writer",
    "decode_chunk",
    "hunt",
    "matcher_for",
    "reverse_name",
    "search",
]
