# SPDX-License-Identifier: Apache-2.0
"""Query logs for the history benchmark: days of go-dnscollector JSON lines.

What shapes the store's size is how often the same reply repeats, so the
traffic is built to repeat the way a resolver's does: each sensor (one
institution) has a few clients as the server sees them (masked to /16 by
default on the sensors, or the resolver itself when only resolver replies are
logged), host names are drawn with a Zipf popularity (s = 1) from a pool with
stable answers, 4% of replies are NXDOMAINs for names never seen again, and
TTLs and source ports vary per reply as they do in real logs (which is what
keeps gzip from doing better on them). About 0.1% of replies hit an indicator
(exact, subdomain, CNAME target, IP, CIDR), as in the correlate benchmark.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from .bench_correlate import TLDS, WORDS, _domain, _ip4, _ip6, _label

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Shape:
    days: int
    per_day: int
    sensors: int = 10
    clients: int = 4
    """Distinct client addresses per sensor as the server sees them."""
    hosts: int = 200_000
    seed: int = 11

    @property
    def tag(self) -> str:
        return f"d{self.days}-n{self.per_day}-s{self.sensors}-c{self.clients}-h{self.hosts}"


@dataclass
class Indicators:
    domains: list[str]
    networks: list[str]
    hunt_popular: str
    """A popular registered domain (many rows), for the hunt figure."""
    hunt_cdn: str
    """The CDN domain most CNAMEs point into."""


_HEAD = (
    b'{"network":{"family":"IPv4","protocol":"UDP","query-ip":"%s","query-port":"%d",'
    b'"response-ip":"192.0.2.53","response-port":"53","ip-defragmented":false,'
    b'"tcp-reassembled":false},"dns":{"length":%d,"opcode":0,"rcode":"%s","qname":"%s",'
    b'"qtype":"%s","flags":{"qr":true,"tc":false,"aa":false,"ra":true,"ad":false},'
    b'"resource-records":{"an":[%s],"ns":[],"ar":[]},"malformed-packet":false},'
    b'"edns":{"udp-size":1232,"rcode":0,"version":0,"dnssec-ok":0,"options":[]},'
    b'"dnstap":{"operation":"CLIENT_RESPONSE","identity":"%s",'
    b'"version":"BIND 9.18.28-1~deb12u2-Debian","timestamp-rfc3339ns":"%s",'
    b'"latency":"0.000%03d","extra":"-"}}\n'
)


def _rr(name: str, rtype: str, ttl: int, data: str) -> bytes:
    return msgspec.json.encode({"name": name, "rdatatype": rtype, "ttl": ttl, "rdata": data})


class _Zone:
    """A host's stable answer: qtype and records, TTL filled in per reply."""

    __slots__ = ("n", "qtype", "template", "ttl")

    def __init__(self, qtype: str, parts: list[tuple[str, str, str]], ttl: int) -> None:
        self.qtype = qtype
        self.ttl = ttl
        self.n = len(parts)
        self.template = b",".join(
            _rr(n, t, 0, d).replace(b'"ttl":0', b'"ttl":%d') for n, t, d in parts
        )

    def answers(self, rng: random.Random) -> bytes:
        left = int(rng.random() * self.ttl) + 1
        return self.template % ((left,) * self.n)


def _zone(rng: random.Random, host: str, cdn: str) -> _Zone:
    r = rng.random()
    ttl = rng.choice((60, 300, 300, 3600))
    if r < 0.15:
        target = f"{host.replace('.', '-')}.{cdn}"
        parts = [(host, "CNAME", target)]
        parts += [(target, "A", _ip4(rng)) for _ in range(rng.randint(1, 3))]
        return _Zone("A", parts, ttl)
    if r < 0.30:
        return _Zone("AAAA", [(host, "AAAA", _ip6(rng))], ttl)
    return _Zone("A", [(host, "A", _ip4(rng)) for _ in range(rng.randint(1, 3))], ttl)


def indicators(rng: random.Random, n: int = 1000) -> tuple[list[str], list[str], list[str]]:
    """``n`` indicators: 60% domains, 30% IPs, 10% CIDRs (IPv4 /24 and /20, IPv6 /48),
    plus the pool they are planted from (the domains and IPs present in the data)."""
    n_dom, n_ip = n * 6 // 10, n * 3 // 10
    n_net = n - n_dom - n_ip
    domains = [f"{_label(rng, 6, 12)}-ioc.{rng.choice(TLDS)}" for _ in range(n_dom)]
    ips = [f"100.{64 + i // 65536}.{(i // 256) % 256}.{i % 256}" for i in range(n_ip)]
    nets = []
    for i in range(n_net):
        k = i % 3
        if k == 0:
            nets.append(f"198.18.{i % 256}.0/24")
        elif k == 1:
            nets.append(f"198.19.{(i * 16) % 256}.0/20")
        else:
            nets.append(f"2001:db8:{i:x}::/48")
    return domains, ips + nets, ips


def generate(shape: Shape, out_dir: Path) -> tuple[list[Path], Indicators, int]:
    """One plain file per day under ``out_dir``; returns them, the indicators and how
    many lines were made to hit one."""
    rng = random.Random(shape.seed)
    cdn = "cdn-provider.net"
    bases = [_domain(rng) for _ in range(shape.hosts * 2 // 3)]
    hosts = [f"{rng.choice(WORDS)}.{d}" for d in bases]
    hosts += [f"{rng.choice(WORDS)}.{rng.choice(bases)}" for _ in range(shape.hosts - len(hosts))]
    rng.shuffle(hosts)
    zones = {h: _zone(rng, h, cdn) for h in hosts}
    cum: list[float] = []
    total = 0.0
    for i in range(len(hosts)):
        total += 1.0 / (i + 1)
        cum.append(total)
    sensors = [f"inst-{i:03d}" for i in range(shape.sensors)]
    clients = {
        s: [f"10.{(i * 7 + j) % 256}.0.0" for j in range(shape.clients)]
        for i, s in enumerate(sensors)
    }
    weights = [1.0 / (1 + i % 5) for i in range(len(sensors))]  # some institutions busier
    doms, nets, ips = indicators(random.Random(shape.seed + 1))
    planted_doms = doms[: len(doms) // 2]
    planted_ips = ips[: len(ips) // 2]
    files = []
    out_dir.mkdir(parents=True, exist_ok=True)
    world = _World(rng, hosts, cum, zones, bases, sensors, clients, weights, planted_doms,
                   planted_ips, cdn)  # fmt: skip
    for day in range(shape.days):
        start = T0 + timedelta(days=day)
        path = out_dir / f"queries-{start:%Y%m%d}.json"
        path.write_bytes(world.day(start, shape.per_day))
        files.append(path)
    hits = world.hits
    hunt_popular = hosts[0].split(".", 1)[1]
    return files, Indicators(doms, nets, hunt_popular, cdn), hits


@dataclass
class _World:
    """Everything one day of lines is drawn from."""

    rng: random.Random
    hosts: list[str]
    cum: list[float]
    zones: dict[str, _Zone]
    bases: list[str]
    sensors: list[str]
    clients: dict[str, list[str]]
    weights: list[float]
    planted_doms: list[str]
    planted_ips: list[str]
    cdn: str
    hits: int = 0

    def day(self, start: datetime, per_day: int) -> bytes:
        rng = self.rng
        names = rng.choices(self.hosts, cum_weights=self.cum, k=per_day)
        who = rng.choices(self.sensors, weights=self.weights, k=per_day)
        step = 86400 / per_day
        stamp, second = "", -1
        lines = []
        for i in range(per_day):
            at = i * step
            sec = int(at)
            if sec != second:
                second = sec
                stamp = (start + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
            frac = f"{int((at - sec) * 1e9):09d}".rstrip("0")  # as Go's RFC3339Nano
            ts = f"{stamp}.{frac}Z" if frac else f"{stamp}Z"
            sensor = who[i]
            mine = self.clients[sensor]
            client = mine[int(rng.random() * len(mine))]
            r = rng.random()
            if r < 0.001:
                self.hits += 1
                qname, qtype, rcode, an = _hit(rng, i, self.planted_doms, self.planted_ips)
            elif r < 0.041:
                qname = f"{_label(rng)}.{rng.choice(self.bases)}"
                qtype, rcode, an = "A", "NXDOMAIN", b""
            else:
                qname = names[i]
                z = self.zones[qname]
                qtype, rcode, an = z.qtype, "NOERROR", z.answers(rng)
            lines.append(
                _HEAD
                % (
                    client.encode(), 1024 + int(rng.random() * 64511), 40 + len(an) // 3,
                    rcode.encode(), qname.encode(), qtype.encode(), an, sensor.encode(),
                    ts.encode(), int(rng.random() * 1000),
                )
            )  # fmt: skip
        return b"".join(lines)


def _hit(
    rng: random.Random, i: int, doms: list[str], ips: list[str]
) -> tuple[str, str, str, bytes]:
    k = i % 5
    qname = f"www.{rng.choice(WORDS)}-{i}.example.net"
    if k == 0:
        qname = rng.choice(doms)
        return qname, "A", "NOERROR", _rr(qname, "A", 60, _ip4(rng))
    if k == 1:
        qname = f"x{i % 50}.{rng.choice(doms)}"
        return qname, "A", "NOERROR", _rr(qname, "A", 60, _ip4(rng))
    if k == 2:
        target = f"edge.{rng.choice(doms)}"
        an = _rr(qname, "CNAME", 300, target) + b"," + _rr(target, "A", 60, _ip4(rng))
        return qname, "A", "NOERROR", an
    if k == 3:
        return qname, "A", "NOERROR", _rr(qname, "A", 60, rng.choice(ips))
    if rng.random() < 0.5:
        ip = f"198.18.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        return qname, "A", "NOERROR", _rr(qname, "A", 60, ip)
    ip6 = f"2001:db8:{rng.randint(0, 40):x}::{rng.randint(1, 999):x}"
    return qname, "AAAA", "NOERROR", _rr(qname, "AAAA", 60, ip6)
