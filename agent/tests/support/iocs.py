# SPDX-License-Identifier: Apache-2.0
"""MISP events as fetch-iocs meets them, and the IOC files it writes, read back.

Times are relative to now, so the age limits apply as they would in production.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from pdnssoc_agent.config import Config
from pdnssoc_agent.iocs.index import iter_index

KEY = "fetch-test-key-0123456789abcdef"
KEY2 = "fetch-test-key-second-server-42"
DAY = 86400


def attr(
    type_: str,
    value: str,
    *,
    age_days: float = 1.0,
    to_ids: bool = True,
    tags: tuple[str, ...] = (),
    comment: str = "",
    category: str = "Network activity",
) -> dict[str, Any]:
    return {
        "type": type_,
        "category": category,
        "value": value,
        "to_ids": to_ids,
        "timestamp": str(int(time.time() - age_days * DAY)),
        "uuid": str(uuid.uuid4()),
        "comment": comment,
        "Tag": [{"name": t} for t in tags],
    }


def event(
    info: str,
    attributes: list[dict[str, Any]],
    *,
    tags: tuple[str, ...] = (),
    org: str = "CERT-Example",
    event_id: int | None = None,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "info": info,
        "uuid": str(uuid.uuid4()),
        "Orgc": {"name": org},
        "Tag": [{"name": t} for t in tags],
        "Attribute": attributes,
    }
    if event_id is not None:
        ev["id"] = str(event_id)
    return {"Event": ev}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def domains(cfg: Config) -> list[str]:
    return lines(cfg.correlation.malicious_domains_file)


def ips(cfg: Config) -> list[str]:
    return lines(cfg.correlation.malicious_ips_file)


def index(cfg: Config) -> dict[str, Any]:
    return {e.value: e for e in iter_index(cfg.correlation.ioc_index_file)}


def snapshot(cfg: Config) -> dict[str, bytes]:
    """Every file under the IOC directory, by name (temp files would show up here)."""
    folder = cfg.correlation.ioc_index_file.parent
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
