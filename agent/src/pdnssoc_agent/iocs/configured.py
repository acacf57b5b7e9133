# SPDX-License-Identifier: Apache-2.0
"""The indicator sources the configuration names, built for one fetch-iocs run.

MISP servers come from ``misp_servers``; feeds, lists, ThreatFox and TAXII from
``sources`` (one class per ``type``, in :data:`KINDS`). A new kind of source
adds its class there and its ``type`` to
:class:`~pdnssoc_agent.config.SourceConfig`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import Config, Secret, SourceConfig, read_secret
from ..errors import FetchConfigError
from .misp import MispSource
from .mispfeed import MispFeedSource
from .plainlist import ListSource
from .source import IndicatorSource
from .taxii import TaxiiSource
from .threatfox import ThreatFoxSource

log = logging.getLogger(__name__)


def cache_dir(config: Config, source: SourceConfig) -> Path:
    """Where a source keeps what it fetched between runs (feed events, TAXII state)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", source.label)
    return config.correlation.state_dir / "sources" / re.sub(r"^\.", "_", name)


KINDS: dict[str, Callable[[Config, SourceConfig, Secret | None], IndicatorSource]] = {
    "list": lambda config, src, key: ListSource(src, key),
    "misp_feed": lambda config, src, key: MispFeedSource(
        src, key, cache_dir=cache_dir(config, src)
    ),
    "threatfox": lambda config, src, key: ThreatFoxSource(src, key),
    "taxii": lambda config, src, key: TaxiiSource(src, key, cache_dir=cache_dir(config, src)),
}
"""``sources[].type`` -> how a source of that type is built."""


def configured(config: Config) -> dict[str, str]:
    """Every configured source's label and URL, in configuration order."""
    out = {s.label: s.base_url for s in config.misp_servers}
    out.update((s.label, s.base_url) for s in config.sources)
    return out


def _select(config: Config, only: Sequence[str] | None) -> list[str]:
    labels = configured(config)
    if not labels:
        raise FetchConfigError(
            "misp_servers and sources are empty: there is nothing to fetch indicators from"
        )
    if not only:
        return list(labels)
    unknown = [n for n in only if n not in labels]
    if unknown:
        raise FetchConfigError(
            f"--server {', '.join(unknown)}: no such server or source "
            f"(configured: {', '.join(labels)})"
        )
    return list(dict.fromkeys(only))


def _secret(what: str, inline: str | None, file: Path | None, env: str | None) -> Secret:
    try:
        return read_secret(what, inline, file, env)
    except ValueError as exc:
        raise FetchConfigError(str(exc)) from None


def sources_from_config(config: Config, only: Sequence[str] | None = None) -> list[IndicatorSource]:
    """The configured sources (only those named in ``only``, when given), secrets read.

    Raises :class:`FetchConfigError` when a selected source's secret cannot
    be read or ``only`` names no configured source.
    """
    selected = _select(config, only)
    sources: dict[str, IndicatorSource] = {}
    for i, server in enumerate(config.misp_servers):
        if server.label not in selected:
            continue
        misp_key = _secret(
            f"misp_servers[{i}] ({server.label}) api key",
            server.api_key,
            server.api_key_file,
            server.api_key_env,
        )
        if not server.verify_ssl:
            log.warning("%s: TLS certificate verification is disabled", server.label)
        if server.debug:
            log.info("%s: 'debug' is ignored (it would log the API key)", server.label)
        sources[server.label] = MispSource(server, misp_key, ca_file=server.ca_file)
    for i, src in enumerate(config.sources):
        if src.label not in selected:
            continue
        key: Secret | None = None
        if src.has_key:
            key = _secret(
                f"sources[{i}] ({src.label}) api key",
                src.api_key,
                src.api_key_file,
                src.api_key_env,
            )
        if not src.verify_ssl:
            log.warning("%s: TLS certificate verification is disabled", src.label)
        sources[src.label] = KINDS[src.type](config, src, key)
    return [sources[label] for label in selected]
