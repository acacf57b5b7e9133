# SPDX-License-Identifier: Apache-2.0
"""The source stand-ins against samples of the real formats.

* MISP feed: a feed written by PyMISP's own ``to_feed()`` and
  ``feed_meta_generator`` is served byte for byte, and PyMISP reads the served
  event back;
* ThreatFox: the ``get_iocs`` answer has the keys and value types of the
  sample answer in ``agent/tests/assets/sources/threatfox-get_iocs.json``
  (the layout of ThreatFox's API documentation), and refuses a wrong key;
* TAXII 2.1: the objects of ``agent/tests/assets/sources/taxii-objects.json``
  (STIX 2.1 indicators) come back in envelopes paged with ``next`` and
  filtered with ``added_after`` and ``match[type]``, with the TAXII media
  type and the ``X-TAXII-Date-Added-*`` headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pymisp import MISPEvent, MISPOrganisation
from pymisp.tools import feed_meta_generator
from source_standins import TAXII_MEDIA_TYPE, SourceStandins

SAMPLES = Path(__file__).resolve().parents[2] / "agent" / "tests" / "assets" / "sources"
KEY = "standin-key-0123456789abcdef"
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "files" / "feed").mkdir(parents=True)
    (tmp_path / "taxii").mkdir()
    return tmp_path


@pytest.fixture
def web(root: Path) -> Iterator[SourceStandins]:
    with SourceStandins(root, [KEY]) as server:
        yield server


def test_a_feed_written_by_pymisp_is_served_as_written(root: Path, web: SourceStandins) -> None:
    ev = MISPEvent()
    ev.info = "Phishing wave"
    org = MISPOrganisation()
    org.name = "CERT-Lab"
    org.uuid = "5f6e4a3b-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    ev.Orgc = org
    ev.add_tag("tlp:green")
    ev.add_attribute("domain", "evil.example.com", to_ids=True)
    folder = root / "files" / "feed"
    (folder / f"{ev.uuid}.json").write_text(json.dumps(ev.to_feed()))
    feed_meta_generator(folder)
    auth = {"Authorization": KEY}
    manifest = requests.get(web.url("/files/feed/manifest.json"), headers=auth, timeout=10)
    assert manifest.content == (folder / "manifest.json").read_bytes()
    assert manifest.json() == json.loads(json.dumps(ev.manifest))
    served = requests.get(web.url(f"/files/feed/{ev.uuid}.json"), headers=auth, timeout=10)
    back = MISPEvent()
    back.load(served.json())
    assert back.uuid == ev.uuid and back.attributes[0].value == "evil.example.com"
    assert requests.get(web.url("/files/feed/manifest.json"), timeout=10).status_code == 401
    escape = requests.get(web.url("/files/..%2fthreatfox.json"), headers=auth, timeout=10)
    assert escape.status_code == 404


def _types(obj: dict[str, Any]) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in obj.items()}


def test_threatfox_answers_get_iocs_in_the_samples_layout(root: Path, web: SourceStandins) -> None:
    sample = json.loads((SAMPLES / "threatfox-get_iocs.json").read_text())
    recent = datetime.fromtimestamp(time.time() - 3600, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    old = datetime.fromtimestamp(time.time() - 3 * 86400, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    iocs = [dict(sample["data"][0], first_seen=recent), dict(sample["data"][1], first_seen=old)]
    (root / "threatfox.json").write_text(json.dumps(iocs))
    url = web.url("/threatfox/api/v1/")

    def ask(days: Any, key: str = KEY) -> requests.Response:
        body = {"query": "get_iocs", "days": days}
        return requests.post(url, json=body, headers={"Auth-Key": key}, timeout=10)

    answer = ask(1).json()
    assert set(answer) == set(sample) and answer["query_status"] == "ok"
    (ioc,) = answer["data"]
    assert _types(ioc) == _types(sample["data"][0])
    assert len(ask(7).json()["data"]) == 2
    assert ask(8).json() == {"query_status": "illegal_days"}
    refused = ask(1, key="wrong")
    assert refused.status_code == 401 and refused.json()["query_status"] == "unknown_auth_key"
    (root / "threatfox.json").write_text(json.dumps(iocs[1:]))
    assert ask(1).json()["query_status"] == "no_result"


def test_taxii_pages_and_filters_the_sample_objects(root: Path, web: SourceStandins) -> None:
    objects = json.loads((SAMPLES / "taxii-objects.json").read_text())["objects"]
    for obj in objects:  # STIX 2.1 indicators carry these (STIX 2.1, 4.7)
        if obj["type"] == "indicator":
            assert {"spec_version", "id", "created", "modified", "pattern", "pattern_type"} <= set(
                obj
            )
            assert {"valid_from"} <= set(obj)
    rows = [
        {"date_added": f"2026-11-29T00:00:{n:02d}.000Z", "object": obj}
        for n, obj in enumerate(objects)
    ]
    (root / "taxii" / f"{COLLECTION}.json").write_text(json.dumps(rows))
    base = web.url(f"/taxii2/api1/collections/{COLLECTION}/objects/")
    session = requests.Session()
    session.auth = ("institution", KEY)
    session.headers["Accept"] = TAXII_MEDIA_TYPE
    got: list[dict[str, Any]] = []
    params: dict[str, str] = {"match[type]": "indicator", "limit": "4"}
    while True:
        answer = session.get(base, params=params, timeout=10)
        assert answer.headers["Content-Type"] == TAXII_MEDIA_TYPE
        envelope = answer.json()
        assert set(envelope) <= {"more", "next", "objects"}
        got += envelope["objects"]
        last = answer.headers["X-TAXII-Date-Added-Last"]
        if not envelope["more"]:
            break
        params["next"] = envelope["next"]
    assert got == [o for o in objects if o["type"] == "indicator"]
    assert last == rows[-1]["date_added"]
    later = session.get(base, params={"added_after": rows[-3]["date_added"]}, timeout=10).json()
    assert later["objects"] == objects[-2:] and later["more"] is False
    discovery = session.get(web.url("/taxii2/"), timeout=10).json()
    assert discovery["api_roots"] == [web.url("/taxii2/api1/")]
    assert requests.get(base, timeout=10).status_code == 401
