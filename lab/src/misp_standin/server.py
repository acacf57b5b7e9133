# SPDX-License-Identifier: Apache-2.0
"""The stand-in's HTTP(S) server: MISP routes, API-key auth, faults, admin endpoint."""

from __future__ import annotations

import contextlib
import gzip
import hmac
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from misp_standin.query import QueryError, is_numeric, parse_query
from misp_standin.store import Store, StoreError
from misp_standin.synthetic import SyntheticSet
from misp_standin.warninglists import Warninglists

log = logging.getLogger("misp_standin")

MISP_VERSION = "2.5.1"
FAULTS = ("down", "403", "500", "timeout", "garbage", "truncated")
AUTH_FAILED = (
    "Authentication failed. Please make sure you pass the API key of an API enabled user "
    "along in the Authorization header."
)
MAX_BODY = 32 * 1024 * 1024
MAX_RECORDED = 10_000  # requests kept in MispStandin.requests
_DESCRIBE_TYPES = {
    "Network activity": (
        "ip-src ip-dst ip-src|port ip-dst|port hostname domain domain|ip hostname|port "
        "url uri user-agent AS port mac-address snort comment text other"
    ),
    "Payload delivery": "md5 sha1 sha256 filename url ip-src ip-dst hostname domain comment",
    "External analysis": "url comment text link domain ip-src ip-dst hostname",
    "Other": "comment text other datetime counter boolean float",
}


@dataclass
class Fault:
    """An injected failure: ``kind`` for requests whose path contains ``path``."""

    kind: str
    path: str | None = None
    remaining: int | None = None

    def applies(self, path: str) -> bool:
        return self.path is None or self.path in path


@dataclass
class Response:
    """What a route answers; ``body`` may be an iterator of chunks (streamed)."""

    status: int
    body: bytes | Iterable[bytes]
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, headers or {})


def error_response(status: int, message: str, url: str) -> Response:
    """MISP's error body (``ApiError``: name, message, url)."""
    return json_response(status, {"name": message, "message": message, "url": url})


def describe_types() -> dict[str, Any]:
    """A small ``/attributes/describeTypes`` answer covering the network types."""
    mappings = {cat: types.split() for cat, types in _DESCRIBE_TYPES.items()}
    types = sorted({t for ts in mappings.values() for t in ts})
    no_ids = {"comment", "text", "other", "datetime", "counter", "boolean", "float", "link"}
    defaults = {
        t: {
            "default_category": next(c for c, ts in mappings.items() if t in ts),
            "to_ids": 0 if t in no_ids else 1,
        }
        for t in types
    }
    return {
        "result": {
            "sane_defaults": defaults,
            "types": types,
            "categories": list(mappings),
            "category_type_mappings": mappings,
        }
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, standin: MispStandin, address: tuple[str, int]) -> None:
        self.standin = standin
        self.tls_context: ssl.SSLContext | None = None
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the connection's own thread, never in the accept loop.
        if self.tls_context is not None:
            try:
                request.settimeout(30)
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.info("TLS handshake with %s failed: %s", client_address[0], exc)
                return
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError(f"request body of {length} bytes is over the {MAX_BODY} limit")
        raw = self.rfile.read(length) if length > 0 else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return raw

    def _dispatch(self, method: str) -> None:
        standin = self.server.standin
        path = self.path.split("?", 1)[0]
        try:
            raw = self._read_body()
        except (ValueError, OSError) as exc:
            self.close_connection = True  # the rest of the body is still on the wire
            self._send(error_response(400, f"Unreadable request body: {exc}", path))
            return
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
                if not path.startswith("/_standin/"):
                    standin.record_request(path, raw.decode("utf-8", "replace"))
                self._send(error_response(400, "The request body is not valid JSON.", path))
                return
        if path.startswith("/_standin/"):
            self._send(standin.admin(method, path, body, self.headers))
            return
        standin.record_request(path, body)
        fault = standin.take_fault(path)
        if fault == "down":
            self._drop_connection()
            return
        if fault == "timeout":
            standin.stopping.wait(standin.timeout_delay)
            self._drop_connection()
            return
        if fault == "403":
            self._send(error_response(403, AUTH_FAILED, path))
            return
        if fault == "500":
            self._send(error_response(500, "An Internal Error Has Occurred.", path))
            return
        if fault == "garbage":
            garbled = b'{"response": {"Attribute": [{"id": "1", "value": <html>Bad gateway'
            self._send(Response(200, garbled, {"Content-Type": "application/json"}))
            return
        key = self.headers.get("Authorization") or self.headers.get("X-MISP-AUTH") or ""
        org = standin.authenticate(key)
        if org is None:
            self._send(error_response(403, AUTH_FAILED, path))
            return
        try:
            response = standin.route(method, path, body, org)
        except Exception:
            log.exception("internal error answering %s %s", method, path)
            response = error_response(500, "An Internal Error Has Occurred.", path)
        self._send(response, truncate=fault == "truncated")

    def _drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, response: Response, *, truncate: bool = False) -> None:
        headers = {"Content-Type": "application/json; charset=UTF-8"} | response.headers
        if truncate:
            body = response.body if isinstance(response.body, bytes) else b"".join(response.body)
            self.send_response(response.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._drop_connection()
            return
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        if isinstance(response.body, bytes):
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError as exc:  # the client went away mid-stream
            log.info("client left during a streamed response: %s", exc)
            self.close_connection = True


class MispStandin:
    """A MISP REST API stand-in on a real socket (see docs/misp-standin.md).

    ``api_keys`` maps each accepted API key to the name of its user's
    organisation. ``events`` are MISP event dicts; ``warninglists_dir`` holds
    misp-warninglists ``list.json`` files applied when a search asks for
    ``enforceWarninglist``. ``tls`` is ``(certfile, keyfile)`` for HTTPS.
    ``admin_token`` enables the ``/_standin/`` admin endpoint; ``events_dir``
    is loaded at start and re-read when its files change.
    """

    def __init__(  # noqa: PLR0917 (the documented positional API)
        self,
        api_keys: dict[str, str],
        events: Iterable[dict[str, Any]] = (),
        warninglists_dir: Path | None = None,
        tls: tuple[str | Path, str | Path] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        admin_token: str | None = None,
        events_dir: Path | None = None,
        timeout_delay: float = 30.0,
    ) -> None:
        if not api_keys:
            raise ValueError("api_keys: at least one API key is needed")
        for key in api_keys:
            if len(key.strip()) < 8 or key != key.strip():
                raise ValueError("api_keys: each key must be 8+ characters without spaces around")
        warninglists = Warninglists.from_dir(Path(warninglists_dir)) if warninglists_dir else None
        self.store = Store(warninglists)
        self._keys = {k: self.store.org(org) for k, org in api_keys.items()}
        self._user_ids = {k: i + 1 for i, k in enumerate(api_keys)}
        self.tls = tls
        self.host, self.port = host, port
        self.admin_token = admin_token
        self.timeout_delay = timeout_delay
        self.requests: list[tuple[str, Any]] = []
        self.stopping = threading.Event()
        self._fault: Fault | None = None
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.events_dir = Path(events_dir) if events_dir else None
        self._dir_state: dict[str, tuple[float, int, str]] = {}
        self._dir_checked = 0.0
        self._dir_lock = threading.Lock()
        for event in events:
            self.store.add_event(event)
        if self.events_dir is not None:
            self.rescan_events_dir(force=True)

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> MispStandin:
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self.stopping.clear()
        server = _Server(self, (self.host, self.port))
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            server.tls_context = context
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        log.info("MISP stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            for connection in list(server.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MispStandin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = self.host if self.host not in ("0.0.0.0", "", "::") else "127.0.0.1"  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    # -- data ----------------------------------------------------------------------------

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Add (or replace, by id or uuid) an event; returns ``{"id", "uuid"}``."""
        record = self.store.add_event(event)
        return {"id": record.id, "uuid": record.uuid}

    def load_event_file(self, path: str | Path) -> dict[str, Any]:
        record = self.store.load_event_file(Path(path))
        return {"id": record.id, "uuid": record.uuid}

    def remove_event(self, ref: str | int) -> bool:
        return self.store.remove_event(str(ref))

    def add_synthetic(
        self, n_attributes: int, seed: int = 0, *, per_event: int = 500, max_age_days: float = 25
    ) -> None:
        """Serve ``n_attributes`` generated indicators besides the stored events."""
        store = self.store
        with store._lock:
            first_id = max((a.id for a in store.sorted_attributes()), default=0) + 1_000_000
            first_event = max((int(e) for e in store._events), default=0) + 100_000
            store.synthetic = SyntheticSet(
                store,
                n_attributes,
                seed=seed,
                first_id=first_id,
                first_event_id=first_event,
                per_event=per_event,
                max_age_days=max_age_days,
            )
            store.generation += 1

    @property
    def sightings(self) -> list[dict[str, Any]]:
        """Sightings recorded through ``/sightings/add`` (MISP fields plus ``value``)."""
        with self.store._lock:
            return [dict(s) for s in self.store.sightings]

    def record_request(self, path: str, body: Any) -> None:
        with self._lock:
            self.requests.append((path, body))
            if len(self.requests) > MAX_RECORDED:  # a long-running lab service
                del self.requests[: MAX_RECORDED // 2]

    # -- faults --------------------------------------------------------------------------

    def set_fault(
        self,
        fault: str | None,
        *,
        path: str | None = None,
        times: int | None = None,
        delay: float | None = None,
    ) -> None:
        """Fail requests from now on: ``down`` (connection closed without answer),
        ``403``, ``500``, ``timeout`` (no answer for ``timeout_delay`` seconds),
        ``garbage`` (invalid JSON), ``truncated`` (body cut short). ``None`` clears.
        ``path`` limits the fault to paths containing it; ``times`` to that many requests;
        ``delay`` sets ``timeout_delay``.
        """
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} or None, got {fault!r}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        if delay is not None:
            if delay < 0:
                raise ValueError(f"delay must not be negative, got {delay}")
            self.timeout_delay = float(delay)
        with self._lock:
            self._fault = Fault(fault, path, times) if fault else None

    def take_fault(self, path: str) -> str | None:
        with self._lock:
            fault = self._fault
            if fault is None or not fault.applies(path):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return fault.kind

    # -- auth ----------------------------------------------------------------------------

    def authenticate(self, key: str) -> dict[str, str] | None:
        key = key.strip()
        found = None
        for candidate, org in self._keys.items():
            if hmac.compare_digest(candidate.encode(), key.encode()):
                found = org
        return found

    def _user_id(self, org: dict[str, str]) -> int:
        for key, candidate in self._keys.items():
            if candidate is org:
                return self._user_ids[key]
        return 1

    # -- events directory ----------------------------------------------------------------

    def rescan_events_dir(self, *, force: bool = False) -> None:
        """Load new or changed ``*.json`` files of ``events_dir``; drop removed ones."""
        if self.events_dir is None:
            return
        now = time.monotonic()
        if not force and now - self._dir_checked < 1.0:
            return
        if not self._dir_lock.acquire(blocking=force):
            return  # another request is re-reading the directory
        try:
            self._dir_checked = now
            self._rescan(force=force)
        finally:
            self._dir_lock.release()

    def _rescan(self, *, force: bool) -> None:
        assert self.events_dir is not None  # noqa: S101 (checked by the caller)
        seen: dict[str, tuple[float, int, str]] = {}
        for path in sorted(self.events_dir.glob("*.json")):
            try:
                stat = path.stat()
            except OSError:
                continue
            key = str(path)
            old = self._dir_state.get(key)
            if old is not None and old[:2] == (stat.st_mtime, stat.st_size):
                seen[key] = old
                continue
            try:
                record = self.store.load_event_file(path)
            except StoreError as exc:
                if force:
                    raise
                log.warning("event file skipped: %s", exc)
                continue
            seen[key] = (stat.st_mtime, stat.st_size, record.id)
            log.info("loaded event %s from %s", record.id, path)
        for key, (_, _, event_id) in self._dir_state.items():
            if key not in seen and event_id not in {v[2] for v in seen.values()}:
                self.store.remove_event(event_id)
                log.info("event %s removed with %s", event_id, key)
        self._dir_state = seen

    # -- routes --------------------------------------------------------------------------

    def route(self, method: str, path: str, body: Any, org: dict[str, str]) -> Response:
        self.rescan_events_dir()
        parts = [p for p in path.strip("/").split("/") if p]
        named = {k: v for p in parts if ":" in p for k, v in [p.split(":", 1)]}
        parts = [p for p in parts if ":" not in p]
        if parts:
            parts[-1] = parts[-1].removesuffix(".json")
        routes: dict[tuple[str, ...], Callable[..., Response]] = {
            ("servers", "getVersion"): self._get_version,
            ("servers", "getPyMISPVersion"): self._get_pymisp_version,
            ("users", "view"): self._user_view,
            ("attributes", "describeTypes"): self._describe_types,
            ("attributes", "restSearch"): self._rest_search,
            ("sightings", "add"): self._add_sighting,
            ("events", "view"): self._event_view,
        }
        handler = routes.get(tuple(parts[:2]))
        if handler is None:
            return error_response(404, f"Could not find {path}", path)
        return handler(method=method, args=parts[2:], named=named, body=body, org=org, path=path)

    def _get_version(self, *, org: dict[str, str], **_: Any) -> Response:
        return json_response(
            200,
            {
                "version": MISP_VERSION,
                "pymisp_recommended_version": MISP_VERSION,
                "perm_sync": False,
                "perm_sighting": True,
                "perm_galaxy_editor": False,
                "perm_analyst_data": False,
                "uuid": "-",
                "request_encoding": ["gzip"],
                "filter_sightings": True,
            },
        )

    def _get_pymisp_version(self, **_: Any) -> Response:
        return json_response(200, {"version": MISP_VERSION})

    def _describe_types(self, **_: Any) -> Response:
        return json_response(200, describe_types())

    def _user_view(self, *, args: list[str], org: dict[str, str], path: str, **_: Any) -> Response:
        user_id = str(self._user_id(org))
        if args and args[0] not in ("me", user_id):
            return error_response(404, "Invalid user or not authorised.", path)
        role = {
            "id": "3",
            "name": "User",
            "perm_add": True,
            "perm_modify": True,
            "perm_modify_org": True,
            "perm_publish": False,
            "perm_sync": False,
            "perm_admin": False,
            "perm_audit": False,
            "perm_auth": True,
            "perm_site_admin": False,
            "perm_tagger": True,
            "perm_sighting": True,
            "default_role": True,
            "permission": "2",
            "permission_description": "read",
        }
        user = {
            "id": user_id,
            "password": "*****",
            "org_id": org["id"],
            "email": f"user{user_id}@{org['name'].lower().replace(' ', '-')}.invalid",
            "autoalert": False,
            "role_id": role["id"],
            "disabled": False,
            "totp": "*****",
        }
        return json_response(
            200, {"User": user, "Role": role, "UserSetting": [], "Organisation": org}
        )

    def _rest_search(self, *, method: str, body: Any, path: str, **_: Any) -> Response:
        if method != "POST":
            return error_response(
                400,
                "Restsearch queries using GET and no parameters are not allowed. If you have "
                "passed parameters via a JSON body, make sure you use POST requests.",
                path,
            )
        store = self.store
        try:
            query = parse_query(body, time.time(), store.tags.find)
            result = store.search(query)
        except QueryError as exc:
            return error_response(400, str(exc), path)
        if query.ignored:
            log.info("restSearch: accepted without effect here: %s", ", ".join(query.ignored))
        headers = {
            "X-Result-Count": str(result.result_count),
            "X-Export-Module-Used": "json",
            "X-Response-Format": "json",
            "X-Skipped-Elements-Count": str(result.skipped),
        }
        if query.ignored:
            headers["X-Standin-Ignored"] = ",".join(query.ignored)

        def stream() -> Iterator[bytes]:
            yield b'{"response":{"Attribute":['
            parts: list[str] = []
            size = 0
            first = True
            encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
            for attribute in result:
                fast = getattr(attribute, "restsearch_json", None)
                text = (fast and fast(query)) or encode(store.render_attribute(attribute, query))
                parts.append(text if first else "," + text)
                first = False
                size += len(text)
                if size >= 65536:
                    yield "".join(parts).encode()
                    parts, size = [], 0
            yield "".join(parts).encode() + b"]}}\n"

        return Response(200, stream(), headers)

    def _event_view(self, *, args: list[str], path: str, **_: Any) -> Response:
        event = self.store.event(args[0]) if args else None
        if event is None:
            return error_response(404, "Invalid event", path)
        return json_response(200, self.store.event_view(event))

    def _add_sighting(
        self, *, method: str, args: list[str], body: Any, org: dict[str, str], path: str, **_: Any
    ) -> Response:
        if method != "POST":
            return error_response(405, "This method is only accessible via POST requests.", path)
        data: dict[str, Any] = body if isinstance(body, dict) else {}
        for wrapper in ("request", "Sighting"):
            if isinstance(data.get(wrapper), dict):
                data = data[wrapper]
        ref = args[0] if args else (data.get("uuid") or data.get("id"))
        values = data.get("values") or ([data["value"]] if data.get("value") else [])
        if not isinstance(values, list):
            values = [values]
        sighting_type = str(data.get("type", "0"))
        timestamp = data.get("timestamp") or int(time.time())
        message: str | None = None
        if sighting_type not in ("0", "1", "2"):
            message = "Invalid type, please change it before you POST 1000000 sightings."
        elif not is_numeric(timestamp) or float(timestamp) < 0:
            message = f"Invalid timestamp {timestamp!r}."
        if message is None:
            saved = self.store.add_sightings(
                org,
                attribute_ref=str(ref) if ref else None,
                values=[str(v) for v in values],
                sighting_type=sighting_type,
                source=str(data.get("source") or "").strip(),
                timestamp=int(float(timestamp)),
                sighting_uuid=data.get("sighting_uuid"),
            )
            if isinstance(saved, dict):
                fields = [
                    "id",
                    "attribute_id",
                    "event_id",
                    "org_id",
                    "date_sighting",
                    "uuid",
                    "source",
                    "type",
                ]
                return json_response(200, {"Sighting": {k: saved[k] for k in fields}})
            message = saved
        # MISP answers a refused sighting with 200 and a message, not an error status.
        return json_response(200, {"message": "Could not add the Sighting. Reason: " + message})

    # -- admin endpoint ------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any, headers: Any) -> Response:
        """``/_standin/*``: fault injection and data changes for a running lab."""
        if not self.admin_token:
            return error_response(404, f"Could not find {path}", path)
        given = (headers.get("X-Standin-Admin") or "").strip().encode()
        if not hmac.compare_digest(given, self.admin_token.encode()):
            return error_response(403, "Admin token missing or wrong (X-Standin-Admin).", path)
        action = path.removeprefix("/_standin/").strip("/")
        data = body if isinstance(body, dict) else {}
        try:
            if action == "fault" and method == "POST":
                self.set_fault(
                    data.get("fault"),
                    path=data.get("path"),
                    times=data.get("times"),
                    delay=data.get("delay"),
                )
                return json_response(200, {"fault": data.get("fault")})
            if action == "events" and method == "POST":
                return json_response(200, {"Event": self.add_event(data)})
            if action == "sightings" and method == "GET":
                return json_response(200, self.sightings)
            if action == "requests" and method == "GET":
                with self._lock:
                    return json_response(200, [{"path": p, "body": b} for p, b in self.requests])
            if action == "synthetic" and method == "POST":
                self.add_synthetic(int(data.get("count", 0)), int(data.get("seed", 0)))
                return json_response(200, {"synthetic": int(data.get("count", 0))})
        except (ValueError, TypeError, StoreError) as exc:
            return error_response(400, str(exc), path)
        return error_response(404, f"No admin action {method} {path}", path)
