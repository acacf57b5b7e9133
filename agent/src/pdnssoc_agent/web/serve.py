# SPDX-License-Identifier: Apache-2.0
"""Serve the web view: TLS with client certificates, or plain HTTP on loopback behind
an authenticating proxy (``web.auth``; docs/web.md).

Standard library only (:mod:`wsgiref`, :mod:`ssl`), bounded like the metrics
endpoint: each connection in a thread of its own, at most :data:`MAX_REQUESTS`
at once (one beyond is closed at once), a client that sends nothing dropped
after :data:`REQUEST_TIMEOUT` seconds. The TLS handshake happens in the
connection's thread, so a slow handshake holds up no one else.

The identity the application trusts (:data:`.auth.USER_KEY`) is set here only:
the subject CN of a certificate the handshake verified against
``web.tls_client_ca``, or the one value of ``web.proxy_header`` on a connection
from loopback. A header spelled with ``_`` for ``-`` is not that header.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import ssl
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ..config import Config
from ..config.metrics import split_listen
from ..config.web import Web
from .app import WebApp
from .auth import USER_KEY

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 15.0
MAX_REQUESTS = 8
STOP_GRACE = 5.0
"""Seconds a stop waits for the requests in progress."""


def tls_context(web: Web) -> ssl.SSLContext:
    """Server context: TLS 1.2 or later, a client certificate asked for and verified
    against ``tls_client_ca`` when given (a request without one gets the 401 page)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(web.tls_cert), str(web.tls_key))
    ctx.load_verify_locations(cafile=str(web.tls_client_ca))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def tls_problems(web: Web) -> list[str]:
    """Why the view could not load its certificate, key or the analysts' CA (empty: it can).

    For ``check-config --secrets``; the messages name the files, never their content.
    """
    if not web.listen or web.auth != "client-certificate":
        return []
    problems = [
        f"web.{key}: cannot read {path}: {exc.strerror}"
        for key in ("tls_cert", "tls_key", "tls_client_ca")
        if (path := getattr(web, key)) is not None
        for exc in _unreadable(path)
    ]
    if problems:
        return problems
    try:
        tls_context(web)
    except ssl.SSLError as exc:
        return [
            f"web: {web.tls_cert}, {web.tls_key} and {web.tls_client_ca} do not make a TLS "
            f"server: {exc.reason or exc}"
        ]
    return []


def tls_warnings(web: Web) -> list[str]:
    """The view's private key readable by every user (``check-config --secrets``)."""
    key = web.tls_key
    if not web.listen or web.auth != "client-certificate" or key is None:
        return []
    try:
        mode = stat.S_IMODE(key.stat().st_mode)
    except OSError:
        return []  # tls_problems says why
    if mode & stat.S_IROTH:
        return [
            f"web.tls_key: {key} is readable by every user (mode {mode:04o}); "
            "make it 0600 or 0640 with the agent's group"
        ]
    return []


def _unreadable(path: Path) -> list[OSError]:
    try:
        with path.open("rb"):
            return []
    except OSError as exc:
        return [exc]


def common_name(cert: dict[str, Any] | None) -> str | None:
    """The subject's CN of a verified peer certificate (``getpeercert()``), if any."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and isinstance(value, str) and value:
                return value
    return None


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    tls: ssl.SSLContext | None
    web_of: Callable[[], Web]
    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            log.warning("web: %d requests in progress; a connection was closed", MAX_REQUESTS)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            if self.tls is not None:
                request.settimeout(REQUEST_TIMEOUT)
                try:
                    request = self.tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    log.info("web: TLS handshake with %s failed: %s", client_address[0], exc)
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(WSGIRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    server_version = "pdnssoc-agent"
    sys_version = ""

    def get_environ(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_environ()
        env.pop(USER_KEY, None)
        user = self._identity(self.server.web_of())
        if user:
            env[USER_KEY] = user
        if self.server.tls is not None:
            env["wsgi.url_scheme"] = "https"
        return env

    def _identity(self, web: Web) -> str | None:
        # the way the server was started decides, not a configuration re-read since
        if self.server.tls is not None:
            conn = self.connection
            if not isinstance(conn, ssl.SSLSocket):
                return None
            return common_name(conn.getpeercert())
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            return None
        values = self.headers.get_all(web.proxy_header) or []
        if len(values) != 1:
            return None
        return str(values[0]).strip() or None

    def log_message(self, format: str, *args: object) -> None:
        log.debug("web: %s %s", self.address_string(), format % args)


class WebServer:
    """The view, bound at construction (OSError when the address cannot be used,
    ssl.SSLError or OSError when the certificate or key cannot be loaded)."""

    def __init__(self, config_of: Callable[[], Config]) -> None:
        web = config_of().web
        if not web.listen:
            raise ValueError("web.listen is not set")
        host, port = split_listen(web.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_BoundServer", (_Server,), {"address_family": family})
        tls = tls_context(web) if web.auth == "client-certificate" else None
        self._server: _Server = server_class((host, port), _Handler)
        self._server.tls = tls
        self._server.web_of = lambda: config_of().web
        self._server.slots = threading.BoundedSemaphore(MAX_REQUESTS)
        self._server.set_app(WebApp(config_of))
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self._server.tls is not None else "http"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="web", daemon=True)
        self._thread.start()
        log.info("web: serving %s", self.url)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop accepting, let the requests in progress finish (at most ``grace``
        seconds: a suppression being added is written whole), then close."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        deadline = time.monotonic() + grace
        taken = 0
        while taken < MAX_REQUESTS and self._server.slots.acquire(
            timeout=max(0.0, deadline - time.monotonic())
        ):
            taken += 1
        if taken < MAX_REQUESTS:
            log.warning("web: %d request(s) still in progress at stop", MAX_REQUESTS - taken)
        for _ in range(taken):
            self._server.slots.release()
        self._server.server_close()
