# SPDX-License-Identifier: Apache-2.0
"""Every number and duration in the configuration is bounded, and a value that
passes the check runs: no NaN, infinity, overflow or wrong type reaches a step."""

from __future__ import annotations

import copy
import dataclasses
import signal
import time
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
import yaml

from pdnssoc_agent.config import Config, ConfigError, _schema, load_config, parse_config
from pdnssoc_agent.scheduler import Scheduler, select_steps, state_path
from tests.support.scheduler import start_daemon, wait_for

# Every section present, so that the walk below reaches every key.
BASE: dict[str, Any] = {
    "data_dir": "/srv/pdnssoc",
    "misp_servers": [
        {
            "domain": "https://misp.example.org/",
            "api_key_env": "MISP_KEY",
            "periods": {"tags": [{"names": ["apt"], "delta": {"days": 90}}]},
        }
    ],
    "sources": [
        {
            "type": "list",
            "url": "https://lists.example.org/bad.csv",
            "format": "csv",
            "indicator_type": "domain",
            "periods": {"tags": [{"names": ["apt"], "delta": {"days": 90}}]},
        }
    ],
    "alerting": {
        "email": {"from": "soc@example.org", "mappings": [{"client_id": "a", "contact": "b@c"}]},
        "slack": {"webhook_url_env": "SLACK_URL"},
        "mattermost": {"webhook_url_env": "MM_URL"},
        "teams": {"webhook_url_env": "TEAMS_URL"},
        "webhook": {"webhook_url_env": "HOOK_URL"},
    },
}


def _inner(tp: Any) -> Any:
    """The type inside ``X | None``."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _leaves(cls: type[Any], path: tuple[str | int, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(key path, type) of every number and duration field under dataclass ``cls``."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("hidden"):
            continue
        tp = _inner(hints[f.name])
        key = f.metadata.get("key", f.name)
        if tp in (int, float, timedelta):
            yield (*path, key), tp
        elif dataclasses.is_dataclass(tp):
            yield from _leaves(tp, (*path, key))  # type: ignore[arg-type]
        elif get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
            yield from _leaves(get_args(tp)[0], (*path, key, 0))


LEAVES = list(_leaves(Config, ()))
NUMBERS = [(p, tp) for p, tp in LEAVES if tp in (int, float)]
DURATIONS = [p for p, tp in LEAVES if tp is timedelta]


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node: Any = data
    for key in path[:-1]:
        node = node[key] if isinstance(key, int) else node.setdefault(key, {})
    node[path[-1]] = value
    return data


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def test_the_walk_finds_every_kind_of_key() -> None:
    names = {_dotted(p) for p, _ in LEAVES}
    assert "schedules.retro.interval" in names
    assert "misp_servers[0].timeout" in names
    assert "alerting.email.port" in names
    assert "misp_servers[0].periods.tags[0].delta" in names
    assert len(NUMBERS) >= 15 and len(DURATIONS) >= 8


BAD_NUMBERS = [float("nan"), float("inf"), float("-inf"), 10**12, -1, True, 1e300, "5", [5]]


@pytest.mark.parametrize(("path", "tp"), NUMBERS, ids=[_dotted(p) for p, _ in NUMBERS])
def test_every_number_is_bounded(path: tuple[Any, ...], tp: type[Any]) -> None:
    parse_config(BASE)  # the base itself is valid
    for bad in BAD_NUMBERS:
        with pytest.raises(ConfigError) as info:
            parse_config(_with(path, bad))
        (problem,) = info.value.problems
        assert problem.path == _dotted(path), (bad, problem)
        if type(bad) is int or (tp is float and type(bad) is float and abs(bad) < float("inf")):
            assert "allowed:" in problem.message, problem  # the message names the range


@pytest.mark.parametrize("path", DURATIONS, ids=[_dotted(p) for p in DURATIONS])
def test_every_duration_is_bounded(path: tuple[Any, ...]) -> None:
    bad_values: list[Any] = [
        {"days": 1e10},
        {"days": 10**12},
        {"weeks": 10**7},
        {"days": float("nan")},
        {"hours": float("inf")},
        {"days": -1},
        {"days": True},
        {"days": "1e10"},
        {},
        "30d",
    ]
    for bad in bad_values:
        with pytest.raises(ConfigError) as info:
            parse_config(_with(path, bad))
        assert all(p.path.startswith(_dotted(path)) for p in info.value.problems), bad


def test_duration_bounds_are_written_as_the_operator_writes_durations() -> None:
    """A bound reads as a duration mapping in the unit that holds it whole, not as a
    fraction of a day."""
    cases = [
        ({"history": {"commit_every": {"seconds": 30}}},
         "history.commit_every: must be at least {minutes: 1}, got {seconds: 30}"),
        ({"history": {"commit_every": {"hours": 36}}},
         "history.commit_every: must be at most {days: 1}, got {hours: 36}"),
        ({"history": {"commit_every": {"minutes": 0.5}}},
         "history.commit_every: must be at least {minutes: 1}, got {seconds: 30}"),
        ({"history": {"commit_every": {"days": 2, "seconds": 1.5}}},
         "history.commit_every: must be at most {days: 1}, got {seconds: 172801.5}"),
    ]  # fmt: skip
    for raw, message in cases:
        with pytest.raises(ConfigError) as info:
            parse_config({"data_dir": "/srv/pdnssoc", **raw})
        assert [str(p) for p in info.value.problems] == [message]


def test_yaml_text_that_looks_like_a_number_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text("correlation:\n  retro_lookback: {days: 1e10}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "write 1.0e+10" in str(info.value)


def _extremes() -> dict[str, Any]:
    """Every number and duration at the largest value the check allows."""
    data = copy.deepcopy(BASE)
    data["data_dir"] = "/nonexistent/pdnssoc"
    for path, tp in LEAVES:
        cls: Any = Config
        field = None
        for key in path:
            if isinstance(key, int):
                continue
            hints = get_type_hints(cls)
            field = next(f for f in dataclasses.fields(cls) if f.metadata.get("key", f.name) == key)
            cls = _inner(hints[field.name])
            if get_origin(cls) is list:
                cls = get_args(cls)[0]
        assert field is not None
        if tp is timedelta:
            hi = field.metadata.get("max", _schema._MAX_DURATION)
            value: Any = {"seconds": hi.total_seconds()}
        else:
            value = field.metadata.get("max", _schema._DEFAULT_MAX)
        data = _with_into(data, path, value)
    return data


def _with_into(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    node: Any = data
    for key in path[:-1]:
        node = node[key] if isinstance(key, int) else node.setdefault(key, {})
    node[path[-1]] = value
    return data


def test_the_largest_accepted_values_run(tmp_path: Path) -> None:
    """Accepted means usable: the scheduler and the steps work with every maximum."""
    data = _extremes()
    data["data_dir"] = str(tmp_path)
    del data["misp_servers"]  # fetch-iocs needs a MISP; the others run on an empty data root
    # One entry cannot hold every type's maximum (days is ThreatFox's, page_size TAXII's);
    # the steps run here do not read sources.
    del data["sources"]
    data["alerting"] = {"webhook": data["alerting"]["webhook"] | {"webhook_url": "http://x/"}}
    del data["alerting"]["webhook"]["webhook_url_env"]
    cfg = parse_config(data)
    assert cfg.schedules.retro.interval == 525600
    cfg.correlation.malicious_domains_file.parent.mkdir(parents=True)
    cfg.correlation.malicious_domains_file.write_text("evil.example\n")
    cfg.correlation.malicious_ips_file.write_text("192.0.2.1\n")
    cfg.correlation.queries_file.write_text("")  # the collector's query log, empty so far
    sched = Scheduler(cfg, None, select_steps(["correlate", "retro", "alert"]))
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert sched.run_due(now) == {"correlate": "ok", "retro": "ok", "alert": "ok"}
    assert sched.seconds_until_next(now) == 525600 * 60


# -- SIGHUP: a reload that fails for any reason keeps the running configuration ------------


@pytest.mark.parametrize(
    "text",
    [
        "schedules: {alerting: {interval: 100000000000}}\n",  # passed the check, overflowed later
        "correlation: {retro_lookback: {days: 1.0e+10}}\n",  # OverflowError inside the check
        "alerting: {webhook: {webhook_url: http://x/, timeout: .nan}}\n",
        "data_dir: " + "[" * 50000 + "\n",  # RecursionError in the YAML parser
    ],
    ids=["huge-interval", "huge-duration", "nan-timeout", "deep-yaml"],
)
def test_reload_that_fails_keeps_the_running_configuration(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg_path = tmp_path / "agent.yml"
    cfg_path.write_text(yaml.safe_dump({"data_dir": str(tmp_path)}))
    sched = Scheduler(load_config(cfg_path), cfg_path, select_steps(["alert"]))
    running = sched.config
    cfg_path.write_text(f"data_dir: {tmp_path}\n" + text if "data_dir" not in text else text)
    assert sched.reload() is False
    assert sched.config is running
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].startswith("SIGHUP: ")
    assert errors[0].endswith("keeping the previous configuration")
    assert "\n" not in errors[0]
    # The scheduler goes on with the running configuration.
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert sched.run_due(now) == {"alert": "ok"}


@pytest.mark.slow
def test_sighup_to_a_real_daemon_with_unusable_files(tmp_path: Path) -> None:
    """The daemon survives every unusable file it is told to reload, one log line each."""
    cfg_path = tmp_path / "agent.yml"
    good = f"data_dir: {tmp_path}\nschedules: {{alerting: {{interval: 1}}}}\n"
    cfg_path.write_text(good)
    cfg = load_config(cfg_path)
    proc = start_daemon(cfg_path, "--steps", "alert")
    bad_files = [
        good + "correlation: {retro_lookback: {days: 1.0e+10}}\n",
        f"data_dir: {tmp_path}\nschedules: {{alerting: {{interval: 100000000000}}}}\n",
        good + "alerting: {webhook: {webhook_url: http://x/, timeout: .inf}}\n",
    ]
    try:
        wait_for(lambda: state_path(cfg).exists())
        for text in bad_files:
            cfg_path.write_text(text)
            proc.send_signal(signal.SIGHUP)
            time.sleep(1.5)
            assert proc.poll() is None, "the daemon died on SIGHUP"
        cfg_path.write_text(good.replace("interval: 1}", "interval: 2}"))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    kept = [line for line in err.splitlines() if "keeping the previous configuration" in line]
    assert len(kept) == len(bad_files), err
    assert all(" ERROR pdnssoc_agent.scheduler: SIGHUP: " in line for line in kept)
    assert "Traceback" not in err
    assert "SIGHUP: configuration reloaded" in err
