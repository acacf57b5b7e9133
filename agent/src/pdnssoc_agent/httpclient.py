# SPDX-License-Identifier: Apache-2.0
"""Outgoing connections with a total deadline.

A time-out in requests (and in smtplib) applies to each socket operation: a
server that sends one byte every half second never trips it, and would hold
a step (and the daemon, which runs steps one after another) for as long as it
likes. Every outgoing request of the agent goes through this module instead:

* :func:`deadline` starts a watchdog timer; when it fires, every socket
  registered with it is shut down, which ends whatever operation is blocked
  on it (connecting is bounded by its own time-out, name resolution by the
  resolver's);
* :class:`DeadlineAdapter` is a requests transport adapter that runs each
  request, the whole answer body included, under such a deadline and turns an
  expired one into :class:`DeadlineExceeded` (a ``requests.Timeout``);
* :func:`session` is a ``requests.Session`` with that adapter on http and https.

MISP (through PyMISP's session), webhooks and MISP sightings use the adapter;
SMTP uses :func:`deadline` around each exchange, with :func:`watch_socket`
for the connection smtplib opens.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = [
    "DeadlineAdapter",
    "DeadlineExceeded",
    "Watch",
    "deadline",
    "mount",
    "session",
    "watch_socket",
]

_local = threading.local()


class DeadlineExceeded(requests.exceptions.Timeout):
    """The whole exchange took longer than its deadline."""


class Watch:
    """One deadline: the sockets to shut down when it expires."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._closers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the deadline expires (at once if it already has)."""
        with self._lock:
            if not self.expired:
                self._closers.append(closer)
                return
        _quietly(closer)

    def add_socket(self, get: Callable[[], socket.socket | None]) -> None:
        """Shut down the socket ``get()`` returns at expiry (it may not exist yet now)."""
        self.add(lambda: _shutdown(get()))

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            closers, self._closers = self._closers, []
        for closer in closers:
            _quietly(closer)


def _quietly(closer: Callable[[], None]) -> None:
    with contextlib.suppress(OSError):
        closer()


def _shutdown(sock: socket.socket | None) -> None:
    if sock is not None:
        # socket.socket's own shutdown, also for a TLS socket: it ends a read
        # blocked in another thread without touching the TLS state under it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Watch]:
    """A watchdog for the code in the ``with`` block, in this thread.

    Sockets registered with the yielded :class:`Watch` (and every connection
    a :class:`DeadlineAdapter` opens or reuses in this thread meanwhile) are
    shut down once ``seconds`` have passed; ``watch.expired`` then tells the
    caller why its operation failed.
    """
    watch = Watch(seconds)
    timer = threading.Timer(seconds, watch.expire)
    timer.daemon = True
    previous = getattr(_local, "watch", None)
    _local.watch = watch
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
        _local.watch = previous


def watch_socket(sock: socket.socket) -> None:
    """Put ``sock`` under the deadline running in this thread, if any."""
    watch: Watch | None = getattr(_local, "watch", None)
    if watch is not None:
        watch.add_socket(lambda: sock)


def _register(conn: HTTPConnection) -> None:
    """Watch the connection's socket: the one it has at expiry, and the one it has now.

    The first covers a socket that connecting creates (the TLS handshake runs on
    it); the second a socket the connection lets go of while its answer is
    still being read (http.client drops ``sock`` once an answer says the
    connection will close, and the body is then read through the file object).
    """
    watch: Watch | None = getattr(_local, "watch", None)
    if watch is not None:
        watch.add_socket(lambda: conn.sock)
        sock = conn.sock
        if sock is not None:
            watch.add_socket(lambda: sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _register(self)
        super().connect()
        _register(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The same watch over TLS: connect() and request() come from the class above,
    whose super() calls reach HTTPSConnection's."""


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS: Mapping[str, Any] = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _per_operation(timeout: Any, seconds: float) -> float | tuple[float, float]:
    """The caller's time-out per socket operation, never longer than the deadline."""
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (min(connect or seconds, seconds), min(read or seconds, seconds))
    if isinstance(timeout, (int, float)):
        return min(float(timeout), seconds)
    return seconds


class DeadlineAdapter(HTTPAdapter):
    """A transport adapter that gives each request at most ``seconds`` in all.

    The answer's body is always read inside the deadline (``stream=True`` is
    not honoured: nothing in the agent streams).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.PoolManager):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager

    def send(  # noqa: PLR0917 (requests' signature)
        self,
        request: requests.PreparedRequest,
        stream: bool = False,  # the body is always read within the deadline
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        with deadline(self.seconds) as watch:
            try:
                response = super().send(
                    request,
                    stream=True,
                    timeout=_per_operation(timeout, self.seconds),
                    verify=verify,
                    cert=cert,
                    proxies=proxies,
                )
                _ = response.content  # the whole body, under the same deadline
            except (requests.RequestException, OSError):
                if watch.expired:
                    raise DeadlineExceeded(
                        f"no complete answer within {self.seconds:g} s", request=request
                    ) from None
                raise
        return response


def mount(target: requests.Session, seconds: float) -> requests.Session:
    """Give every http and https request of ``target`` a deadline of ``seconds``."""
    adapter = DeadlineAdapter(seconds)
    target.mount("http://", adapter)
    target.mount("https://", adapter)
    return target


def session(seconds: float) -> requests.Session:
    """A new session whose requests each take at most ``seconds`` in all."""
    return mount(requests.Session(), seconds)
