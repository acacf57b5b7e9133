# SPDX-License-Identifier: Apache-2.0
"""What writing the store's rows costs when no Python touches them: the floor under
the store's share of correlate's CPU with the store's file format.

Takes whole days of rows from the store ``python -m benchmarks history`` left, and
times, per reply those rows hold, the steps of a commit and of a day's merge that
run in Arrow's C++ (sorting, writing the Parquet segment) and those that do not
(the index, merging rows of the same key). A compiled fold would remove the
Python work before these steps; it would leave them. Run::

    cd agent && python -m benchmarks.history_write_floor \\
        ../.cache/bench-history/d30-n100000-s10-c4-h200000

Prints the best CPU time of three rounds over five days for each step.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from pdnssoc_agent.correlate.step import gc_paused
from pdnssoc_agent.history import HistoryStore, compact, index, segment

DAYS = 5


def main(work: Path) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    store = HistoryStore(work / "store-parquet")
    days = store.manifest().segments[:DAYS]
    tables = [segment.read(store.segment_path(s), s.bytes) for s in days]
    replies = sum(s.replies for s in days)
    rows = sum(t.num_rows for t in tables)
    print(f"{len(days)} day(s): {replies:,} replies in {rows:,} rows")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        steps: list[tuple[str, Callable[[pa.Table, int], object]]] = [
            ("sort (Arrow)", lambda t, _i: segment.sort_table(t)),
            ("Parquet write (Arrow)", lambda t, i: segment.write(t, out / f"s{i}.parquet")),
            ("index (Python and Arrow)", lambda t, i: index.write(t, out / f"s{i}.parquet")),
            ("merge of a day (Arrow)", lambda t, _i: compact.merge_rows(t, 3600)),
        ]
        for name, step in steps:
            best = float("inf")
            with gc_paused():
                for _ in range(3):
                    c0 = time.process_time()
                    for i, t in enumerate(tables):
                        step(t, i)
                    best = min(best, time.process_time() - c0)
            print(f"  {name:26} {best / replies * 1e6:6.2f} us a reply")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
