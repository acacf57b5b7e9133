# SPDX-License-Identifier: Apache-2.0
"""One error taxonomy: operator errors exit with their code in one line; bugs keep a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdnssoc_agent import errors
from pdnssoc_agent._cli import main
from pdnssoc_agent.commands import correlate as correlate_command
from pdnssoc_agent.errors import AgentError, ExitCode
from tests.support.correlate import SAMPLE, make_config, write_lists
from tests.support.paths import REPO_ROOT


def _setup(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    cfg = make_config(data)
    write_lists(cfg, ["evil.example.com"], [])
    cfg.correlation.queries_file.write_bytes(SAMPLE.read_bytes())
    cfg.correlation.archive_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "agent.yml"
    path.write_text(f"data_dir: {data}\n")
    return path


def test_a_value_error_from_a_step_is_a_bug_and_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg_file = _setup(tmp_path)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("a programming error deep in the step")

    monkeypatch.setattr(correlate_command, "run_correlate", broken)
    with pytest.raises(ValueError, match="programming error"):
        main(["-c", str(cfg_file), "correlate"])


def test_an_unreadable_pointer_file_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = _setup(tmp_path)
    pointer = tmp_path / "data" / "retro.last"
    pointer.write_text("not a time\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["-c", str(cfg_file), "retro"])
    assert exit_info.value.code == ExitCode.FAILURE
    (line,) = [x for x in capsys.readouterr().err.splitlines() if " ERROR " in x]
    assert f"{pointer}: expected an RFC 3339 timestamp" in line


def test_an_unreadable_state_file_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = _setup(tmp_path)
    state = make_config(tmp_path / "data").correlation.state_dir / "correlate.state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{ torn")
    with pytest.raises(SystemExit) as exit_info:
        main(["-c", str(cfg_file), "correlate"])
    assert exit_info.value.code == ExitCode.FAILURE
    err = capsys.readouterr().err
    assert f"{state}: unreadable state" in err
    assert "Traceback" not in err


def test_every_operator_error_is_an_agent_error_with_a_documented_code() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    found = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type)
        and issubclass(obj, Exception)
        and obj.__module__ == errors.__name__
    ]
    assert {"UsageError", "ConfigError", "StateError", "IndexFormatError", "NoInputError"} <= {
        c.__name__ for c in found
    }
    for cls in found:
        assert issubclass(cls, AgentError), cls
        assert f"| {int(cls.exit_code)} |" in readme, cls
