# SPDX-License-Identifier: Apache-2.0
"""fetch-iocs' shared path, fed by fake sources through the IndicatorSource interface.

The fakes hand over whatever they hold, whatever the query asks: the IDS
filter, the age limits, the checks on values and the keeping of a failed
source's indicators must all happen in the fetch path, for any source.
MispSource over real HTTP is tested in test_fetch.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent.config import Config, GenericPeriod, Periods, TagPeriod, parse_config
from pdnssoc_agent.errors import ExitCode
from pdnssoc_agent.iocs.fetch import FetchConfigError, FetchOptions, fetch_iocs
from pdnssoc_agent.iocs.index import iter_index, read_header
from pdnssoc_agent.iocs.source import (
    Attribute,
    EventRef,
    IndicatorSource,
    Org,
    Query,
    SourceError,
    Tag,
)

DAY = 86400
NOW = 1_800_000_000.0


class FakeSource(IndicatorSource):
    """Serves its attributes two to a page, for every query; may fail after some pages."""

    def __init__(
        self, label: str, attributes: list[Attribute], *, periods: Periods | None = None
    ) -> None:
        self.label = label
        self.url = f"fake://{label}"
        self.periods = periods or Periods()
        self.attributes = attributes
        self.queries: list[Query] = []
        self.fail_after: int | None = None
        self.failure: Exception = SourceError(label, self.url, "gone away")

    def pages(self, query: Query) -> Iterator[list[Attribute]]:
        self.queries.append(query)
        for n, start in enumerate(range(0, len(self.attributes), 2)):
            if self.fail_after is not None and n >= self.fail_after:
                raise self.failure
            yield self.attributes[start : start + 2]
        if self.fail_after is not None and self.fail_after >= 0:
            raise self.failure

    def event_url(self, event_id: str) -> str:
        return f"{self.url}/event/{event_id}"


_serial = iter(range(1, 1_000_000))


def attr(
    type_: str, value: str, *, age_days: float = 1, to_ids: bool = True, tags: tuple[str, ...] = ()
) -> Attribute:
    n = next(_serial)
    return Attribute(
        value=value,
        type=type_,
        id=n,
        uuid=f"uuid-{n}",
        category="Network activity",
        to_ids=to_ids,
        timestamp=int(NOW - age_days * DAY),
        event_id=7,
        Event=EventRef(id=7, uuid="ev-7", info="phishing wave", Orgc=Org(name="CERT-Fake")),
        Tag=[Tag(name=t) for t in tags],
    )


def make_config(tmp: Path, **extra: Any) -> Config:
    # These tests hand over documentation addresses (RFC 5737), which the
    # default warninglists reject: they test the fetch path, not the lists.
    fetch = {"reload_collector": False, "warninglists": []}
    return parse_config({"data_dir": str(tmp), "fetch_iocs": fetch, **extra})


def domains(cfg: Config) -> list[str]:
    return cfg.correlation.malicious_domains_file.read_text().splitlines()


def snapshot(cfg: Config) -> dict[str, bytes]:
    folder = cfg.correlation.ioc_index_file.parent
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def run(cfg: Config, *sources: IndicatorSource, now: float = NOW) -> Any:
    return fetch_iocs(cfg, sources, FetchOptions(now=now, reload=False))


def test_the_fetch_path_filters_what_any_source_hands_over(tmp_path: Path) -> None:
    periods = Periods(
        generic=GenericPeriod(timedelta(days=30)),
        tags=[TagPeriod(names=["apt"], delta=timedelta(days=150))],
    )
    feed = FakeSource(
        "feed",
        [
            attr("domain", "fresh.example"),
            attr("domain", "stale.example", age_days=40),
            attr("domain", "apt-old.example", age_days=100, tags=("APT",)),
            attr("domain", "apt-ancient.example", age_days=200, tags=("apt",)),
            attr("domain", "no-ids.example", to_ids=False),
            attr("domain", "com"),
            attr("ip-dst", "0.0.0.0/0"),
            attr("ip-dst", "198.51.100.7"),
        ],
        periods=periods,
    )
    cfg = make_config(tmp_path)
    result = run(cfg, feed)

    assert result.exit_code is ExitCode.OK
    assert domains(cfg) == ["apt-old.example", "fresh.example"]
    assert cfg.correlation.malicious_ips_file.read_text().splitlines() == ["198.51.100.7"]
    (report,) = result.servers
    # The source sent everything twice (generic query, then the longer tag
    # period's); each attribute counts once.
    assert (report.seen, report.kept, report.too_old, report.not_to_ids) == (8, 3, 2, 1)
    assert report.rejected["public_suffix"] == 1
    assert sum(report.rejected.values()) == 2
    assert feed.queries == [
        Query(types=tuple(cfg.fetch_iocs.types), to_ids=True, since=int(NOW - 30 * DAY)),
        Query(
            types=tuple(cfg.fetch_iocs.types),
            to_ids=True,
            since=int(NOW - 150 * DAY),
            tags=("apt",),
        ),
    ]
    (ctx,) = next(
        e for e in iter_index(cfg.correlation.ioc_index_file) if e.value == "fresh.example"
    ).contexts
    assert (ctx.server, ctx.event_url, ctx.org, ctx.event_info) == (
        "feed",
        "fake://feed/event/7",
        "CERT-Fake",
        "phishing wave",
    )
    assert read_header(cfg.correlation.ioc_index_file).servers == {"feed": "fake://feed"}


@pytest.mark.parametrize(
    "failure",
    [SourceError("b", "fake://b", "gone away"), RuntimeError("a bug in a source")],
    ids=["source-error", "unexpected"],
)
def test_a_failing_source_keeps_its_last_good_indicators(
    tmp_path: Path, failure: Exception
) -> None:
    a = FakeSource("a", [attr("domain", "a1.example")])
    b = FakeSource("b", [attr("domain", "b1.example"), attr("domain", "b2.example")])
    cfg = make_config(tmp_path)
    assert run(cfg, a, b).exit_code is ExitCode.OK
    a.attributes.append(attr("domain", "a2.example"))
    b.attributes = [attr("domain", "b3.example"), attr("domain", "b4.example")]
    b.attributes.append(attr("domain", "b5.example"))
    b.fail_after, b.failure = 1, failure  # one page handed over, then the failure

    result = run(cfg, a, b, now=NOW + 60)

    assert result.exit_code is ExitCode.UPSTREAM
    assert domains(cfg) == ["a1.example", "a2.example", "b1.example", "b2.example"]
    report = {r.label: r for r in result.servers}["b"]
    assert report.carried == 2
    assert report.error == (
        "gone away"
        if isinstance(failure, SourceError)
        else "internal error: RuntimeError: a bug in a source"
    )


def test_every_source_failing_writes_nothing(tmp_path: Path) -> None:
    a = FakeSource("a", [attr("domain", "a1.example")])
    cfg = make_config(tmp_path)
    run(cfg, a)
    before = snapshot(cfg)
    a.attributes.append(attr("domain", "a2.example"))
    a.fail_after = 0
    result = run(cfg, a, now=NOW + 60)
    assert not result.written and result.exit_code is ExitCode.UPSTREAM
    assert snapshot(cfg) == before


def test_a_configured_source_not_given_keeps_its_indicators(tmp_path: Path) -> None:
    # misp1 is configured; this run fetches only the feed, so misp1's
    # indicators from the previous run stay (as with --server).
    cfg = make_config(
        tmp_path,
        misp_servers=[{"domain": "https://misp.invalid", "name": "misp1", "api_key": "k"}],
    )
    run(cfg, FakeSource("misp1", [attr("domain", "from-misp.example")]))
    result = run(cfg, FakeSource("feed", [attr("domain", "from-feed.example")]), now=NOW + 60)
    assert result.exit_code is ExitCode.OK
    assert domains(cfg) == ["from-feed.example", "from-misp.example"]
    reports = {r.label: r for r in result.servers}
    assert not reports["misp1"].selected and reports["misp1"].carried == 1
    assert read_header(cfg.correlation.ioc_index_file).servers == {
        "misp1": "https://misp.invalid",
        "feed": "fake://feed",
    }


def test_sources_are_named_once_and_there_is_one_at_least(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    with pytest.raises(FetchConfigError, match="no indicator source"):
        fetch_iocs(cfg, [])
    with pytest.raises(FetchConfigError, match="two sources share the name twin"):
        run(cfg, FakeSource("twin", []), FakeSource("twin", []))
    assert not cfg.correlation.ioc_index_file.exists()
