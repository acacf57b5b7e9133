# SPDX-License-Identifier: Apache-2.0
"""The history store on a real two-shard ClickHouse cluster gives what the embedded one gives.

Two clickhouse-server processes run on loopback as the shards of the cluster
``pdnssoc``; two pDNSSOC servers (data directories) each fill their own shard
through correlate's feed, and a third fills the embedded store with the same
lines. retro's alert lines and hunt's rows must be the same from both.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pdnssoc_agent._cli import main
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.correlate import run_correlate, run_retro
from pdnssoc_agent.dnslog import ReadStats
from pdnssoc_agent.health import collect
from pdnssoc_agent.history import Batch, decode_chunk, hunt
from pdnssoc_agent.history.backend import open_store
from pdnssoc_agent.history.clickhouse import Client, ClusterStore
from pdnssoc_agent.history.clickhouse.from_store import import_store, is_store
from pdnssoc_agent.history.clickhouse.schema import history_rows
from pdnssoc_agent.history.clickhouse.search import DIRECT_MAX
from pdnssoc_agent.history.importer import import_files
from pdnssoc_agent.history.manifest import StoreError
from pdnssoc_agent.history.query import Row
from pdnssoc_agent.retention import run_retention
from pdnssoc_agent.retention.guard import Disk
from pdnssoc_agent.retention.store_hold import NOT_HELD, UNREADABLE, store_hold
from tests.support import clickhouse as ch
from tests.support.correlate import dns_line

NOW = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)
DOMAINS = ["evil.example.com", "bad-cdn.net", "Mixed.Example.ORG"]
NETS = ["198.51.100.0/24", "2001:db8:bad::/48", "203.0.113.7"]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ch.Node]]:
    binary = ch.server_binary()
    if binary is None:
        pytest.skip("clickhouse-server is not installed (apt-packages.txt lists it: make deps)")
    with ch.cluster(tmp_path_factory.mktemp("clickhouse"), shards=2, binary=binary) as running:
        yield running


@pytest.fixture
def db(nodes: list[ch.Node], request: pytest.FixtureRequest) -> str:
    """A database of its own for each test (the cluster is shared by the module), with
    its tables on every shard, as the role creates them."""
    name = "t_" + request.node.name.replace("[", "_").replace("]", "_").replace("-", "_")[:40]
    for node in nodes:
        ClusterStore(Client(node.url, "pdnssoc", ch.PASSWORD, database=name)).create()
    return name


def _log(sensor: str, client: str, hour: int, extra: int = 0) -> bytes:
    """Replies of one hour: every way of matching, repeats, case, noise."""
    lines = []
    for rep in range(3):
        kw: dict[str, Any] = {"ts": f"2025-11-27T{hour:02d}:{10 + rep:02d}:{extra:02d}."
                              f"{rep}12345678Z", "sensor": sensor, "client": client}  # fmt: skip
        lines += [
            dns_line("evil.example.com", [("evil.example.com", "A", "192.0.2.1")], **kw),
            dns_line("WWW.Evil.Example.com.", [("WWW.Evil.Example.com.", "A", "192.0.2.2")], **kw),
            dns_line("static.shop.example", [
                ("static.shop.example", "CNAME", "edge7.Bad-CDN.net."),
                ("edge7.bad-cdn.net", "CNAME", "x.other.example"),
                ("x.other.example", "A", "192.0.2.77")], **kw),
            dns_line("cdn.example.net", [("cdn.example.net", "A", "198.51.100.23"),
                                         ("cdn.example.net", "A", "192.0.2.9")], **kw),
            dns_line("v6.example.net", [("v6.example.net", "AAAA", "2001:db8:bad:1::5")],
                     qtype="AAAA", **kw),
            dns_line("exact-ip.example.net", [("exact-ip.example.net", "A", "203.0.113.7")], **kw),
            dns_line("mixed.example.org", [], rcode="NXDOMAIN", **kw),
            dns_line("notevil.example.com", [("notevil.example.com", "A", "192.0.2.3")], **kw),
            dns_line("noise.example.net", [("noise.example.net", "A", "192.0.2.200")], **kw),
        ]  # fmt: skip
    return b"".join(lines)


def _config(root: Path, node: ch.Node | None, db: str = "pdnssoc") -> Config:
    history: dict[str, Any] = {}
    if node is not None:
        secret = root / "clickhouse.key"
        root.mkdir(parents=True, exist_ok=True)
        secret.write_text(ch.PASSWORD + "\n")
        secret.chmod(0o600)
        history = {
            "engine": "clickhouse",
            "clickhouse": {"url": node.url, "password_file": str(secret), "database": db},
        }
    return parse_config({"data_dir": str(root), "history": history})  # fmt: skip


def _lists(cfg: Config, domains: list[str], nets: list[str]) -> None:
    corr = cfg.correlation
    corr.malicious_domains_file.parent.mkdir(parents=True, exist_ok=True)
    corr.malicious_domains_file.write_text("".join(d + "\n" for d in domains))
    corr.malicious_ips_file.write_text("".join(i + "\n" for i in nets))


def _alerts(cfg: Config) -> list[dict[str, Any]]:
    path = cfg.correlation.output_dir / "matches.json"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def _normal(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Retro's alert lines without what names their source (a file, the store, the cluster)."""
    out = []
    for alert in alerts:
        if alert["kind"] != "retro":
            continue
        a = dict(alert)
        a["answers"] = [{k: v for k, v in x.items() if k != "ttl"} for x in a["answers"]]
        a.pop("source")
        out.append(a)
    return sorted(out, key=lambda a: (a["id"], a["revision"]))


A = ("inst-a", "10.1.0.0")
B = ("inst-b", "10.2.0.0")


def _servers(tmp_path: Path, nodes: list[ch.Node], db: str) -> tuple[Config, Config, Config]:
    """Two servers, each filling its shard, and one embedded store with all their lines.

    Each log holds two hours correlated (filled into the stores) and a tail
    written after correlate ran, which only the raw scan can answer.
    """
    a = _config(tmp_path / "server-a", nodes[0], db)
    b = _config(tmp_path / "server-b", nodes[1], db)
    emb = _config(tmp_path / "embedded", None)
    log_a, log_b = _log(*A, 9) + _log(*A, 10), _log(*B, 9) + _log(*B, 12)
    for cfg, data in ((a, log_a), (b, log_b), (emb, log_a + log_b)):
        _lists(cfg, ["unrelated.example"], [])
        cfg.correlation.queries_file.parent.mkdir(parents=True, exist_ok=True)
        cfg.correlation.queries_file.write_bytes(data)
        run_correlate(cfg, now=NOW)
    tail = _log(*A, 11) + _log(*A, 10, extra=30)
    for cfg in (a, emb):
        with cfg.correlation.queries_file.open("ab") as fh:
            fh.write(tail)
    # more domains than search.DIRECT_MAX: retro's filter takes the set, hunt's the ranges
    more = [f"unrelated-{i}.example" for i in range(DIRECT_MAX)]
    for cfg in (a, b, emb):
        _lists(cfg, [*DOMAINS, *more], NETS)
    return a, b, emb


def test_retro_and_hunt_on_the_cluster_equal_the_embedded_store(
    nodes: list[ch.Node], db: str, tmp_path: Path
) -> None:
    a, b, emb = _servers(tmp_path, nodes, db)
    # each shard holds only its own server's replies: 2 hours x 3 repeats x 9 names
    for node in nodes:
        client = Client(node.url, "pdnssoc", ch.PASSWORD)
        got = client.rows(f"SELECT sum(count) AS n FROM {db}.history_local")  # noqa: S608
        assert got == [{"n": 2 * 3 * 9}]
    res_emb = run_retro(emb, now=NOW, progress=None)
    res_a = run_retro(a, now=NOW, progress=None)
    res_b = run_retro(b, now=NOW, progress=None)
    # only the tail was read raw, on a and the embedded store; b has no tail
    assert res_a.stats.lines == res_emb.stats.lines == 2 * 3 * 9
    assert res_b.stats.lines == 0
    from_a, from_b = _normal(_alerts(a)), _normal(_alerts(b))
    from_embedded = _normal(_alerts(emb))
    assert {x["match"]["how"] for x in from_embedded} == {"exact", "subdomain", "cname", "ip",
                                                           "cidr"}  # fmt: skip
    assert {x["sensor"] for x in from_embedded} == {"inst-a", "inst-b"}
    assert any(x["count"] == 6 for x in from_embedded)  # 3 stored + 3 raw in one window
    # each server alerts on its own sensors' replies (its shard), never on the
    # other's: together, once each, what the embedded store gives
    assert {x["sensor"] for x in from_a} == {"inst-a"}
    assert {x["sensor"] for x in from_b} == {"inst-b"}
    assert sorted(from_a + from_b, key=lambda x: (x["id"], x["revision"])) == from_embedded
    sources = {x["source"]["file"] for x in _alerts(a) if x["kind"] == "retro"}
    assert f"clickhouse:{nodes[0].url}{db}" in sources

    for values in (["evil.example.com"], ["EVIL.Example.COM."], ["bad-cdn.net"],
                   ["mixed.example.org"], ["203.0.113.7"], ["198.51.100.0/24"],
                   ["2001:db8:bad::/48"], ["192.0.2.0/24", "other.example"],
                   ["nothing.example"]):  # fmt: skip
        want = _rows(hunt(open_store(emb), values).rows)
        assert want or values == ["nothing.example"], values
        for cfg in (a, b):  # either node answers for the whole cluster
            assert _rows(hunt(open_store(cfg), values).rows) == want, values
    one = hunt(open_store(b), ["evil.example.com"], sensors=["inst-b"]).rows
    assert one
    assert one == [r for r in hunt(open_store(emb), ["evil.example.com"]).rows
                   if r.sensor == "inst-b"]  # fmt: skip
    late = int(datetime(2025, 11, 27, 12, tzinfo=UTC).timestamp()) * 1_000_000
    assert _rows(hunt(open_store(a), ["evil.example.com"], since_us=late).rows) == _rows(
        hunt(open_store(emb), ["evil.example.com"], since_us=late).rows
    )


def _rows(rows: list[Row]) -> list[tuple[Any, ...]]:
    return sorted(
        (r.sensor, r.client, r.qname, r.qtype, r.rcode, tuple(r.cnames), tuple(r.ips), r.count,
         r.first_us, r.last_us, tuple(r.hits))
        for r in rows
    )  # fmt: skip


def test_rows_of_a_batch_never_committed_are_not_counted(
    nodes: list[ch.Node], db: str, tmp_path: Path
) -> None:
    """A crash between the two INSERTs of a commit: the rows are there, the commit row
    is not. Searches ignore them, and the lines read again are counted once."""
    cfg = _config(tmp_path / "server", nodes[0], db)
    data = _log(*A, 9)
    cfg.correlation.queries_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.correlation.queries_file.write_bytes(data)
    _lists(cfg, ["unrelated.example"], [])
    store = ClusterStore.from_config(cfg)

    store.create()
    batch = Batch()
    batch.add(decode_chunk(data, ReadStats(), "x"))
    store.client.execute(  # what the crashed commit left: its rows only
        f"INSERT INTO {db}.history_local FORMAT RowBinary",
        b"".join(history_rows(batch.table(), "crashed-batch")),
    )
    assert hunt(store, ["evil.example.com"]).rows == []
    run_correlate(cfg, now=NOW)  # reads the lines again, into a new batch
    rows = hunt(store, ["evil.example.com"]).rows
    assert sum(r.count for r in rows) == 3 * 2  # 3 repeats, exact name and subdomain
    run_correlate(cfg, now=NOW)  # nothing new: nothing added
    assert sum(r.count for r in hunt(store, ["evil.example.com"]).rows) == 3 * 2


def test_an_unreachable_cluster_keeps_correlate_alerting_and_is_caught_up(
    nodes: list[ch.Node], db: str, tmp_path: Path
) -> None:

    (port,) = ch._free_ports(1)
    down = ch.Node(tmp_path / "down", port, port, port)
    cfg = _config(tmp_path / "server", down, db)
    data = _log(*A, 9)
    cfg.correlation.queries_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.correlation.queries_file.write_bytes(data)
    _lists(cfg, ["evil.example.com"], [])
    run_correlate(cfg, now=NOW)
    assert {x["kind"] for x in _alerts(cfg)} == {"live"}  # alerted without the store
    status = collect(cfg, now=NOW)
    assert status.history["problem"].startswith(f"ClickHouse at {down.url}")
    assert ch.PASSWORD not in json.dumps(status.history)

    up = _config(tmp_path / "server", nodes[0], db)  # the cluster is back
    assert collect(up, now=NOW).history["bytes_behind"] == len(data)
    run_correlate(up, now=NOW)
    assert collect(up, now=NOW).history["bytes_behind"] == 0
    assert sum(r.count for r in hunt(open_store(up), ["evil.example.com"]).rows) == 3 * 2


def test_credentials_travel_in_headers_and_a_wrong_password_is_named(
    nodes: list[ch.Node], tmp_path: Path
) -> None:
    wrong = Client(nodes[0].url, "pdnssoc", "not-the-password")
    with pytest.raises(Exception, match=r"ClickHouse at http://127\.0\.0\.1:\d+/ \(HTTP") as exc:
        wrong.execute("SELECT 1")
    assert "not-the-password" not in str(exc.value)
    assert Client(nodes[0].url, "pdnssoc", ch.PASSWORD).execute("SELECT 1") == b"1\n"
    log = (nodes[0].root / "log" / "server.log").read_text(errors="replace")
    assert ch.PASSWORD not in log


def test_history_import_loads_an_archive_into_the_cluster_once(
    nodes: list[ch.Node], db: str, tmp_path: Path
) -> None:

    cfg = _config(tmp_path / "server", nodes[1], db)
    archive = tmp_path / "old.json.gz"
    archive.write_bytes(gzip.compress(_log(*B, 7)))
    first = import_files(open_store(cfg), [archive])
    again = import_files(open_store(cfg), [archive])
    assert (first.replies, again.replies, again.held) == (3 * 9, 0, 1)
    assert sum(r.count for r in hunt(open_store(cfg), ["evil.example.com"]).rows) == 3 * 2


def test_retention_lets_an_archive_file_go_once_the_shard_holds_it(
    nodes: list[ch.Node], db: str, tmp_path: Path
) -> None:
    """Before: with the cluster, the store's hold read the (absent) manifest and kept
    every file correlate had read for ever."""
    (port,) = ch._free_ports(1)
    down = _config(tmp_path / "server", ch.Node(tmp_path / "down", port, port, port), db)
    up = _config(tmp_path / "server", nodes[0], db)
    log = up.correlation.queries_file
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(_log(*A, 9))
    _lists(up, ["unrelated.example"], [])
    run_correlate(down, now=NOW)  # read by correlate, not in the store
    st = log.stat()
    for cfg, why in ((down, UNREADABLE), (up, NOT_HELD)):
        hold = store_hold(cfg, NOW)
        assert hold is not None
        assert hold.reason(log, st.st_mtime, st.st_size) == why
    run_correlate(up, now=NOW)  # the shard catches up
    hold = store_hold(up, NOW)
    assert hold is not None
    assert hold.reason(log, st.st_mtime, st.st_size) is None


def test_retention_drops_each_shards_days_older_than_its_age(
    nodes: list[ch.Node], db: str, tmp_path: Path
) -> None:
    """Before: retention left the cluster's days alone, whatever retention.history said."""

    def server(name: str, node: ch.Node) -> Config:
        base = _config(tmp_path / name, node, db)
        return parse_config(
            {
                "data_dir": str(base.data_dir),
                "history": {
                    "engine": "clickhouse",
                    "clickhouse": {
                        "url": node.url,
                        "password_file": str(base.data_dir / "clickhouse.key"),
                        "database": db,
                    },
                },
                "retention": {"history": {"days": 30}, "archive": {"days": 30}},
            }
        )

    servers = [server("server-a", nodes[0]), server("server-b", nodes[1])]
    for cfg, who in zip(servers, (A, B), strict=True):
        old = tmp_path / f"{who[0]}-old.json"
        # Another client: a file is known by its first kilobyte.
        old_log = _log(who[0], who[1].replace(".0", ".9", 1), 7)
        old.write_bytes(old_log.replace(b"2025-11-27T", b"2025-10-01T"))
        new = tmp_path / f"{who[0]}-new.json"
        new.write_bytes(_log(*who, 8))
        import_files(open_store(cfg), [old, new])

    def days() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for row in hunt(open_store(servers[0]), ["evil.example.com"]).rows:
            day = datetime.fromtimestamp(row.first_us / 1e6, UTC).strftime("%Y-%m-%d")
            out.setdefault(row.sensor, set()).add(day)
        return out

    assert days() == {
        "inst-a": {"2025-10-01", "2025-11-27"},
        "inst-b": {"2025-10-01", "2025-11-27"},
    }
    report = run_retention(servers[0], NOW, disk=_plenty)
    assert [p.name for p in report.expired] == ["day=2025-10-01"]
    # Each server drops its own shard's days: server-b's old day waits for its retention.
    assert days() == {"inst-a": {"2025-11-27"}, "inst-b": {"2025-10-01", "2025-11-27"}}
    run_retention(servers[1], NOW, disk=_plenty)
    assert days() == {"inst-a": {"2025-11-27"}, "inst-b": {"2025-11-27"}}
    assert run_retention(servers[0], NOW, disk=_plenty).expired == []


def test_retention_with_the_cluster_unreachable_removes_nothing_and_goes_on(
    db: str, tmp_path: Path
) -> None:
    (port,) = ch._free_ports(1)
    cfg = _config(tmp_path / "server", ch.Node(tmp_path / "down", port, port, port), db)
    report = run_retention(cfg, NOW, disk=_plenty)
    assert report.expired == []
    assert report.failed == {}


def _plenty(path: Path) -> Disk:
    return Disk(total=100 * 2**30, free=90 * 2**30)


def test_an_embedded_store_moves_into_the_cluster_once_with_its_files(
    nodes: list[ch.Node], db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: only raw archives could be imported, and the store outlives them."""
    emb = _config(tmp_path / "single", None)
    files = []
    for i, who in enumerate((A, B)):
        f = tmp_path / f"{who[0]}.json.gz"
        f.write_bytes(gzip.compress(_log(*who, 7 + i)))
        files.append(f)
    import_files(open_store(emb), files)
    store_dir = emb.history.dir
    assert is_store(store_dir)

    cluster = _config(tmp_path / "server", nodes[0], db)
    cfg_file = tmp_path / "server.yml"
    cfg_file.write_text(
        json.dumps(
            {
                "data_dir": str(cluster.data_dir),
                "history": {
                    "engine": "clickhouse",
                    "clickhouse": {
                        "url": nodes[0].url,
                        "password_file": str(cluster.data_dir / "clickhouse.key"),
                        "database": db,
                    },
                },
            }
        )
    )
    assert main(["-c", str(cfg_file), "history", "import", str(store_dir)]) == 0
    for values in (["evil.example.com"], ["bad-cdn.net"], ["198.51.100.0/24"]):
        want = _rows(hunt(open_store(emb), values).rows)
        assert want
        assert _rows(hunt(open_store(cluster), values).rows) == want, values
    total = sum(r.count for r in hunt(open_store(cluster), ["evil.example.com"]).rows)
    # Again, and the raw files it came from: nothing is counted twice.
    assert main(["-c", str(cfg_file), "history", "import", str(store_dir)]) == 0
    again = import_files(open_store(cluster), files)
    assert (again.replies, again.held) == (0, 2)
    assert sum(r.count for r in hunt(open_store(cluster), ["evil.example.com"]).rows) == total

    # A store whose files the cluster holds in part already is refused, naming one.
    other = _config(tmp_path / "other", None)
    late = tmp_path / "late.json"
    late.write_bytes(_log("inst-c", "10.3.0.0", 11))
    import_files(open_store(other), [files[0], late])
    with pytest.raises(StoreError, match=rf"holds bytes 0-\d+ of {files[0]}.*nothing imported"):
        import_store(other.history.dir, Client(nodes[0].url, "pdnssoc", ch.PASSWORD, database=db))
    assert not hunt(open_store(cluster), ["evil.example.com"], sensors=["inst-c"]).rows
    # Into the embedded store, a store is refused with what to do instead.
    emb_file = tmp_path / "single.yml"
    emb_file.write_text(json.dumps({"data_dir": str(emb.data_dir)}))
    with pytest.raises(SystemExit) as exc:
        main(["-c", str(emb_file), "history", "import", str(other.history.dir)])
    assert exc.value.code != 0
    assert "a store is imported into a ClickHouse cluster" in capsys.readouterr().err
