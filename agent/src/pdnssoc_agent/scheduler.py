# SPDX-License-Identifier: Apache-2.0
"""``daemonize``: run fetch-iocs, correlate, retro and alert on their intervals.

One long-lived process, meant for supervisord:

* logs go to stderr;
* SIGTERM (or SIGINT) lets the step in progress finish, then the process
  exits 0 (give supervisord a ``stopwaitsecs`` longer than the slowest live
  step); a retro in progress is asked to stop at its next chunk or file
  boundary, leaves a checkpoint, and the next start resumes it;
* SIGHUP reloads the configuration file; a file that does not validate is
  logged and the running configuration is kept;
* a failing step is logged and tried again at its next interval; the other
  steps go on;
* ``retro`` runs in a lane of its own: a thread that runs it in a child process
  (:mod:`.child`), so a retro that takes hours never holds back the live steps
  (fetch-iocs, correlate, alert), which go on at their intervals meanwhile;
  both lanes append to the alerts file under its lock, each with its own
  checkpoint, so every alert line is written once;
* every step takes its lock under ``correlation.state_dir``, so two agents on
  one data root never run the same step at once (the second records "busy");
* each step's last run, outcome, duration and counts (lines read, alerts
  written, per indicator source its state; :mod:`.stepcounts`) go to
  ``<state_dir>/steps.json`` (written atomically) with running totals, for
  ``status`` and the metrics (:mod:`.metrics`);
* with ``metrics.listen`` set, the metrics are served over HTTP from a thread
  of their own (:mod:`.metrics_http`), which only reads.

Steps are called as library functions, imported when first run.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from . import stopping
from .child import Outcome, run_in_child, stop_children
from .config import Config, ConfigError, Schedules, load_config
from .errors import STORAGE_ADVICE, AgentError, BusyError, ExitCode, StateError, storage_failure
from .fsutil import atomic_write_text, locked
from .sanitize import printable, redact
from .state import utcnow
from .stepcounts import counts_of
from .timefmt import format_rfc3339, parse_rfc3339

log = logging.getLogger(__name__)

STATE_FILE = "steps.json"
MAIN_LANE = "main"


@dataclass(frozen=True)
class Step:
    """One schedulable step."""

    name: str
    schedule_key: str
    """Attribute of ``schedules`` holding the interval."""
    target: str | Callable[[Config], Any]
    """``module:function`` imported when first run, or the function itself."""
    lane: str = MAIN_LANE
    """Steps of the main lane run one after another; another lane runs beside it
    (in a child process when ``target`` is a ``module:function``)."""

    def interval(self, schedules: Schedules) -> timedelta:
        return timedelta(minutes=getattr(schedules, self.schedule_key).interval)

    def function(self) -> Callable[[Config], Any]:
        if callable(self.target):
            return self.target
        module, _, name = self.target.partition(":")
        func = getattr(importlib.import_module(module), name)
        if not callable(func):
            raise TypeError(f"{self.target} is not callable")
        return func  # type: ignore[no-any-return]


STEPS: tuple[Step, ...] = (
    Step("fetch-iocs", "fetch_iocs", "pdnssoc_agent.iocs.fetch:fetch_iocs"),
    Step("correlate", "correlation", "pdnssoc_agent.correlate:run_correlate"),
    Step("retro", "retro", "pdnssoc_agent.correlate:run_retro", lane="retro"),
    Step("alert", "alerting", "pdnssoc_agent.alerts:run_alert"),
    Step("retention", "retention", "pdnssoc_agent.retention:run_retention"),
)
STEP_NAMES = tuple(s.name for s in STEPS)


def state_path(config: Config) -> Path:
    return config.correlation.state_dir / STATE_FILE


def read_steps(path: Path) -> dict[str, dict[str, Any]]:
    """The step records in ``path`` (empty when the file does not exist yet)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: unreadable step state: {exc}") from exc
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, dict):
        raise StateError(f"{path}: no 'steps' object")
    return {k: v for k, v in steps.items() if isinstance(v, dict)}


def record_step(path: Path, name: str, record: dict[str, Any]) -> None:
    """Merge one step's record into the state file (atomic, serialised between agents)."""
    with locked(path.with_name(path.name + ".lock")):
        try:
            steps = read_steps(path)
        except StateError as exc:
            log.warning("%s; starting it afresh", exc)
            steps = {}
        previous = steps.get(name, {})
        merged = {**previous, **record}
        if record.get("outcome") != "ok" and "last_success" in previous:
            merged["last_success"] = previous["last_success"]
        merged.pop("sources", None)
        merged["totals"] = _totals(previous.get("totals"), record)
        sources = _sources(previous.get("sources"), record)
        if sources:
            merged["sources"] = sources
        steps[name] = merged
        atomic_write_text(path, json.dumps({"version": 1, "steps": steps}, indent=2) + "\n")


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _totals(previous: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Running totals (runs per outcome, lines, alerts): the previous ones plus this run's."""
    old = _dict(previous)
    counts = _dict(record.get("counts"))
    totals: dict[str, Any] = {k: _number(old.get(k)) for k in ("lines", "alerts")}
    for key in totals:
        totals[key] += _number(counts.get(key))
    runs = {str(k): _number(v) for k, v in _dict(old.get("runs")).items()}
    outcome = record.get("outcome")
    if isinstance(outcome, str):
        runs[outcome] = runs.get(outcome, 0) + 1
    totals["runs"] = runs
    return totals


def _sources(previous: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Per indicator source: this run's state over the previous one; its last success kept."""
    merged: dict[str, Any] = {}
    if isinstance(previous, dict):
        merged = {str(k): v for k, v in previous.items() if isinstance(v, dict)}
    new = record.get("sources")
    if isinstance(new, dict):
        for label, entry in new.items():
            now = {**merged.get(label, {}), **entry}
            if entry.get("ok"):
                now["last_success"] = record.get("last_end")
            merged[label] = now
    return merged


def _outcome_of(result: Any) -> tuple[str, str | None]:
    """("ok", "stopped" or "failed", error) from a step's return value."""
    if getattr(result, "stopped", False):
        return "stopped", None
    code = getattr(result, "exit_code", ExitCode.OK)
    if int(code) == int(ExitCode.OK):
        return "ok", None
    detail = None
    failed = getattr(result, "failed", None)
    if isinstance(failed, dict) and failed:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(failed.items()))
    elif isinstance(failed, list) and failed:
        detail = "; ".join(str(getattr(f, "label", f)) for f in failed)
    return "failed", f"partial failure (exit {int(code)}){': ' + detail if detail else ''}"


def classify(name: str, func: Callable[[Config], Any], config: Config) -> Outcome:
    """Run a step function; ("ok", "failed" or "busy", error, counts)."""
    try:
        result = func(config)
    except BusyError as exc:
        return "busy", str(exc), {}
    except AgentError as exc:
        return "failed", str(exc), {}
    except Exception as exc:  # a failing step must not stop the others
        problem = storage_failure(exc)
        if problem is not None:
            return "failed", f"{problem}; {STORAGE_ADVICE}", {}
        log.exception("step %s crashed", name)
        return "failed", f"{type(exc).__name__}: {exc}", {}
    return (*_outcome_of(result), counts_of(result))


class Scheduler:
    """Runs steps when due; signals only set flags, the loop acts on them."""

    def __init__(
        self,
        config: Config,
        config_path: Path | None = None,
        steps: Sequence[Step] = STEPS,
        log_level: str | None = None,
        *,
        lanes: bool = True,
    ) -> None:
        self.config = config
        self.lanes = lanes
        """False: every step runs in the main lane, in order (``daemonize --once``)."""
        self.log_level = log_level
        """A ``--log-level`` given on the command line wins over the file, also after SIGHUP."""
        self.config_path = config_path
        self.steps = list(steps)
        self.next_run: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = False
        self.running: set[str] = set()
        """Steps in progress, in any lane."""
        self._lanes: dict[str, threading.Thread] = {}
        self._lane_outcomes: dict[str, str] = {}
        self._carrying = False
        """The history store's batch is carried between correlate runs (run_forever)."""
        stopping.clear()  # (a stop asked of an earlier scheduler in this process)

    # -- signals ---------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.request_stop(signal.Signals(signum).name)

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload = True
        self._wake.set()

    def request_stop(self, why: str = "stop requested") -> None:
        running = sorted(self.running.copy())  # (the retro lane's thread changes it)
        if running:
            log.info(
                "%s: letting step %s end%s, then exiting",
                why,
                ", ".join(running),
                " (retro stops at its next checkpoint; the next start resumes it)"
                if "retro" in running
                else "",
            )
        else:
            log.info("%s: exiting", why)
        self._stop.set()
        self._wake.set()
        stopping.request()  # a retro in this process stops at its next boundary
        stop_children()  # and so does one in the retro lane's child

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- configuration ---------------------------------------------------------

    def reload(self) -> bool:
        """Load the configuration file again; keep the running one if that fails for any reason.

        Either way one line is logged: what was wrong, or that it was reloaded.
        """
        self._reload = False
        if self.config_path is None:
            return False
        try:
            new = load_config(self.config_path)
            self._check_runnable(new)
        except ConfigError as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            log.error(  # noqa: TRY400 (one line, no traceback)
                "SIGHUP: %s: %d problem(s): %s; keeping the previous configuration",
                exc.source,
                len(exc.problems),
                printable(problems, 2000),
            )
            return False
        except Exception as exc:  # noqa: BLE001 - whatever it is, the daemon goes on
            log.error(  # noqa: TRY400 (one line, no traceback)
                "SIGHUP: %s cannot be used (%s: %s); keeping the previous configuration",
                self.config_path,
                type(exc).__name__,
                printable(str(exc), 300),
            )
            return False
        if self._carrying:  # the store's batch is committed under the configuration it was read by
            self._carry(new)
        self.config = new
        logging.getLogger().setLevel(self.log_level or new.logging_level)
        for warning in new.warnings:
            log.warning("%s: %s", self.config_path, warning)
        self.next_run.clear()  # intervals may have changed
        log.info("SIGHUP: configuration reloaded from %s", self.config_path)
        return True

    def _check_runnable(self, config: Config) -> None:
        """Raise if the scheduler could not work with ``config`` (checked before it is used)."""
        now = utcnow()
        for step in self.steps:
            _ = now + step.interval(config.schedules)  # OverflowError when too far
        logging.getLevelName(self.log_level or config.logging_level)

    # -- scheduling ------------------------------------------------------------

    def _next(self, step: Step, records: dict[str, dict[str, Any]], now: datetime) -> datetime:
        if step.name in self.next_run:
            return self.next_run[step.name]
        if records.get(step.name, {}).get("outcome") == "stopped":
            return now  # stopped part-way by the last stop: resume it at once
        last = records.get(step.name, {}).get("last_start")
        if isinstance(last, str):
            try:
                return parse_rfc3339(last) + step.interval(self.config.schedules)
            except ValueError:
                pass
        return now

    def due(self, now: datetime) -> list[Step]:
        try:
            records = read_steps(state_path(self.config))
        except StateError as exc:
            log.warning("%s", exc)
            records = {}
        return [s for s in self.steps if self._next(s, records, now) <= now]

    def _run(self, step: Step) -> Outcome:
        if self.lanes and step.lane != MAIN_LANE and isinstance(step.target, str):
            level = self.log_level or self.config.logging_level
            return run_in_child(step.name, step.target, self.config, level)
        return classify(step.name, step.function(), self.config)

    def run_step(self, step: Step, now: datetime | None = None) -> str:
        """Run one step now; record and return its outcome (ok, failed, busy or stopped)."""
        started = now or utcnow()
        t0 = time.monotonic()
        self.running.add(step.name)
        try:
            outcome, error, counts = self._run(step)
        finally:
            self.running.discard(step.name)
        duration = time.monotonic() - t0
        self.next_run[step.name] = started + step.interval(self.config.schedules)
        if error is not None:
            error = redact(error)  # steps.json is shown by status
        record: dict[str, Any] = {
            "last_start": format_rfc3339(started, seconds=True),
            "last_end": format_rfc3339(
                utcnow() if now is None else started + timedelta(seconds=duration), seconds=True
            ),
            "outcome": outcome,
            "duration_s": round(duration, 3),
            "error": error,
            "interval_min": int(step.interval(self.config.schedules).total_seconds() // 60),
            "pid": os.getpid(),
            "counts": {k: v for k, v in counts.items() if k != "sources"},
        }
        if "sources" in counts:
            record["sources"] = counts["sources"]
        if outcome == "ok":
            record["last_success"] = record["last_end"]
        try:
            record_step(state_path(self.config), step.name, record)
        except OSError as exc:
            log.error("cannot record step %s: %s", step.name, exc)  # noqa: TRY400
        if outcome == "ok":
            log.info("step %s: ok in %.1fs", step.name, duration)
        elif outcome == "stopped":
            log.info("step %s: stopped after %.1fs; its next run resumes it", step.name, duration)
        elif outcome == "busy":
            log.info("step %s: skipped, %s", step.name, error)
        else:
            log.error(
                "step %s: FAILED after %.1fs: %s; next try in %s",
                step.name,
                duration,
                error,
                step.interval(self.config.schedules),
            )
        return outcome

    def run_due(self, now: datetime | None = None, *, wait: bool = True) -> dict[str, str]:
        """Run every due step unless asked to stop; return their outcomes.

        Main-lane steps run here, in order. A step of another lane starts in
        that lane's thread unless the lane is still busy with its previous
        run; with ``wait`` its outcome is waited for and returned too,
        otherwise it comes back from a later :meth:`join_lanes`.
        """
        outcomes: dict[str, str] = {}
        for step in self.due(now or utcnow()):
            if self.stopping:
                break
            if self._reload:
                self.reload()
            if step.lane == MAIN_LANE or not self.lanes:
                outcomes[step.name] = self.run_step(step, now)
            else:
                self._start_lane(step, now)
        if wait:
            outcomes.update(self.join_lanes())
        return outcomes

    def _start_lane(self, step: Step, now: datetime | None) -> None:
        # Not due again while it runs (its end records the real next run).
        self.next_run[step.name] = (now or utcnow()) + step.interval(self.config.schedules)
        busy = self._lanes.get(step.lane)
        if busy is not None and busy.is_alive():
            return  # still running its previous run

        def lane() -> None:
            self._lane_outcomes[step.name] = self.run_step(step, now)
            self._wake.set()

        thread = threading.Thread(target=lane, name=f"lane-{step.lane}", daemon=True)
        self._lanes[step.lane] = thread
        thread.start()

    def join_lanes(self, timeout: float | None = None) -> dict[str, str]:
        """Wait for the steps running in other lanes; the outcomes not returned before."""
        for thread in list(self._lanes.values()):
            thread.join(timeout)
        done, self._lane_outcomes = self._lane_outcomes, {}
        return done

    def seconds_until_next(self, now: datetime) -> float:
        if not self.next_run:
            return 0.0
        soonest = min(self.next_run.get(s.name, now) for s in self.steps)
        return max(0.0, (soonest - now).total_seconds())

    def _carry(self, config: Config | None) -> None:
        """Commit the history store's batch carried between correlate runs, then carry
        the next ones as ``config`` says (None: no more; see ``correlate.history_feed``)."""
        from .correlate.history_feed import (  # noqa: PLC0415
            carry_between_runs,
            flush_carried,
            held_note,
        )

        flush_carried(self.config)
        if config is None:
            carry_between_runs(None, held_note(self.config))
        else:
            carry_between_runs(config.history.commit_every, held_note(config))

    def run_forever(self) -> int:
        names = ", ".join(f"{s.name} every {s.interval(self.config.schedules)}" for s in self.steps)
        log.info("daemonize: pid %d; %s", os.getpid(), names)
        self._carrying = True
        self._carry(self.config)
        try:
            self._loop()
        finally:
            self._carrying = False
            self._carry(None)
        log.info("daemonize: stopped")
        return int(ExitCode.OK)

    def _loop(self) -> None:
        while not self.stopping:
            if self._reload:
                self.reload()
            self.run_due(wait=False)
            self.join_lanes(timeout=0)
            if self._stop.is_set():  # (a signal may have come during the steps)
                break
            self._wake.clear()
            if self._reload:
                continue
            self._wake.wait(timeout=min(60.0, max(0.5, self.seconds_until_next(utcnow()))))
        if any(t.is_alive() for t in self._lanes.values()):
            log.info("daemonize: waiting for %s to finish", ", ".join(sorted(self.running.copy())))
        self.join_lanes()


def select_steps(names: Sequence[str] | None) -> list[Step]:
    """The named steps (all by default), in their fixed order."""
    if not names:
        return list(STEPS)
    unknown = sorted(set(names) - set(STEP_NAMES))
    if unknown:
        raise ValueError(f"unknown step(s): {', '.join(unknown)} (known: {', '.join(STEP_NAMES)})")
    return [s for s in STEPS if s.name in names]
