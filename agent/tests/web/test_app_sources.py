# SPDX-License-Identifier: Apache-2.0
"""The indicators page lists the sources of ``sources`` beside the MISP servers."""

from __future__ import annotations

from pathlib import Path

from pdnssoc_agent.config import parse_config
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from pdnssoc_agent.scheduler import Scheduler, Step
from tests.support.sources import serving
from tests.support.web import Client


def test_a_list_source_is_on_the_indicators_page_with_its_count(tmp_path: Path) -> None:
    with serving() as lists:
        lists.put("/bad.txt", "evil.example.com\nother.example.org\nthird.example.net\n")
        config = parse_config(
            {
                "data_dir": str(tmp_path),
                "history": {"enabled": False},
                "misp_servers": [{"domain": "https://misp.example.org", "api_key": "k" * 40}],
                "sources": [
                    {
                        "type": "list",
                        "name": "bad-names",
                        "url": lists.url("/bad.txt"),
                        "indicator_type": "domain",
                    }
                ],
                "fetch_iocs": {"reload_collector": False},
                "web": {"listen": "127.0.0.1:8443", "auth": "proxy-header", "analysts": ["alice"]},
            }
        )
        only = sources_from_config(config, ["bad-names"])  # MISP is not asked
        step = Step("fetch-iocs", "fetch_iocs", lambda c: fetch_iocs(c, only, FetchOptions()))
        Scheduler(config, steps=[step], lanes=False).run_step(step)
    status, _, body = Client(config).request("/indicators")
    assert status == 200
    rows = body.split('<table id="sources">', 1)[1].split("</table>", 1)[0].split("<tr>")[2:]
    assert len(rows) == 2  # the MISP server (not fetched) and the list
    (listed,) = [r for r in rows if "bad-names" in r]
    assert "answered" in listed and "<td>3</td>" in listed
    (misp,) = [r for r in rows if "misp.example.org" in r]
    assert "not fetched yet" in misp
