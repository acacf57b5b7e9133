# SPDX-License-Identifier: Apache-2.0
"""``history import``: existing archives into the store, each file once."""

from __future__ import annotations

import gzip
import os
import pty
import select
from functools import partial
from pathlib import Path

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.commands.retro import Progress
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.history import HistoryStore
from pdnssoc_agent.history.importer import import_files
from tests.support.correlate import SAMPLE, SAMPLE_GZ, SAMPLE_MINIFIED, dns_line
from tests.support.history import rows

SAMPLE_LINES = SAMPLE.read_bytes().count(b"\n")


def _held(cfg: Config) -> int:
    return sum(s.replies for s in HistoryStore(cfg.history.dir).manifest().segments)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Config, Path]:
    path = tmp_path / "agent.yml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\n")
    return parse_config({"data_dir": str(tmp_path / "data")}), path


def test_import_counts_each_file_once(
    setup: tuple[Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, cfg_file = setup
    c = str(cfg_file)
    minified = SAMPLE_MINIFIED.read_bytes()
    minified_lines = gzip.decompress(minified).count(b"\n")
    # the plain sample and its gzip copy are the same content: counted once
    assert main(["-c", c, "history", "import", str(SAMPLE), str(SAMPLE_GZ),
                 str(SAMPLE_MINIFIED)]) == 0  # fmt: skip
    assert _held(cfg) == SAMPLE_LINES + minified_lines
    assert main(["-c", c, "history", "import", str(SAMPLE_MINIFIED), str(SAMPLE)]) == 0
    assert _held(cfg) == SAMPLE_LINES + minified_lines
    assert "sensor-lab-1" in _sensors(cfg)  # the minified archive's client_id
    with pytest.raises(SystemExit) as exc:
        main(["-c", c, "history", "import", "/nonexistent/archive"])
    assert exc.value.code == 2


def test_import_after_correlate_adds_only_what_correlate_did_not(
    setup: tuple[Config, Path], tmp_path: Path
) -> None:
    cfg, cfg_file = setup
    log_file = cfg.correlation.queries_file
    log_file.parent.mkdir(parents=True)
    log_file.write_bytes(SAMPLE.read_bytes())
    for p in (cfg.correlation.malicious_domains_file, cfg.correlation.malicious_ips_file):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("evil.example.com\n")
    assert main(["-c", str(cfg_file), "correlate"]) == 0
    assert _held(cfg) == SAMPLE_LINES
    more = dns_line("late.example.net", ts="2025-11-27T11:00:00Z")
    with log_file.open("ab") as fh:
        fh.write(more)
    archived = tmp_path / "queries-1.json.gz"
    archived.write_bytes(gzip.compress(log_file.read_bytes()))
    assert main(["-c", str(cfg_file), "history", "import", str(archived)]) == 0
    assert _held(cfg) == SAMPLE_LINES + 1


def test_import_progress_on_a_terminal(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        bar = partial(Progress, stream=tty, label="history import")
        r = import_files(HistoryStore(tmp_path / "h"), [SAMPLE, SAMPLE_MINIFIED], progress=bar)
    out = ""
    while "done" not in out and select.select([master], [], [], 5)[0]:
        out += os.read(master, 4096).decode()
    os.close(master)
    assert r.files == 2 and r.replies > 0
    assert "history import: file 2/2" in out and "done" in out


def _sensors(cfg: Config) -> set[str]:
    return {r["sensor"] for r in rows(HistoryStore(cfg.history.dir))}
