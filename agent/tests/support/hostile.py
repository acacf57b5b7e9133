# SPDX-License-Identifier: Apache-2.0
"""Hostile servers on loopback: they trickle bytes, nest JSON, ignore paging, forge logs.

* :class:`Trickler`: a raw TCP server that, once a client connected (and, for
  HTTP, sent its request), sends a fixed answer one byte at a time.
* :class:`MispFront`: an HTTP server in front of a MISP stand-in that passes
  every request through, except those whose path contains a key of
  ``handlers``: those are answered by the test's own function.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from misp_standin import MispStandin


class Trickler:
    """Answers every connection with ``answer``, ``interval`` seconds between bytes.

    ``fast`` bytes go out at once first (say, the status line and headers),
    the rest trickles; ``http`` waits for the request's blank line before
    answering. The trickle ends (connection closed) after ``limit`` seconds.
    """

    def __init__(
        self,
        answer: bytes,
        *,
        fast: int = 0,
        interval: float = 0.25,
        http: bool = True,
        limit: float = 30.0,
        script: Callable[[socket.socket], bool] | None = None,
    ) -> None:
        self.answer = answer
        self.fast = fast
        self.interval = interval
        self.http = http
        self.limit = limit
        self.script = script
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def url(self, path: str = "/hook/T0KEN-secret-123") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        try:
            conn.settimeout(self.limit)
            if self.script is not None and not self.script(conn):
                return
            if self.http:
                seen = b""
                while b"\r\n\r\n" not in seen:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    seen += chunk
            conn.sendall(self.answer[: self.fast])
            for i in range(self.fast, len(self.answer)):
                if self._stop.is_set() or time.monotonic() - started > self.limit:
                    return
                conn.sendall(self.answer[i : i + 1])
                time.sleep(self.interval)
        except OSError:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)


Handler = Callable[[BaseHTTPRequestHandler, Any], None]


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)


class MispFront:
    """A MISP stand-in behind a front whose ``handlers`` answer some paths themselves."""

    def __init__(self, standin: MispStandin) -> None:
        self.standin = standin
        self.handlers: dict[str, Handler] = {}
        self.calls: dict[str, int] = {}
        front = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                front._handle(self, "GET")

            def do_POST(self) -> None:
                front._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        for key, answer in self.handlers.items():
            if key in handler.path:
                self.calls[key] = self.calls.get(key, 0) + 1
                answer(handler, json.loads(raw) if raw else None)
                return
        target = urlsplit(self.standin.url)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        upstream.request(method, handler.path, body=raw or None, headers=headers)
        reply = upstream.getresponse()
        body = reply.read()
        upstream.close()
        send(handler, reply.status, body, reply.getheader("Content-Type") or "application/json")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
