# SPDX-License-Identifier: Apache-2.0
"""``correlation``: where DNS data, indicators and alerts live (pdnssoc-cli keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from ._schema import Deprecated


@dataclass(frozen=True)
class Correlation:
    """Paths are relative to ``data_dir`` unless absolute."""

    live_input: Literal["query_log", "matches"] = "query_log"
    """What ``correlate`` reads without paths: ``query_log`` (every reply the
    collector logged: ``queries_file``, its rotated copies and the archive files
    rotated since the previous run), so that subdomains of an indicator and
    CNAMEs into one are found; or ``matches`` (``input_dir`` only: the
    collector's exact-name and IP keep filters, cheaper, but blind to
    subdomains and CNAMEs). A file that sets ``input_dir`` but neither this key
    nor ``queries_file`` (pdnssoc-cli's) gets ``matches``."""
    input_dir: Path = Path("matches")
    output_dir: Path = Path("alerts")
    archive_dir: Path = Path("archive")
    queries_file: Path = Path("queries.json")
    malicious_domains_file: Path = Path("misp/misp_domains.txt")
    malicious_ips_file: Path = Path("misp/misp_ips.txt")
    ioc_index_file: Path = Path("misp/iocs.json")
    state_dir: Path = Path("state")
    last_correlation_pointer_file: Path = Path("correlation.last")
    last_retro_pointer_file: Path = Path("retro.last")
    match_subdomains: bool = True
    match_cnames: bool = True
    dedup_window: timedelta = timedelta(hours=1)
    """Repeats of (sensor, client, query, indicator) within this window update one alert."""
    retro_lookback: timedelta = timedelta(days=30)
    max_line_bytes: int = field(
        default=65536, metadata={"min": 1024, "max": 64 * 1024 * 1024, "doc": "bytes"}
    )
    alerts_database: Deprecated | None = field(
        default=None,
        metadata={
            "doc": "ignored: repeats are merged by correlation.dedup_window and "
            "alerting.renotify_after"
        },
    )
    alerts_database_max_size: Deprecated | None = field(
        default=None,
        metadata={
            "doc": "ignored: repeats are merged by correlation.dedup_window and "
            "alerting.renotify_after"
        },
    )
