# SPDX-License-Identifier: Apache-2.0
"""What a ``correlate`` and a ``retro`` run share: indicators in, figures out."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..config.correlation import Correlation
from ..dnslog import ReadStats
from ..errors import AgentError, IndexFormatError, NoInputError
from ..iocs.index import IndicatorEntry, lookup
from .indicators import Matcher, read_list
from .inputs import InputProblem

log = logging.getLogger(__name__)

HANDOVER_DONE = "handover_done"
"""State key: the step has completed a run here, so no predecessor's matches are held back."""


@dataclass
class RunResult:
    """What a correlate or retro run did."""

    stats: ReadStats = field(default_factory=ReadStats)
    alerts: int = 0
    """Alert lines written (new alerts and revisions)."""
    indicators: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    """Of ``seconds``, the time spent loading indicators and state."""
    stopped: bool = False
    """Asked to stop part-way: a checkpoint was left for the next run (retro)."""


@dataclass(frozen=True)
class Sources:
    """Where indicators come from."""

    domain_files: tuple[Path, ...]
    ip_files: tuple[Path, ...]
    index_file: Path | None


def sources_from(
    config: Config, domain_files: Iterable[Path] = (), ip_files: Iterable[Path] = ()
) -> Sources:
    """Command-line list files if any were given, else the configured ones."""
    corr = config.correlation
    d, i = tuple(domain_files), tuple(ip_files)
    if not d and not i:
        d, i = (corr.malicious_domains_file,), (corr.malicious_ips_file,)
    missing = [p for p in (*d, *i) if not p.is_file()]
    if len(missing) == len(d) + len(i):
        raise AgentError(
            "no indicator list found ("
            + ", ".join(str(p) for p in missing)
            + "); run fetch-iocs first or give --malicious-domains-file/--malicious-ips-file"
        )
    for p in missing:
        log.warning("indicator list %s not found; continuing without it", p)
    index = corr.ioc_index_file if corr.ioc_index_file.is_file() else None
    return Sources(tuple(p for p in d if p.is_file()), tuple(p for p in i if p.is_file()), index)


def load_matcher(corr: Correlation, src: Sources) -> Matcher:
    """A matcher holding every indicator of ``src``."""
    matcher = Matcher(subdomains=corr.match_subdomains, cnames=corr.match_cnames)
    for p in src.domain_files:
        matcher.add_domain_file(p)
    for p in src.ip_files:
        for v in read_list(p):
            matcher.add_network(v)
    if matcher.invalid:
        log.warning(
            "%d indicator value(s) are not a domain, IP or CIDR and were ignored, e.g. %r",
            len(matcher.invalid),
            matcher.invalid[0][:80],
        )
    return matcher


def context(index: Path | None, values: set[str]) -> dict[str, IndicatorEntry]:
    """MISP context of the matched ``values`` from the IOC index (none without one)."""
    if index is None or not values:
        return {}
    try:
        return lookup(index, values)
    except (OSError, IndexFormatError) as exc:
        log.warning("IOC index unusable, alerts carry no MISP context: %s", exc)
        return {}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while scanning.

    The scan allocates many short-lived objects and creates no reference
    cycles; generation sweeps over the large indicator sets and caches would
    otherwise cost more than the matching itself.
    """
    was = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        gc.unfreeze()


def log_stats(logger: logging.Logger, step: str, result: RunResult) -> None:
    """The run's summary line, and examples of what it skipped, on ``logger``."""
    s = result.stats
    rate = s.lines / result.seconds if result.seconds > 0 else 0.0
    logger.info(
        "%s: %s; %d alert line(s) written; %d indicator(s); %.1f s (%.0f lines/s)",
        step,
        s.summary(),
        result.alerts,
        result.indicators,
        result.seconds,
        rate,
    )
    if s.skipped or s.truncated_gzip:
        for example in s.examples:
            logger.warning("%s: skipped %s", step, example)


def warn(problems: list[InputProblem]) -> None:
    for p in problems:
        log.warning("%s", p)


def raise_no_input(problems: list[InputProblem]) -> None:
    fatal = [p for p in problems if p.no_input]
    if fatal:
        raise NoInputError("; ".join(str(p) for p in fatal))
