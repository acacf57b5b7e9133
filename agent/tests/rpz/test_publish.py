# SPDX-License-Identifier: Apache-2.0
"""Building, checking, installing and announcing zones: serials, no-change builds,
a refused zone never installed, the DNS server told, status, and the fetch-iocs hook."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pdnssoc_agent.config import Config
from pdnssoc_agent.health import collect, render
from pdnssoc_agent.rpz.publish import (
    ZoneRejectedError,
    build_zones,
    check_zone,
    serial_after,
    serial_of,
    zone_path,
)
from tests.support.rpz import (
    REFUSE_MARKER,
    ZONE,
    put_index,
    real_checkzone,
    recording_reload,
    reloads,
    rpz_config,
    stand_in_checker,
)

T0 = 1_764_504_000.0


def zone_text(cfg: Config) -> str:
    return zone_path(cfg, cfg.rpz.zones[0]).read_text()


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    config = rpz_config(tmp_path, stand_in_checker(tmp_path), recording_reload(tmp_path))
    put_index(config, ["evil.example", ("192.0.2.7", "ip")])
    return config


def test_serial_is_the_build_time_and_never_goes_back() -> None:
    assert serial_after(None, T0) == int(T0)
    assert serial_after(int(T0), T0 + 60) == int(T0) + 60
    assert serial_after(int(T0), T0) == int(T0) + 1  # two changes in one second
    assert serial_after(int(T0) + 500, T0) == int(T0) + 501  # the clock went back
    assert serial_after(2**32 - 1, T0) == int(T0)  # RFC 1982: after the wrap
    assert serial_after(2**32 - 1, 10.0) == 10


def test_a_change_installs_a_larger_serial_and_tells_the_server(
    cfg: Config, tmp_path: Path
) -> None:
    [first] = build_zones(cfg, now=T0)
    assert (first.outcome, first.serial, first.checked) == ("installed", int(T0), True)
    assert "evil.example CNAME ." in zone_text(cfg)
    put_index(cfg, ["evil.example", "worse.example"])
    [second] = build_zones(cfg, now=T0 - 3600)  # the clock went back an hour
    assert second.outcome == "installed"
    assert second.serial == int(T0) + 1
    assert serial_of(zone_text(cfg)) == int(T0) + 1
    assert "worse.example CNAME ." in zone_text(cfg)
    assert "32.7.2.0.192.rpz-ip" not in zone_text(cfg)  # removed at the source: gone
    assert reloads(tmp_path) == [f"reload {ZONE}", f"reload {ZONE}"]


def test_no_change_keeps_the_file_and_the_serial(cfg: Config, tmp_path: Path) -> None:
    build_zones(cfg, now=T0)
    path = zone_path(cfg, cfg.rpz.zones[0])
    before = path.stat()
    [again] = build_zones(cfg, now=T0 + 7200)
    assert (again.outcome, again.serial) == ("unchanged", int(T0))
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert reloads(tmp_path) == [f"reload {ZONE}"]  # not told again


def test_a_refused_zone_is_never_installed_and_status_says_so(
    cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    build_zones(cfg, now=T0)
    good = zone_text(cfg)
    put_index(cfg, ["evil.example", REFUSE_MARKER])
    with caplog.at_level(logging.ERROR):
        [report] = build_zones(cfg, now=T0 + 60)
    assert report.outcome == "failed"
    assert report.serial == int(T0)
    assert "bad owner name" in (report.error or "")
    assert zone_text(cfg) == good
    leftovers = [p.name for p in cfg.rpz.zone_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert "failed its check and is not installed" in caplog.text
    status = collect(cfg)
    assert any("last build failed" in p and "bad owner name" in p for p in status.problems)
    assert f"{ZONE}: failed" in render(status)
    # Fixed at the source: the next build installs, with a serial after the served one.
    put_index(cfg, ["evil.example"])
    [fixed] = build_zones(cfg, now=T0 + 120)
    assert (fixed.outcome, fixed.serial) == ("installed", int(T0) + 120)


def test_a_failed_reload_is_reported_and_retried(tmp_path: Path) -> None:
    cfg = rpz_config(tmp_path, stand_in_checker(tmp_path), recording_reload(tmp_path, fail=True))
    put_index(cfg, ["evil.example"])
    [report] = build_zones(cfg, now=T0)
    assert report.outcome == "installed" and report.reload_pending
    assert "connection refused" in (report.reload or "")
    assert any("was not told" in p for p in collect(cfg).problems)
    recording_reload(tmp_path)  # the server is back
    [again] = build_zones(cfg, now=T0 + 60)
    assert again.outcome == "unchanged" and not again.reload_pending
    assert reloads(tmp_path) == [f"reload {ZONE}", f"reload {ZONE}"]
    assert not any("RPZ" in p for p in collect(cfg).problems)


def test_without_the_checker_the_zone_is_installed_and_flagged(tmp_path: Path) -> None:
    cfg = rpz_config(tmp_path, tmp_path / "no-such-checkzone", None)
    put_index(cfg, ["evil.example"])
    [report] = build_zones(cfg, now=T0)
    assert (report.outcome, report.checked, report.reload) == ("installed", False, "not configured")
    assert any("without named-checkzone" in p for p in collect(cfg).problems)


def test_without_an_index_nothing_is_touched(tmp_path: Path) -> None:
    cfg = rpz_config(tmp_path, stand_in_checker(tmp_path), None)
    [report] = build_zones(cfg, now=T0)
    assert report.outcome == "failed" and "run fetch-iocs first" in (report.error or "")
    assert not cfg.rpz.zone_dir.exists() or not any(cfg.rpz.zone_dir.iterdir())


def test_zone_files_are_not_world_readable(cfg: Config) -> None:
    build_zones(cfg, now=T0)
    assert zone_path(cfg, cfg.rpz.zones[0]).stat().st_mode & 0o007 == 0


def test_one_zone_per_institution_with_its_exemptions(tmp_path: Path) -> None:
    zones = [
        {"name": "univ-a.rpz.example.org", "institution": "univ-a", "exemptions": ["evil.example"]},
        {"name": "univ-b.rpz.example.org", "institution": "univ-b"},
    ]
    cfg = rpz_config(tmp_path, stand_in_checker(tmp_path), None, zones=zones)
    put_index(cfg, ["evil.example", "worse.example"])
    a, b = build_zones(cfg, now=T0)
    assert (a.names, a.exempted, b.names) == (1, {"exemption": 1}, 2)
    text_a = zone_path(cfg, cfg.rpz.zones[0]).read_text()
    assert "evil.example" not in text_a.split("$TTL")[1] and "worse.example CNAME ." in text_a


NO_CHECKER = "named-checkzone not installed (Debian: bind9-utils)"


@pytest.mark.skipif(real_checkzone() is None, reason=NO_CHECKER)
def test_real_named_checkzone_accepts_every_kind_of_trigger(tmp_path: Path) -> None:
    zones = [{"name": ZONE, "exemptions": ["www.example.org", "198.51.100.53"]}]
    cfg = rpz_config(tmp_path, Path(str(real_checkzone())), None, zones=zones)
    put_index(
        cfg,
        [
            "example.org",
            "_srv.c2.example",
            ("192.0.2.7", "ip"),
            ("198.51.100.0/24", "cidr"),
            ("2001:db8::66", "ip"),
            ("2001:db8:bad::/48", "cidr"),
        ],
    )
    [report] = build_zones(cfg, now=T0)
    assert (report.outcome, report.checked) == ("installed", True), report.error
    assert "rpz-passthru." in zone_text(cfg)


@pytest.mark.skipif(real_checkzone() is None, reason=NO_CHECKER)
def test_real_named_checkzone_refuses_a_broken_zone(tmp_path: Path) -> None:
    cfg = rpz_config(tmp_path, Path(str(real_checkzone())), None)
    broken = tmp_path / "broken.zone"
    broken.write_text(
        f"$ORIGIN {ZONE}.\n$TTL 300\n@ SOA localhost. hostmaster.localhost. 1 3600 600 1209600 60\n"
        "@ NS localhost.\nevil.example CNAME .\nevil.example A 192.0.2.1\n"
    )
    with pytest.raises(ZoneRejectedError) as err:
        check_zone(cfg, ZONE, broken)
    assert "CNAME and other data" in str(err.value)
