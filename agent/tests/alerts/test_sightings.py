# SPDX-License-Identifier: Apache-2.0
"""MISP sightings through real PyMISP against the MISP stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from misp_standin import MispStandin
from pdnssoc_agent.alerts import Ledger, alerts_file, deliver, ledger_dir
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.timefmt import parse_rfc3339
from tests.support.alerts import alert_line, append_alerts
from tests.support.sightings import event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEY = "sightings-test-key-0123456789"


@pytest.fixture
def misp() -> Iterator[MispStandin]:
    standin = MispStandin(
        api_keys={KEY: "PDNSSOC-ORG"},
        events=[event("1", "bad.example.com"), event("2", "other.example.org")],
        timeout_delay=3.0,
    )
    standin.start()
    yield standin
    standin.stop()


def make_config(tmp_path: Path, misp: MispStandin, *, enabled: bool = True) -> Config:
    return parse_config(
        {
            "data_dir": str(tmp_path),
            "misp_servers": [
                {
                    "domain": misp.url,
                    "name": "misp1",
                    "api_key": KEY,
                    "timeout": 2,
                    "sightings": {"enabled": enabled, "source": "pdnssoc-test"},
                },
                {"domain": "https://other-misp.example", "name": "misp2", "api_key": "x" * 20},
            ],
        }
    )


def test_sightings_by_value_with_source_and_answer_time(tmp_path: Path, misp: MispStandin) -> None:
    cfg = make_config(tmp_path, misp)
    first = alert_line(name="bad.example.com", seen="2026-11-27T10:05:00Z")
    other = alert_line(name="other.example.org", seen="2026-11-27T10:07:30Z", client="192.0.2.5")
    foreign = alert_line(name="x.example.net", misp_server="misp2")
    append_alerts(alerts_file(cfg), first, other, foreign)
    report = deliver(cfg, NOW)
    assert report.ok, report.failed
    # Only alerts whose indicator came from misp1 are sighted there; misp2 has
    # sightings disabled.
    assert report.sent == {"sightings:misp1": 2}
    sightings = sorted(misp.sightings, key=lambda s: s["value"])
    assert [s["value"] for s in sightings] == ["bad.example.com", "other.example.org"]
    assert {s["source"] for s in sightings} == {"pdnssoc-test"}
    assert [int(s["date_sighting"]) for s in sightings] == [
        int(parse_rfc3339("2026-11-27T10:05:00Z").timestamp()),
        int(parse_rfc3339("2026-11-27T10:07:30Z").timestamp()),
    ]
    assert all(s["type"] == "0" for s in sightings)
    # Nothing else about the alert leaves the agent.
    posted = [b for p, b in misp.requests if "sightings/add" in p]
    assert all("192.0.2" not in str(b) and "inst-a" not in str(b) for b in posted)

    # Not sent again.
    again = deliver(cfg, NOW + timedelta(minutes=5))
    assert again.sent == {}
    assert len(misp.sightings) == 2


def test_sightings_fault_then_recovery(tmp_path: Path, misp: MispStandin) -> None:
    cfg = make_config(tmp_path, misp)
    append_alerts(alerts_file(cfg), alert_line(name="bad.example.com"))
    misp.set_fault("500", path="sightings")
    first = deliver(cfg, NOW)
    assert "sightings:misp1" in first.failed
    assert KEY not in first.failed["sightings:misp1"]
    assert misp.sightings == []
    misp.set_fault(None)
    second = deliver(cfg, NOW + timedelta(hours=1))
    assert second.ok, second.failed
    assert len(misp.sightings) == 1


@pytest.mark.slow
def test_sightings_timeout(tmp_path: Path, misp: MispStandin) -> None:
    cfg = make_config(tmp_path, misp)
    append_alerts(alerts_file(cfg), alert_line(name="bad.example.com"))
    misp.set_fault("timeout", path="sightings")
    report = deliver(cfg, NOW)
    assert "sightings:misp1" in report.failed
    with Ledger(ledger_dir(cfg)) as ledger:
        assert len(ledger.pending("sightings:misp1")) == 1


def test_resent_sighting_is_not_counted_twice(tmp_path: Path, misp: MispStandin) -> None:
    """A crash after MISP saved the sighting but before the ledger recorded it."""
    cfg = make_config(tmp_path, misp)
    append_alerts(alerts_file(cfg), alert_line(name="bad.example.com"))
    deliver(cfg, NOW)
    assert len(misp.sightings) == 1
    # Lose the ledger entirely (the worst case): the sighting goes out again.
    for f in ledger_dir(cfg).glob("alert-ledger.sqlite3*"):
        f.unlink()
    report = deliver(cfg, NOW + timedelta(days=2))
    assert report.sent == {"sightings:misp1": 1}
    assert len(misp.sightings) == 1  # MISP recognised the same sighting uuid


def test_attribute_gone_is_dropped_not_retried(
    tmp_path: Path, misp: MispStandin, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path, misp)
    append_alerts(alerts_file(cfg), alert_line(name="removed.example.com"))
    report = deliver(cfg, NOW)
    assert report.ok
    assert "sighting dropped" in caplog.text
    with Ledger(ledger_dir(cfg)) as ledger:
        assert ledger.pending("sightings:misp1") == []
