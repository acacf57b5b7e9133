# SPDX-License-Identifier: Apache-2.0
"""The package's metadata tells the truth: one version, its README, every pinned dependency."""

from __future__ import annotations

import re
import tomllib
import warnings
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import pdnssoc_agent
from pdnssoc_agent._cli import COMMANDS, main
from tests.support.paths import AGENT_DIR

REPO_DIR = AGENT_DIR.parent


def _project() -> dict[str, Any]:
    with (AGENT_DIR / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (AGENT_DIR / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[str(canonicalize_name(name))] = version.strip()
    return pins


def test_the_version_has_one_source() -> None:
    data = _project()
    project = data["project"]
    assert "version" not in project, "pyproject.toml must not repeat the version"
    assert "version" in project.get("dynamic", [])
    dynamic = data["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "pdnssoc_agent.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", pdnssoc_agent.__version__)


def test_version_option_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pdnssoc-agent {pdnssoc_agent.__version__}"


def test_the_readme_pyproject_names_exists_and_lists_the_commands() -> None:
    readme = AGENT_DIR / _project()["project"]["readme"]
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# pdnssoc-agent"), text[:80]
    for name, _module, _help in COMMANDS:
        assert f"`{name}`" in text, f"{readme} does not mention {name}"


def test_every_pinned_requirement_is_a_dependency() -> None:
    """The role installs requirements.txt; pip installs the package's own list."""
    requirements = [Requirement(r) for r in _project()["project"]["dependencies"]]
    declared = {str(canonicalize_name(r.name)): r for r in requirements}
    pins = _pins()
    assert sorted(declared) == sorted(pins)
    for name, version in pins.items():
        assert declared[name].specifier.contains(version), (name, version)


def test_setuptools_builds_the_same_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the build backend (the role's ``pip wheel``) makes of pyproject.toml."""
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml")
    dist_module = pytest.importorskip("setuptools.dist")
    monkeypatch.chdir(AGENT_DIR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = pyprojecttoml.apply_configuration(dist_module.Distribution(), "pyproject.toml")
    problems = [str(w.message) for w in caught if "beta" not in str(w.message)]
    assert problems == []
    assert dist.metadata.version == pdnssoc_agent.__version__
    assert dist.metadata.long_description == (AGENT_DIR / "README.md").read_text(encoding="utf-8")
    assert dist.install_requires == _project()["project"]["dependencies"]


def test_the_license_file_is_the_one_the_headers_name() -> None:
    assert _project()["project"]["license"] == {"text": "Apache-2.0"}
    text = (REPO_DIR / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
