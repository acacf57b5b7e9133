# SPDX-License-Identifier: Apache-2.0
"""The sensor's shipping run (roles/dnscollector/templates/dnscollector-spool-ship.j2),
rendered by Ansible with the role's defaults and run for real, with the spool's real
pruning script and a stand-in for rsync (a copy into a directory, or a failure).

Checks what the run does around the transfers: the spool's bounds before shipping,
its lock while shipping (pruning after a rotation waits), and the report shipped only
after a round without failure.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PRUNE = REPO_ROOT / "roles" / "dnscollector" / "files" / "dnscollector-spool-prune"
CASE = REPO_ROOT / "scripts" / "shell-template-cases" / "dnscollector-sensor-spool.yml"
MIB = 1024 * 1024
LIMIT_MB = 2

FAKE_RSYNC = """#!/bin/sh
# Stands in for rsync: copies its source (the argument before the last) into
# $FAKE_SERVER, or fails when $FAKE_FAIL is set. With $FAKE_ROTATE set, a new
# file is rotated into outgoing/ while the first transfer runs, and the
# collector's post-rotate pruning is run as the queue script runs it.
set -eu
[ -z "${FAKE_FAIL-}" ] || exit 12
src=
for a; do src=${last-}; last=$a; done
if [ -n "${FAKE_ROTATE-}" ] && [ ! -e "$FAKE_SERVER/.rotated" ]; then
  touch "$FAKE_SERVER/.rotated"
  head -c $((2 * 1048576)) /dev/zero >"$FAKE_SPOOL/outgoing/rotated.fstrm"
  $FAKE_ROTATE
fi
cp -- "$src" "$FAKE_SERVER/"
"""


@dataclass
class Sensor:
    spool: Path
    server: Path
    ship: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The shipping script rendered for a spool under a temporary directory."""
    playbook = shutil.which("ansible-playbook") or str(
        Path(sys.executable).with_name("ansible-playbook")
    )
    if not Path(playbook).is_file() or shutil.which("flock") is None:
        pytest.skip("needs ansible-playbook and flock")
    root = tmp_path_factory.mktemp("sensor")
    spool, libexec, out = root / "spool", root / "libexec", root / "rendered"
    libexec.mkdir()
    shutil.copy(PRUNE, libexec / PRUNE.name)
    done = subprocess.run(
        [
            playbook,
            "-i",
            "localhost,",
            str(REPO_ROOT / "scripts" / "render-shell-templates.yml"),
            "-e",
            "role=dnscollector",
            "-e",
            "case=test",
            "-e",
            f"out={out}",
            "-e",
            f"@{CASE}",
            "-e",
            json.dumps(
                {
                    "dnscollector_sensor_spool_dir": str(spool),
                    "dnscollector_sensor_spool_limit_mb": LIMIT_MB,
                    "_dnscollector_libexec": str(libexec),
                }
            ),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")},
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ship = out / "dnscollector-test" / "dnscollector-spool-ship"
    queue = out / "dnscollector-test" / "dnscollector-spool-queue"
    # The script runs python3 by its Debian path; here, this interpreter.
    for script in (ship, queue):
        script.write_text(script.read_text().replace("/usr/bin/python3 ", f"{sys.executable} "))
    return spool, ship, queue


@pytest.fixture
def sensor(rendered: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[Sensor]:
    spool, ship, _ = rendered
    shutil.rmtree(spool, ignore_errors=True)
    (spool / "outgoing").mkdir(parents=True)
    server, bin_dir = tmp_path / "server", tmp_path / "bin"
    server.mkdir()
    bin_dir.mkdir()
    rsync = bin_dir / "rsync"
    rsync.write_text(FAKE_RSYNC)
    rsync.chmod(rsync.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_SERVER": str(server),
        "FAKE_SPOOL": str(spool),
    }
    yield Sensor(spool, server, ship, env)


def spool_file(path: Path, size: int, age_h: float) -> Path:
    path.write_bytes(b"\0" * size)
    when = time.time() - age_h * 3600
    os.utime(path, (when, when))
    return path


def ship(sensor: Sensor, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(sensor.ship)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**sensor.env, **env},
    )


def shipped(sensor: Sensor) -> list[str]:
    return sorted(p.name for p in sensor.server.iterdir() if not p.name.startswith("."))


def test_an_outage_keeps_the_bounds_and_ships_the_count_when_it_ends(sensor: Sensor) -> None:
    out = sensor.spool / "outgoing"
    spool_file(out / "stale.fstrm", 1000, age_h=100)  # past the 72 h bound
    spool_file(out / "fresh.fstrm", 10, age_h=1)

    down = ship(sensor, FAKE_FAIL="1")

    assert down.returncode == 1
    assert "transfer failed; will retry" in down.stderr
    assert sorted(p.name for p in out.iterdir()) == ["fresh.fstrm"]
    assert shipped(sensor) == []  # nothing, not even the report

    back = ship(sensor)

    assert back.returncode == 0, back.stderr
    assert shipped(sensor) == ["fresh.fstrm", "spool-report.json"]
    report = json.loads((sensor.server / "spool-report.json").read_text())
    assert (report["dropped"]["files"], report["dropped"]["bytes"]) == (1, 1000)
    assert report["limit_bytes"] == LIMIT_MB * MIB
    assert report["oldest_waiting"] is None


def test_a_file_on_its_way_is_never_dropped(
    sensor: Sensor, rendered: tuple[Path, Path, Path]
) -> None:
    """A rotation during the transfer takes the spool past its size bound: its pruning
    waits for the shipping run, which ships the oldest file whole, then prunes."""
    _, _, queue = rendered
    out = sensor.spool / "outgoing"
    spool_file(out / "oldest.fstrm", 2 * MIB - 100, age_h=1)
    # the queue script's last line is the collector's post-rotate pruning
    rotate = queue.read_text().strip().splitlines()[-1]

    done = ship(sensor, FAKE_ROTATE=rotate)

    assert done.returncode == 0, done.stderr
    assert shipped(sensor) == ["oldest.fstrm", "spool-report.json"]
    assert (sensor.server / "oldest.fstrm").stat().st_size == 2 * MIB - 100
    # after the run: the rotated file alone is within the bound, nothing dropped
    assert sorted(p.name for p in out.iterdir()) == ["rotated.fstrm"]
    assert json.loads((sensor.server / "spool-report.json").read_text())["dropped"]["files"] == 0
