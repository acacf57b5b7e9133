# SPDX-License-Identifier: Apache-2.0
"""fetch-iocs applies warninglists to the sources that do not apply them (all but MISP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from misp_standin import MispStandin
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.errors import FetchConfigError
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from tests.support.iocs import KEY, attr, domains, event, ips, snapshot
from tests.support.sources import FileServer, serving


@pytest.fixture
def web() -> Iterator[FileServer]:
    with serving() as server:
        yield server


def config(tmp: Path, web: FileServer, misp: MispStandin, **fetch: Any) -> Config:
    return parse_config(
        {
            "data_dir": str(tmp),
            "misp_servers": [{"name": "misp", "domain": misp.url, "api_key": KEY}],
            "sources": [
                {"type": "list", "name": "ips", "url": web.url("/ips"), "indicator_type": "ip-dst"},
                {
                    "type": "list",
                    "name": "names",
                    "url": web.url("/names"),
                    "indicator_type": "domain",
                },
            ],
            "fetch_iocs": {"reload_collector": False} | fetch,
        }
    )


def test_list_values_on_a_warninglist_are_rejected_misp_values_left_to_misp(
    web: FileServer, tmp_path: Path, shared_dir: Path
) -> None:
    web.put("/ips", "8.8.8.8\n192.168.10.0/24\n203.0.113.9\n")
    web.put("/names", "aadrm.com\nevil.example.com\n")
    lists = shared_dir / "reference" / "misp" / "warninglists"
    with MispStandin(api_keys={KEY: "CERT-X"}) as misp:
        # The stand-in enforces no warninglist: what MISP answers is kept as MISP filtered it.
        misp.add_event(event("resolver", [attr("ip-dst", "8.8.4.4")]))
        cfg = config(tmp_path, web, misp, warninglists_dir=str(lists))
        result = fetch_iocs(cfg, sources_from_config(cfg), FetchOptions(reload=False))
    assert ips(cfg) == ["203.0.113.9", "8.8.4.4"]
    assert domains(cfg) == ["evil.example.com"]
    by_label = {r.label: r for r in result.servers}
    assert by_label["ips"].rejected == {"warninglist": 2}
    assert by_label["names"].rejected == {"warninglist": 1}
    assert by_label["misp"].rejected == {}


def test_an_unusable_warninglists_dir_stops_before_anything_is_written(
    web: FileServer, tmp_path: Path
) -> None:
    web.put("/ips", "203.0.113.9\n")
    web.put("/names", "evil.example.com\n")
    with MispStandin(api_keys={KEY: "CERT-X"}) as misp:
        cfg = config(tmp_path, web, misp)
        fetch_iocs(cfg, sources_from_config(cfg), FetchOptions(reload=False))
        before = snapshot(cfg)
        broken = config(tmp_path, web, misp, warninglists_dir=str(tmp_path / "missing"))
        with pytest.raises(FetchConfigError, match=r"fetch_iocs\.warninglists_dir: .*missing"):
            fetch_iocs(broken, sources_from_config(broken), FetchOptions(reload=False))
    assert snapshot(cfg) == before
