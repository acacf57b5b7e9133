#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Print the retro alerts of alert files (JSON lines) in a form two runs can be compared in.

Kept: what a reply and its match are (id, revision, times, count, sensor,
client, query, answers without their TTL, match). Left out: what names where
the alert came from or when the indicator was fetched (source, detected_at,
ioc_added, the indicator's records), which differ between servers by design.
One canonical JSON object a line, sorted.
"""

import json
import sys
from pathlib import Path

KEEP = ("id", "revision", "kind", "first_seen", "last_seen", "count", "sensor", "client",
        "query", "answers", "match")  # fmt: skip

out = []
for path in sys.argv[1:]:
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            alert = json.loads(line)
            if alert.get("kind") != "retro":
                continue
            kept = {k: alert.get(k) for k in KEEP}
            kept["answers"] = [{k: v for k, v in a.items() if k != "ttl"}
                               for a in kept["answers"] or []]  # fmt: skip
            out.append(json.dumps(kept, sort_keys=True))
for line in sorted(out):
    print(line)
