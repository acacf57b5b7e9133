# SPDX-License-Identifier: Apache-2.0
"""``pdnssoc-agent web``: serves until SIGTERM, re-reads the analysts on SIGHUP,
refuses to start without web.listen."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.alerts import free_port


def write(path: Path, data_dir: Path, web: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump({"data_dir": str(data_dir), "web": web}))


def status_of(port: int, user: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/alerts", headers={"X-Remote-User": user})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_for(check: Any, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(path), "web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


def test_serves_until_sigterm_and_rereads_the_analysts_on_sighup(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "agent.yml"
    web = {"listen": f"127.0.0.1:{port}", "auth": "proxy-header", "analysts": ["alice"]}
    write(path, tmp_path / "data", web)
    proc = start(path)
    try:
        wait_for(lambda: listening(port))
        assert (status_of(port, "alice"), status_of(port, "bob")) == (200, 403)
        write(path, tmp_path / "data", {**web, "analysts": ["bob"]})
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status_of(port, "bob") == 200)
        assert status_of(port, "alice") == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"web: serving http://127.0.0.1:{port}/" in err
    assert not listening(port)


def test_without_web_listen_it_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    write(path, tmp_path / "data", {})
    proc = start(path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "web.listen is not set" in err
