# SPDX-License-Identifier: Apache-2.0
"""retro reads the history store for what it holds, with the raw scan's alert lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.correlate import run_correlate, run_retro
from pdnssoc_agent.errors import NoInputError
from tests.support.correlate import dns_line, read_alerts, write_lists

NOW = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)
DOMAINS = ["evil.example.com", "bad-cdn.net", "Mixed.Example.ORG"]
NETS = ["198.51.100.0/24", "2001:db8:bad::/48", "203.0.113.7"]


def _config(root: Path, *, store: bool) -> Config:
    return parse_config({"data_dir": str(root), "history": {"enabled": store}})


def _log(hour: int, extra: int = 0) -> bytes:
    """Replies of one hour: every way of matching, repeats, two sensors, noise."""
    lines = []
    for rep in range(3):
        ts = f"2025-11-27T{hour:02d}:{10 + rep:02d}:{extra:02d}.{rep}12345678Z"
        for sensor, client in (("inst-a", "10.1.0.0"), ("inst-b", "10.2.0.0")):
            kw: dict[str, Any] = {"ts": ts, "sensor": sensor, "client": client}
            lines += [
                dns_line("evil.example.com", [("evil.example.com", "A", "192.0.2.1")], **kw),
                dns_line("WWW.Evil.Example.com.", [("WWW.Evil.Example.com.", "A", "192.0.2.2")],
                         **kw),
                dns_line("static.shop.example", [
                    ("static.shop.example", "CNAME", "edge7.bad-cdn.net"),
                    ("edge7.bad-cdn.net", "CNAME", "x.other.example"),
                    ("x.other.example", "A", "192.0.2.77")], **kw),
                dns_line("cdn.example.net", [("cdn.example.net", "A", "198.51.100.23"),
                                             ("cdn.example.net", "A", "192.0.2.9")], **kw),
                dns_line("v6.example.net", [("v6.example.net", "AAAA", "2001:db8:bad:1::5")],
                         qtype="AAAA", **kw),
                dns_line("exact-ip.example.net", [("exact-ip.example.net", "A", "203.0.113.7")],
                         **kw),
                dns_line("mixed.example.org", [], rcode="NXDOMAIN", **kw),
                dns_line("noise.example.net", [("noise.example.net", "A", "192.0.2.200")], **kw),
            ]  # fmt: skip
    return b"".join(lines)


def _normal(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alert lines without what the store does not keep (answer TTLs, the source file)."""
    out = []
    for alert in alerts:
        a = dict(alert)
        a["answers"] = [{k: v for k, v in x.items() if k != "ttl"} for x in a["answers"]]
        a.pop("source")
        out.append(a)
    return sorted(out, key=lambda a: (a["id"], a["revision"]))


def _run(root: Path, *, store: bool) -> tuple[Config, int, list[dict[str, Any]]]:
    cfg = _config(root, store=store)
    write_lists(cfg, ["unrelated.example"], [])
    log_file = cfg.correlation.queries_file
    log_file.write_bytes(_log(9) + _log(10))
    run_correlate(cfg, now=NOW)  # fills the store (when on)
    with log_file.open("ab") as fh:  # not correlated yet: only the raw log has these
        fh.write(_log(11) + _log(10, extra=30))
    write_lists(cfg, [*DOMAINS, "unrelated.example"], NETS)
    result = run_retro(cfg, now=NOW, progress=None)
    retro = [a for a in read_alerts(cfg) if a["kind"] == "retro"]
    return cfg, result.stats.lines, retro


def test_retro_from_the_store_writes_the_raw_scans_alert_lines(tmp_path: Path) -> None:
    cfg, raw_lines_read, from_store = _run(tmp_path / "store", store=True)
    _, all_lines, raw = _run(tmp_path / "raw", store=False)
    assert all_lines == 4 * 3 * 2 * 8
    assert raw_lines_read == 2 * 3 * 2 * 8  # only the part the store does not hold
    hows = {a["match"]["how"] for a in raw}
    assert hows == {"exact", "subdomain", "cname", "ip", "cidr"}
    assert {a["match"]["indicator"] for a in raw} == {
        "evil.example.com", "bad-cdn.net", "mixed.example.org", "198.51.100.0/24",
        "2001:db8:bad::/48", "203.0.113.7",
    }  # fmt: skip
    assert any(a["count"] == 6 for a in raw)  # 3 replies from the store + 3 raw, one window
    assert _normal(from_store) == _normal(raw)
    # what differs, by construction: the source names the store for rows found there
    sources = {a["source"]["file"] for a in from_store}
    assert sources == {str(cfg.history.dir), str(cfg.correlation.queries_file)}
    by_id = {a["id"]: a for a in raw}
    for a in from_store:
        if a["source"]["file"] == str(cfg.history.dir):
            assert all(x["ttl"] == 0 for x in a["answers"])
        else:
            assert a["answers"] == by_id[a["id"]]["answers"]


def test_retro_of_given_paths_does_not_read_the_store(tmp_path: Path) -> None:
    cfg = _config(tmp_path, store=True)
    write_lists(cfg, ["unrelated.example"], [])
    cfg.correlation.queries_file.write_bytes(_log(9))
    run_correlate(cfg, now=NOW)
    write_lists(cfg, DOMAINS, NETS)
    result = run_retro(cfg, [cfg.correlation.queries_file], now=NOW, progress=None)
    assert result.stats.lines == 3 * 2 * 8
    sources = {a["source"]["file"] for a in read_alerts(cfg)}
    assert sources == {str(cfg.correlation.queries_file)}


def test_a_damaged_store_falls_back_to_the_raw_scan(tmp_path: Path) -> None:
    cfg = _config(tmp_path, store=True)
    write_lists(cfg, ["unrelated.example"], [])
    cfg.correlation.queries_file.write_bytes(_log(9))
    run_correlate(cfg, now=NOW)
    for seg in cfg.history.dir.glob("day=*/*.parquet"):
        seg.write_bytes(seg.read_bytes()[:100])
    write_lists(cfg, DOMAINS, NETS)
    result = run_retro(cfg, now=NOW, progress=None)
    assert result.stats.lines == 3 * 2 * 8
    assert result.alerts > 0
    assert {a["source"]["file"] for a in read_alerts(cfg)} == {str(cfg.correlation.queries_file)}


def test_a_store_without_any_dns_log_is_searched_and_the_run_succeeds(tmp_path: Path) -> None:
    """An analyst's copy of the store, loaded with `history import` (or a server
    whose raw logs retention removed): retro reads the store and exits 0; with
    neither a store nor a log it still says there was nothing to search."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "old.json").write_bytes(_log(9))
    cfg = _config(tmp_path / "copy", store=True)
    write_lists(cfg, DOMAINS, NETS)
    assert main(["-c", str(_file_config(cfg)), "history", "import", str(logs)]) == 0
    assert not cfg.correlation.queries_file.exists()
    run_retro(cfg, now=NOW, progress=None)
    alerts = read_alerts(cfg)
    assert {a["match"]["how"] for a in alerts} == {"exact", "subdomain", "cname", "ip", "cidr"}
    assert {a["source"]["file"] for a in alerts} == {str(cfg.history.dir)}

    empty = _config(tmp_path / "empty", store=False)
    write_lists(empty, DOMAINS, NETS)
    with pytest.raises(NoInputError, match="no DNS log is searched"):
        run_retro(empty, now=NOW, progress=None)


def _file_config(cfg: Config) -> Path:
    path = cfg.data_dir / "agent.yml"
    path.write_text(f"data_dir: {cfg.data_dir}\n")
    return path
