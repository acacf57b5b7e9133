# SPDX-License-Identifier: Apache-2.0
"""The real go-dnscollector, with the dnscollector role's own sensor configuration.

The sensor's configuration is rendered from roles/dnscollector/templates/config.yml.j2
(scripts/render-collector-config.yml, ansible-playbook on the controller) with the
spool transport, whose dnstap file holds exactly the frames the stream would send. The
server side is the role's spooled-file input: a file-ingestor in dnstap mode, names
lowercased, replies only, into a JSON query log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parents[3]
VERSION = "0.38.0"


def binary() -> Path:
    """The pinned collector: $PDNSSOC_COLLECTOR, else the one `make collector` built."""
    given = os.environ.get("PDNSSOC_COLLECTOR")
    path = (
        Path(given)
        if given
        else REPO_ROOT / ".cache" / "collector" / f"v{VERSION}" / "go-dnscollector"
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"go-dnscollector {VERSION} not found at {path}: "
            "run `make collector` or set PDNSSOC_COLLECTOR"
        )
    return path


def render_sensor_config(workdir: Path, **variables: object) -> Path:
    """The role's sensor configuration for a sensor whose files live under ``workdir``."""
    playbook = shutil.which("ansible-playbook")
    if playbook is None:
        raise FileNotFoundError("ansible-playbook not on PATH (make venv)")
    settings: dict[str, object] = {
        "dnscollector_mode": "sensor",
        "dnscollector_identity": "univ-a",
        "dnscollector_sensor_transport": "spool",
        "dnscollector_sensor_spool_max_size": 1024,
        "dnscollector_sensor_flush_interval": 1,
        "dnscollector_config_dir": str(workdir / "etc"),
        "dnscollector_sensor_spool_dir": str(workdir / "spool"),
        "dnscollector_sensor_dnstap_socket": str(workdir / "dnstap.sock"),
        **variables,
    }
    (workdir / "etc").mkdir(parents=True, exist_ok=True)
    (workdir / "spool").mkdir(parents=True, exist_ok=True)
    drop = settings.get("dnscollector_sensor_drop_query_ips", ["127.0.0.0/8", "::1/128"])
    if not isinstance(drop, list):
        raise TypeError(f"dnscollector_sensor_drop_query_ips must be a list, not {drop!r}")
    (workdir / "etc" / "drop-query-ips.txt").write_text("".join(f"{d}\n" for d in drop))
    extra = workdir / "render-vars.json"
    extra.write_text(json.dumps(settings))
    out = workdir / "sensor.yml"
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    # A fixed argv: the playbook of this repository and files this function wrote.
    done = subprocess.run(  # noqa: S603
        [playbook, "-i", "localhost,", str(REPO_ROOT / "scripts" / "render-collector-config.yml"),
         "-e", f"out={out}", "-e", f"@{extra}"],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"rendering the sensor configuration failed:\n{done.stdout}\n{done.stderr}"
        )
    return out


def server_config(workdir: Path, watch_dir: Path, query_log: Path) -> Path:
    """The server's spooled-file input and query log (as the role writes them)."""
    path = workdir / "server.yml"
    path.write_text(
        f"""global:
  trace:
    verbose: true
  server-identity: "pdnssoc"
multiplexer:
  collectors:
    - name: spooled
      file-ingestor:
        watch-dir: {json.dumps(str(watch_dir))}
        watch-mode: dnstap
        delete-after: false
      transforms:
        normalize:
          qname-lowercase: true
        filtering:
          log-queries: false
          log-replies: true
  loggers:
    - name: queries
      logfile:
        file-path: {json.dumps(str(query_log))}
        mode: json
        max-size: 10240
        max-files: 0
        flush-interval: 1
  routes:
    - from: [spooled]
      to: [queries]
"""
    )
    return path


class Collector:
    """One go-dnscollector process; stopped with SIGTERM (its files are then complete)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - the pinned collector, our config
                [str(binary()), "-config", str(config)], stdout=out, stderr=subprocess.STDOUT,
                cwd=config.parent,
            )  # fmt: skip

    def wait_for(self, path: Path, timeout: float = 20.0) -> None:
        """Until ``path`` exists (the collector's socket); fails if the collector exits."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"go-dnscollector exited ({self.proc.returncode}):\n{self.log.read_text()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"go-dnscollector did not create {path}:\n{self.log.read_text()}"
                )
            time.sleep(0.05)

    def wait_log(self, text: str, timeout: float = 60.0) -> None:
        """Until its log holds ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(
                    f"go-dnscollector never logged {text!r}:\n{self.log.read_text()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def server_ingest(workdir: Path, spool_file: Path) -> Path:
    """Hand a sensor's spool file to a server collector; the JSON query log it writes."""
    watch = workdir / "incoming"
    watch.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spool_file, watch / spool_file.name)
    query_log = workdir / "queries.json"
    config = server_config(workdir, watch, query_log)
    with Collector(config, workdir / "server.log") as server:
        server.wait_log(f"processing of [{spool_file.name}] terminated")
        settled(query_log)
    return query_log


def settled(path: Path, quiet: float = 3.0, timeout: float = 120.0) -> None:
    """Until ``path`` has not grown for ``quiet`` seconds (the collector flushes every second)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{path} still growing after {timeout} s")
