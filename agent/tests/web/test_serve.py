# SPDX-License-Identifier: Apache-2.0
"""The web view on a real socket: TLS with client certificates, or behind a proxy on
loopback; the identity comes from the handshake or the one trusted header, nothing else."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from pdnssoc_agent.alerts import alerts_file
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.web.serve import MAX_REQUESTS, WebServer
from tests.support.alerts import alert_line, append_alerts, free_port


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", common_name="pdnssoc.example.net")
    server.private_key_and_cert_chain_pem.write_to_path(str(base / "server.pem"))
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    out: dict[str, Any] = {"ca": ca, "dir": base}
    for name, issuer, cn in (
        ("alice", ca, "alice"),
        ("mallory", ca, "mallory"),
        ("forged-alice", other, "alice"),
    ):
        cert = issuer.issue_cert(f"{name}.example.net", common_name=cn)
        cert.private_key_and_cert_chain_pem.write_to_path(str(base / f"{name}.pem"))
    return out


def _config(tmp_path: Path, web: dict[str, Any]) -> Config:
    config = parse_config({"data_dir": str(tmp_path), "web": {"analysts": ["alice"], **web}})
    append_alerts(alerts_file(config), alert_line(name="lab-alert.example.org"))
    return config


@pytest.fixture
def tls_server(tmp_path: Path, pki: dict[str, Any]) -> Iterator[WebServer]:
    pem = str(pki["dir"] / "server.pem")
    config = _config(
        tmp_path,
        {
            "listen": f"127.0.0.1:{free_port()}",
            "tls_cert": pem,
            "tls_key": pem,
            "tls_client_ca": str(pki["dir"] / "ca.pem"),
        },
    )
    server = WebServer(lambda: config)
    server.start()
    yield server
    server.stop()


def _get(server: WebServer, pki: dict[str, Any], who: str | None, path: str = "/alerts") -> Any:
    ctx = ssl.create_default_context(cafile=str(pki["dir"] / "ca.pem"))
    if who is not None:
        ctx.load_cert_chain(str(pki["dir"] / f"{who}.pem"))
    host, port = server.address
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_an_analysts_certificate_opens_the_alerts_page(
    tls_server: WebServer, pki: dict[str, Any]
) -> None:
    status, body = _get(tls_server, pki, "alice")
    assert status == 200
    assert "lab-alert.example.org" in body and "signed in as alice" in body


def test_no_certificate_is_401_and_a_certificate_not_listed_403(
    tls_server: WebServer, pki: dict[str, Any]
) -> None:
    status, body = _get(tls_server, pki, None)
    assert status == 401 and "lab-alert" not in body
    status, body = _get(tls_server, pki, "mallory")
    assert status == 403 and "lab-alert" not in body


def test_a_certificate_of_another_ca_is_refused_in_the_handshake(
    tls_server: WebServer, pki: dict[str, Any]
) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _get(tls_server, pki, "forged-alice")
    status, _ = _get(tls_server, pki, "alice")  # the server serves on
    assert status == 200


def test_plain_http_to_the_tls_port_gets_nothing(tls_server: WebServer) -> None:
    host, port = tls_server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("GET", "/alerts")
        conn.getresponse()
    conn.close()


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[WebServer]:
    config = _config(tmp_path, {"listen": f"127.0.0.1:{free_port()}", "auth": "proxy-header"})
    server = WebServer(lambda: config)
    server.start()
    yield server
    server.stop()


def _plain(server: WebServer, headers: list[tuple[str, str]]) -> tuple[int, str]:
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest("GET", "/alerts")
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_behind_a_proxy_the_one_header_names_the_analyst(proxied: WebServer) -> None:
    status, body = _plain(proxied, [("X-Remote-User", "alice")])
    assert status == 200 and "lab-alert.example.org" in body
    assert _plain(proxied, [])[0] == 401
    assert _plain(proxied, [("X-Remote-User", "mallory")])[0] == 403


def test_behind_a_proxy_look_alike_or_repeated_headers_name_nobody(proxied: WebServer) -> None:
    assert _plain(proxied, [("X_Remote_User", "alice")])[0] == 401
    assert _plain(proxied, [("X-Remote-User", "mallory"), ("X-Remote-User", "alice")])[0] == 401


def test_stalled_tls_clients_hold_up_no_one_and_a_flood_is_closed(
    tls_server: WebServer, pki: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pdnssoc_agent.web")
    host, port = tls_server.address
    # clients that connect and never start the handshake: each in its own thread
    stalled = [socket.create_connection((host, port)) for _ in range(MAX_REQUESTS - 1)]
    try:
        started = time.monotonic()
        status, _ = _get(tls_server, pki, "alice")
        assert status == 200 and time.monotonic() - started < 5
        time.sleep(0.5)  # the served request's thread gives its slot back
        stalled.append(socket.create_connection((host, port)))  # every slot taken
        time.sleep(0.2)
        with socket.create_connection((host, port), timeout=5) as extra:
            assert extra.recv(1) == b""  # closed at once, not queued
    finally:
        for s in stalled:
            s.close()
        tls_server.stop()  # waits for their threads: nothing is logged after the test
    assert "web: TLS handshake with 127.0.0.1 failed" in caplog.text


def test_a_tls_server_never_trusts_the_header_even_after_a_reload_says_proxy(
    tmp_path: Path, pki: dict[str, Any]
) -> None:
    pem = str(pki["dir"] / "server.pem")
    listen = f"127.0.0.1:{free_port()}"
    tls = {"listen": listen, "tls_cert": pem, "tls_key": pem}
    current = [_config(tmp_path, {**tls, "tls_client_ca": str(pki["dir"] / "ca.pem")})]
    server = WebServer(lambda: current[0])
    server.start()
    try:
        current[0] = _config(tmp_path, {"listen": listen, "auth": "proxy-header"})  # SIGHUP
        ctx = ssl.create_default_context(cafile=str(pki["dir"] / "ca.pem"))
        conn = http.client.HTTPSConnection(*server.address, context=ctx, timeout=10)
        conn.request("GET", "/alerts", headers={"X-Remote-User": "alice"})
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        server.stop()
