# SPDX-License-Identifier: Apache-2.0
"""``hunt`` from the command line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.history import HistoryStore
from tests.support.correlate import dns_line
from tests.support.history import add_lines


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Config, Path]:
    path = tmp_path / "agent.yml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\n")
    return parse_config({"data_dir": str(tmp_path / "data")}), path


def _fill(cfg: Config, tmp_path: Path) -> None:
    """The store, filled with :func:`_hunt_log`'s replies."""
    with HistoryStore(cfg.history.dir).writer() as w:
        add_lines(w, gzip.decompress(_hunt_log(tmp_path).read_bytes()))
        w.commit()


def _hunt_log(tmp_path: Path) -> Path:
    lines = []
    for hour, sensor in ((8, "inst-a"), (9, "inst-a"), (9, "inst-b"), (12, "inst-b")):
        ts = f"2025-11-27T{hour:02d}:05:00Z"
        kw = {"ts": ts, "sensor": sensor, "client": "10.9.0.0"}
        lines += [
            dns_line("login.Phish.example.", [("login.phish.example", "A", "192.0.2.10")], **kw),
            dns_line("img.shop.example", [("img.shop.example", "CNAME", "e1.phish.example"),
                                          ("e1.phish.example", "A", "198.51.100.4")], **kw),
            dns_line("v6.example.net", [("v6.example.net", "AAAA", "2001:db8::7")],
                     qtype="AAAA", **kw),
            dns_line("quiet.example.net", [("quiet.example.net", "A", "192.0.2.99")], **kw),
        ]  # fmt: skip
    path = tmp_path / "old.json.gz"
    path.write_bytes(gzip.compress(b"".join(lines)))
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_hunt_finds_domains_subdomains_cnames_addresses_and_networks(
    setup: tuple[Config, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, cfg_file = setup
    _fill(cfg, tmp_path)
    c = str(cfg_file)
    code, out, _ = _run(capsys, "-c", c, "hunt", "phish.example", "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    # two sensors x (a subdomain, a CNAME into it); hours of the same reply merged
    assert {(r["query"]["name"], r["matches"][0]["how"]) for r in rows} == {
        ("login.Phish.example.", "subdomain"), ("img.shop.example", "cname")
    }  # fmt: skip
    a = next(r for r in rows if r["sensor"] == "inst-a" and r["matches"][0]["how"] == "cname")
    assert (a["count"], a["first_seen"], a["last_seen"]) == (
        2, "2025-11-27T08:05:00Z", "2025-11-27T09:05:00Z"
    )  # fmt: skip
    assert a["cnames"] == ["e1.phish.example"] and a["addresses"] == ["198.51.100.4"]
    assert a["client"] == "10.9.0.0"

    code, out, _ = _run(capsys, "-c", c, "hunt", "198.51.100.0/24", "2001:db8::7",
                        "--sensor", "inst-b")  # fmt: skip
    header, *lines = out.splitlines()
    assert header.startswith("first_seen\tlast_seen\tcount\tsensor\tclient\tquery\tanswer")
    assert len(lines) == 2 and all("\tinst-b\t" in line for line in lines)
    assert any("cidr 198.51.100.0/24 (198.51.100.4)" in line for line in lines)
    assert any("v6.example.net AAAA\t2001:db8::7\tip 2001:db8::7" in line for line in lines)

    code, out, _ = _run(capsys, "-c", c, "hunt", "phish.example", "--until",
                        "2025-11-27T10:00:00Z", "--since", "90m", "--format", "json")  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["first_seen"] for r in rows} == {"2025-11-27T09:05:00Z"}
    assert len(rows) == 4  # 09:00 only: inst-a and inst-b, login and img


def test_hunt_usage_errors_name_the_bad_value(
    setup: tuple[Config, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, cfg_file = setup
    c = str(cfg_file)
    with pytest.raises(SystemExit) as exc:
        main(["-c", c, "hunt", "evil.example", "--since", "a week"])
    assert exc.value.code == 2
    assert "'a week' is not a duration" in capsys.readouterr().err
    off = tmp_path / "off.yml"
    off.write_text(f"data_dir: {tmp_path / 'data'}\nhistory: {{enabled: false}}\n")
    with pytest.raises(SystemExit) as exc:
        main(["-c", str(off), "hunt", "evil.example"])
    assert exc.value.code == 1
    assert "no history store at" in capsys.readouterr().err
    _fill(cfg, tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["-c", c, "hunt", "evil.example", "not a domain!", "10.0.0.0/33"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "'not a domain!'" in err and "'10.0.0.0/33'" in err
    assert "'evil.example'" not in err


def test_hunt_reads_what_the_store_does_not_hold_yet_from_the_query_log(
    setup: tuple[Config, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon commits the store every history.commit_every: until then the newest
    replies are only in the query log, and hunt finds them there, once each."""
    cfg, cfg_file = setup
    c = str(cfg_file)
    log = cfg.correlation.queries_file
    log.parent.mkdir(parents=True, exist_ok=True)
    held = dns_line("login.phish.example", [("login.phish.example", "A", "192.0.2.10")],
                    ts="2025-11-27T08:05:00Z", sensor="inst-a", client="10.9.0.0")  # fmt: skip
    new = dns_line("login.phish.example", [("login.phish.example", "A", "192.0.2.10")],
                   ts="2025-11-27T08:07:00Z", sensor="inst-a", client="10.9.0.0")  # fmt: skip
    other = dns_line("c2.phish.example", [("c2.phish.example", "A", "192.0.2.66")],
                     ts="2025-11-27T08:09:00Z", sensor="inst-b", client="10.8.0.0")  # fmt: skip
    log.write_bytes(held + new + other)
    # no store yet (the daemon's first commit is to come): the log answers alone
    code, out, _ = _run(capsys, "-c", c, "hunt", "phish.example", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert sorted((r["query"]["name"], r["count"]) for r in rows) == [
        ("c2.phish.example", 1), ("login.phish.example", 2)]  # fmt: skip
    # the store holds the first line: it is counted once, from the store
    from pdnssoc_agent.correlate.inputs import fingerprint
    from pdnssoc_agent.dnslog import ReadStats
    from pdnssoc_agent.history import Source, decode_chunk

    with HistoryStore(cfg.history.dir).writer() as w:
        w.add(decode_chunk(held, ReadStats(), "q"), Source(fingerprint(log.read_bytes()[:1024]),
                                                          0, len(held), str(log)))  # fmt: skip
        w.commit()
    code, out, _ = _run(capsys, "-c", c, "hunt", "login.phish.example", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["count"], r["first_seen"], r["last_seen"]) for r in rows] == [
        (2, "2025-11-27T08:05:00Z", "2025-11-27T08:07:00Z")]  # fmt: skip
    # the store holds all of it: nothing is read from the log
    with HistoryStore(cfg.history.dir).writer() as w:
        w.add(decode_chunk(new + other, ReadStats(), "q"),
              Source(fingerprint(log.read_bytes()[:1024]), len(held), len(held + new + other),
                     str(log)))  # fmt: skip
        w.commit()
    code, out, _ = _run(capsys, "-c", c, "hunt", "192.0.2.66", "login.phish.example",
                        "--format", "json")  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted((r["query"]["name"], r["count"]) for r in rows) == [
        ("c2.phish.example", 1), ("login.phish.example", 2)]  # fmt: skip


def test_hunt_warns_of_query_log_lines_it_could_not_read(
    setup: tuple[Config, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged line in the part of the query log the store does not hold yet is
    skipped with a warning naming the file and byte; the other lines still answer."""
    cfg, cfg_file = setup
    log = cfg.correlation.queries_file
    log.parent.mkdir(parents=True, exist_ok=True)
    good = dns_line("c2.phish.example", [("c2.phish.example", "A", "192.0.2.66")],
                    ts="2025-11-27T08:09:00Z", sensor="inst-b", client="10.8.0.0")  # fmt: skip
    # a reply without a query name is read, not damaged: nothing to say of it
    log.write_bytes(good + b'{"dns": {"qname": "", "rcode": "FORMERR"}}\n')
    code, out, err = _run(capsys, "-c", str(cfg_file), "hunt", "phish.example")
    assert (code, err) == (0, "")
    assert "c2.phish.example" in out
    log.write_bytes(good + b'{"dns": {"qname": "cut.phish.exa\n' + good + b'{"dns": {}}\n')
    code, out, err = _run(capsys, "-c", str(cfg_file), "hunt", "phish.example",
                          "--format", "json")  # fmt: skip
    assert code == 0
    assert [json.loads(line)["count"] for line in out.splitlines()] == [2]
    warnings = err.splitlines()
    assert warnings[0] == (
        "warning: skipped part of the query log the store does not hold yet: 1 malformed"
    )
    assert warnings[1] == f"warning: {log}: byte {len(good)}: malformed"
