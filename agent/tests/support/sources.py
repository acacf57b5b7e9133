# SPDX-License-Identifier: Apache-2.0
"""A loopback HTTP server that serves files and answers POSTs, for source tests.

``files`` maps a path to (status, body); every request is recorded with its
headers and body, so a test can check what a source sent (and how often).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FileServer:
    files: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    post: Callable[[Seen], tuple[int, bytes]] | None = None
    get: Callable[[Seen], tuple[int, bytes, dict[str, str]]] | None = None
    """Answers every GET when set (``files`` then serve nothing)."""
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: bytes | str, status: int = 200) -> None:
        self.files[path] = (status, body.encode() if isinstance(body, str) else body)

    def gets(self, path: str) -> int:
        return sum(1 for s in self.seen if s.method == "GET" and s.path == path)


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            headers = dict(headers or {})
            # A body without Content-Length ends when the connection closes (HTTP/1.0).
            unbounded = headers.pop("X-Test-No-Length", None) is not None
            for name, value in headers.items():
                self.send_header(name, value)
            if not unbounded:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            seen = Seen("GET", self.path, dict(self.headers), b"")
            state.seen.append(seen)
            if state.get is not None:
                self._answer(*state.get(seen))
                return
            status, body = state.files.get(self.path, (404, b"not found"))
            self._answer(status, body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen("POST", self.path, dict(self.headers), self.rfile.read(length))
            state.seen.append(seen)
            status, body = state.post(seen) if state.post else (405, b"")
            self._answer(status, body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serving() -> Iterator[FileServer]:
    """A :class:`FileServer` on a free loopback port, for the ``with`` block."""
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
