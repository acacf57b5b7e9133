# SPDX-License-Identifier: Apache-2.0
"""The web view's tests: a configuration with the view on, and a WSGI client without a socket."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

from pdnssoc_agent.config import Config, parse_config
from pdnssoc_agent.web.app import WebApp
from pdnssoc_agent.web.auth import USER_KEY
from pdnssoc_agent.web.csrf import Csrf

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


def make_config(tmp_path: Path, **web: Any) -> Config:
    settings = {
        "listen": "127.0.0.1:8443",
        "tls_cert": "/etc/pdnssoc/web.crt",
        "tls_key": "/etc/pdnssoc/web.key",
        "tls_client_ca": "/etc/pdnssoc/ca.crt",
        "analysts": ["alice"],
        **web,
    }
    cfg = parse_config({"data_dir": str(tmp_path), "web": settings})
    cfg.correlation.state_dir.mkdir(parents=True, exist_ok=True)
    return cfg


class Client:
    def __init__(self, config: Config) -> None:
        self.app = WebApp(lambda: config, csrf=Csrf(KEY), now=lambda: NOW)

    def request(
        self, path: str, *, user: str | None = "alice", method: str = "GET", form: Any = None
    ) -> tuple[int, dict[str, str], str]:
        environ: dict[str, Any] = {}
        setup_testing_defaults(environ)
        environ["REQUEST_METHOD"] = method
        environ["PATH_INFO"], _, environ["QUERY_STRING"] = path.partition("?")
        if user is not None:
            environ[USER_KEY] = user
        if form is not None:
            body = urlencode(form).encode()
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = io.BytesIO(body)
        got: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            got["status"], got["headers"] = int(status.split(maxsplit=1)[0]), dict(headers)

        body_out = b"".join(self.app(environ, start_response))
        return got["status"], got["headers"], body_out.decode()
