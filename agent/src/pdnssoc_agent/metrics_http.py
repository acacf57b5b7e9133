# SPDX-License-Identifier: Apache-2.0
"""Serve the metrics on ``GET /metrics`` from a thread of the daemon.

Standard library only (:mod:`http.server`). Each request is answered in a
thread of its own, at most :data:`MAX_REQUESTS` at once (a connection beyond
that is closed at once, so a flood cannot multiply threads), and gathers the
metrics afresh with :func:`~pdnssoc_agent.health.collect`, which only reads:
the steps are never waited for and never wait. A client that sends nothing is
dropped after :data:`REQUEST_TIMEOUT` seconds, and holds up no other scrape
meanwhile. Only ``/metrics`` exists; nothing can be changed through it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .config import Config
from .config.metrics import split_listen
from .health import collect
from .metrics import CONTENT_TYPE, exposition

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
MAX_REQUESTS = 4
PATH = "/metrics"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    config_of: Callable[[], Config]
    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            log.warning("metrics: %d requests in progress; a connection was closed", MAX_REQUESTS)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    server_version = "pdnssoc-agent"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        if self.path.split("?", 1)[0] != PATH:
            self._send(404, b"not found: the metrics are at /metrics\n", "text/plain", body=body)
            return
        try:
            text = exposition(collect(self.server.config_of()))
        except Exception:  # a broken file must not end the server; the log says what
            log.exception("metrics: could not gather the metrics")
            self._send(
                500, b"could not gather the metrics: see the agent's log\n", "text/plain", body=body
            )
            return
        self._send(200, text.encode("utf-8"), CONTENT_TYPE, body=body)

    def _send(self, code: int, data: bytes, ctype: str, *, body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("metrics: %s %s", self.address_string(), format % args)


class MetricsServer:
    """The endpoint, bound at construction (OSError when the address cannot be used)."""

    def __init__(self, listen: str, config_of: Callable[[], Config]) -> None:
        host, port = split_listen(listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_BoundServer", (_Server,), {"address_family": family})
        self._server: _Server = server_class((host, port), _Handler)
        self._server.config_of = config_of
        self._server.slots = threading.BoundedSemaphore(MAX_REQUESTS)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()
        host, port = self.address
        log.info(
            "metrics: serving http://%s/metrics",
            f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        )

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def start_metrics(listen: str | None, config_of: Callable[[], Config]) -> MetricsServer | None:
    """Serve the metrics when ``listen`` is set; an address that cannot be used is logged
    and the daemon goes on without them (detection matters more than its metrics)."""
    if not listen:
        return None
    try:
        server = MetricsServer(listen, config_of)
    except OSError as exc:
        log.error(  # noqa: TRY400 - one clear line
            "metrics: cannot listen on %s (%s); the daemon runs on without serving metrics",
            listen,
            exc.strerror or exc,
        )
        return None
    server.start()
    return server
