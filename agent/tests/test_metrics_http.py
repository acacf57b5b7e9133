# SPDX-License-Identifier: Apache-2.0
"""``GET /metrics``: served by the daemon when ``metrics.listen`` is set, absent when it
is not; only /metrics, only reads; a stalled client holds up no scrape and no step."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pdnssoc_agent.alerts import alerts_file
from pdnssoc_agent.config import Config, load_config
from pdnssoc_agent.metrics import CONTENT_TYPE
from pdnssoc_agent.metrics_http import MAX_REQUESTS, MetricsServer, start_metrics
from pdnssoc_agent.scheduler import read_steps, state_path
from tests.support.exposition import parse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, **extra: object) -> tuple[Path, Config]:
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path), **extra}))
    return path, load_config(path)


def get(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read().decode()
    finally:
        conn.close()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def daemon(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pdnssoc_agent",
            "-c",
            str(path),
            "daemonize",
            "--steps",
            "retention",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


def wait_for(what: str, check: object, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def test_the_daemon_serves_the_metrics_when_configured(tmp_path: Path) -> None:
    port = free_port()
    path, cfg = write_config(tmp_path, metrics={"listen": f"127.0.0.1:{port}"})
    proc = daemon(path)
    try:
        wait_for("the retention step", lambda: "retention" in read_steps(state_path(cfg)))
        wait_for("the metrics port", lambda: listening(port))
        status, ctype, body = get(port)
        assert (status, ctype) == (200, CONTENT_TYPE)
        families = parse(body)
        runs = families["pdnssoc_step_runs_total"]
        assert runs.value(step="retention", outcome="ok") == 1
        assert get(port, "/")[0] == 404
        assert get(port, "/metrics/../etc")[0] == 404
        assert get(port, "/metrics", "POST")[0] == 501  # nothing can be changed
        status, _ctype, body = get(port, "/metrics", "HEAD")
        assert (status, body) == (200, "")
    finally:
        err = stop(proc)
    assert f"metrics: serving http://127.0.0.1:{port}/metrics" in err
    assert not listening(port)


def test_no_endpoint_when_not_configured(tmp_path: Path) -> None:
    port = free_port()
    path, cfg = write_config(tmp_path)
    proc = daemon(path)
    try:
        wait_for("the retention step", lambda: "retention" in read_steps(state_path(cfg)))
        assert not listening(port)
    finally:
        err = stop(proc)
    assert "metrics:" not in err


def test_a_busy_address_is_logged_and_the_daemon_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _path, cfg = write_config(tmp_path)
        with caplog.at_level(logging.ERROR):
            assert start_metrics(f"127.0.0.1:{port}", lambda: cfg) is None
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in caplog.text
    assert "the daemon runs on without serving metrics" in caplog.text


def test_stalled_clients_hold_up_no_scrape(tmp_path: Path) -> None:
    _path, cfg = write_config(tmp_path)
    server = MetricsServer(f"127.0.0.1:{free_port()}", lambda: cfg)
    server.start()
    port = server.address[1]
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_REQUESTS - 1)]
    try:
        started = time.monotonic()
        status, _ctype, body = get(port)
        assert status == 200
        assert "pdnssoc_step_stale" in body
        assert time.monotonic() - started < 5
    finally:
        for s in stalled:
            s.close()
        server.stop()
    assert not listening(port)


def test_a_failure_to_gather_is_a_500_and_the_server_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _path, cfg = write_config(tmp_path)
    alerts = alerts_file(cfg)
    alerts.mkdir(parents=True)  # the alert file is a directory: status cannot count its lines
    server = MetricsServer(f"127.0.0.1:{free_port()}", lambda: cfg)
    server.start()
    port = server.address[1]
    try:
        with caplog.at_level(logging.ERROR):
            status, _ctype, body = get(port)
        alerts.rmdir()
        second = get(port)[0]
    finally:
        server.stop()
    assert (status, second) == (500, 200)
    assert "see the agent's log" in body
    assert "metrics: could not gather the metrics" in caplog.text
