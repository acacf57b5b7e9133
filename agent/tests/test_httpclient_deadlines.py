# SPDX-License-Identifier: Apache-2.0
"""Every outgoing exchange has a total deadline: servers that trickle one byte at
a time (loopback stand-ins) cannot hold a step longer than its time-out."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from misp_standin import MispStandin
from pdnssoc_agent.alerts import Ledger, alerts_file, deliver, ledger_dir
from pdnssoc_agent.config import parse_config
from pdnssoc_agent.errors import ExitCode
from pdnssoc_agent.httpclient import DeadlineExceeded, session
from pdnssoc_agent.iocs.fetch import fetch_iocs
from tests.support.alerts import alert_line, append_alerts, start_receiver
from tests.support.hostile import MispFront, Trickler
from tests.support.iocs import KEY, attr, event
from tests.support.sightings import event as sighting_event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SLACK = 4.0
"""Seconds allowed beyond a deadline (thread start-up, a 2-core machine under a load of 10).
Without the deadline the trickling answers below take 25 s or more: far outside it."""

BODY = b'{"ok": true, "padding": "' + b"x" * 400 + b'"}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    + BODY
)
HEADERS_END = ANSWER.index(b"\r\n\r\n") + 4


@pytest.fixture
def body_trickler() -> Iterator[Trickler]:
    t = Trickler(ANSWER, fast=HEADERS_END + 5, interval=0.25, limit=25)
    yield t
    t.stop()


def test_session_deadline_covers_headers_and_body() -> None:
    for fast in (0, HEADERS_END + 5):  # headers trickle; then headers at once, body trickles
        trickler = Trickler(ANSWER, fast=fast, interval=0.25, limit=25)
        try:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded, match=r"no complete answer within 1\.5 s"):
                session(1.5).get(trickler.url(), timeout=1.5)
            assert time.monotonic() - started < 1.5 + SLACK
            # requests' own time-out alone would not have stopped it: each byte
            # comes well within 1.5 s (this is what the deadline is for).
            assert trickler.interval < 1.5
        finally:
            trickler.stop()


def test_session_deadline_lets_a_prompt_answer_through() -> None:
    rec = start_receiver()
    try:
        s = session(5)
        for _ in range(3):  # the same connection is reused, and watched each time
            assert s.post(rec.url(), json={"a": 1}, timeout=5).status_code == 200
        assert len(rec.requests) == 3
    finally:
        rec.stop()


def test_https_handshake_and_body_under_the_deadline(tmp_path: Path) -> None:
    """With TLS the deadline shuts down the TCP socket under the TLS layer."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def tls(conn: socket.socket) -> bool:
        tls_conn = server_ctx.wrap_socket(conn, server_side=True)
        tls_conn.recv(65536)
        tls_conn.sendall(ANSWER[: HEADERS_END + 5])
        for i in range(HEADERS_END + 5, len(ANSWER)):
            tls_conn.sendall(ANSWER[i : i + 1])
            time.sleep(0.25)
        return False

    trickler = Trickler(b"", http=False, script=tls, limit=25)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            session(1.5).get(
                f"https://127.0.0.1:{trickler.port}/", timeout=1.5, verify=str(ca_file)
            )
        assert time.monotonic() - started < 1.5 + SLACK
    finally:
        trickler.stop()


# -- the channels ------------------------------------------------------------------------


def test_trickling_webhook_is_cut_at_its_timeout(tmp_path: Path, body_trickler: Trickler) -> None:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "alerting": {"webhook": {"webhook_url": body_trickler.url(), "timeout": 2}},
        }
    )
    append_alerts(alerts_file(cfg), alert_line())
    started = time.monotonic()
    report = deliver(cfg, NOW)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + SLACK, elapsed
    assert report.failed == {"webhook": "webhook webhook: no answer within 2s"}
    with Ledger(ledger_dir(cfg)) as ledger:
        assert len(ledger.pending("webhook")) == 1  # kept for the next run


def _smtp_script(trickle_at: str) -> Any:
    """An SMTP server that answers promptly until ``trickle_at``, then one byte at a time."""

    def script(conn: socket.socket) -> bool:
        fh = conn.makefile("rb")

        def reply(text: str, slow: bool) -> None:
            data = text.encode() + b"\r\n"
            if not slow:
                conn.sendall(data)
                return
            for i in range(len(data)):
                conn.sendall(data[i : i + 1])
                time.sleep(0.25)

        reply("220 smtp.example ESMTP " + "x" * 80, trickle_at == "greeting")
        in_data = False
        while line := fh.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    # A multi-line reply: its final line (the verdict) never arrives in time.
                    reply("250-queued " + "x" * 80 + "\r\n250 ok", trickle_at == "data")
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                reply("250 smtp.example", False)
            elif verb == b"DATA":
                reply("354 go ahead", False)
                in_data = True
            elif verb == b"QUIT":
                reply("221 bye", False)
                return False
            else:
                reply("250 ok", False)
        return False

    return script


@pytest.mark.parametrize("trickle_at", ["greeting", "data"])
def test_trickling_smtp_server_is_cut_at_its_timeout(tmp_path: Path, trickle_at: str) -> None:
    server = Trickler(b"", http=False, script=_smtp_script(trickle_at), limit=25)
    try:
        cfg = parse_config(
            {
                "data_dir": str(tmp_path),
                "alerting": {
                    "email": {
                        "from": "pdnssoc@example.org",
                        "summary_to": "soc@example.org",
                        "server": "127.0.0.1",
                        "port": server.port,
                        "timeout": 2,
                    }
                },
            }
        )
        append_alerts(alerts_file(cfg), alert_line())
        started = time.monotonic()
        report = deliver(cfg, NOW)
        elapsed = time.monotonic() - started
        assert elapsed < 2 + SLACK, elapsed
        assert "timed out: no complete answer within 2 s" in report.failed["email-summary"]
        with Ledger(ledger_dir(cfg)) as ledger:
            assert len(ledger.pending("email-summary")) == 1
    finally:
        server.stop()


def _trickle_answer(handler: Any, _body: Any) -> None:
    """A MISP answer: headers at once, then the JSON one byte every quarter second."""
    body = b'{"response": {"Attribute": []}}' + b" " * 400
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    started = time.monotonic()
    try:
        for i in range(len(body)):
            if time.monotonic() - started > 25:
                return
            handler.wfile.write(body[i : i + 1])
            handler.wfile.flush()
            time.sleep(0.25)
    except OSError:
        return


@pytest.fixture
def misp() -> Iterator[tuple[MispStandin, MispFront]]:
    with MispStandin(api_keys={KEY: "CERT-Example"}) as standin:
        front = MispFront(standin)
        yield standin, front
        front.stop()


def test_trickling_misp_is_cut_at_its_timeout(
    tmp_path: Path, misp: tuple[MispStandin, MispFront]
) -> None:
    standin, front = misp
    standin.add_event(event("e", [attr("domain", "kept.example")]))
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "misp_servers": [{"domain": front.url, "name": "misp1", "api_key": KEY, "timeout": 2}],
            "fetch_iocs": {"reload_collector": False},
        }
    )
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    front.handlers["restSearch"] = _trickle_answer
    started = time.monotonic()
    result = fetch_iocs(cfg)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + SLACK, elapsed
    assert result.exit_code is ExitCode.UPSTREAM
    assert result.failed[0].error == "timed out after 2 s (no complete answer)"
    assert cfg.correlation.malicious_domains_file.read_text() == "kept.example\n"


def test_trickling_misp_sightings_are_cut_at_the_timeout(
    tmp_path: Path, misp: tuple[MispStandin, MispFront]
) -> None:
    standin, front = misp
    standin.add_event(sighting_event("1", "bad.example.com"))
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "misp_servers": [
                {
                    "domain": front.url,
                    "name": "misp1",
                    "api_key": KEY,
                    "timeout": 2,
                    "sightings": {"enabled": True},
                }
            ],
        }
    )
    front.handlers["sightings/add"] = _trickle_answer
    append_alerts(alerts_file(cfg), alert_line(name="bad.example.com"))
    started = time.monotonic()
    report = deliver(cfg, NOW)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + SLACK, elapsed
    assert report.failed["sightings:misp1"].endswith("no complete answer within 2 s")
