# SPDX-License-Identifier: Apache-2.0
"""status and the metrics list the sources of ``sources`` beside the MISP servers."""

from __future__ import annotations

from pathlib import Path

from pdnssoc_agent.config import parse_config
from pdnssoc_agent.health import collect
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from pdnssoc_agent.scheduler import Scheduler, Step
from tests.support.sources import serving


def test_a_list_source_has_its_health_line(tmp_path: Path) -> None:
    with serving() as web:
        web.put("/bad.txt", "evil.example.com\nother.example.org\n")
        cfg = parse_config(
            {
                "data_dir": str(tmp_path),
                "history": {"enabled": False},
                "sources": [
                    {
                        "type": "list",
                        "name": "bad-names",
                        "url": web.url("/bad.txt"),
                        "indicator_type": "domain",
                    }
                ],
                "fetch_iocs": {"reload_collector": False},
            }
        )
        step = Step("fetch-iocs", "fetch_iocs", lambda c: fetch_iocs(c, None, FetchOptions()))
        Scheduler(cfg, steps=[step], lanes=False).run_step(step)
    (source,) = collect(cfg).sources
    assert (source.source, source.ok, source.indicators) == ("bad-names", True, 2)
