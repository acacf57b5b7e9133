# SPDX-License-Identifier: Apache-2.0
"""correlate: match kinds, checkpoints, rotation, crash safety, dedup, context, CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from pdnssoc_agent.config import Config
from pdnssoc_agent.correlate import Matcher, run_correlate
from pdnssoc_agent.correlate.scan import scan_chunk
from pdnssoc_agent.dnslog import ReadStats
from pdnssoc_agent.errors import AgentError
from pdnssoc_agent.iocs.index import (
    FORMAT,
    VERSION,
    IndexHeader,
    IndicatorEntry,
    IocContext,
    write_index,
)
from pdnssoc_agent.state import read_pointer, step_lock
from tests.support.correlate import (
    CRASH_POINTS,
    SAMPLE,
    SAMPLE_HASHED,
    SAMPLE_MINIFIED,
    agent_dying_at,
    dns_line,
    latest,
    make_config,
    read_alerts,
    validator,
    write_lists,
)

AGENT = [sys.executable, "-m", "pdnssoc_agent"]

# ---------------------------------------------------------------------- matcher


@pytest.fixture
def matcher() -> Matcher:
    return Matcher(
        ["evil.example", "Bad.Example.ORG.", "münchen-evil.example"],
        ["203.0.113.7", "198.51.100.0/24", "2001:db8:bad::/48", "2001:db8::66", "10.0.0.0/8"],
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("evil.example", ("exact", "evil.example")),
        ("EVIL.Example", ("exact", "evil.example")),
        ("evil.example.", ("exact", "evil.example")),
        ("a.b.evil.example", ("subdomain", "evil.example")),
        ("WWW.bad.example.org", ("subdomain", "bad.example.org")),
        ("xn--mnchen-evil-thb.example", ("exact", "xn--mnchen-evil-thb.example")),
        ("notevil.example", None),
        ("evil.example.com", None),
        ("example", None),
    ],
)
def test_names(matcher: Matcher, name: str, expected: tuple[str, str] | None) -> None:
    assert matcher.match_name(name) == expected
    assert matcher.match_name(name) == expected  # cached answer is the same


def test_subdomains_can_be_turned_off() -> None:
    m = Matcher(["evil.example"], subdomains=False)
    assert m.match_name("evil.example") == ("exact", "evil.example")
    assert m.match_name("www.evil.example") is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.7", ("ip", "203.0.113.7")),
        ("203.0.113.8", None),
        ("198.51.100.20", ("cidr", "198.51.100.0/24")),
        ("10.200.1.1", ("cidr", "10.0.0.0/8")),
        ("2001:db8:bad::1", ("cidr", "2001:db8:bad::/48")),
        ("2001:DB8:0:0:0:0:0:66", ("ip", "2001:db8::66")),
        ("2001:db8::67", None),
        ("not-an-ip", None),
    ],
)
def test_addresses(matcher: Matcher, address: str, expected: tuple[str, str] | None) -> None:
    assert matcher.match_ip(address) == expected


def test_most_specific_network_wins() -> None:
    m = Matcher([], ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3"])
    assert m.match_ip("10.1.2.3") == ("ip", "10.1.2.3")
    assert m.match_ip("10.1.9.9") == ("cidr", "10.1.0.0/16")
    assert m.match_ip("10.9.9.9") == ("cidr", "10.0.0.0/8")


def test_invalid_indicators_are_reported_not_fatal() -> None:
    m = Matcher(["good.example", "bad domain"], ["300.1.1.1", "192.0.2.1"])
    assert m.invalid == ["bad domain", "300.1.1.1"]
    assert m.indicator_count == 2


# ---------------------------------------------------------------------- end to end


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # The collector's matches files as input (live_input: matches); the query
    # log, the default input, is tested in test_inputs.py.
    cfg = make_config(tmp_path / "data", live_input="matches")
    write_lists(cfg, ["evil.example.com", "bad-cdn.net"], ["2001:db8:bad::/48", "198.51.100.99"])
    cfg.correlation.input_dir.mkdir(parents=True)
    return cfg


def _feed(config: Config, name: str, data: bytes, *, append: bool = True) -> Path:
    path = config.correlation.input_dir / name
    with path.open("ab" if append else "wb") as fh:
        fh.write(data)
    return path


def test_recorded_sample_gives_one_alert_per_match(config: Config) -> None:
    _feed(config, "matches_domains.json", SAMPLE.read_bytes())
    result = run_correlate(config)
    alerts = read_alerts(config)
    assert result.stats.lines == 14
    assert result.alerts == len(alerts) == 5
    by_how = {a["match"]["how"]: a for a in alerts}
    assert set(by_how) == {"exact", "subdomain", "cname", "cidr", "ip"}
    exact = by_how["exact"]
    assert exact["query"] == {"name": "Evil.Example.COM", "type": "A", "rcode": "NOERROR"}
    assert exact["match"] == {
        "how": "exact",
        "indicator": "evil.example.com",
        "value": "Evil.Example.COM",
    }
    assert exact["count"] == 2  # the query and its response
    assert exact["sensor"] == "sensor-lab-1"
    assert exact["client"] == "192.0.2.11"
    assert exact["kind"] == "live"
    assert exact["misp"] == [] and exact["ioc_added"] is None
    assert exact["first_seen"] == "2025-11-27T10:40:02Z"
    assert exact["last_seen"] == "2025-11-27T10:40:02.001500Z"
    assert by_how["cname"]["match"]["value"] == "edge.bad-cdn.net"
    assert by_how["cidr"]["match"]["indicator"] == "2001:db8:bad::/48"
    assert by_how["ip"]["answers"] == [
        {"name": "mail.example.org", "type": "A", "data": "198.51.100.99", "ttl": 300}
    ]
    assert read_pointer(config.correlation.last_correlation_pointer_file) is not None
    # nothing new: nothing written, and the unchanged file is not even opened
    again = run_correlate(config)
    assert (again.alerts, again.stats.files, again.stats.lines) == (0, 0, 0)
    assert len(read_alerts(config)) == 5


def test_hashed_and_minified_inputs(config: Config) -> None:
    _feed(config, "hashed.json", SAMPLE_HASHED.read_bytes())
    (config.correlation.input_dir / "old").mkdir()
    (config.correlation.input_dir / "old" / "q.json.gz_minified").write_bytes(
        SAMPLE_MINIFIED.read_bytes()
    )
    run_correlate(config)
    alerts = read_alerts(config)
    hashed = [a for a in alerts if a["sensor"] == "sensor-lab-hashed"]
    mini = [a for a in alerts if a["source"]["file"].endswith("gz_minified")]
    assert len(hashed) == 5 and len(mini) == 5
    assert all(len(a["client"]) == 40 for a in hashed)
    assert all(a["query"]["type"] == "" for a in mini)


def test_cnames_can_be_turned_off(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, match_cnames=False)
    write_lists(cfg, ["bad-cdn.net"], ["192.0.2.99"])
    run_correlate(cfg, [SAMPLE])
    assert read_alerts(cfg) == []


def test_growing_file_and_partial_line_count_once(config: Config) -> None:
    line1 = dns_line("evil.example.com", client="192.0.2.1")
    line2 = dns_line("evil.example.com", client="192.0.2.2")
    _feed(config, "m.json", line1 + line2[:30])
    assert run_correlate(config).alerts == 1
    _feed(config, "m.json", line2[30:])
    assert run_correlate(config).alerts == 1
    assert run_correlate(config).alerts == 0
    assert sorted(a["client"] for a in read_alerts(config)) == ["192.0.2.1", "192.0.2.2"]
    assert (config.correlation.input_dir / "m.json").read_bytes() == line1 + line2  # untouched


def test_rotation_mid_read_rename_and_compress(config: Config) -> None:
    """The collector renames the file, starts a new one, later gzips the old one."""
    lines = [dns_line("evil.example.com", client=f"192.0.2.{i}") for i in range(1, 7)]
    live = _feed(config, "matches_domains.json", lines[0] + lines[1] + lines[2][:40])
    assert run_correlate(config).alerts == 2
    # the collector finishes the line, rotates, and writes to a new file
    _feed(config, "matches_domains.json", lines[2][40:] + lines[3])
    rotated = live.with_name("matches_domains-1764240000000000000.json")
    live.rename(rotated)
    _feed(config, "matches_domains.json", lines[4])
    assert run_correlate(config).alerts == 3
    # compression: the .gz replaces the rotated plain file
    gz = rotated.with_name(rotated.name + ".gz")
    gz.write_bytes(gzip.compress(rotated.read_bytes()))
    rotated.unlink()
    _feed(config, "matches_domains.json", lines[5])
    assert run_correlate(config).alerts == 1
    clients = Counter(a["client"] for a in read_alerts(config))
    assert clients == Counter(f"192.0.2.{i}" for i in range(1, 7))


def test_half_written_gzip_copy_does_not_rewind(config: Config) -> None:
    """The collector compresses a rotated file: for a while a partial .gz sits beside it."""
    body = b"".join(dns_line("evil.example.com", client=f"192.0.2.{i}") for i in range(1, 200))
    plain = _feed(config, "matches_domains-1.json", body)
    packed = gzip.compress(body)
    partial = config.correlation.input_dir / "matches_domains-1.json.gz"
    partial.write_bytes(packed[: len(packed) // 2])
    first = run_correlate(config)
    assert first.alerts == 199
    assert first.stats.truncated_gzip == 1
    plain.unlink()
    partial.write_bytes(packed)  # compression finished, original removed
    assert run_correlate(config).alerts == 0
    assert len(read_alerts(config)) == 199


def test_dedup_window_folds_repeats_into_revisions(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, dedup_window={"hours": 1})
    write_lists(cfg, ["evil.example"], ["192.0.2.250"])
    f = cfg.correlation.queries_file
    f.write_bytes(
        dns_line("evil.example", ts="2025-11-27T10:00:01Z")
        + dns_line("www.evil.example", ts="2025-11-27T10:00:02Z")
        + dns_line("evil.example", ts="2025-11-27T10:20:00Z")
        + dns_line("evil.example", ts="2025-11-27T10:30:00Z", client="192.0.2.77")
    )
    run_correlate(cfg)
    first = read_alerts(cfg)
    assert [(a["query"]["name"], a["count"], a["revision"]) for a in first] == [
        ("evil.example", 2, 1),
        ("www.evil.example", 1, 1),
        ("evil.example", 1, 1),
    ]
    with f.open("ab") as fh:
        fh.write(dns_line("evil.example", ts="2025-11-27T10:59:00Z"))  # same window
        fh.write(dns_line("evil.example", ts="2025-11-27T11:00:05Z"))  # next window
    run_correlate(cfg)
    alerts = read_alerts(cfg)
    assert len(alerts) == 5
    update, fresh = alerts[3], alerts[4]
    assert update["id"] == first[0]["id"]
    assert (update["revision"], update["count"]) == (2, 3)
    assert update["first_seen"] == "2025-11-27T10:00:01Z"
    assert update["last_seen"] == "2025-11-27T10:59:00Z"
    assert fresh["id"] not in {a["id"] for a in first}
    assert (fresh["revision"], fresh["count"]) == (1, 1)


def test_misp_context_from_the_index(config: Config) -> None:
    ctx = IocContext(
        server="misp-a",
        event_id="42",
        event_uuid="5f0c1a2b-0000-4000-8000-000000000042",
        event_info="Phishing wave",
        event_url="https://misp-a.example/events/view/42",
        org="CERT-X",
        tags=("tlp:amber", "malware:emotet"),
        attribute_uuid="6a0c1a2b-0000-4000-8000-000000000001",
        attribute_type="domain",
        category="Network activity",
        comment="C2",
        timestamp=1764000000,
    )
    write_index(
        config.correlation.ioc_index_file,
        IndexHeader(FORMAT, VERSION, 1764000000, {"misp-a": "https://misp-a.example"}),
        [
            IndicatorEntry("evil.example.com", "domain", 1764100000, 1764000000, [ctx]),
            IndicatorEntry("bad-cdn.net", "domain", 1764100000, 1764000000, []),
        ],
    )
    _feed(config, "m.json", SAMPLE.read_bytes())
    run_correlate(config)
    alerts = {a["match"]["how"]: a for a in read_alerts(config)}
    misp = alerts["exact"]["misp"]
    assert len(misp) == 1
    assert misp[0]["event_url"] == "https://misp-a.example/events/view/42"
    assert misp[0]["tlp"] == "tlp:amber"
    assert misp[0]["tags"] == ["tlp:amber", "malware:emotet"]
    assert alerts["exact"]["ioc_added"] == "2025-11-25T19:46:40Z"
    assert alerts["ip"]["misp"] == [] and alerts["ip"]["ioc_added"] is None


def test_cli_list_files_replace_the_configured_ones(config: Config, tmp_path: Path) -> None:
    other = tmp_path / "extra.txt"
    other.write_text("example.org\n")
    run_correlate(config, [SAMPLE], domain_files=[other])
    assert {a["match"]["indicator"] for a in read_alerts(config)} == {"example.org"}


def test_missing_lists_and_paths_are_clear_errors(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    with pytest.raises(AgentError, match="no indicator list found"):
        run_correlate(cfg, [SAMPLE])
    write_lists(cfg, ["evil.example"], [])
    with pytest.raises(AgentError, match=r"no such file or directory: .*nope"):
        run_correlate(cfg, [tmp_path / "nope"])


# ---------------------------------------------------------------------- crash safety


def _write_yaml(cfg_dir: Path, data_dir: Path) -> Path:
    path = cfg_dir / "agent.yml"
    path.write_text(f"data_dir: {data_dir}\ncorrelation:\n  dedup_window: {{hours: 1}}\n")
    return path


def _agent(config_file: Path, *args: str, crash_at: str | None = None) -> int:
    agent = agent_dying_at(crash_at) if crash_at else AGENT
    proc = subprocess.run([*agent, "-c", str(config_file), *args], capture_output=True, check=False)
    return proc.returncode


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_between_alert_write_and_checkpoint(tmp_path: Path, point: str) -> None:
    data = tmp_path / "data"
    cfg_file = _write_yaml(tmp_path, data)
    cfg = make_config(data, dedup_window={"hours": 1})
    write_lists(cfg, ["evil.example.com", "bad-cdn.net"], ["2001:db8:bad::/48", "198.51.100.99"])
    f = cfg.correlation.queries_file  # the default input: the collector's query log
    f.write_bytes(SAMPLE.read_bytes())
    assert _agent(cfg_file, "correlate", crash_at=point) == 77
    assert _agent(cfg_file, "correlate") == 0
    # a repeat of a known alert in the same window, then another crash and recovery
    repeat = dns_line(
        "evil.example.com", client="192.0.2.11", sensor="sensor-lab-1", ts="2025-11-27T10:41:00Z"
    )
    with f.open("ab") as fh:
        fh.write(repeat)
    assert _agent(cfg_file, "correlate", crash_at=point) == 77
    assert _agent(cfg_file, "correlate") == 0
    assert _agent(cfg_file, "correlate") == 0
    alerts = read_alerts(cfg)
    keys = Counter((a["id"], a["revision"]) for a in alerts)
    assert all(n == 1 for n in keys.values()), keys
    assert len(latest(alerts)) == 5
    exact = next(a for a in latest(alerts).values() if a["match"]["how"] == "exact")
    assert (exact["revision"], exact["count"]) == (2, 3)
    state = json.loads((cfg.correlation.state_dir / "correlate.state.json").read_text())
    assert state["pending"] is None


# ---------------------------------------------------------------------- CLI


def test_cli_exit_codes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg_file = _write_yaml(tmp_path, data)
    cfg = make_config(data)
    assert _agent(cfg_file, "correlate", str(SAMPLE)) == 1  # no indicator lists yet
    write_lists(cfg, ["evil.example.com"], ["192.0.2.99"])
    assert _agent(cfg_file, "correlate", str(tmp_path / "missing")) == 2
    assert _agent(tmp_path / "nope.yml", "correlate") == 3
    assert _agent(cfg_file, "correlate", str(SAMPLE)) == 0
    assert len(read_alerts(cfg)) == 2
    with step_lock(cfg.correlation.state_dir, "correlate"):
        assert _agent(cfg_file, "correlate", str(SAMPLE)) == 6
    assert _agent(cfg_file, "retro", str(SAMPLE)) == 0
    bad_state = cfg.correlation.state_dir / "correlate.state.json"
    bad_state.write_text("{garbage")
    assert _agent(cfg_file, "correlate", str(SAMPLE)) == 1


def test_alert_state_is_pruned_by_the_data_clock(config: Config) -> None:
    _feed(config, "m.json", dns_line("evil.example.com", ts="2025-11-20T10:00:00Z"))
    _feed(config, "m.json", dns_line("evil.example.com", ts="2025-11-27T10:00:00Z"))
    run_correlate(config)
    run_correlate(config, now=datetime.now(UTC) + timedelta(days=2))
    state = json.loads((config.correlation.state_dir / "correlate.state.json").read_text())
    # once not written for a day: the week-old bucket is forgotten, the newest
    # kept (whatever the wall clock says)
    assert len(state["alerts"]) == 1
    assert config.correlation.dedup_window == timedelta(hours=1)


def test_the_schema_rejects_what_the_contract_forbids(config: Config) -> None:
    _feed(config, "m.json", SAMPLE.read_bytes())
    run_correlate(config)
    good = read_alerts(config)[0]
    check = validator()
    check.validate(good)
    for field, value in [
        ("kind", "later"),
        ("id", "XYZ"),
        ("revision", 0),
        ("first_seen", "2025-11-27 10:40:02"),
        ("match", {**good["match"], "how": "fuzzy"}),
        ("extra", 1),
    ]:
        with pytest.raises(jsonschema.ValidationError):
            check.validate({**good, field: value})
    with pytest.raises(jsonschema.ValidationError):
        check.validate({k: v for k, v in good.items() if k != "misp"})


@pytest.mark.parametrize(
    "networks",
    [
        ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.0.2.7"],  # octet-aligned: text path
        ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.0.2.7", "172.16.0.0/12"],  # int path
    ],
)
def test_answers_in_the_scan_loop(networks: list[str]) -> None:
    m = Matcher(["evil.example"], [*networks, "2001:db8:bad::/48"])
    answers = {
        "10.1.2.3": ("cidr", "10.1.2.0/24"),
        "10.1.9.9": ("cidr", "10.1.0.0/16"),
        "10.9.9.9": ("cidr", "10.0.0.0/8"),
        "192.0.2.7": ("ip", "192.0.2.7"),
        "11.1.2.3": None,
        "2001:db8:bad:1::5": ("cidr", "2001:db8:bad::/48"),
        "2001:db8:beef::5": None,
    }
    data = b"".join(
        dns_line("benign.example", [("benign.example", "AAAA" if ":" in a else "A", a)])
        for a in answers
    ) + dns_line("x.example", [("x.example", "CNAME", "cdn.EVIL.example."), ("x", "MX", "y")])
    stats = ReadStats()
    got: list[list[tuple[str, str, str]]] = []
    scan_chunk(data, m, stats, lambda rec, hits: got.append(hits), "t")
    expected = [[(how, ind, a)] for a, hit in answers.items() if hit for how, ind in [hit]]
    expected.append([("cname", "evil.example", "cdn.EVIL.example.")])
    assert got == expected
    assert stats.lines == len(answers) + 1
