# SPDX-License-Identifier: Apache-2.0
"""ClickHouse's HTTP interface, through the agent's deadline-bounded HTTP session.

The user and password travel in the ``X-ClickHouse-User`` and
``X-ClickHouse-Key`` headers, never in the URL (which servers and proxies
log). Errors name the node and ClickHouse's own message, never the password.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import requests

from ...errors import AgentError
from ...httpclient import session

if TYPE_CHECKING:
    from ...config import Config


class ClusterError(AgentError):
    """The cluster cannot be reached or refused a statement; the message says which."""


MAX_ERROR = 500
"""Characters of ClickHouse's error text kept in a message."""


class Client:
    """Statements over HTTP to one node (``url``)."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        database: str = "pdnssoc",
        timeout: float = 60.0,
        verify: bool | str = True,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.database = database
        self._headers = {"X-ClickHouse-User": user, "X-ClickHouse-Key": password}
        self._session = session(timeout)
        self._session.verify = verify
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: Config) -> Client:
        """The client for ``history.clickhouse`` (ValueError: the password cannot be read)."""
        from ...config.secrets import read_secret  # noqa: PLC0415

        ch = config.history.clickhouse
        password = read_secret("history.clickhouse.password_file", None, ch.password_file, None)
        verify: bool | str = ch.verify_ssl
        if ch.verify_ssl and ch.ca_file is not None:
            verify = str(Path(ch.ca_file))
        return cls(ch.url, ch.user, password, database=ch.database, timeout=ch.timeout,
                   verify=verify)  # fmt: skip

    def execute(
        self, sql: str, data: bytes | None = None, settings: Mapping[str, str] | None = None
    ) -> bytes:
        """Run ``sql`` (with ``data`` as the body of an INSERT); the answer's body."""
        params = dict(settings or {})  # statements name their database
        if data is None:
            body = sql.encode()
        else:
            params["query"] = sql
            body = data
        try:
            r = self._session.post(self.url, params=params, data=body, headers=self._headers,
                                   timeout=self.timeout)  # fmt: skip
        except requests.RequestException as exc:
            raise ClusterError(f"ClickHouse at {self.url}: {type(exc).__name__}: {exc}") from None
        if r.status_code != 200:
            text = r.text.strip()[:MAX_ERROR]
            raise ClusterError(f"ClickHouse at {self.url} (HTTP {r.status_code}): {text}")
        return r.content

    def rows(self, sql: str, settings: Mapping[str, str] | None = None) -> list[dict[str, object]]:
        """The result of a SELECT, one dict per row (64-bit integers as numbers)."""
        out = self.execute(
            sql + " FORMAT JSONEachRow",
            settings={"output_format_json_quote_64bit_integers": "0", **(settings or {})},
        )
        try:
            return [msgspec.json.decode(line) for line in out.splitlines() if line.strip()]
        except msgspec.DecodeError as exc:
            raise ClusterError(f"ClickHouse at {self.url}: unreadable answer ({exc})") from None

    def close(self) -> None:
        self._session.close()


def quote(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
