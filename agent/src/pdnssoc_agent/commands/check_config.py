# SPDX-License-Identifier: Apache-2.0
"""``check-config``: validate a configuration file and list every problem."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from ..config import Config, ConfigError, load_config, read_secret, secret_file_warnings
from ..config.suppressions import public_suffix_problems
from ..correlate.inputs import input_problems
from ..errors import ExitCode
from ..web.serve import tls_problems, tls_warnings

NEEDS_CONFIG = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secrets",
        action="store_true",
        help="also check that every secret file or environment variable can be read, "
        "and that the web view's certificate, key and analysts' CA load",
    )


def _history(config: Config) -> str:
    h = config.history
    if not h.enabled:
        return "off"
    if h.engine == "clickhouse":
        return f"ClickHouse cluster through {h.clickhouse.url} (database {h.clickhouse.database})"
    return str(h.dir)


def _secrets(config: Config) -> list[tuple[str, str | None, Path | None, str | None]]:
    """(what, inline, file, variable) of every configured secret (files are absolute)."""
    out: list[tuple[str, str | None, Path | None, str | None]] = []
    for i, server in enumerate(config.misp_servers):
        out.append(
            (
                f"misp_servers[{i}] ({server.label}) api key",
                server.api_key,
                server.api_key_file,
                server.api_key_env,
            )
        )
    for i, src in enumerate(config.sources):
        if src.has_key:
            out.append(
                (
                    f"sources[{i}] ({src.label}) api key",
                    src.api_key,
                    src.api_key_file,
                    src.api_key_env,
                )
            )
    email = config.alerting.email
    if email is not None and (email.password or email.password_file or email.password_env):
        out.append(
            ("alerting.email password", email.password, email.password_file, email.password_env)
        )
    for name in ("slack", "mattermost", "teams", "webhook"):
        hook = getattr(config.alerting, name)
        if hook is not None:
            out.append(
                (
                    f"alerting.{name} webhook URL",
                    hook.webhook_url,
                    hook.webhook_url_file,
                    hook.webhook_url_env,
                )
            )
    ch = config.history.clickhouse
    if config.history.engine == "clickhouse" and ch.password_file is not None:
        out.append(("history.clickhouse password", None, ch.password_file, None))
    return out


def secret_problems(config: Config) -> list[str]:
    """Secrets that are configured but cannot be read (file missing, env unset)."""
    problems: list[str] = []
    for what, inline, file, env in _secrets(config):
        try:
            read_secret(what, inline, file, env)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def secret_warnings(config: Config) -> list[str]:
    """Secret files that work but deserve a look (extra lines, loose permissions)."""
    return [
        warning
        for what, inline, file, _env in _secrets(config)
        if file is not None and not inline
        for warning in secret_file_warnings(what, file)
    ]


def run(_config: Config | None, args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{exc.source}: INVALID, {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  - {problem}")
        return int(ExitCode.CONFIG)
    suffixes = public_suffix_problems(config.suppressions)
    if suffixes:
        print(f"{args.config}: INVALID, {len(suffixes)} problem(s)")
        for problem in suffixes:
            print(f"  - {problem}")
        return int(ExitCode.CONFIG)
    for warning in config.warnings:
        print(f"  warning: {warning}")
    # Not a problem (exit 0): the collector may start after the agent is
    # configured; but a missing input means nothing is detected, so say so.
    for missing in input_problems(config):
        print(f"  warning: {missing}")
    if args.secrets:
        for text in secret_warnings(config):
            print(f"  warning: {text}")
        for text in tls_warnings(config.web):
            print(f"  warning: {text}")
        problems = secret_problems(config) + tls_problems(config.web)
        if problems:
            print(f"{args.config}: INVALID, {len(problems)} problem(s)")
            for p in problems:
                print(f"  - {p}")
            return int(ExitCode.CONFIG)
    servers = ", ".join(s.label for s in config.misp_servers) or "none"
    others = ", ".join(f"{s.label} ({s.type})" for s in config.sources)
    channels = [
        n
        for n in ("email", "slack", "mattermost", "teams", "webhook")
        if getattr(config.alerting, n) is not None
    ]
    corr = config.correlation
    live = corr.queries_file if corr.live_input == "query_log" else corr.input_dir
    print(
        f"{args.config}: OK (data_dir {config.data_dir}; correlate reads {live} "
        f"(live_input: {corr.live_input}); MISP servers: {servers}; "
        + (f"other sources: {others}; " if others else "")
        + f"alert channels: {', '.join(channels) or 'none'}; history store: "
        f"{_history(config)}; retention: "
        f"{_retention(config)})"
    )
    return int(ExitCode.OK)


def _retention(config: Config) -> str:
    r = config.retention
    if not r.enabled:
        return "off (the free-space guard only warns)"
    return (
        f"archive {_days(r.archive)}, history store {_days(r.history)}, "
        f"alert files {_days(r.alerts)}, guard below {r.min_free_percent}% free"
    )


def _days(age: timedelta) -> str:
    return f"{age.days} days" if age.days and age == timedelta(days=age.days) else str(age)
