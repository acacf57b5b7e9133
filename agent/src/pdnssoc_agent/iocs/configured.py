# SPDX-License-Identifier: Apache-2.0
"""The indicator sources the configuration names, built for one fetch-iocs run.

Each kind of source has its section (today ``misp_servers``); a new kind adds
its section's sources to :func:`configured` and :func:`sources_from_config`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..config import Config, MispServer, Secret, read_secret
from ..errors import FetchConfigError
from .misp import MispSource
from .source import IndicatorSource

log = logging.getLogger(__name__)


def configured(config: Config) -> dict[str, str]:
    """Every configured source's label and URL, in configuration order."""
    return {s.label: s.base_url for s in config.misp_servers}


def _select(config: Config, only: Sequence[str] | None) -> list[MispServer]:
    if not config.misp_servers:
        raise FetchConfigError("misp_servers is empty: there is no MISP to fetch indicators from")
    if not only:
        return list(config.misp_servers)
    labels = {s.label: s for s in config.misp_servers}
    unknown = [n for n in only if n not in labels]
    if unknown:
        raise FetchConfigError(
            f"--server {', '.join(unknown)}: no such server (configured: {', '.join(labels)})"
        )
    return [labels[n] for n in dict.fromkeys(only)]


def sources_from_config(config: Config, only: Sequence[str] | None = None) -> list[IndicatorSource]:
    """The configured sources (only those named in ``only``, when given), secrets read.

    Raises :class:`FetchConfigError` when a selected source's secret cannot
    be read or ``only`` names no configured source.
    """
    selected = _select(config, only)
    selected_labels = {s.label for s in selected}
    keys: dict[str, Secret] = {}
    for i, server in enumerate(config.misp_servers):
        if server.label not in selected_labels:
            continue
        try:
            keys[server.label] = read_secret(
                f"misp_servers[{i}] ({server.label}) api key",
                server.api_key,
                server.api_key_file,
                server.api_key_env,
            )
        except ValueError as exc:
            raise FetchConfigError(str(exc)) from None
    sources: list[IndicatorSource] = []
    for server in selected:
        if not server.verify_ssl:
            log.warning("%s: TLS certificate verification is disabled", server.label)
        if server.debug:
            log.info("%s: 'debug' is ignored (it would log the API key)", server.label)
        ca_file = server.ca_file
        sources.append(MispSource(server, keys[server.label], ca_file=ca_file))
    return sources
