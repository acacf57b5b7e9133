# SPDX-License-Identifier: Apache-2.0
"""The sensor's traffic reducer (dnscollector_sensor_reducer), with the real collector.

The dnscollector role's configuration is rendered by Ansible on this machine
(scripts/render-collector-config.yml) and run with the pinned go-dnscollector: dnstap
replies go into its socket as BIND sends them, its spool file (the frames a stream would
carry) is read by a server collector into a JSON query log. Skipped without the collector
binary (``make collector`` or PDNSSOC_COLLECTOR) or ansible-playbook on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from dnstap_replay import collector, dnstap

REPO_ROOT = Path(__file__).resolve().parents[2]
IDENTITY = "univ-a"
RENDER_SCRIPTS = REPO_ROOT / "scripts" / "render-shell-templates.yml"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _tools() -> None:
    try:
        collector.binary()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    if shutil.which("ansible-playbook") is None:
        pytest.skip("ansible-playbook not on PATH (make venv)")


def replay(
    workdir: Path, replies: list[dnstap.Reply], *, wait: float, **settings: object
) -> list[dict[str, Any]]:
    """Send ``replies`` into a sensor configured by the role; the server's query log lines."""
    config = collector.render_sensor_config(workdir, **settings)
    with collector.Collector(config, workdir / "sensor.log") as sensor:
        sensor.wait_for(workdir / "dnstap.sock")
        sender = dnstap.FrameStreamSender(str(workdir / "dnstap.sock"))
        sender.send([dnstap.message(r, IDENTITY, "192.0.2.53") for r in replies])
        sender.close()
        time.sleep(wait)
    query_log = collector.server_ingest(workdir / "server", workdir / "spool" / f"{IDENTITY}.fstrm")
    return [json.loads(line) for line in query_log.read_text().splitlines()]


def burst() -> list[dnstap.Reply]:
    now = time.time()
    bad = ("bad.example", "A", ("203.0.113.66",))
    return [
        dnstap.Reply(now, "10.1.2.3", *bad, qid=1),
        dnstap.Reply(now + 0.1, "10.1.2.3", *bad, qid=2),
        dnstap.Reply(now + 0.2, "10.1.2.3", *bad, qid=3),
        dnstap.Reply(now + 0.2, "10.9.8.7", *bad, qid=4),
        dnstap.Reply(now + 0.3, "10.1.2.3", "other.example", "A", ("198.51.100.1",), qid=5),
    ]


def clients(lines: list[dict[str, Any]]) -> list[str]:
    return sorted(str(line["network"]["query-ip"]) for line in lines)


def test_without_the_reducer_every_reply_reaches_the_server_masked(tmp_path: Path) -> None:
    lines = replay(tmp_path, burst(), wait=2.0)
    assert clients(lines) == ["10.1.0.0"] * 4 + ["10.9.0.0"]


def test_the_reducer_folds_repeats_and_still_masks_the_clients(tmp_path: Path) -> None:
    # 0.38 hands what its reducer folded straight to the loggers, past the collector's
    # other transforms: with masking among those, the first reply of each group left
    # the sensor with the client's full address.
    lines = replay(
        tmp_path, burst(), wait=4.0,
        dnscollector_sensor_reducer=True, dnscollector_sensor_reducer_interval=1,
    )  # fmt: skip
    assert clients(lines) == ["10.1.0.0", "10.1.0.0", "10.9.0.0"]
    names = sorted((str(line["network"]["query-ip"]), str(line["dns"]["qname"])) for line in lines)
    assert names == [
        ("10.1.0.0", "bad.example"),
        ("10.1.0.0", "other.example"),
        ("10.9.0.0", "bad.example"),
    ]
    # dnstap has no field for the reducer's count: the server cannot know it.
    assert all("reducer" not in line for line in lines)


def validate(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """The role's own check (templates/dnscollector-validate.j2), rendered and run."""
    out = tmp_path / "scripts"
    done = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", str(RENDER_SCRIPTS),
         "-e", "role=dnscollector", "-e", "case=reducer", "-e", f"out={out}",
         "-e", f"dnscollector_binary_path={collector.binary()}"],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    script = out / "dnscollector-reducer" / "dnscollector-validate"
    return subprocess.run(
        ["sh", str(script), str(config)], capture_output=True, text=True, check=False
    )


def test_the_role_check_accepts_the_reducer_and_refuses_a_broken_one(tmp_path: Path) -> None:
    config = collector.render_sensor_config(
        tmp_path, dnscollector_sensor_reducer=True, dnscollector_sensor_reducer_interval=7
    )
    text = config.read_text()
    assert "watch-interval: 7" in text
    assert validate(tmp_path, config).returncode == 0
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("watch-interval: 7", "watch-interval: seven"))
    refused = validate(tmp_path, broken)
    assert refused.returncode != 0
    assert "watch-interval" in refused.stderr or "seven" in refused.stderr
