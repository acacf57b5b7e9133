# SPDX-License-Identifier: Apache-2.0
"""The MISP stand-in (lab/src/misp_standin), driven by the real PyMISP over real sockets.

Every response PyMISP receives in these tests is checked against MISP's own
OpenAPI description (``$PDNSSOC_SHARED/reference/misp/openapi.yaml``) when the
shared reference data is present; tests that need it skip otherwise.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
import yaml
from conftest import shared_path
from pymisp import MISPSighting, PyMISP, PyMISPError
from pymisp.exceptions import MISPServerError, PyMISPUnexpectedResponse

from misp_standin import MispStandin, StoreError
from misp_standin.warninglists import Warninglist, Warninglists

KEY = "aZ9" * 13 + "x"  # 40 characters, as MISP's keys
OTHER_KEY = "Q" * 40
ADMIN = "admin-token-for-tests"
NOW = int(time.time())
DAY = 86400
UNDOCUMENTED = {"/users/view/me"}


def attribute(value: str, type_: str = "domain", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "value": value, "to_ids": True, "timestamp": str(NOW)} | extra


def event(info: str, attributes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "Event": {
            "info": info,
            "published": True,
            "Orgc": {"name": "CERT-A"},
            "Attribute": attributes,
        }
        | extra
    }


@pytest.fixture
def events() -> list[dict[str, Any]]:
    """Three small events: fresh, old and tagged, and one with an object."""
    return [
        event(
            "Phishing against SSO portals",
            [
                attribute("evil.example"),
                attribute("login.evil.example", "hostname"),
                attribute("203.0.113.7", "ip-dst"),
                attribute("not-for-ids.example", to_ids=False),
                attribute("deleted.example", deleted=True),
                attribute("just a comment", "comment", to_ids=False),
            ],
            id="10",
            uuid="0b7d6f5e-1111-4a4a-9a9a-000000000010",
            Tag=[{"name": "tlp:green"}],
        ),
        event(
            "APT infrastructure, old but kept by tag",
            [
                attribute("apt-c2.example", timestamp=str(NOW - 100 * DAY)),
                attribute("198.51.100.9|443", "ip-dst|port", timestamp=str(NOW - 100 * DAY)),
                attribute("red.example", Tag=[{"name": "tlp:red"}]),
            ],
            id="11",
            Tag=[{"name": "apt"}, {"name": "tlp:amber"}],
            publish_timestamp=str(NOW - 90 * DAY),
        ),
        event(
            "Botnet with an object",
            [attribute("bot.example")],
            id="12",
            Object=[
                {
                    "name": "domain-ip",
                    "Attribute": [
                        attribute("c2.bot.example", object_relation="domain"),
                        attribute("192.0.2.44", "ip-dst", object_relation="ip"),
                    ],
                }
            ],
        ),
    ]


@pytest.fixture
def standin(events: list[dict[str, Any]]) -> Iterator[MispStandin]:
    with MispStandin(
        api_keys={KEY: "CSIRT-TEST", OTHER_KEY: "OTHER-ORG"},
        events=events,
        admin_token=ADMIN,
        timeout_delay=5,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def openapi_spec() -> dict[str, Any] | None:
    path = shared_path() / "reference" / "misp" / "openapi.yaml"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


class SpecChecker:
    """Validates HTTP responses against MISP's OpenAPI description (openapi-core)."""

    def __init__(self, spec: dict[str, Any], base_url: str) -> None:
        from openapi_core import Config, OpenAPI

        spec = copy.copy(spec)
        spec["servers"] = [{"url": base_url}]
        # MISP's spec fails OpenAPI's own meta-validation (a duplicate "text" in the
        # returnFormat enum), so the spec check is off; responses are still validated.
        self.api = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
        self.checked: list[str] = []
        self.errors: list[str] = []
        self.undocumented: set[str] = set()  # paths the spec does not describe

    def check(self, response: requests.Response) -> None:
        from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
        from openapi_core.templating.paths.exceptions import PathNotFound

        where = f"{response.request.method} {response.request.path_url} {response.status_code}"
        try:
            self.api.validate_response(
                RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
            )
        except PathNotFound:
            self.undocumented.add(response.request.path_url)
        except Exception as exc:  # noqa: BLE001 (collect every validation failure)
            details = getattr(exc, "schema_errors", None) or [exc.__cause__ or exc]
            self.errors.append(f"{where}: {type(exc).__name__}: {details}")
        self.checked.append(where)


def schema_errors(spec: dict[str, Any], name: str, instance: Any) -> list[str]:
    """Errors of ``instance`` against the spec's ``components/schemas/<name>``."""
    from openapi_schema_validator import OAS30Validator

    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return [error.message for error in OAS30Validator(schema).iter_errors(instance)]


@pytest.fixture
def misp_client(
    standin: MispStandin, openapi_spec: dict[str, Any] | None
) -> Iterator[Callable[..., PyMISP]]:
    """Makes PyMISP clients of the stand-in whose responses are all spec-checked."""
    checker = SpecChecker(openapi_spec, standin.url) if openapi_spec else None

    def make(key: str = KEY, **kwargs: Any) -> PyMISP:
        client = PyMISP(standin.url, key, ssl=kwargs.pop("ssl", False), timeout=10, **kwargs)
        if checker is not None:
            session = client._PyMISP__session  # the one session PyMISP sends through
            session.hooks["response"].append(lambda r, *a, **k: checker.check(r))
        return client

    make.checker = checker  # type: ignore[attr-defined]
    yield make
    if checker is not None:
        assert not checker.errors, "\n".join(checker.errors)
        # PyMISP reads its user at start-up; MISP's spec only has /admin/users/view/{id}.
        assert checker.undocumented <= UNDOCUMENTED, checker.undocumented


def search(misp: PyMISP, **kwargs: Any) -> list[dict[str, Any]]:
    result = misp.search(controller="attributes", **kwargs)
    assert isinstance(result, dict), result
    assert "errors" not in result, result
    attributes: list[dict[str, Any]] = result["Attribute"]
    return attributes


def values(attributes: list[dict[str, Any]]) -> list[str]:
    return [a["value"] for a in attributes]


def raw_search(standin: MispStandin, body: dict[str, Any], key: str = KEY) -> requests.Response:
    return requests.post(
        f"{standin.url}/attributes/restSearch",
        json=body,
        headers={"Authorization": key, "Accept": "application/json"},
        timeout=10,
    )


# -- connection, version, auth ------------------------------------------------------------


def test_pymisp_connects_and_reads_the_version(misp_client: Callable[..., PyMISP]) -> None:
    misp = misp_client()
    version = misp.misp_instance_version
    assert isinstance(version, dict)
    assert version["version"].startswith("2.5.")
    assert version["perm_sighting"] is True
    user = misp.get_user()
    assert isinstance(user, dict)
    assert user["Organisation"]["name"] == "CSIRT-TEST"
    assert "domain" in misp.describe_types["types"]


def test_every_route_answers_as_the_spec_says(
    misp_client: Callable[..., PyMISP], openapi_spec: dict[str, Any] | None
) -> None:
    if openapi_spec is None:
        pytest.skip(f"MISP OpenAPI spec not found under {shared_path()} (set PDNSSOC_SHARED)")
    misp = misp_client()
    session = misp._PyMISP__session
    base = misp.root_url
    routes = ("servers/getVersion", "servers/getPyMISPVersion", "attributes/describeTypes")
    for route in (*routes, "users/view/me"):
        assert session.get(f"{base}/{route}", timeout=10).status_code == 200
    assert search(misp, type_attribute="domain", include_context=True)
    target = search(misp, value="evil.example")[0]
    misp.add_sighting({"source": "x"}, attribute=target["id"])
    misp.get_event(10)
    misp.get_event(999)  # 404
    assert session.get(f"{base}/servers/getVersion", headers={"Authorization": "no"}).ok is False
    checked = {" ".join(c.split()[:2]) for c in misp_client.checker.checked}  # type: ignore[attr-defined]
    assert {
        "GET /servers/getVersion",
        "GET /servers/getPyMISPVersion",
        "GET /attributes/describeTypes",
        "POST /attributes/restSearch",
        f"POST /sightings/add/{target['id']}",
        "GET /events/view/10",
        "GET /events/view/999",
    } <= checked, checked


def test_wrong_or_missing_key_gets_misps_403(
    standin: MispStandin, openapi_spec: dict[str, Any] | None
) -> None:
    with pytest.raises(PyMISPError):
        PyMISP(standin.url, "W" * 40, ssl=False, timeout=10)
    for headers in ({"Authorization": "W" * 40}, {}):
        response = requests.post(
            f"{standin.url}/attributes/restSearch", json={"type": "domain"}, headers=headers,
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 403
        body = response.json()
        assert body["url"] == "/attributes/restSearch"
        assert body["message"].startswith("Authentication failed.")
        if openapi_spec:
            checker = SpecChecker(openapi_spec, standin.url)
            checker.check(response)
            assert not checker.errors, checker.errors


def test_each_key_is_its_own_organisation(misp_client: Callable[..., PyMISP]) -> None:
    first, other = misp_client(), misp_client(OTHER_KEY)
    org_ids = [m.get_user()["Organisation"]["id"] for m in (first, other)]
    assert org_ids[0] != org_ids[1]
    assert other.add_sighting({"value": "evil.example"})["Sighting"]["org_id"] == org_ids[1]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_with_a_self_signed_certificate(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.write_bytes(b"".join(p.bytes() for p in server_cert.cert_chain_pems))
    key.write_bytes(server_cert.private_key_pem.bytes())
    ca_file.write_bytes(ca.cert_pem.bytes())
    with MispStandin(api_keys={KEY: "CSIRT-TEST"}, events=events, tls=(cert, key)) as standin:
        assert standin.url.startswith("https://127.0.0.1:")
        misp = PyMISP(standin.url, KEY, ssl=str(ca_file), timeout=10)
        assert "evil.example" in values(search(misp, type_attribute="domain"))
        insecure = PyMISP(standin.url, KEY, ssl=False, timeout=10)
        assert search(insecure, type_attribute="domain")
        with pytest.raises(PyMISPError, match=r"(?i)certificate|ssl"):
            PyMISP(standin.url, KEY, ssl=True, timeout=10)
        plain = requests.Session()
        with pytest.raises(requests.exceptions.ConnectionError):
            plain.get(standin.url.replace("https", "http") + "/servers/getVersion", timeout=5)


# -- restSearch ------------------------------------------------------------------------------


def test_restsearch_shape_is_misps(misp_client: Callable[..., PyMISP]) -> None:
    misp = misp_client()
    found = search(misp, type_attribute="domain", value="evil.example", include_event_tags=True)
    assert len(found) == 1
    item = found[0]
    assert item["to_ids"] is True and item["deleted"] is False
    assert item["event_id"] == "10" and item["object_id"] == "0" and item["id"].isdigit()
    assert item["timestamp"] == str(NOW)
    assert item["Event"] == {
        "org_id": item["Event"]["org_id"],
        "distribution": "1",
        "publish_timestamp": item["Event"]["publish_timestamp"],
        "id": "10",
        "info": "Phishing against SSO portals",
        "orgc_id": item["Event"]["orgc_id"],
        "uuid": "0b7d6f5e-1111-4a4a-9a9a-000000000010",
    }
    assert [(t["name"], t.get("inherited")) for t in item["Tag"]] == [("tlp:green", 1)]
    no_tags = search(misp, type_attribute="domain", value="evil.example")
    assert "Tag" not in no_tags[0]


def test_include_context_embeds_the_event(misp_client: Callable[..., PyMISP]) -> None:
    found = search(misp_client(), value="apt-c2.example", include_context=True)
    event_context = found[0]["Event"]
    assert event_context["Orgc"]["name"] == "CERT-A"
    assert {t["name"] for t in event_context["Tag"]} == {"apt", "tlp:amber"}
    assert event_context["published"] is True and "date" in event_context


def test_filters_type_to_ids_and_deleted(misp_client: Callable[..., PyMISP]) -> None:
    misp = misp_client()
    domains = values(search(misp, type_attribute="domain"))
    assert "not-for-ids.example" in domains
    assert "deleted.example" not in domains
    ids_only = values(search(misp, type_attribute=["domain", "hostname"], to_ids=1))
    assert "not-for-ids.example" not in ids_only
    assert {"evil.example", "login.evil.example", "c2.bot.example"} <= set(ids_only)
    assert values(search(misp, type_attribute="domain", to_ids=0)) == ["not-for-ids.example"]
    negated = values(search(misp, type_attribute=["ip-dst", "!domain"]))
    assert negated == ["203.0.113.7", "192.0.2.44"]
    composite = search(misp, value="198.51.100.9")
    assert values(composite) == ["198.51.100.9|443"]
    assert values(search(misp, value="%.bot.example")) == ["c2.bot.example"]


def test_object_attributes_come_flattened_with_their_object(
    misp_client: Callable[..., PyMISP],
) -> None:
    found = search(misp_client(), value="192.0.2.44")
    assert found[0]["object_relation"] == "ip"
    assert found[0]["Object"]["id"] == found[0]["object_id"] != "0"


def test_time_filters(misp_client: Callable[..., PyMISP]) -> None:
    misp = misp_client()
    recent = set(values(search(misp, timestamp="30d")))
    assert "evil.example" in recent and "apt-c2.example" not in recent
    assert "apt-c2.example" in values(search(misp, timestamp="150d"))
    assert "apt-c2.example" in values(search(misp, attribute_timestamp=str(NOW - 101 * DAY)))
    window = values(search(misp, timestamp=(NOW - 101 * DAY, NOW - 99 * DAY)))
    assert window == ["apt-c2.example", "198.51.100.9|443"]
    published_recently = values(search(misp, publish_timestamp="30d"))
    assert "apt-c2.example" not in published_recently and "evil.example" in published_recently
    assert values(search(misp, timestamp="garbage")) == []


def test_tag_filters(misp_client: Callable[..., PyMISP]) -> None:
    misp = misp_client()
    apt = set(values(search(misp, tags=["apt"])))
    assert apt == {"apt-c2.example", "198.51.100.9|443", "red.example"}
    assert values(search(misp, tags=["tlp:red"])) == ["red.example"]
    assert "red.example" not in values(search(misp, tags=["apt", "!tlp:red"]))
    assert "evil.example" not in values(search(misp, tags=["!tlp:green"]))
    assert values(search(misp, tags={"AND": ["apt", "tlp:red"]})) == ["red.example"]
    assert values(search(misp, tags=["no-such-tag"])) == []
    assert values(search(misp, tags=["TLP:%"])), "tag names match case-insensitively, % is LIKE"
    assert len(search(misp, tags=["!no-such-tag"])) == len(search(misp, type_attribute="%"))


def test_paging_counts_from_one_like_misp(standin: MispStandin) -> None:
    standin.add_event(event("Many", [attribute(f"d{i:02d}.example") for i in range(7)], id="20"))
    body = {"returnFormat": "json", "eventid": "20", "limit": 3}
    pages = [raw_search(standin, body | {"page": p}) for p in (1, 2, 3, 4)]
    got = [[a["value"] for a in r.json()["response"]["Attribute"]] for r in pages]
    assert got == [
        ["d00.example", "d01.example", "d02.example"],
        ["d03.example", "d04.example", "d05.example"],
        ["d06.example"],
        [],
    ]
    # MISP's X-Result-Count is the page's row count, plus one while a page is full.
    assert [r.headers["X-Result-Count"] for r in pages] == ["4", "4", "1", "0"]
    everything = raw_search(standin, {"eventid": "20", "page": 2}).json()["response"]
    assert len(everything["Attribute"]) == 7, "page without limit returns everything"
    first = raw_search(standin, {"eventid": "20", "limit": 3}).json()["response"]
    assert [a["value"] for a in first["Attribute"]] == got[0], "limit without page is page 1"
    zero = raw_search(standin, {"eventid": "20", "limit": 3, "page": 0}).json()["response"]
    assert [a["value"] for a in zero["Attribute"]] == got[0], "page 0 is page 1, as in MISP"
    bad = raw_search(standin, {"eventid": "20", "limit": 3, "page": -1})
    assert bad.status_code == 400 and "page" in bad.json()["message"]


def test_pymisp_paging_through_everything(misp_client: Callable[..., PyMISP]) -> None:
    misp = misp_client()
    everything = values(search(misp, to_ids=1))
    paged: list[str] = []
    for page in range(1, 20):
        chunk = values(search(misp, to_ids=1, limit=2, page=page))
        if not chunk:
            break
        paged.extend(chunk)
    assert paged == everything and len(everything) == 9


def test_pass_through_arguments_are_accepted_and_reported(standin: MispStandin) -> None:
    response = raw_search(
        standin,
        {"type": "domain", "excludeDecayed": 1, "decayingModel": "2", "unknownThing": 1},
    )
    assert response.status_code == 200
    assert response.headers["X-Standin-Ignored"] == "decayingModel,excludeDecayed"
    assert "evil.example" in [a["value"] for a in response.json()["response"]["Attribute"]]
    wrapped = raw_search(standin, {"request": {"type": "domain", "value": "bot.example"}})
    assert [a["value"] for a in wrapped.json()["response"]["Attribute"]] == ["bot.example"]
    for body, word in (({"returnFormat": "csv"}, "json only"), ({"timestamp": [1, 2, 3]}, "two")):
        refused = raw_search(standin, body)
        assert refused.status_code == 400 and word in refused.json()["message"]


def test_events_added_and_replaced_at_runtime(
    standin: MispStandin, misp_client: Callable[..., PyMISP]
) -> None:
    misp = misp_client()
    assert values(search(misp, value="late.example")) == []
    added = standin.add_event(event("Late IOC", [attribute("late.example")]))
    assert values(search(misp, value="late.example")) == ["late.example"]
    standin.add_event(event("Late IOC, revised", [attribute("later.example")], uuid=added["uuid"]))
    assert values(search(misp, value="late.example")) == []
    assert search(misp, value="later.example")[0]["Event"]["id"] == added["id"]
    assert standin.remove_event(added["id"])
    assert values(search(misp, value="later.example")) == []


# -- warninglists -------------------------------------------------------------------------------


@pytest.fixture
def shared_warninglists(shared_dir: Path) -> Path:
    return shared_dir / "reference" / "misp" / "warninglists"


def test_warninglists_from_the_reference_files(
    shared_warninglists: Path, openapi_spec: dict[str, Any] | None
) -> None:
    benign = [
        attribute("8.8.8.8", "ip-dst"),  # public-dns-v4 (cidr, single address)
        attribute("10.1.2.3", "ip-src"),  # rfc1918
        attribute("104.16.1.1|443", "ip-dst|port"),  # cloudflare, composite
        attribute("www.google.ad", "hostname"),  # google (string list, exact entry)
        attribute("co.uk"),  # second-level-tlds
        attribute("outlook.office365.com", "hostname"),  # microsoft-office365
    ]
    bad = [attribute("evil.example"), attribute("203.0.113.7", "ip-dst")]
    lists = Warninglists.from_dir(shared_warninglists)
    assert len(lists) == 7
    with MispStandin(
        api_keys={KEY: "CSIRT-TEST"},
        events=[event("mixed", benign + bad, id="30")],
        warninglists_dir=shared_warninglists,
    ) as standin:
        misp = PyMISP(standin.url, KEY, ssl=False, timeout=10)
        everything = values(search(misp, eventid="30"))
        assert len(everything) == 8
        assert values(search(misp, eventid="30", enforce_warninglist=True)) == [
            "evil.example",
            "203.0.113.7",
        ]
        page = raw_search(standin, {"eventid": "30", "limit": 4, "enforceWarninglist": True})
        # As in MISP: the page is cut first, then warninglisted entries are dropped.
        assert page.json()["response"]["Attribute"] == []
        assert page.headers["X-Skipped-Elements-Count"] == "4"
        assert page.headers["X-Result-Count"] == "5", "a full page: more may follow"
        page2 = raw_search(
            standin, {"eventid": "30", "limit": 4, "page": 2, "enforceWarninglist": 1}
        )
        assert [a["value"] for a in page2.json()["response"]["Attribute"]] == values(bad)
        hits = raw_search(standin, {"eventid": "30", "includeWarninglistHits": 1}).json()
        warned = {a["value"] for a in hits["response"]["Attribute"] if "warnings" in a}
        assert warned == {a["value"] for a in benign}
        if openapi_spec:
            checker = SpecChecker(openapi_spec, standin.url)
            for response in (page, page2):
                checker.check(response)
            assert not checker.errors, checker.errors


@pytest.mark.parametrize(
    ("list_type", "entries", "attribute_type", "value", "hit"),
    [
        ("string", [".example.org"], "domain", "www.example.org", False),
        ("string", ["example.org"], "domain", "example.org", True),
        ("hostname", ["Example.ORG."], "hostname", "a.b.example.org.", True),
        ("hostname", ["example.org"], "url", "https://cdn.example.org/x", True),
        ("hostname", ["example.org"], "domain", "badexample.org", False),
        ("substring", ["tracker"], "domain", "ads.tracker.example", True),
        ("cidr", ["10.0.0.0/8"], "ip-dst", "10.0.0.0/9", True),
        ("cidr", ["10.0.0.0/8"], "ip-dst", "10.0.0.0/7", False),
        ("cidr", ["2001:db8::/32"], "ip-src", "2001:db8::1", True),
        ("cidr", ["192.0.2.1"], "domain|ip", "x.example|192.0.2.1", True),
        ("regex", ["/^mail\\.[a-z]+\\.example$/i"], "hostname", "MAIL.corp.example", True),
    ],
)
def test_warninglist_types_match_like_misp(
    list_type: str, entries: list[str], attribute_type: str, value: str, hit: bool
) -> None:
    wl = Warninglist.from_dict(
        {"name": "t", "type": list_type, "list": entries, "matching_attributes": []}
    )
    assert (Warninglists([wl]).check(attribute_type, value) is not None) is hit


def test_warninglist_applies_only_to_its_attribute_types() -> None:
    wl = Warninglist.from_dict(
        {"name": "t", "type": "string", "list": ["x.example"], "matching_attributes": ["domain"]}
    )
    assert Warninglists([wl]).check("domain", "x.example") is not None
    assert Warninglists([wl]).check("hostname", "x.example") is None


def test_bad_warninglist_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"name": "x", "type": "cidr", "list": ["not-an-ip"]}')
    with pytest.raises(ValueError, match=r"bad\.json: bad cidr entry"):
        Warninglists.from_dir(tmp_path)


# -- sightings and events ------------------------------------------------------------------------


def test_sightings_by_value_id_and_uuid(
    standin: MispStandin,
    misp_client: Callable[..., PyMISP],
    openapi_spec: dict[str, Any] | None,
) -> None:
    misp = misp_client()
    sighting = MISPSighting()
    sighting.from_dict(value="evil.example", source="pdnssoc", type="0", timestamp=NOW)
    by_value = misp.add_sighting(sighting)
    assert isinstance(by_value, dict)
    if openapi_spec:  # MISP wraps the spec's Sighting in {"Sighting": ...}: check the inside
        assert schema_errors(openapi_spec, "Sighting", by_value["Sighting"]) == []
        assert schema_errors(openapi_spec, "Sighting", {"date_sighting": "today"}) != []
    assert by_value["Sighting"]["source"] == "pdnssoc"
    assert by_value["Sighting"]["date_sighting"] == str(NOW)
    target = search(misp, value="203.0.113.7")[0]
    misp.add_sighting({"source": "by-id"}, attribute=target["id"])
    misp.add_sighting({"source": "by-uuid"}, attribute=target["uuid"])
    refused = misp.add_sighting({"value": "never-seen.example"})
    assert "No valid attributes found" in refused["message"]
    recorded = standin.sightings
    assert [(s["value"], s["source"]) for s in recorded] == [
        ("evil.example", "pdnssoc"),
        ("203.0.113.7", "by-id"),
        ("203.0.113.7", "by-uuid"),
    ]
    assert recorded[0]["Organisation"]["name"] == "CSIRT-TEST"
    with_sightings = search(misp, value="203.0.113.7", include_sightings=True)
    assert [s["source"] for s in with_sightings[0]["Sighting"]] == ["by-id", "by-uuid"]
    view = misp.get_event(10)
    seen = [a for a in view["Event"]["Attribute"] if a["value"] == "evil.example"]
    assert [s["source"] for s in seen[0]["Sighting"]] == ["pdnssoc"]


def test_event_view_by_id_and_uuid(misp_client: Callable[..., PyMISP]) -> None:
    misp = misp_client()
    by_id = misp.get_event(12)
    by_uuid = misp.get_event(by_id["Event"]["uuid"])
    assert by_id == by_uuid
    assert [o["name"] for o in by_id["Event"]["Object"]] == ["domain-ip"]
    assert len(by_id["Event"]["Object"][0]["Attribute"]) == 2
    loaded = misp.get_event(11, pythonify=True)
    assert {t.name for t in loaded.tags} == {"apt", "tlp:amber"}
    missing = misp.get_event(999)
    assert missing["errors"][0] == 404


def test_pymisp_fixtures_load_and_serve(shared_dir: Path) -> None:
    fixtures = shared_dir / "reference" / "misp" / "pymisp-fixtures"
    with MispStandin(api_keys={KEY: "ORGNAME"}) as standin:
        for name in ("existing_event.json", "sighting_1.json", "event.json"):
            standin.load_event_file(fixtures / name)
        misp = PyMISP(standin.url, KEY, ssl=False, timeout=10)
        sednit = search(misp, eventid="9747", type_attribute=["domain", "ip-dst"])
        source = json.loads((fixtures / "existing_event.json").read_text())
        source = source.get("Event", source)
        expected = [
            a["value"]
            for a in source["Attribute"] + [a for o in source["Object"] for a in o["Attribute"]]
            if a["type"] in ("domain", "ip-dst") and not a.get("deleted")
        ]
        assert sorted(values(sednit)) == sorted(expected) and len(expected) > 20
        ursnif = misp.get_event("5b646415-7b48-40d5-86b4-c0070acd0835")
        preloaded = ursnif["Event"]["Attribute"][3]["Sighting"]
        assert [s["source"] for s in preloaded] == ["honeyp", "dede"]


def test_bad_events_are_refused_with_the_field_named(tmp_path: Path) -> None:
    standin = MispStandin(api_keys={KEY: "ORG"})
    with pytest.raises(StoreError, match="'info'"):
        standin.add_event({"Event": {"Attribute": []}})
    with pytest.raises(StoreError, match=r"attribute #1: 'value'"):
        standin.add_event(event("x", [attribute("a.example"), {"type": "domain"}]))
    with pytest.raises(StoreError, match="timestamp"):
        standin.add_event(event("x", [attribute("a.example", timestamp="yesterday")]))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(StoreError, match=r"broken\.json"):
        standin.load_event_file(broken)


def test_requests_are_recorded(standin: MispStandin) -> None:
    raw_search(standin, {"type": "domain", "limit": 5})
    assert ("/attributes/restSearch", {"type": "domain", "limit": 5}) in standin.requests


# -- faults ------------------------------------------------------------------------------------


def test_fault_down_closes_the_connection(standin: MispStandin) -> None:
    misp = PyMISP(standin.url, KEY, ssl=False, timeout=5)
    standin.set_fault("down")
    with pytest.raises(requests.exceptions.ConnectionError):
        misp.search(controller="attributes", type_attribute="domain")
    standin.set_fault(None)
    assert search(misp, type_attribute="domain")


def test_fault_http_errors(standin: MispStandin) -> None:
    misp = PyMISP(standin.url, KEY, ssl=False, timeout=5)
    standin.set_fault("403")
    result = misp.search(controller="attributes", type_attribute="domain")
    assert isinstance(result, dict) and result["errors"][0] == 403
    standin.set_fault("500")
    with pytest.raises(MISPServerError):
        misp.search(controller="attributes", type_attribute="domain")


def test_fault_garbage_and_truncated(standin: MispStandin) -> None:
    misp = PyMISP(standin.url, KEY, ssl=False, timeout=5)
    standin.set_fault("garbage")
    with pytest.raises(PyMISPUnexpectedResponse):
        misp.search(controller="attributes", type_attribute="domain")
    standin.set_fault("truncated")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        misp.search(controller="attributes", type_attribute="domain")


def test_fault_timeout_outlasts_the_client(standin: MispStandin) -> None:
    misp = PyMISP(standin.url, KEY, ssl=False, timeout=0.5)
    standin.set_fault("timeout", delay=3)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        misp.search(controller="attributes", type_attribute="domain")
    assert time.monotonic() - started < 4


def test_fault_limited_by_path_and_count(standin: MispStandin) -> None:
    misp = PyMISP(standin.url, KEY, ssl=False, timeout=5)
    standin.set_fault("500", path="/sightings/", times=2)
    assert search(misp, type_attribute="domain"), "other paths are not affected"
    for _ in range(2):
        with pytest.raises(MISPServerError):
            misp.add_sighting({"value": "evil.example"})
    assert "Sighting" in misp.add_sighting({"value": "evil.example"})
    with pytest.raises(ValueError, match="fault must be one of"):
        standin.set_fault("slow")


def test_admin_endpoint_sets_faults_and_adds_events(standin: MispStandin) -> None:
    admin = f"{standin.url}/_standin"

    def post(action: str, body: Any, token: str = ADMIN) -> requests.Response:
        headers = {"X-Standin-Admin": token}
        return requests.post(f"{admin}/{action}", json=body, headers=headers, timeout=5)

    assert post("fault", {"fault": "500"}, token="wrong").status_code == 403
    assert post("fault", {"fault": "500", "times": 1}).status_code == 200
    assert raw_search(standin, {"type": "domain"}).status_code == 500
    assert raw_search(standin, {"type": "domain"}).status_code == 200
    assert post("fault", {"fault": "bogus"}).status_code == 400
    assert post("fault", {"fault": None, "delay": 2}).status_code == 200
    assert standin.timeout_delay == 2
    added = post("events", event("via admin", [attribute("admin-added.example")])).json()
    hits = raw_search(standin, {"value": "admin-added.example"}).json()["response"]["Attribute"]
    assert hits[0]["Event"]["id"] == added["Event"]["id"]
    requests.post(
        f"{standin.url}/sightings/add", json={"value": "evil.example"},
        headers={"Authorization": KEY}, timeout=5,
    )  # fmt: skip
    listed = requests.get(f"{admin}/sightings", headers={"X-Standin-Admin": ADMIN}, timeout=5)
    assert [s["value"] for s in listed.json()] == ["evil.example"]


def test_admin_endpoint_is_off_without_a_token(events: list[dict[str, Any]]) -> None:
    with MispStandin(api_keys={KEY: "ORG"}, events=events) as standin:
        response = requests.post(
            f"{standin.url}/_standin/fault", json={"fault": "down"},
            headers={"X-Standin-Admin": ""}, timeout=5,
        )  # fmt: skip
        assert response.status_code == 404


# -- scale mode and command line ------------------------------------------------------------------


def test_synthetic_set_is_deterministic_and_unique(events: list[dict[str, Any]]) -> None:
    with MispStandin(api_keys={KEY: "ORG"}, events=events) as standin:
        standin.add_synthetic(20_000, seed=7)
        misp = PyMISP(standin.url, KEY, ssl=False, timeout=30)
        wanted = ["domain", "hostname", "ip-dst", "ip-src", "domain|ip"]
        paged: list[dict[str, Any]] = []
        page = 1
        while chunk := search(misp, type_attribute=wanted, to_ids=1, limit=4000, page=page):
            paged.extend(chunk)
            page += 1
        synthetic = [a for a in paged if a["comment"] == "synthetic"]
        assert 17_000 < len(synthetic) < 19_500, "about 92 % of them are for IDS"
        assert len({a["value"] for a in synthetic}) == len(synthetic)
        assert len({a["id"] for a in paged}) == len(paged)
        ids = [int(a["id"]) for a in paged]
        assert ids == sorted(ids), "ordered by id, across stored and synthetic attributes"
        again = search(misp, type_attribute=wanted, to_ids=1, limit=4000, page=1)
        assert again == paged[:4000]
        amber = search(misp, tags=["apt"], limit=10, include_event_tags=True)
        assert all({"apt", "tlp:amber"} <= {t["name"] for t in a["Tag"]} for a in amber)
        sample = synthetic[123]
        view = misp.get_event(sample["event_id"])
        assert sample["value"] in [a["value"] for a in view["Event"]["Attribute"]]
        assert misp.add_sighting({"source": "s"}, attribute=sample["uuid"])["Sighting"]


@pytest.mark.parametrize(
    "flags", [{}, {"includeEventTags": 1}, {"includeEventUuid": 1, "includeEventTags": 1}]
)
def test_synthetic_fast_json_equals_the_general_rendering(flags: dict[str, int]) -> None:
    from misp_standin.query import parse_query

    standin = MispStandin(api_keys={KEY: "ORG"})
    standin.add_synthetic(500, seed=3)
    store = standin.store
    query = parse_query({"limit": 500} | flags, time.time(), store.tags.find)
    page = list(store.search(query))
    assert len(page) == 500
    for item in page:
        fast = item.restsearch_json(query)  # type: ignore[attr-defined]
        assert json.loads(fast) == json.loads(json.dumps(store.render_attribute(item, query)))


def test_command_line_serves_with_keys_from_a_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# lab key\n{KEY} LAB-CSIRT\n")
    keys.chmod(0o600)
    events_dir = tmp_path / "events"
    events_dir.mkdir()
    (events_dir / "one.json").write_text(json.dumps(event("cli", [attribute("cli.example")])))
    process = subprocess.Popen(
        [sys.executable, "-m", "misp_standin", "--listen", "127.0.0.1:0", "--api-key-file",
         str(keys), "--events-dir", str(events_dir), "--synthetic", "1000", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url or process.stderr.read()
        misp = PyMISP(url, KEY, ssl=False, timeout=10)
        assert misp.get_user()["Organisation"]["name"] == "LAB-CSIRT"
        assert values(search(misp, value="cli.example")) == ["cli.example"]
        assert len(search(misp, limit=5000)) == 1001
        (events_dir / "two.json").write_text(json.dumps(event("later", [attribute("two.example")])))
        time.sleep(1.1)  # the directory is re-read at most once a second
        assert values(search(misp, value="two.example")) == ["two.example"]
        (events_dir / "one.json").unlink()
        time.sleep(1.1)
        assert values(search(misp, value="cli.example")) == [], "a removed file's event goes"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_command_line_refuses_bad_secrets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MISP_STANDIN_API_KEY"}
    short = tmp_path / "short"
    short.write_text("abc\n")
    for extra, message in (
        ([], "no API key"),
        (["--api-key-file", str(short)], "shorter than 8"),
        (["--api-key-file", str(tmp_path / "missing")], "No such file"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "misp_standin", "--listen", "127.0.0.1:0", *extra],
            capture_output=True, text=True, env=env, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_validator_rejects_a_wrong_shape(
    standin: MispStandin, openapi_spec: dict[str, Any] | None
) -> None:
    """The spec check can fail: a response MISP would never send is caught."""
    if openapi_spec is None:
        pytest.skip(f"MISP OpenAPI spec not found under {shared_path()} (set PDNSSOC_SHARED)")
    response = raw_search(standin, {"type": "domain", "limit": 1})
    body = response.json()
    body["response"]["Attribute"][0]["distribution"] = "9"
    body["response"]["Attribute"][0]["to_ids"] = "yes"
    response._content = json.dumps(body).encode()
    checker = SpecChecker(openapi_spec, standin.url)
    checker.check(response)
    assert checker.errors and "distribution" in checker.errors[0] + repr(checker.errors)
