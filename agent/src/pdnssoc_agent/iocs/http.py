# SPDX-License-Identifier: Apache-2.0
"""What every indicator source read over HTTP shares (feeds, lists, ThreatFox, TAXII).

:class:`HttpSource` is an :class:`~pdnssoc_agent.iocs.source.IndicatorSource`
that reads all its records once per run (:meth:`HttpSource.records`) and then
answers each :class:`~pdnssoc_agent.iocs.source.Query` from them, filtered as
MISP's restSearch would filter: by type, by time and, for a tag period, by
tag. Requests go through a session with a total deadline
(:mod:`pdnssoc_agent.httpclient`), answers larger than ``max_bytes`` (cut
off while they are read) and fetches with more than ``max_indicators``
records fail the source, a key follows redirects only on its own host, and every
failure is a :class:`~pdnssoc_agent.iocs.source.SourceError` whose message is
one line that names the source and never holds its key.
"""

from __future__ import annotations

import re
import warnings
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from ..config import Secret, SourceConfig
from ..httpclient import DeadlineAdapter, DeadlineExceeded
from ..sanitize import printable, redact
from .source import Attribute, IndicatorSource, Query, SourceError, Tag

PAGE = 5000
"""Records handed to the fetch path at a time."""
_MAX_REDIRECTS = 5


class TooLarge(requests.RequestException):
    """An answer grew past ``max_bytes`` while it was read."""


class _Bounded:
    """A urllib3 response whose decoded body stops at ``limit`` bytes."""

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        total = 0
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            total += len(chunk)
            if total > self._limit:
                self._raw.close()
                raise TooLarge(f"more than {self._limit} bytes read")
            yield chunk


class _BoundedAdapter(DeadlineAdapter):
    """The deadline adapter, refusing an answer longer than ``limit`` as it is read."""

    def __init__(self, seconds: float, limit: int) -> None:
        self.limit = limit
        super().__init__(seconds)

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.limit:
            resp.close()
            raise TooLarge(f"{length} bytes announced")
        response.raw = _Bounded(response.raw, self.limit)
        return response


class HttpSource(IndicatorSource):
    """One configured source read over HTTP(S); subclasses parse its format."""

    def __init__(self, config: SourceConfig, key: Secret | None = None) -> None:
        self.config = config
        self.label = config.label
        self.url = config.base_url
        self.periods = config.periods
        self._key = key
        self._session: requests.Session | None = None
        self._records: list[Attribute] | None = None
        longest = max([config.periods.generic.delta, *(t.delta for t in config.periods.tags)])
        self._look_back = longest - config.periods.generic.delta

    # -- errors ---------------------------------------------------------------

    def clean(self, text: str) -> str:
        return printable(redact(text, *([self._key] if self._key else [])), 300)

    def error(self, what: str) -> SourceError:
        """A failure of this source, ``what`` made one safe line."""
        return SourceError(self.label, self.url, self.clean(" ".join(what.split())))

    def _describe(self, exc: requests.RequestException) -> str:
        if isinstance(exc, TooLarge):
            return f"answer larger than max_bytes ({self.config.max_bytes}): {exc}"
        if isinstance(exc, requests.exceptions.SSLError):
            m = re.search(r"certificate verify failed[^')\"]*", str(exc))
            return f"TLS error: {m.group(0) if m else exc}"
        if isinstance(exc, DeadlineExceeded):
            return f"timed out after {self.config.timeout:g} s (no complete answer)"
        if isinstance(exc, requests.exceptions.Timeout):
            return f"timed out after {self.config.timeout:g} s"
        if isinstance(exc, requests.exceptions.ConnectionError):
            m = re.search(r"\[Errno -?\d+\] ([^'\")]*)", str(exc))
            return f"cannot connect: {m.group(1) if m else exc}"
        return f"{type(exc).__name__}: {exc}"

    # -- HTTP -----------------------------------------------------------------

    @property
    def http(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            adapter = _BoundedAdapter(self.config.timeout, self.config.max_bytes)
            self._session.mount("http://", adapter)
            self._session.mount("https://", adapter)
            if self._key is not None and self.config.username is not None:
                self._session.auth = (self.config.username, self._key)
            elif self._key is not None:
                self._session.headers[self.config.header] = self._key
        return self._session

    def request(
        self, url: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """GET ``url`` (POST when ``json`` is given); only a complete 200 answer returns."""
        verify: bool | str = self.config.verify_ssl
        if self.config.ca_file is not None:
            verify = str(self.config.ca_file)
        response = self._follow(url, json=json, headers=headers, verify=verify)
        if response.status_code != 200:
            raise self.error(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
        return response

    def _follow(
        self, url: str, *, json: Any, headers: dict[str, str] | None, verify: bool | str
    ) -> requests.Response:
        """Send, following redirects; with a key, only those that stay on the same host.

        requests drops ``Authorization`` on a redirect to another host but not
        other headers (``Auth-Key``, ``X-Api-Key``): a key is never sent along
        to a host it was not configured for.
        """
        method = "GET" if json is None else "POST"
        origin = urlsplit(url)
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                    response = self.http.request(
                        method,
                        url,
                        json=json,
                        headers=headers,
                        timeout=self.config.timeout,
                        verify=verify,
                        allow_redirects=self._key is None,
                    )
            except requests.RequestException as exc:
                raise self.error(f"{url}: {self._describe(exc)}") from None
            location = response.headers.get("Location")
            if not response.is_redirect or not location:
                return response
            target = urljoin(url, location)
            there = urlsplit(target)
            if there.scheme == "http" and origin.scheme == "https":
                raise self.error(f"{url}: redirected from https to http; not followed")
            upgrade = (
                origin.scheme == "http" and there.scheme == "https" and there.port in (None, 443)
            )
            same = there.scheme == origin.scheme and there.port == origin.port
            if there.hostname != origin.hostname or not (same or upgrade):
                raise self.error(
                    f"{url}: redirected to another host ({there.netloc}); not followed, "
                    "the key would go with it"
                )
            if response.status_code in (301, 302, 303) and method == "POST":
                method, json = "GET", None
            url = target
        raise self.error(f"{url}: more than {_MAX_REDIRECTS} redirects")

    # -- records --------------------------------------------------------------

    @abstractmethod
    def records(self, since: int) -> list[Attribute]:
        """Every record of the source changed at or after ``since`` (it may give more).

        Called once per fetch-iocs run; raises :class:`SourceError` when the
        source fails.
        """

    def marked(self, attr: Attribute) -> Attribute:
        """``attr`` with the source's default TLP when neither it nor its event has one."""
        tlp = self.config.tlp
        if tlp is None:
            return attr
        tags = [t.name for t in attr.Tag]
        if attr.Event is not None:
            tags += [t.name for t in attr.Event.Tag]
        if any(t.lower().startswith("tlp:") for t in tags):
            return attr
        attr.Tag = [*attr.Tag, Tag(name=f"tlp:{tlp}")]
        return attr

    def _all(self, query: Query) -> list[Attribute]:
        if query.tags is None:
            self._records = None  # the generic query starts a run: read afresh
        if self._records is None:
            # The generic query comes first; tag periods may look further back.
            since = query.since
            if query.tags is None:
                since -= int(self._look_back.total_seconds())
            records = self.records(since)
            if len(records) > self.config.max_indicators:
                raise self.error(
                    f"{len(records)} records, more than max_indicators "
                    f"({self.config.max_indicators})"
                )
            self._records = [self.marked(r) for r in records]
        return self._records

    def pages(self, query: Query) -> Iterator[list[Attribute]]:
        """The records of the wanted types, changed since ``query.since``, with its tags."""
        types = set(query.types)
        wanted = {t.lower() for t in query.tags} if query.tags else None
        page: list[Attribute] = []
        for attr in self._all(query):
            if attr.type not in types or attr.timestamp < query.since:
                continue
            if wanted is not None:
                names = {t.name.lower() for t in attr.Tag}
                if attr.Event is not None:
                    names |= {t.name.lower() for t in attr.Event.Tag}
                if not names & wanted:
                    continue
            page.append(attr)
            if len(page) >= PAGE:
                yield page
                page = []
        if page:
            yield page
