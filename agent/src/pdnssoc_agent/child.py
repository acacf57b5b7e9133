# SPDX-License-Identifier: Apache-2.0
"""Run one scheduled step in a process of its own and hand back its outcome.

``daemonize`` runs ``retro`` this way, so that hours of scanning the archive
take none of the daemon's interpreter (its lock, its CPU share) from live
``correlate`` and ``alert``. The child is started with ``spawn`` (a fresh
interpreter, never a fork of a threaded daemon); it gets the configuration
the daemon runs with, logs to stderr like the daemon, ignores SIGTERM,
SIGINT and SIGHUP (the daemon decides: a stop waits for the step to finish,
a reload applies to the next run) and sends back ``(outcome, error, counts)``.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from . import stopping
from .config import Config, Secret

log = logging.getLogger(__name__)

_children: set[multiprocessing.process.BaseProcess] = set()
_children_lock = threading.Lock()

Outcome = tuple[str, str | None, dict[str, Any]]
"""(outcome, error, counts): see :func:`.scheduler.classify`."""
Classify = Callable[[Callable[[Config], Any], Config], Outcome]


def _register_secrets(value: object) -> None:
    """Teach this process's redaction the configuration's secrets (as loading it does)."""
    from .sanitize import register_secret  # noqa: PLC0415

    if isinstance(value, Secret):
        register_secret(str(value))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _register_secrets(getattr(value, f.name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            _register_secrets(item)
    elif isinstance(value, dict):
        for item in value.values():
            _register_secrets(item)


def _main(name: str, target: str, config: Config, level: str, conn: Connection) -> None:
    """The child: run ``target`` (``module:function``) on ``config``; send its outcome."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stopping.request())
    from ._cli import configure_logging  # noqa: PLC0415 - the daemon's log format
    from .scheduler import Step, classify  # noqa: PLC0415

    configure_logging(level)
    _register_secrets(config)
    outcome = classify(name, Step(name, "retro", target).function(), config)
    conn.send(outcome)
    conn.close()


def run_in_child(name: str, target: str, config: Config, level: str) -> Outcome:
    """Run step ``name`` (``target``) in a spawned process; its outcome, or why it has none."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_main, args=(name, target, config, level, send), name=f"pdnssoc-agent {name}"
    )
    with _children_lock:
        proc.start()
        _children.add(proc)
    send.close()
    outcome: Outcome | None = None
    try:
        outcome = receive.recv()
    except EOFError:
        pass  # the child ended without an answer
    finally:
        receive.close()
        proc.join()
        with _children_lock:
            _children.discard(proc)
    if outcome is None:
        return "failed", f"{name} process ended without an outcome (exit code {proc.exitcode})", {}
    return outcome


def stop_children() -> None:
    """Ask every running step child to stop at its next boundary (SIGTERM)."""
    with _children_lock:
        running = [p for p in _children if p.is_alive()]
    for proc in running:
        proc.terminate()
