# SPDX-License-Identifier: Apache-2.0
"""Retro from the store with 1,000 indicators the generator did not plant, beside the
same search with the benchmark's own (0.1% of replies hit one): what reading the
segments' indexes alone costs, when almost nothing matches.

Run after ``python -m benchmarks history`` has left its store::

    cd agent && python -m benchmarks.history_unseen \\
        ../.cache/bench-history/d30-n100000-s10-c4-h200000

Prints the best CPU time of three searches of every day in the store for each set.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

from pdnssoc_agent.correlate.indicators import Matcher
from pdnssoc_agent.correlate.step import gc_paused
from pdnssoc_agent.history import HistoryStore, search

from .bench_history import _matcher
from .history_data import indicators


def unseen() -> Matcher:
    """600 domains of other labels, 300 addresses and 100 networks outside the data's."""
    doms, _, _ = indicators(random.Random(99))
    nets = [f"100.{96 + i // 256}.{i % 256}.1" for i in range(300)]
    nets += [f"203.0.{i}.0/24" for i in range(50)]
    nets += [f"2001:db8:ffff:{i:x}::/64" for i in range(50)]
    return Matcher(doms, nets)


def main(work: Path) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    store = HistoryStore(work / "store-parquet")
    segments = store.manifest().segments
    indexed = sum(1 for s in segments if s.index)
    for name, m in (("benchmark's indicators", _matcher(work)), ("unplanted indicators", unseen())):
        with gc_paused():
            search(store, m)  # warm: the first use of each Arrow kernel
            best, rows = float("inf"), 0
            for _ in range(3):
                c0 = time.process_time()
                rows = len(search(store, m).rows)
                best = min(best, time.process_time() - c0)
        print(f"{name}: {m.indicator_count} indicators, {rows} rows, {best:.3f} s CPU "
              f"({len(segments)} segments, {indexed} with an index)")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))
