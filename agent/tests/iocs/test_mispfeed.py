# SPDX-License-Identifier: Apache-2.0
"""MISP feed directories over loopback HTTP, in the format PyMISP's feed tools write.

The feed under test is produced by PyMISP itself (``MISPEvent.to_feed()`` for
each event file, ``pymisp.tools.feed_meta_generator`` for ``manifest.json``
and ``hashes.csv``), so the source is proven against the real format.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent, MISPOrganisation
from pymisp.tools import feed_meta_generator

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.iocs.configured import cache_dir, sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, FetchResult, fetch_iocs
from pdnssoc_agent.iocs.mispfeed import MispFeedSource
from tests.support.iocs import DAY, domains, index, ips
from tests.support.sources import FileServer, serving


@pytest.fixture
def web() -> Iterator[FileServer]:
    with serving() as server:
        yield server


def misp_event(info: str, *, age_days: float = 1, tags: tuple[str, ...] = ()) -> MISPEvent:
    ev = MISPEvent()
    ev.info = info
    org = MISPOrganisation()
    org.name = "CERT-Feed"
    org.uuid = "5f6e4a3b-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    ev.Orgc = org
    for tag in tags:
        ev.add_tag(tag)
    ev.timestamp = int(time.time() - age_days * DAY)
    return ev


def publish(web: FileServer, folder: Path, events: list[MISPEvent]) -> None:
    """Write the feed as PyMISP does, and serve the directory under /feed/."""
    for old in folder.glob("*"):
        old.unlink()
    for ev in events:
        (folder / f"{ev.uuid}.json").write_text(json.dumps(ev.to_feed()))
    feed_meta_generator(folder)
    web.files = {k: v for k, v in web.files.items() if not k.startswith("/feed/")}
    for path in folder.iterdir():
        web.put(f"/feed/{path.name}", path.read_bytes())


def config(tmp: Path, web: FileServer, **entry: Any) -> Config:
    return parse_config(
        {
            "data_dir": str(tmp),
            "sources": [{"type": "misp_feed", "name": "feed", "url": web.url("/feed/")} | entry],
            "fetch_iocs": {"reload_collector": False},
        }
    )


def fetch(cfg: Config) -> tuple[FetchResult, MispFeedSource]:
    sources = sources_from_config(cfg)
    assert isinstance(sources[0], MispFeedSource)
    return fetch_iocs(cfg, sources, FetchOptions(reload=False)), sources[0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "published"
    path.mkdir()
    return path


def test_feed_attributes_and_object_attributes_with_their_event(
    web: FileServer, folder: Path, tmp_path: Path
) -> None:
    ev = misp_event("Phishing wave", tags=("tlp:amber",))
    a = ev.add_attribute("domain", "Evil.Example.COM", to_ids=True, comment="C2 panel")
    a.add_tag("apt")
    a.first_seen = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    ev.add_attribute("ip-dst", "192.0.2.10", to_ids=True)
    ev.add_attribute("domain", "not-ids.example.org", to_ids=False)
    obj = ev.add_object(name="domain-ip")
    obj.add_attribute("domain", value="obj.example.net", to_ids=True)
    publish(web, folder, [ev])
    cfg = config(tmp_path / "agent", web, tlp="clear")
    result, _ = fetch(cfg)
    assert result.servers[0].error is None
    assert domains(cfg) == ["evil.example.com", "obj.example.net"]
    assert ips(cfg) == ["192.0.2.10"]
    assert result.servers[0].not_to_ids == 1
    ctx = index(cfg)["evil.example.com"].contexts[0]
    assert (ctx.server, ctx.event_uuid, ctx.event_info, ctx.org, ctx.comment) == (
        "feed",
        ev.uuid,
        "Phishing wave",
        "CERT-Feed",
        "C2 panel",
    )
    assert ctx.event_url == web.url(f"/feed/{ev.uuid}.json")
    assert ctx.tlp == "tlp:amber"  # the event's own TLP wins over the source's default
    assert set(ctx.tags) == {"apt", "tlp:amber"}
    feed_attr = json.loads(web.files[f"/feed/{ev.uuid}.json"][1])["Event"]["Attribute"][0]
    assert ctx.first_seen == feed_attr["first_seen"]
    assert datetime.fromisoformat(ctx.first_seen) == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def test_fetched_incrementally_by_manifest(web: FileServer, folder: Path, tmp_path: Path) -> None:
    one = misp_event("one")
    one.add_attribute("domain", "one.example.org", to_ids=True)
    two = misp_event("two")
    two.add_attribute("domain", "two.example.org", to_ids=True)
    publish(web, folder, [one, two])
    cfg = config(tmp_path / "agent", web)
    _, source = fetch(cfg)
    assert source.downloaded == 2
    _, source = fetch(cfg)
    assert source.downloaded == 0 and domains(cfg) == ["one.example.org", "two.example.org"]
    assert web.gets(f"/feed/{one.uuid}.json") == 1

    two.add_attribute("domain", "three.example.org", to_ids=True)
    two.timestamp = int(time.time())
    publish(web, folder, [one, two])
    _, source = fetch(cfg)
    assert source.downloaded == 1 and web.gets(f"/feed/{two.uuid}.json") == 2
    assert domains(cfg) == ["one.example.org", "three.example.org", "two.example.org"]

    publish(web, folder, [two])  # "one" left the feed: its values leave the lists
    fetch(cfg)
    assert domains(cfg) == ["three.example.org", "two.example.org"]
    kept = cache_dir(cfg, cfg.sources[0])
    assert sorted(p.name for p in kept.iterdir()) == sorted(["kept.json", f"{two.uuid}.json"])


def test_events_older_than_every_age_limit_are_not_downloaded(
    web: FileServer, folder: Path, tmp_path: Path
) -> None:
    old = misp_event("old", age_days=60, tags=("apt",))
    old.add_attribute("domain", "old.example.org", to_ids=True, timestamp=old.timestamp)
    ancient = misp_event("ancient", age_days=400)
    ancient.add_attribute("domain", "ancient.example.org", to_ids=True)
    publish(web, folder, [old, ancient])
    cfg = config(
        tmp_path / "agent",
        web,
        periods={
            "generic": {"delta": {"days": 30}},
            "tags": [{"names": ["apt"], "delta": {"days": 90}}],
        },
    )
    _, source = fetch(cfg)
    assert source.downloaded == 1 and web.gets(f"/feed/{ancient.uuid}.json") == 0
    assert domains(cfg) == ["old.example.org"]  # kept by the longer "apt" period
    assert json.loads(web.files[f"/feed/{old.uuid}.json"][1])["Event"]["Attribute"][0][
        "timestamp"
    ] == str(old.timestamp)


def test_a_garbled_event_fails_the_feed_and_keeps_its_last_good_values(
    web: FileServer, folder: Path, tmp_path: Path
) -> None:
    ev = misp_event("one")
    ev.add_attribute("domain", "one.example.org", to_ids=True)
    publish(web, folder, [ev])
    cfg = config(tmp_path / "agent", web)
    fetch(cfg)
    ev.timestamp = int(time.time())
    publish(web, folder, [ev])
    web.put(f"/feed/{ev.uuid}.json", b'{"Event": {"Attribute": [{"value": ')
    result, _ = fetch(cfg)
    error = result.servers[0].error or ""
    assert error.startswith(f"{ev.uuid}.json is not a MISP feed event: ")
    assert not result.written and domains(cfg) == ["one.example.org"]
    web.put("/feed/manifest.json", b"<html>maintenance</html>")
    result, _ = fetch(cfg)
    assert (result.servers[0].error or "").startswith("manifest.json is not a MISP feed manifest")


def test_manifest_keys_that_are_not_uuids_are_skipped_never_used_as_paths(
    web: FileServer, folder: Path, tmp_path: Path
) -> None:
    ev = misp_event("one")
    ev.add_attribute("domain", "one.example.org", to_ids=True)
    publish(web, folder, [ev])
    manifest = json.loads(web.files["/feed/manifest.json"][1])
    manifest["../../escape"] = {"timestamp": int(time.time())}
    web.put("/feed/manifest.json", json.dumps(manifest))
    web.put("/feed/../../escape.json", json.dumps(ev.to_feed()))
    cfg = config(tmp_path / "agent", web)
    result, _ = fetch(cfg)
    assert result.servers[0].error is None and domains(cfg) == ["one.example.org"]
    assert not any("escape" in s.path for s in web.seen)
    assert not list(tmp_path.rglob("escape*"))
