# SPDX-License-Identifier: Apache-2.0
"""The lab's webhook sink: an HTTP server that stores every POST it receives.

Any path accepts a POST; the body is stored as ``<dir>/<epoch-ns>-<n>.json``
(one JSON object: path, content type, body as text) written atomically, and
answered with 200. ``GET /`` lists the stored requests as JSON lines.
Standard library only.

    python3 webhooksink.py serve --listen 0.0.0.0:8080 --dir /var/lib/webhooksink
    python3 webhooksink.py list --dir /var/lib/webhooksink
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_counter = itertools.count(1)
_lock = threading.Lock()
MAX_BODY = 10 * 1024 * 1024
# A lab sink listens on the lab network, which only the lab's hosts reach.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


def _store(directory: Path, record: dict[str, object]) -> Path:
    with _lock:
        name = f"{time.time_ns()}-{next(_counter)}.json"
    tmp = directory / f".{name}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    final = directory / name
    tmp.rename(final)
    return final


def stored(directory: Path) -> list[dict[str, object]]:
    """The stored requests, oldest first."""
    paths = sorted(directory.glob("*.json"), key=lambda p: tuple(map(int, p.stem.split("-"))))
    return [dict(json.loads(p.read_text(encoding="utf-8")), file=str(p)) for p in paths]


def _handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413, "body too large")
                return
            body = self.rfile.read(length)
            record = {
                "path": self.path,
                "content_type": self.headers.get("Content-Type", ""),
                "body": body.decode("utf-8", "replace"),
            }
            path = _store(directory, record)
            print(f"webhooksink: stored {path.name} ({self.path})", flush=True)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in stored(directory))
            data = lines.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webhooksink", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("--listen", default="0.0.0.0:8080")
    p_serve.add_argument("--dir", type=Path, required=True)
    p_list = sub.add_parser("list")
    p_list.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "list":
        for r in stored(args.dir):
            print(json.dumps(r, ensure_ascii=False))
        return 0
    host, _, port = args.listen.rpartition(":")
    args.dir.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host or ALL_INTERFACES, int(port)), _handler(args.dir))
    print(f"webhooksink: listening on {args.listen}, storing in {args.dir}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
