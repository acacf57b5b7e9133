# SPDX-License-Identifier: Apache-2.0
"""Loopback receivers and alert builders shared by the alert, scheduler and status tests.

Real sockets only: an aiosmtpd SMTP server (optionally STARTTLS, implicit TLS
and AUTH with a trustme certificate) and a threaded HTTP server standing in
for chat and generic webhooks.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "pdnssoc"
SMTP_PASSWORD = "s3cret-smtp-pw"


def alert_line(
    *,
    sensor: str = "inst-a",
    client: str = "192.0.2.10",
    name: str = "bad.example.com",
    indicator: str | None = None,
    kind: str = "live",
    revision: int = 1,
    count: int = 1,
    window: str = "2026-11-27T10:00:00Z",
    seen: str = "2026-11-27T10:05:00Z",
    misp_server: str = "misp1",
    comment: str = "C2 of campaign X",
    event_info: str = "Phishing wave",
    event_url: str = "https://misp.example.org/events/view/42",
    alert_id: str | None = None,
) -> dict[str, Any]:
    """One alert object as correlate/retro write it (the alert contract)."""
    indicator = indicator or name
    ident = (
        alert_id
        or hashlib.md5(  # noqa: S324 - an identifier, not a signature
            f"{kind}|{sensor}|{client}|{name}|{indicator}|{window}".encode()
        ).hexdigest()
    )
    return {
        "schema_version": 1,
        "id": ident,
        "revision": revision,
        "kind": kind,
        "detected_at": "2026-11-27T10:06:00Z",
        "first_seen": seen,
        "last_seen": seen,
        "count": count,
        "sensor": sensor,
        "client": client,
        "query": {"name": name, "type": "A", "rcode": "NOERROR"},
        "answers": [{"name": name, "type": "A", "data": "203.0.113.7", "ttl": 300}],
        "match": {"how": "exact", "indicator": indicator, "value": name},
        "misp": [
            {
                "server": misp_server,
                "event_id": "42",
                "event_uuid": "5f0c1a2b-0000-4000-8000-000000000042",
                "event_info": event_info,
                "event_url": event_url,
                "org": "CERT-X",
                "tags": ["tlp:amber", "malware"],
                "attribute_uuid": "5f0c1a2b-0000-4000-8000-0000000000aa",
                "attribute_type": "domain",
                "category": "Network activity",
                "comment": comment,
                "timestamp": 1764230000,
                "tlp": "tlp:amber",
            }
        ],
        "ioc_added": "2026-11-26T00:00:00Z",
        "source": {"file": "/var/dnscollector/matches/matches_domains.json"},
    }


def append_alerts(path: Path, *alerts: dict[str, Any]) -> None:
    """Append alert lines as correlate does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for a in alerts:
            fh.write(json.dumps(a) + "\n")


# -- TLS -------------------------------------------------------------------


@dataclass
class Tls:
    ca: trustme.CA
    ca_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        return ctx


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Tls(ca, path)


# -- SMTP ------------------------------------------------------------------


@dataclass
class SmtpServer:
    """Messages received, and a switch to refuse them."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_with: str | None = None
    logins: list[str] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse_with:
            return self.refuse_with
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            ok = data.login.decode() == SMTP_USER and data.password.decode() == SMTP_PASSWORD
            if ok:
                self.logins.append(data.login.decode())
            return AuthResult(success=ok)
        return AuthResult(success=False)

    def to(self, address: str) -> list[EmailMessage]:
        return [
            m
            for m, (_f, rcpt) in zip(self.messages, self.envelopes, strict=True)
            if address in rcpt
        ]

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def start_smtp(mode: str, tls: Tls | None = None, port: int = 0) -> SmtpServer:
    """Start an SMTP server on loopback: mode is none, starttls or tls."""
    port = port or free_port()
    server = SmtpServer(port=port)
    kwargs: dict[str, Any] = {}
    if mode == "starttls":
        assert tls is not None
        kwargs.update(
            tls_context=tls.server_context(),
            require_starttls=True,
            authenticator=server.authenticate,
            auth_required=True,
        )
    elif mode == "tls":
        assert tls is not None
        kwargs.update(
            ssl_context=tls.server_context(),
            authenticator=server.authenticate,
            auth_required=True,
            # aiosmtpd only counts STARTTLS as TLS; this socket is TLS from the start.
            auth_require_tls=False,
        )
    controller = Controller(server, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    server.controller = controller
    return server


@pytest.fixture
def smtp_plain() -> Iterator[SmtpServer]:
    server = start_smtp("none")
    yield server
    server.stop()


# -- HTTP webhooks -----------------------------------------------------------


@dataclass
class Receiver:
    """An HTTP webhook receiver: records requests, answers ``status`` after ``delay``."""

    status: int = 200
    delay: float = 0.0
    requests: list[tuple[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    hang_after: int | None = None
    """Accept this many requests, then never answer (simulates a hung receiver)."""
    release: threading.Event = field(default_factory=threading.Event)
    arrivals: int = 0
    """Requests that arrived (counted before the delay)."""
    fail_after: int | None = None
    """Answer 500 once this many requests were accepted."""
    hold: bool = False
    """Answer each request only once ``release`` is set (a receiver the test paces)."""

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook/T0KEN-secret-123") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self) -> list[Any]:
        return [b for _p, b in self.requests]

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def start_receiver(status: int = 200, delay: float = 0.0, *, hold: bool = False) -> Receiver:
    rec = Receiver(status=status, delay=delay, hold=hold)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            body = json.loads(raw) if raw else None
            rec.arrivals += 1
            if rec.hang_after is not None and len(rec.requests) >= rec.hang_after:
                rec.requests.append((self.path + "#unanswered", body))
                rec.release.wait(30)
                return
            if rec.hold:
                rec.release.wait(60)
            if rec.delay:
                time.sleep(rec.delay)
            status = rec.status
            if rec.fail_after is not None and len(rec.requests) >= rec.fail_after:
                status = 500
            rec.requests.append(
                (self.path, body) if status < 300 else (self.path + "#refused", body)
            )
            payload = b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.server = server
    return rec


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = start_receiver()
    yield rec
    rec.stop()


def free_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
