# SPDX-License-Identifier: Apache-2.0
"""``history``: the passive-DNS history store (``history import PATH...``)."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial
from pathlib import Path

from ..config import Config
from ..correlate.inputs import check_paths, discover
from ..errors import AgentError, ExitCode
from .retro import Progress

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    imp = sub.add_parser(
        "import",
        help="load query-log archives into the history store",
        description="Load go-dnscollector JSON logs (plain or gzip) and pdnssoc-cli's "
        "minified archives into the history store. A file is known by its content: "
        "importing it again, or a copy of it, adds nothing; what correlate has put in "
        "the store already is not added twice. Progress is shown on a terminal.",
    )
    imp.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH",
        help="files or directories (searched recursively; hidden names skipped); with "
        "history.engine: clickhouse, also embedded history stores' directories (the one "
        "holding MANIFEST.json), whose rows are moved into the cluster",
    )  # fmt: skip


def run(config: Config, args: argparse.Namespace) -> int:
    from ..history.backend import open_store  # noqa: PLC0415 - pyarrow only here
    from ..history.clickhouse.from_store import is_store  # noqa: PLC0415
    from ..history.importer import import_files  # noqa: PLC0415

    stores = [p for p in args.paths if p.is_dir() and is_store(p)]
    if stores:
        return _import_stores(config, stores, [p for p in args.paths if p not in stores])
    files = discover(check_paths(args.paths))
    try:
        store = open_store(config)
    except ValueError as exc:
        raise AgentError(str(exc)) from None
    result = import_files(
        store,
        files,
        progress=partial(Progress, stream=sys.stderr, label="history import"),
        max_line_bytes=config.correlation.max_line_bytes,
    )
    s = result.stats
    log.info(
        "history import: %d file(s) (%d held already), %s; %d repl(ies) added to %s",
        result.files,
        result.held,
        s.summary(),
        result.replies,
        store.name,
    )
    for example in s.examples:
        log.warning("history import: skipped %s", example)
    return int(ExitCode.OK)


def _import_stores(config: Config, stores: list[Path], others: list[Path]) -> int:
    """Embedded stores' directories, moved into the cluster (history/clickhouse/from_store.py)."""
    from ..history.clickhouse import Client  # noqa: PLC0415
    from ..history.clickhouse.from_store import import_store  # noqa: PLC0415

    if others:
        raise AgentError(
            "history import: give either history stores' directories or query-log files, "
            f"not both ({stores[0]} is a store, {others[0]} is not)"
        )
    if config.history.engine != "clickhouse":
        raise AgentError(
            f"history import: {stores[0]} is a history store; a store is imported into a "
            "ClickHouse cluster (history.engine: clickhouse), the embedded store is a "
            "directory to copy as it is"
        )
    try:
        client = Client.from_config(config)
    except ValueError as exc:
        raise AgentError(str(exc)) from None
    for root in stores:
        result = import_store(root, client)
        if result.held:
            log.info("history import: %s: the cluster holds this store already", root)
            continue
        log.info(
            "history import: %s: %d segment(s), %d row(s), %d repl(ies) of %d query-log "
            "file(s) added to clickhouse:%s%s",
            root, result.segments, result.rows, result.replies, result.files,
            client.url, client.database,
        )  # fmt: skip
    return int(ExitCode.OK)
