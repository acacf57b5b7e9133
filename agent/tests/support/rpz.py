# SPDX-License-Identifier: Apache-2.0
"""An indicator index to build zones from, and stand-in commands at the process seam.

The stand-ins are small executables a test writes: a checker that refuses a
zone holding a marker (as named-checkzone refuses a broken one) and a reload
command that records its arguments (as ``rndc reload <zone>`` receives them).
"""

from __future__ import annotations

import shutil
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.iocs.index import FORMAT, VERSION, IndexHeader, IndicatorEntry, write_index

ZONE = "rpz.example.org"
REFUSE_MARKER = "refuse-me.example"
"""A listed name the stand-in checker refuses the zone for."""


def real_checkzone() -> str | None:
    """The installed named-checkzone, if any."""
    return shutil.which("named-checkzone") or next(
        (p for p in ("/usr/bin/named-checkzone", "/usr/sbin/named-checkzone") if Path(p).exists()),
        None,
    )


def script(path: Path, body: str) -> Path:
    """An executable Python script at ``path``."""
    path.write_text(f"#!{sys.executable}\nimport sys, pathlib\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def stand_in_checker(tmp_path: Path) -> Path:
    """Exits 1 with a message naming the line when the zone holds REFUSE_MARKER."""
    return script(
        tmp_path / "checkzone",
        "text = pathlib.Path(sys.argv[-1]).read_text()\n"
        f"if {REFUSE_MARKER!r} in text:\n"
        "    print(f'{sys.argv[-1]}:9: bad owner name'); sys.exit(1)\n"
        "print('OK')",
    )


def recording_reload(tmp_path: Path, *, fail: bool = False) -> Path:
    """Appends its arguments to ``reloads.log`` beside it; exits 1 when ``fail``."""
    log = tmp_path / "reloads.log"
    return script(
        tmp_path / "rndc",
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        + (
            "print('rndc: connect failed: 127.0.0.1#953: connection refused'); sys.exit(1)"
            if fail
            else ""
        ),
    )


def reloads(tmp_path: Path) -> list[str]:
    path = tmp_path / "reloads.log"
    return path.read_text().splitlines() if path.exists() else []


def rpz_config(tmp_path: Path, checker: Path, reload: Path | None, **extra: Any) -> Config:
    zones = extra.pop("zones", [{"name": ZONE}])
    return parse_config(
        {
            "data_dir": str(tmp_path),
            "rpz": {
                "enabled": True,
                "zones": zones,
                "checkzone_command": str(checker),
                "reload_command": [str(reload), "reload"] if reload else [],
                **extra.pop("rpz", {}),
            },
            **extra,
        }
    )


def entry(value: str, kind: str = "domain") -> IndicatorEntry:
    return IndicatorEntry(value=value, kind=kind, added=1, updated=1)  # type: ignore[arg-type]


def put_index(cfg: Config, values: Iterable[tuple[str, str] | str]) -> None:
    """Write the IOC index with ``values`` (a plain string is a domain)."""
    entries = [entry(v) if isinstance(v, str) else entry(*v) for v in values]
    header = IndexHeader(format=FORMAT, version=VERSION, generated=1)
    cfg.correlation.ioc_index_file.parent.mkdir(parents=True, exist_ok=True)
    write_index(cfg.correlation.ioc_index_file, header, entries)
