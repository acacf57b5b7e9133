# SPDX-License-Identifier: Apache-2.0
"""fetch-iocs builds the response-policy zones after writing the index (``rpz.enabled``):
an indicator removed at the source leaves the zone on the next fetch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from pdnssoc_agent.config import Config, Periods
from pdnssoc_agent.iocs.fetch import FetchOptions, fetch_iocs
from pdnssoc_agent.iocs.source import Attribute, EventRef, IndicatorSource, Org, Query
from pdnssoc_agent.rpz.publish import zone_path
from tests.support.rpz import ZONE, recording_reload, reloads, rpz_config, stand_in_checker


class ListSource(IndicatorSource):
    """Hands over its values as domain attributes, whatever the query."""

    def __init__(self, values: list[str]) -> None:
        self.label = "list"
        self.url = "fake://list"
        self.values = values
        self.periods = Periods()

    def pages(self, query: Query) -> Iterator[list[Attribute]]:
        now = int(time.time())
        yield [
            Attribute(
                value=v,
                type="domain",
                id=i,
                uuid=f"u{i}",
                category="Network activity",
                to_ids=True,
                timestamp=now - 60,
                event_id=1,
                Event=EventRef(id=1, uuid="e1", info="wave", Orgc=Org(name="CERT")),
            )
            for i, v in enumerate(self.values)
        ]

    def event_url(self, event_id: str) -> str:
        return f"{self.url}/event/{event_id}"


def fetch(cfg: Config, *values: str) -> list[str]:
    result = fetch_iocs(cfg, [ListSource(list(values))], FetchOptions(reload=False))
    assert [z.outcome for z in result.rpz] in (["installed"], ["unchanged"])
    text = zone_path(cfg, cfg.rpz.zones[0]).read_text()
    return [line for line in text.splitlines() if line.endswith("CNAME .")]


def test_fetch_builds_the_zone_and_a_removed_indicator_leaves_it(tmp_path: Path) -> None:
    cfg = rpz_config(
        tmp_path,
        stand_in_checker(tmp_path),
        recording_reload(tmp_path),
        fetch_iocs={"reload_collector": False},
    )
    assert fetch(cfg, "evil.example", "worse.example") == [
        "evil.example CNAME .",
        "*.evil.example CNAME .",
        "worse.example CNAME .",
        "*.worse.example CNAME .",
    ]
    assert fetch(cfg, "worse.example") == ["worse.example CNAME .", "*.worse.example CNAME ."]
    assert reloads(tmp_path) == [f"reload {ZONE}"] * 2


def test_disabled_by_default_nothing_is_built(tmp_path: Path) -> None:
    cfg = rpz_config(tmp_path, stand_in_checker(tmp_path), None, rpz={"enabled": False})
    result = fetch_iocs(cfg, [ListSource(["evil.example"])], FetchOptions(reload=False))
    assert result.rpz == []
    assert not zone_path(cfg, cfg.rpz.zones[0]).exists()
