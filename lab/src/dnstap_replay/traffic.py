# SPDX-License-Identifier: Apache-2.0
"""A resolver's replies to its clients, as it sends them over a busy stretch of a day.

What repeats in real traffic is what the traffic reducer folds, so the mix has:

* names drawn with a Zipf-like popularity (a few names very often, a long tail);
* many clients, spread over several /16 networks (what masking leaves of them);
* an A reply and, often, an AAAA reply per lookup;
* bursts: the same client asking the same name and type again within a second or
  two (applications without a cache, parallel connections, retries);
* pollers: the same client asking again after tens of seconds (outside a reducer's
  window);
* a few NXDOMAINs, and a few indicator names and one indicator address, looked up
  by a few clients, in bursts and alone.

Seeded: the same arguments give the same replies.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

from .dnstap import Reply

IOC_DOMAINS = ("update-check.bad-cdn.example", "c2.evil-tracker.example", "login-verify.example")
"""Indicators (domains); ``c2.evil-tracker.example`` is also matched as a subdomain."""
IOC_SUBDOMAIN_OF = "evil-tracker.example"
IOC_IPS = ("203.0.113.66",)
"""Indicator address: the answer of an innocent-looking name."""
IOC_IP_NAME = "assets.harmless-looking.example"
INDICATOR_DOMAINS = (*IOC_DOMAINS, IOC_SUBDOMAIN_OF)


@dataclass(frozen=True)
class Mix:
    """How the replies are drawn."""

    rate: float = 250.0  # replies per second on average
    seconds: float = 60.0
    clients: int = 3000
    names: int = 30000
    zipf: float = 1.05
    aaaa: float = 0.6  # lookups that also ask AAAA
    burst: float = 0.3  # lookups repeated within a second or two
    burst_mean: float = 2.5  # extra replies in a burst, on average
    poll: float = 0.05  # lookups asked again 10-60 s later
    nxdomain: float = 0.03
    seed: int = 12


def _addresses(name: str, family: int) -> tuple[str, ...]:
    digest = hashlib.sha256(f"{family}:{name}".encode()).digest()
    count = 1 + digest[0] % 3
    if family == 4:
        return tuple(
            f"{100 + digest[i] % 100}.{digest[i + 1]}.{digest[i + 2]}.{1 + digest[i + 3] % 254}"
            for i in range(1, 1 + 4 * count, 4)
        )
    return tuple(
        f"2a02:{digest[i]:x}{digest[i + 1]:02x}::{1 + digest[i + 2]:x}"
        for i in range(1, 1 + 3 * count, 3)
    )


def answers(name: str, qtype: str) -> tuple[str, ...]:
    """The name's answer for the type (stable for the run, as a cache would give it)."""
    if name == IOC_IP_NAME:
        return IOC_IPS if qtype == "A" else ()
    if name.startswith("nx"):
        return ()
    return _addresses(name, 4 if qtype == "A" else 6)


def _clients(rng: random.Random, n: int) -> list[str]:
    return [f"10.{16 + i % 8}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for i in range(n)]


def replies(mix: Mix, start: float) -> list[Reply]:
    """The replies of the stretch, in time order, with times from ``start`` on."""
    rng = random.Random(mix.seed)  # noqa: S311 - a sample of traffic, not a secret
    clients = _clients(rng, mix.clients)
    names = [
        f"nx{i}.example.net" if rng.random() < mix.nxdomain else f"w{i}.site{i % 997}.example.com"
        for i in range(mix.names)
    ]
    cum = list(itertools.accumulate(1.0 / (rank + 1) ** mix.zipf for rank in range(mix.names)))
    per_lookup = (1 + mix.aaaa) * (1 + mix.burst * mix.burst_mean + mix.poll)
    lookups = int(mix.rate * mix.seconds / per_lookup)
    out: list[Reply] = []
    for _ in range(lookups):
        t = start + rng.random() * mix.seconds
        client = rng.choice(clients)
        name = rng.choices(names, cum_weights=cum)[0]
        out.extend(_lookup(rng, mix, t=t, client=client, name=name, start=start))
    out.extend(_indicator_lookups(rng, mix, clients, start))
    out.sort(key=lambda r: r.when)
    return [
        Reply(r.when, r.client, r.qname, r.qtype, r.answers, qid=i % 65536)
        for i, r in enumerate(out)
    ]


def _lookup(
    rng: random.Random, mix: Mix, *, t: float, client: str, name: str, start: float
) -> list[Reply]:
    types = ["A", "AAAA"] if rng.random() < mix.aaaa else ["A"]
    times = [t]
    if rng.random() < mix.burst:
        extra = 1 + int(rng.expovariate(1 / max(mix.burst_mean - 1, 0.1)))
        times += [t + rng.uniform(0.05, 1.5) * (k + 1) for k in range(extra)]
    if rng.random() < mix.poll:
        times.append(t + rng.uniform(10, 60))
    end = start + mix.seconds
    return [
        Reply(when + i * 0.001, client, name, qtype, answers(name, qtype))
        for when in times
        if when < end
        for i, qtype in enumerate(types)
    ]


def _indicator_lookups(
    rng: random.Random, mix: Mix, clients: list[str], start: float
) -> list[Reply]:
    """Each indicator name looked up by two or three clients: some alone, some in bursts."""
    out: list[Reply] = []
    for name in (*IOC_DOMAINS, IOC_IP_NAME):
        for client in rng.sample(clients, 3):
            for _ in range(rng.randint(1, 4)):
                t = start + rng.random() * mix.seconds * 0.8
                burst = Mix(**{**mix.__dict__, "burst": 0.6, "poll": 0.3})
                out.extend(_lookup(rng, burst, t=t, client=client, name=name, start=start))
    return out
