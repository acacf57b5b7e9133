# SPDX-License-Identifier: Apache-2.0
"""Build, check, install and announce the response-policy zones.

For each configured zone: the triggers are built from the indicator index
(:mod:`.zone`); when they are what the installed file already holds, nothing
is written and the serial stays. Otherwise the zone is written to a temp file
beside the installed one with a new serial, checked with named-checkzone, and
only then renamed over it; a zone that fails the check is never installed
(the previous one stays and is what the DNS server keeps serving) and the
failure is logged and kept for ``status``. After an install the DNS server is
told (``rndc reload <zone>`` by default); it sends NOTIFY to its secondaries,
which fetch the change by IXFR.

The serial is the Unix time of the build, or one more than the previous
serial when that is not larger in serial-number arithmetic (RFC 1982): it
increases on every change, however many a day, and never goes back, also
when the clock does. The previous serial is the larger of the installed
file's and the one recorded in ``<state_dir>/rpz.json``.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..config.rpz import RpzZone
from ..errors import IndexFormatError
from ..fsutil import atomic_write_text
from ..iocs.index import IndicatorEntry, iter_index
from ..state import step_lock
from ..suppress.rules import Rule, RuleError
from ..suppress.store import config_rules, load_matcher
from .exempt import exemptions_for
from .names import printable
from .zone import ZoneContent, build_content

log = logging.getLogger(__name__)

STATE_FILE = "rpz.json"
SERIAL_MODULO = 2**32
_SOA = re.compile(r"^@ SOA \S+ \S+ (\d{1,10}) ", re.MULTILINE)
MAX_OUTPUT = 600
"""Characters of a command's output kept in the log and in status."""


@dataclass
class ZoneReport:
    """What one build did to one zone (kept in the state file, shown by ``status``)."""

    zone: str
    path: str
    outcome: str = "failed"
    """``installed``, ``unchanged`` or ``failed`` (the previous zone stays)."""
    serial: int | None = None
    """The serial being served (the previous one after a failure)."""
    names: int = 0
    networks: int = 0
    passthru: int = 0
    exempted: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    checked: bool = False
    """named-checkzone accepted it (False: not checked, the command is missing)."""
    reload: str | None = None
    """What telling the DNS server gave: ``ok``, ``not configured`` or the error."""
    reload_pending: bool = False
    """The last install was not announced: the next build tries again."""
    error: str | None = None
    built_at: str = ""


def serial_after(previous: int | None, now: float) -> int:
    """The serial for a change: ``now`` if it is after ``previous`` (RFC 1982), else previous+1."""
    candidate = int(now) % SERIAL_MODULO
    if previous is None:
        return candidate
    if candidate != previous and (candidate - previous) % SERIAL_MODULO < 2**31:
        return candidate
    return (previous + 1) % SERIAL_MODULO


def _later(a: Any, b: Any) -> int | None:
    """The later of two serials (RFC 1982); either may be missing or not a serial."""
    known = [s for s in (a, b) if isinstance(s, int) and 0 <= s < SERIAL_MODULO]
    if len(known) < 2:
        return known[0] if known else None
    first, second = known
    return second if 0 < (second - first) % SERIAL_MODULO < 2**31 else first


def serial_of(text: str | None) -> int | None:
    """The serial of a zone file this module wrote, None if it holds none."""
    found = _SOA.search(text or "")
    return int(found.group(1)) if found else None


def zone_path(config: Config, zone: RpzZone) -> Path:
    return config.rpz.zone_dir / f"{zone.name.rstrip('.')}.zone"


def state_path(config: Config) -> Path:
    return config.correlation.state_dir / STATE_FILE


def read_state(config: Config) -> dict[str, dict[str, Any]]:
    """Zone -> its last report (empty when absent or unreadable: then the files decide)."""
    try:
        data = json.loads(state_path(config).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning(
            "%s unreadable (%s): serials are taken from the zone files", state_path(config), exc
        )
        return {}
    zones = data.get("zones") if isinstance(data, dict) else None
    return (
        {k: v for k, v in zones.items() if isinstance(v, dict)} if isinstance(zones, dict) else {}
    )


def _rules(config: Config) -> list[Rule]:
    try:
        return list(load_matcher(config).rules)
    except RuleError as exc:
        log.error(  # noqa: TRY400 - the message says it all
            "suppression rules file not used for the RPZ zones, only the configuration's "
            "rules apply: %s",
            exc,
        )
        return config_rules(config)


def build_zones(
    config: Config, *, now: float | None = None, announce: bool = True
) -> list[ZoneReport]:
    """Build every configured zone; each report says what happened to it.

    ``announce``: run the reload command after an install. Raises BusyError
    when another build holds the lock.
    """
    when = time.time() if now is None else now
    with step_lock(config.correlation.state_dir, "rpz"):
        previous = read_state(config)
        reports: list[ZoneReport] = []
        try:
            entries: list[IndicatorEntry] | None = list(
                iter_index(config.correlation.ioc_index_file)
            )
            problem = None
        except FileNotFoundError:
            entries, problem = None, "no indicator index yet (run fetch-iocs first)"
        except IndexFormatError as exc:
            entries, problem = None, f"indicator index unusable: {exc}"
        rules = _rules(config) if entries is not None else []
        for zone in config.rpz.zones:
            before = previous.get(zone.name.rstrip("."), {})
            if entries is None:
                report = _failed(config, zone, before, str(problem), when)
            else:
                run = _Build(config, entries, rules, when, announce)
                report = _build_one(run, zone, before)
            reports.append(report)
        config.correlation.state_dir.mkdir(parents=True, exist_ok=True)
        state = {"version": 1, "zones": {r.zone: asdict(r) for r in reports}}
        atomic_write_text(state_path(config), json.dumps(state, indent=2) + "\n")
    return reports


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _failed(
    config: Config, zone: RpzZone, before: dict[str, Any], error: str, now: float
) -> ZoneReport:
    path = zone_path(config, zone)
    report = ZoneReport(zone.name.rstrip("."), str(path), error=error, built_at=_iso(now))
    report.serial = serial_of(_read(path))
    report.reload_pending = bool(before.get("reload_pending"))
    log.error("RPZ %s: not rebuilt, the previous zone stays: %s", report.zone, error)
    return report


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("RPZ: cannot read the installed %s (%s); it will be replaced", path, exc)
        return None


@dataclass(frozen=True)
class _Build:
    """What every zone of one build shares."""

    config: Config
    entries: list[IndicatorEntry]
    rules: list[Rule]
    now: float
    announce: bool


def _build_one(run: _Build, zone: RpzZone, before: dict[str, Any]) -> ZoneReport:
    config, now = run.config, run.now
    origin = zone.name.rstrip(".")
    path = zone_path(config, zone)
    exemptions = exemptions_for(
        zone.exemptions, run.rules, zone.institution, datetime.fromtimestamp(now, UTC)
    )
    content = build_content(origin, run.entries, exemptions)
    report = _report(origin, path, content, now)
    _log_refused(origin, content)
    installed = _read(path)
    old_serial = serial_of(installed)
    recorded = before.get("serial")
    ttl = config.rpz.ttl
    if (
        installed is not None
        and old_serial is not None
        and content.render(old_serial, ttl) == installed
    ):
        report.outcome, report.serial = "unchanged", old_serial
        report.checked = bool(before.get("checked", True))
        if before.get("reload_pending"):
            _announce(config, report, run.announce)
        log.info("RPZ %s: unchanged (serial %d)", origin, old_serial)
        return report
    last = _later(old_serial, recorded)
    serial = serial_after(last, now)
    try:
        report.checked = _install(config, origin, path, content.render(serial, ttl))
    except ZoneRejectedError as exc:
        report.outcome, report.error, report.serial = "failed", str(exc), old_serial
        report.reload_pending = bool(before.get("reload_pending"))
        log.error(  # noqa: TRY400 - the checker's output says why; no traceback
            "RPZ %s: the new zone failed its check and is not installed; the previous "
            "one (serial %s) stays: %s",
            origin,
            old_serial,
            exc,
        )
        return report
    report.outcome, report.serial = "installed", serial
    log.info(
        "RPZ %s: installed serial %d (%d names, %d addresses and networks, %d passthru, "
        "%d left out by exemptions or suppressions)%s",
        origin,
        serial,
        report.names,
        report.networks,
        report.passthru,
        sum(report.exempted.values()),
        "" if report.checked else ", NOT CHECKED",
    )
    report.reload_pending = True
    _announce(config, report, run.announce)
    return report


def _report(origin: str, path: Path, content: ZoneContent, now: float) -> ZoneReport:
    return ZoneReport(
        origin,
        str(path),
        names=len(content.names),
        networks=len(content.networks),
        passthru=len(content.passthru),
        exempted=dict(sorted(content.exempted.items())),
        refused=dict(sorted(content.refused.items())),
        built_at=_iso(now),
    )


def _log_refused(origin: str, content: ZoneContent) -> None:
    for reason, count in sorted(content.refused.items()):
        log.warning(
            "RPZ %s: %d indicator(s) cannot be zone triggers (%s), left out: %s",
            origin,
            count,
            reason,
            "; ".join(content.examples.get(reason, [])),
        )


class ZoneRejectedError(Exception):
    """named-checkzone refused the zone (the message holds its output)."""


def _install(config: Config, origin: str, path: Path, text: str) -> bool:
    """Write, check and rename the zone into place; True when it was checked."""
    checked: list[bool] = []
    atomic_write_text(
        path, text, 0o640, check=lambda tmp: checked.append(check_zone(config, origin, tmp))
    )
    return checked[0]


def check_zone(config: Config, origin: str, zone_file: Path) -> bool:
    """Check ``zone_file`` with named-checkzone; False when the command is missing.

    ZoneRejectedError holds the checker's output when it refuses the zone.
    """
    command = config.rpz.checkzone_command
    if not command.exists():
        log.warning(
            "RPZ %s: %s not found: the zone is installed without a check "
            "(install bind9-utils, or set rpz.checkzone_command)",
            origin,
            command,
        )
        return False
    ok, output = _run([str(command), origin, str(zone_file)], config.rpz.command_timeout)
    if not ok:
        raise ZoneRejectedError(f"{command.name}: {output}")
    return True


def _run(argv: list[str], timeout: int) -> tuple[bool, str]:
    """Run ``argv`` (no shell); (succeeded, its output cut and escaped)."""
    try:
        proc = subprocess.run(  # noqa: S603 - a configured absolute path, no shell
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return False, f"did not finish within {timeout} s"
    except OSError as exc:
        return False, f"cannot run {argv[0]}: {exc.strerror}"
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
    output = printable(" | ".join(line for line in output.splitlines() if line.strip()), MAX_OUTPUT)
    if proc.returncode != 0:
        return False, f"exit {proc.returncode}" + (f": {output}" if output else "")
    return True, output


def _announce(config: Config, report: ZoneReport, announce: bool) -> None:
    command = config.rpz.reload_command
    if not command:
        report.reload, report.reload_pending = "not configured", False
        return
    if not announce:
        report.reload = "not asked (--no-reload)"
        return
    ok, output = _run([*command, report.zone], config.rpz.command_timeout)
    if ok:
        report.reload, report.reload_pending = "ok", False
        return
    report.reload = output
    log.error(
        "RPZ %s: the DNS server was not told of serial %s (%s): it serves the previous "
        "zone until a reload; the next build tries again",
        report.zone,
        report.serial,
        output,
    )
