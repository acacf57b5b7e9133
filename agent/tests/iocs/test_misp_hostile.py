# SPDX-License-Identifier: Apache-2.0
"""A hostile or broken MISP costs only its own indicators: deep nesting, endless
paging and forged log lines in error bodies (a real MISP stand-in behind a front
that answers some requests itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from misp_standin import MispStandin
from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.errors import ExitCode
from pdnssoc_agent.iocs.fetch import fetch_iocs
from tests.support.hostile import MispFront, send
from tests.support.iocs import KEY, KEY2, attr, domains, event, index

MAX_REQUESTS = 300
"""A front answers 500 after this many searches, so that a client paging without
end fails a test instead of hanging it."""


@pytest.fixture
def two() -> Iterator[tuple[MispStandin, MispFront, MispStandin]]:
    with (
        MispStandin(api_keys={KEY: "CERT-A"}) as a,
        MispStandin(api_keys={KEY2: "CERT-B"}) as b,
    ):
        front = MispFront(a)
        yield a, front, b
        front.stop()


def make_config(front: MispFront, b: MispStandin, tmp: Path, **a_opts: Any) -> Config:
    return parse_config(
        {
            "data_dir": str(tmp),
            "misp_servers": [
                {"domain": front.url, "name": "misp-a", "api_key": KEY, "timeout": 10} | a_opts,
                {"domain": b.url, "name": "misp-b", "api_key": KEY2, "timeout": 10},
            ],
            "fetch_iocs": {"reload_collector": False},
        }
    )


def limited(front: MispFront, answer: Any) -> Any:
    def handler(h: Any, body: Any) -> None:
        if front.calls.get("restSearch", 0) > MAX_REQUESTS:
            send(h, 500, b'{"message": "too many requests in this test"}')
            return
        answer(h, body)

    return handler


def first_run(a: MispStandin, b: MispStandin, cfg: Config) -> None:
    a.add_event(event("A", [attr("domain", "a-old.example")]))
    b.add_event(event("B", [attr("domain", "b-old.example")]))
    assert fetch_iocs(cfg).exit_code is ExitCode.OK
    b.add_event(event("B2", [attr("domain", "b-new.example")]))


def test_deeply_nested_answer_fails_only_that_server(
    two: tuple[MispStandin, MispFront, MispStandin], tmp_path: Path
) -> None:
    a, front, b = two
    cfg = make_config(front, b, tmp_path)
    first_run(a, b, cfg)
    depth = 200_000
    nested = b'{"response": ' + b"[" * depth + b"]" * depth + b"}"
    front.handlers["restSearch"] = lambda h, _b: send(h, 200, nested)
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM
    assert [r.label for r in result.failed] == ["misp-a"]
    assert "nested too deeply" in (result.failed[0].error or "")
    assert result.written
    assert domains(cfg) == ["a-old.example", "b-new.example", "b-old.example"]
    assert [c.server for c in index(cfg)["a-old.example"].contexts] == ["misp-a"]


_STAMP = str(int(time.time()))
"""One time for every attribute the tests make: the same attribute is the same on every
page, whichever second the page is made in."""


def _attribute(i: int, uuid: bool) -> dict[str, Any]:
    out = {
        "id": str(i),
        "type": "domain",
        "value": f"d{i}.example",
        "to_ids": True,
        "timestamp": _STAMP,
        "event_id": "1",
        "category": "Network activity",
    }
    if uuid:
        out["uuid"] = f"00000000-0000-4000-8000-{i:012d}"
    return out


def _page(attrs: list[dict[str, Any]]) -> bytes:
    return json.dumps({"response": {"Attribute": attrs}}).encode()


@pytest.mark.parametrize(
    ("behaviour", "expect"),
    [
        ("ignores-limit", "page 1 holds 15 attributes where 10 were asked for"),
        ("same-page", "page 2 repeats page 1: the server ignores paging"),
        ("endless", "stopped at page 6: more than 50 attributes (misp_servers[].max_attributes)"),
    ],
)
def test_a_server_that_pages_without_end_is_stopped(
    two: tuple[MispStandin, MispFront, MispStandin], tmp_path: Path, behaviour: str, expect: str
) -> None:
    a, front, b = two
    opts: dict[str, Any] = {"page_size": 10}
    if behaviour == "endless":
        opts["max_attributes"] = 50
    cfg = make_config(front, b, tmp_path, **opts)
    first_run(a, b, cfg)

    def answer(h: Any, body: Any) -> None:
        page = int(body.get("page") or 1)
        if behaviour == "ignores-limit":  # every attribute at once, on every page, no uuids
            attrs = [_attribute(i, uuid=False) for i in range(15)]
        elif behaviour == "same-page":  # exactly a page, the same one every time
            attrs = [_attribute(i, uuid=False) for i in range(10)]
        else:  # new attributes on every page, forever
            attrs = [_attribute(page * 10 + i, uuid=True) for i in range(10)]
        send(h, 200, _page(attrs))

    front.handlers["restSearch"] = limited(front, answer)
    result = fetch_iocs(cfg)
    assert front.calls["restSearch"] <= 7
    assert [r.label for r in result.failed] == ["misp-a"]
    assert expect in (result.failed[0].error or "")
    assert domains(cfg) == ["a-old.example", "b-new.example", "b-old.example"]


def test_forged_log_lines_in_an_error_body_stay_one_escaped_line(
    two: tuple[MispStandin, MispFront, MispStandin], tmp_path: Path
) -> None:
    """PyMISP logs a failed answer's body as it came; the agent's log does not."""
    _a, front, b = two
    forged = "2026-01-01 00:00:00,000 CRITICAL pdnssoc_agent: all alerts delivered"
    body = ("Internal error\n" + forged + "\n\x1b[2J" + "A" * 100_000).encode()
    front.handlers["servers/getVersion"] = lambda h, _b: send(h, 500, body, "text/plain")
    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path),
                "misp_servers": [
                    {"domain": front.url, "name": "misp-a", "api_key": KEY},
                    {"domain": b.url, "name": "misp-b", "api_key": KEY2},
                ],
                "fetch_iocs": {"reload_collector": False},
            }
        )
    )
    b.add_event(event("B", [attr("domain", "b.example")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pdnssoc_agent", "-c", str(cfg_path), "fetch-iocs"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
        timeout=120,
    )
    assert proc.returncode == ExitCode.UPSTREAM, proc.stderr
    assert front.calls.get("servers/getVersion", 0) >= 1  # the hostile body was served
    lines = (proc.stdout + proc.stderr).splitlines()
    assert not [line for line in lines if line.startswith(forged[:20])], proc.stderr[-3000:]
    assert all("\x1b" not in line for line in lines)
    assert max(len(line) for line in lines) < 2000
    assert "fetch-iocs: misp-a" in proc.stdout
    assert "b.example" in domains(parse_config(yaml.safe_load(cfg_path.read_text())))


def test_any_failure_of_one_server_keeps_its_indicators_and_writes_the_others(
    two: tuple[MispStandin, MispFront, MispStandin], tmp_path: Path
) -> None:
    """A failure no check foresaw (here PyMISP itself raising KeyError while it
    connects, on a describeTypes answer without the catalogue) costs that server only."""
    a, front, b = two
    cfg = make_config(front, b, tmp_path)
    first_run(a, b, cfg)
    front.handlers["describeTypes"] = lambda h, _b: send(h, 200, b'{"result": {}}')
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.UPSTREAM
    assert [r.label for r in result.failed] == ["misp-a"]
    assert (result.failed[0].error or "").startswith("internal error: KeyError")
    assert domains(cfg) == ["a-old.example", "b-new.example", "b-old.example"]


def test_a_count_header_in_other_digits_is_ignored(
    two: tuple[MispStandin, MispFront, MispStandin], tmp_path: Path
) -> None:
    """'²' is a digit to str.isdigit() but not to int(): the header is ignored, not fatal."""
    _a, front, b = two
    cfg = make_config(front, b, tmp_path)
    pages = {1: _page([_attribute(1, uuid=True)])}
    front.handlers["restSearch"] = lambda h, body: send(
        h,
        200,
        pages.get(int(body.get("page") or 1), _page([])),
        headers={"X-Skipped-Elements-Count": "\u00b2"},
    )
    result = fetch_iocs(cfg)
    assert result.exit_code is ExitCode.OK, result.failed
    assert "d1.example" in domains(cfg)
