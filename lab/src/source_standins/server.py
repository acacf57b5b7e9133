# SPDX-License-Identifier: Apache-2.0
"""One HTTP server standing in for every non-MISP indicator source.

``/files/<path>``
    files under ``root/files``, as a web server serves a MISP feed directory
    (``manifest.json``, ``<uuid>.json``, ``hashes.csv``) or a list file;
``POST /threatfox/api/v1/``
    ThreatFox's API: ``{"query": "get_iocs", "days": N}`` with an ``Auth-Key``
    header answers ``{"query_status": "ok", "data": [...]}`` with the IOCs of
    ``root/threatfox.json`` (IOC objects as ThreatFox answers them) first seen
    in the last N days, or ``no_result``; a wrong key gets HTTP 401 and
    ``unknown_auth_key``, a ``days`` outside 1 to 7 ``illegal_days``;
``GET /taxii2/`` and ``/taxii2/<root>/collections/<id>/objects/``
    TAXII 2.1: discovery, and the objects of ``root/taxii/<id>.json`` (a list
    of ``{"date_added": ..., "object": {...}}``) with ``added_after``,
    ``limit``, ``next`` and ``match[type]``, the ``X-TAXII-Date-Added-First``/
    ``-Last`` headers, and HTTP Basic authentication (any user name, one of the
    keys as password).

Every request needs one of ``keys`` (in ``Authorization`` as the whole value,
in ``Auth-Key``, or as a Basic password), except under ``/files/public/``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
API_ROOT = "api1"
MAX_BODY = 1024 * 1024


def _json(
    status: int, data: Any, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    return (
        status,
        json.dumps(data).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


class SourceStandins:
    """The stand-in server; a context manager that listens on ``host:port`` (0: any free)."""

    def __init__(
        self, root: Path, keys: Iterable[str], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.root = root
        self.keys = [k for k in keys if k]
        self.requests: list[tuple[str, str]] = []
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str = "") -> str:
        host = str(self._httpd.server_address[0])
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> SourceStandins:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- authentication -------------------------------------------------------

    def _key_ok(self, given: str | None) -> bool:
        return given is not None and any(hmac.compare_digest(given, k) for k in self.keys)

    def authorised(self, headers: Any) -> bool:
        auth = headers.get("Authorization")
        if auth and auth.startswith("Basic "):
            try:
                _, _, password = base64.b64decode(auth[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self._key_ok(password)
        return self._key_ok(auth) or self._key_ok(headers.get("Auth-Key"))

    # -- routes ---------------------------------------------------------------

    def get(
        self, path: str, query: dict[str, str], headers: Any
    ) -> tuple[int, bytes, dict[str, str]]:
        if path.startswith("/files/"):
            if not path.startswith("/files/public/") and not self.authorised(headers):
                return 401, b"unauthorised", {}
            return self._file(path.removeprefix("/files/"))
        if not self.authorised(headers):
            return _json(401, {"title": "unauthorised"})
        if path == "/taxii2/":
            return _json(
                200,
                {"title": "pDNSSOC lab TAXII", "api_roots": [self.url(f"/taxii2/{API_ROOT}/")]},
                {"Content-Type": TAXII_MEDIA_TYPE},
            )
        parts = path.strip("/").split("/")
        if (
            len(parts) == 5
            and parts[:3] == ["taxii2", API_ROOT, "collections"]
            and parts[4] == "objects"
        ):
            return self._objects(parts[3], query)
        return _json(404, {"title": "not found"})

    def post(self, path: str, body: bytes, headers: Any) -> tuple[int, bytes, dict[str, str]]:
        if path != "/threatfox/api/v1/":
            return _json(404, {"query_status": "unknown_endpoint"})
        if not self._key_ok(headers.get("Auth-Key")):
            return _json(401, {"query_status": "unknown_auth_key"})
        try:
            request = json.loads(body)
        except ValueError:
            return _json(400, {"query_status": "illegal_json"})
        if not isinstance(request, dict) or request.get("query") != "get_iocs":
            return _json(200, {"query_status": "unknown_query"})
        days = request.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 7:
            return _json(200, {"query_status": "illegal_days"})
        since = time.time() - days * 86400
        data = [
            ioc
            for ioc in json.loads((self.root / "threatfox.json").read_text())
            if _threatfox_time(ioc.get("first_seen")) >= since
        ]
        if not data:
            return _json(
                200, {"query_status": "no_result", "data": "Your search did not yield any results"}
            )
        return _json(200, {"query_status": "ok", "data": data})

    def _file(self, relative: str) -> tuple[int, bytes, dict[str, str]]:
        base = (self.root / "files").resolve()
        path = (base / unquote(relative)).resolve()
        if base not in path.parents or not path.is_file():
            return 404, b"not found", {}
        return 200, path.read_bytes(), {}

    def _objects(self, collection: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        source = self.root / "taxii" / f"{collection}.json"
        if "/" in collection or not source.is_file():
            return _json(404, {"title": "no such collection"}, {"Content-Type": TAXII_MEDIA_TYPE})
        rows = [
            (row["date_added"], row["object"])
            for row in json.loads(source.read_text())
            if row["date_added"] > query.get("added_after", "")
            and row["object"].get("type") == query.get("match[type]", row["object"].get("type"))
        ]
        rows.sort(key=lambda r: r[0])
        try:
            start = int(query.get("next", "0"))
            limit = max(1, int(query.get("limit", "100")))
        except ValueError:
            return _json(400, {"title": "bad next or limit"}, {"Content-Type": TAXII_MEDIA_TYPE})
        page = rows[start : start + limit]
        more = start + len(page) < len(rows)
        envelope: dict[str, Any] = {"more": more, "objects": [obj for _, obj in page]}
        if more:
            envelope["next"] = str(start + len(page))
        headers = {"Content-Type": TAXII_MEDIA_TYPE}
        if page:
            headers["X-TAXII-Date-Added-First"] = page[0][0]
            headers["X-TAXII-Date-Added-Last"] = page[-1][0]
        return _json(200, envelope, headers)


def _threatfox_time(text: Any) -> float:
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _handler(state: SourceStandins) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, answer: tuple[int, bytes, dict[str, str]]) -> None:
            status, body, headers = answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.requests.append(("GET", self.path))
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self._send(state.get(parts.path, query, self.headers))

        def do_POST(self) -> None:
            state.requests.append(("POST", self.path))
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(_json(413, {"query_status": "too_large"}))
                return
            self._send(state.post(urlsplit(self.path).path, self.rfile.read(length), self.headers))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
