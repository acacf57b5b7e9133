# SPDX-License-Identifier: Apache-2.0
"""The agent's configuration: one YAML file, validated once, then immutable.

The file format is pdnssoc-cli's (``misp_servers``, ``correlation``,
``alerting``, ``schedules``), extended with ``data_dir`` and ``fetch_iocs``.
Relative paths are resolved against ``data_dir`` once, when the file is
parsed: every path of a :class:`Config`, in every section, is absolute.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from ..errors import ConfigError
from ..iocs.warninglists import bundled_directory
from ._schema import Problem, Secret, build, deprecated_keys
from .alerting import Alerting, Email, Mapping, Webhook
from .correlation import Correlation
from .fetch import DEFAULT_TYPES, FetchIocs
from .history import History
from .metrics import Metrics
from .misp import GenericPeriod, MispServer, Periods, Sightings, TagPeriod
from .retention import Retention
from .rpz import Rpz, RpzZone
from .schedules import Interval, Schedules
from .secrets import read_secret, secret_file_warnings
from .sensors import QuietHours, SensorRule, Sensors
from .sources import SourceConfig
from .suppressions import Suppression, suppression_warnings
from .web import Web

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_TYPES",
    "Alerting",
    "Config",
    "ConfigError",
    "Correlation",
    "Email",
    "FetchIocs",
    "GenericPeriod",
    "History",
    "Interval",
    "Mapping",
    "Metrics",
    "MispServer",
    "Periods",
    "Problem",
    "QuietHours",
    "Retention",
    "Rpz",
    "RpzZone",
    "Schedules",
    "Secret",
    "SensorRule",
    "Sensors",
    "Sightings",
    "SourceConfig",
    "Suppression",
    "TagPeriod",
    "Web",
    "Webhook",
    "load_config",
    "parse_config",
    "read_secret",
    "secret_file_warnings",
]

DEFAULT_CONFIG_PATH = Path("/etc/pdnssoc/agent.yml")

T = TypeVar("T")

_QUERY_LOG_KEYS = {"live_input", "queries_file"}
"""Keys that choose the live input; without them, a given ``input_dir`` is read."""


@dataclass(frozen=True)
class Config:
    """The whole agent configuration."""

    data_dir: Path = Path("/var/dnscollector")
    logging_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    misp_servers: list[MispServer] = field(default_factory=list)
    sources: list[SourceConfig] = field(default_factory=list)
    """Indicator sources beside MISP servers: feeds, lists, ThreatFox (docs/fetch-iocs.md)."""
    fetch_iocs: FetchIocs = field(default_factory=FetchIocs)
    correlation: Correlation = field(default_factory=Correlation)
    alerting: Alerting = field(default_factory=Alerting)
    schedules: Schedules = field(default_factory=Schedules)
    retention: Retention = field(default_factory=Retention)
    history: History = field(default_factory=History)
    suppressions: list[Suppression] = field(default_factory=list)
    """Known false positives: written and counted, never notified (docs/triage.md)."""
    sensors: Sensors = field(default_factory=Sensors)
    metrics: Metrics = field(default_factory=Metrics)
    rpz: Rpz = field(default_factory=Rpz)
    """Response-policy zones built from the indicators (docs/rpz.md)."""
    web: Web = field(default_factory=Web)
    """The analysts' web view (docs/web.md)."""
    warnings: tuple[Problem, ...] = field(default=(), metadata={"hidden": True}, compare=False)

    def _check(self, path: str, problems: list[Problem]) -> None:
        labels: dict[str, int] = {}
        for i, server in enumerate(self.misp_servers):
            if getattr(server, "domain", None) is None:  # missing: reported already
                continue
            if server.label in labels:
                problems.append(
                    Problem(
                        f"misp_servers[{i}]",
                        f"same name {server.label!r} as misp_servers[{labels[server.label]}]; "
                        "set a distinct 'name'",
                    )
                )
            labels[server.label] = i
        for i, src in enumerate(self.sources):
            if getattr(src, "type", None) is None:  # missing: reported already
                continue
            if src.label in labels:
                problems.append(
                    Problem(
                        f"sources[{i}]",
                        f"same name {src.label!r} as another source or MISP server; "
                        "set a distinct 'name'",
                    )
                )
            labels[src.label] = i
        ids: dict[str, int] = {}
        for i, rule in enumerate(self.suppressions):
            if rule.id in ids:
                problems.append(
                    Problem(f"suppressions[{i}].id", f"same id as suppressions[{ids[rule.id]}]")
                )
            ids.setdefault(rule.id, i)
        if not self.data_dir.is_absolute():
            problems.append(Problem("data_dir", "must be an absolute path"))


def _resolve_paths(obj: T, base: Path) -> T:
    """Return ``obj`` with every relative Path field (recursively) made absolute."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return obj
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Path) and not value.is_absolute():
            changes[f.name] = base / value
        elif dataclasses.is_dataclass(value):
            changes[f.name] = _resolve_paths(value, base)
        elif isinstance(value, list):
            changes[f.name] = [_resolve_paths(v, base) for v in value]
    return dataclasses.replace(obj, **changes) if changes else obj


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate an already-loaded YAML document; raise ConfigError listing every problem."""
    problems: list[Problem] = []
    if data is None:
        data = {}
    cfg = build(Config, data, "", problems)
    if "warnings" in (data if isinstance(data, dict) else {}):
        problems.append(Problem("warnings", "unknown key"))
    if problems:
        raise ConfigError(source, problems)
    warnings: list[Problem] = []
    if isinstance(data, dict):
        corr = data.get("correlation")
        warnings += deprecated_keys(Correlation, corr, "correlation")
        if isinstance(corr, dict) and "input_dir" in corr and not corr.keys() & _QUERY_LOG_KEYS:
            # pdnssoc-cli's file: correlate reads input_dir, as pdnssoc-cli did
            cfg = dataclasses.replace(
                cfg, correlation=dataclasses.replace(cfg.correlation, live_input="matches")
            )
    for i, server in enumerate(cfg.misp_servers):
        warnings += server.warnings(f"misp_servers[{i}]")
    for i, src in enumerate(cfg.sources):
        warnings += src.warnings(f"sources[{i}]")
        if src.indicator_type is not None and src.indicator_type not in cfg.fetch_iocs.types:
            warnings.append(
                Problem(
                    f"sources[{i}].indicator_type",
                    f"{src.indicator_type!r} is not in fetch_iocs.types: nothing of this list "
                    "is fetched",
                )
            )
    if (
        cfg.sources
        and cfg.fetch_iocs.warninglists_dir is None
        and cfg.fetch_iocs.warninglists
        and bundled_directory() is None
    ):
        warnings.append(
            Problem(
                "fetch_iocs.warninglists_dir",
                "not set and the pymispwarninglists package is not installed: the values of "
                "'sources' are not checked against MISP's warninglists (public resolvers, big "
                "providers), which only a MISP server applies itself",
            )
        )
    warnings += cfg.retention.warnings(cfg.correlation.retro_lookback)
    warnings += suppression_warnings(cfg.suppressions, datetime.now(UTC))
    cfg = dataclasses.replace(cfg, warnings=tuple(warnings))
    return _resolve_paths(cfg, cfg.data_dir)


def load_config(path: Path) -> Config:
    """Read and validate the YAML file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem("", f"cannot read: {exc}")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = Problem("", f"not valid YAML: {_yaml_problem(exc)}")
        raise ConfigError(str(path), [problem]) from None
    except RecursionError:
        raise ConfigError(str(path), [Problem("", "not usable: nested too deeply")]) from None
    try:
        return parse_config(data, str(path))
    except RecursionError:
        raise ConfigError(str(path), [Problem("", "not usable: nested too deeply")]) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, without the file's text (the line may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    # PyYAML quotes what it found ("found character '\\t' that cannot start any token",
    # "but got '<block end>'"): keep escapes and token names, drop anything quoted from
    # the file's text.
    problem = re.sub(r"'(?!<)[^']{3,}'", "'...'", str(problem))
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + problem
