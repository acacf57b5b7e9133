# SPDX-License-Identifier: Apache-2.0
"""Real clickhouse-server processes on loopback, as a cluster of shards, for tests.

Each node runs from a temporary directory with its own ports; the cluster
``pdnssoc`` lists every node as one shard. The agent's user is ``pdnssoc``
with a SHA-256 password; the ``default`` user is given no network at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER = "clickhouse-server"
PASSWORD = "test-secret-not-for-production"


def server_binary() -> str | None:
    return shutil.which(SERVER) or (f"/usr/sbin/{SERVER}" if Path(f"/usr/sbin/{SERVER}").exists()
                                    else None)  # fmt: skip


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass
class Node:
    root: Path
    http: int
    tcp: int
    inter: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}/"


def _config(node: Node, nodes: list[Node]) -> str:
    shards = "".join(
        f"<shard><replica><host>127.0.0.1</host><port>{n.tcp}</port>"
        f"<user>pdnssoc</user><password>{PASSWORD}</password></replica></shard>"
        for n in nodes
    )
    r = node.root
    return f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{r}/log/server.log</log>
    <errorlog>{r}/log/error.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>{node.http}</http_port>
  <tcp_port>{node.tcp}</tcp_port>
  <interserver_http_port>{node.inter}</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>64</max_connections>
  <max_concurrent_queries>16</max_concurrent_queries>
  <uncompressed_cache_size>0</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <path>{r}/data/</path>
  <tmp_path>{r}/tmp/</tmp_path>
  <user_files_path>{r}/user_files/</user_files_path>
  <format_schema_path>{r}/format_schemas/</format_schema_path>
  <users_config>{r}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
  <compression><case><min_part_size>0</min_part_size><min_part_size_ratio>0</min_part_size_ratio>
    <method>zstd</method></case></compression>
  <remote_servers><pdnssoc>{shards}</pdnssoc></remote_servers>
</yandex>
"""


def _users() -> str:
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    return f"""<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>::1/128</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <pdnssoc><password_sha256_hex>{digest}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota></pdnssoc>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


def _ready(node: Node) -> bool:
    try:
        with urllib.request.urlopen(node.url + "ping", timeout=1) as r:  # noqa: S310 - loopback
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start(node: Node, nodes: list[Node], binary: str) -> None:
    for sub in ("log", "data", "tmp", "user_files", "format_schemas"):
        (node.root / sub).mkdir(parents=True, exist_ok=True)
    (node.root / "config.xml").write_text(_config(node, nodes))
    (node.root / "users.xml").write_text(_users())
    node.root.joinpath("users.xml").chmod(0o600)
    out = (node.root / "log" / "stdout.log").open("wb")
    node.proc = subprocess.Popen(
        [binary, f"--config-file={node.root / 'config.xml'}"],
        stdout=out, stderr=subprocess.STDOUT, cwd=node.root,
    )  # fmt: skip
    out.close()


def stop(node: Node) -> None:
    if node.proc is not None and node.proc.poll() is None:
        node.proc.terminate()
        try:
            node.proc.wait(3)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()


@contextlib.contextmanager
def cluster(base: Path, shards: int = 2, binary: str | None = None) -> Iterator[list[Node]]:
    """``shards`` running nodes (stopped on exit); raises RuntimeError if one does not start."""
    binary = binary or server_binary()
    if binary is None:
        raise RuntimeError(f"{SERVER} not found")
    ports = _free_ports(3 * shards)
    nodes = [Node(base / f"node{i}", *ports[3 * i : 3 * i + 3]) for i in range(shards)]
    try:
        for n in nodes:
            start(n, nodes, binary)
        deadline = time.monotonic() + 30
        for n in nodes:
            while not _ready(n):
                if n.proc is not None and n.proc.poll() is not None:
                    log = (n.root / "log" / "stdout.log").read_text(errors="replace")[-2000:]
                    err = n.root / "log" / "error.log"
                    log += err.read_text(errors="replace")[-2000:] if err.exists() else ""
                    raise RuntimeError(f"clickhouse-server in {n.root} exited: {log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"clickhouse-server in {n.root} did not answer in 30 s")
                time.sleep(0.1)
        yield nodes
    finally:
        for n in nodes:
            stop(n)
