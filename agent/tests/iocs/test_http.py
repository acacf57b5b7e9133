# SPDX-License-Identifier: Apache-2.0
"""What every HTTP source shares: redirects never carry a key to another host."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.iocs.configured import sources_from_config
from pdnssoc_agent.iocs.fetch import FetchOptions, FetchResult, fetch_iocs
from tests.support.iocs import domains
from tests.support.sources import FETCH_OPTIONS, FileServer, Seen, serving

KEY = "redirect-key-0123456789abcdefgh"


def config(tmp: Path, url: str, **entry: Any) -> Config:
    source = {"type": "list", "name": "l", "url": url, "indicator_type": "domain"} | entry
    return parse_config({"data_dir": str(tmp), "sources": [source], "fetch_iocs": FETCH_OPTIONS})


def fetch(cfg: Config) -> FetchResult:
    return fetch_iocs(cfg, sources_from_config(cfg), FetchOptions(reload=False))


def redirecting(web: FileServer, target: str) -> None:
    def answer(seen: Seen) -> tuple[int, bytes, dict[str, str]]:
        if seen.path == "/old.txt":
            return 302, b"", {"Location": target}
        return 200, b"evil.example.com\n", {}

    web.get = answer


def test_a_keyed_source_is_not_followed_to_another_host(tmp_path: Path) -> None:
    with serving() as here, serving() as there:
        there.put("/list.txt", "evil.example.com\n")
        redirecting(here, there.url("/list.txt"))
        cfg = config(tmp_path, here.url("/old.txt"), api_key=KEY, auth_header="X-Api-Key")
        result = fetch(cfg)
        assert result.servers[0].error == (
            f"{here.url('/old.txt')}: redirected to another host (127.0.0.1:{there.port}); "
            "not followed, the key would go with it"
        )
        assert there.seen == []
        followed = fetch(config(tmp_path / "open", here.url("/old.txt")))  # no key: followed
        assert followed.servers[0].error is None and there.gets("/list.txt") == 1


def test_a_redirect_on_the_same_host_is_followed_with_the_key(tmp_path: Path) -> None:
    with serving() as here:
        redirecting(here, "/new.txt")
        cfg = config(tmp_path, here.url("/old.txt"), api_key=KEY, auth_header="X-Api-Key")
        result = fetch(cfg)
        assert result.servers[0].error is None and domains(cfg) == ["evil.example.com"]
        assert [(s.path, s.headers.get("X-Api-Key")) for s in here.seen] == [
            ("/old.txt", KEY),
            ("/new.txt", KEY),
        ]


def test_a_slow_or_absent_server_fails_with_a_plain_reason(tmp_path: Path) -> None:
    answer = threading.Event()
    with serving() as web:

        def slow(seen: Seen) -> tuple[int, bytes, dict[str, str]]:
            answer.wait(30)  # far beyond the 1 s time-out (and any load's slack)
            return 200, b"evil.example.com\n", {}

        web.get = slow
        started = time.monotonic()
        result = fetch(config(tmp_path, web.url("/list.txt"), timeout=1))
        took = time.monotonic() - started
        answer.set()
        # 1 s and a loaded 2-core machine's slack, well short of the 30 s answer.
        assert took < 6, took
        # The deadline or the read time-out, whichever fires first: both at 1 s.
        assert (result.servers[0].error or "").startswith(
            f"{web.url('/list.txt')}: timed out after 1 s"
        )
        gone = web.url("/list.txt")
    result = fetch(config(tmp_path, gone))
    assert (result.servers[0].error or "").startswith(f"{gone}: cannot connect: ")
