# SPDX-License-Identifier: Apache-2.0
"""Copy MISP event files into a MISP stand-in's events directory, dated now.

The lab's events carry fixed dates; an agent with an IOC age limit (30 days
by default) would ignore them a month later. This stamps each event (date,
timestamp, publish_timestamp) and each attribute (timestamp) with the current
time, or ``--age-days`` before it, and writes the result atomically under the
same file name. Standard library only (it runs on the lab's MISP host).

    python3 stamp.py DEST_DIR EVENT.json [EVENT.json ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def stamp(document: dict[str, Any], when: int) -> dict[str, Any]:
    """Return the event with every date set to ``when`` (epoch seconds)."""
    event = document.get("Event", document)
    event["timestamp"] = str(when)
    event["publish_timestamp"] = str(when)
    event["date"] = time.strftime("%Y-%m-%d", time.gmtime(when))
    for attribute in event.get("Attribute", []):
        attribute["timestamp"] = str(when)
    for obj in event.get("Object", []):
        for attribute in obj.get("Attribute", []):
            attribute["timestamp"] = str(when)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stamp", description=__doc__.split("\n")[0])
    parser.add_argument("dest", type=Path, help="the stand-in's events directory")
    parser.add_argument("events", type=Path, nargs="+", help="MISP event JSON files")
    parser.add_argument("--age-days", type=float, default=0.0, help="date them this long ago")
    args = parser.parse_args(argv)
    when = int(time.time() - args.age_days * 86400)
    args.dest.mkdir(parents=True, exist_ok=True)
    for src in args.events:
        try:
            document = json.loads(src.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"stamp: {src}: not a readable MISP event JSON file: {exc}", file=sys.stderr)
            return 1
        target = args.dest / src.name
        tmp = args.dest / f".{src.name}.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(stamp(document, when), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(target)
        print(f"stamp: {target} dated {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(when))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
