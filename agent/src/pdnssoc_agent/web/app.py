# SPDX-License-Identifier: Apache-2.0
"""The web view as a WSGI application: routing, authentication, forms, responses.

Server-rendered HTML from Jinja2 templates with autoescape on (every value from
an alert, a rule or a sensor is escaped; links are plain http(s) only), no
script. Every answer forbids framing, sniffing, caching and scripts
(Content-Security-Policy). Only ``POST /suppressions/add`` and
``/suppressions/remove`` change anything, through the same code as
``suppress add|remove`` (validation, lock, audit file, log), with a CSRF token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2

from ..alerts.render import safe_url, strip_controls
from ..config import Config
from ..state import utcnow
from ..suppress.rules import RuleError
from ..suppress.store import add_rule, remove_rule
from ..timefmt import parse_rfc3339
from . import pages
from .alerts import FilterError, parse_filters
from .auth import admit
from .csrf import Csrf
from .hunt import run_hunt

log = logging.getLogger(__name__)

MAX_FORM = 16 * 1024
"""Largest form body accepted (bytes)."""
RULE_FIELDS = ("indicator", "qname_suffix", "client", "sensor", "institution", "reason", "expires")
HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
     "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]  # fmt: skip
StartResponse = Callable[..., Any]


def _html_finalize(value: Any) -> Any:
    if value is None:
        return ""
    return strip_controls(value) if isinstance(value, str) else value


def _when(value: str) -> str:
    try:
        return parse_rfc3339(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, AttributeError):
        return str(value)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pdnssoc_agent", "templates"),
        autoescape=True,
        finalize=_html_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = lambda url: safe_url(str(url))
    env.filters["when"] = _when
    env.filters["q"] = lambda params: urlencode({k: v for k, v in params.items() if v})
    return env


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized"}
_REASONS.update({403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"})
_REASONS.update({413: "Content Too Large", 415: "Unsupported Media Type", 500: "Error"})


class WebApp:
    """The view over the configuration ``config_of()`` returns (read on every request)."""

    def __init__(
        self,
        config_of: Callable[[], Config],
        *,
        csrf: Csrf | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config_of = config_of
        self.csrf = csrf or Csrf()
        self.now = now
        self.env = environment()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self._respond(environ, start_response)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else body

    def _respond(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        config = self.config_of()
        verdict = admit(environ, config.web)
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if verdict.status != 200:
            who = f" to {verdict.user}" if verdict.user else ""
            log.info(
                "web: %s %s refused%s (%d): %s", method, path, who, verdict.status, verdict.reason
            )
            return self._page(start_response, verdict.status, "error", message=verdict.reason)
        user = str(verdict.user)
        try:
            if method == "POST":
                return self._post(config, user, path, environ, start_response)
            return self._get(config, user, environ, start_response)
        except HttpError as exc:
            return self._page(start_response, exc.status, "error", message=str(exc), user=user)
        except Exception:  # a broken file must not end the view; the log says what
            log.exception("web: %s %s failed", method, path)
            message = "could not build this page: see the agent's log"
            return self._page(start_response, 500, "error", message=message, user=user)

    # ------------------------------------------------------------------ GET

    def _get(
        self,
        config: Config,
        user: str,
        environ: dict[str, Any],
        sr: StartResponse,
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            raise HttpError(405, "only GET and POST")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        now = self.now()
        if path == "/":
            return self._redirect(sr, "/alerts")
        if path == "/alerts":
            try:
                filters = parse_filters(query)
            except FilterError as exc:
                raise HttpError(400, str(exc)) from None
            ctx = pages.alerts_page(config, filters, now)
            return self._page(sr, 200, "alerts", user=user, query=query, **ctx)
        if path == "/sensors":
            return self._page(sr, 200, "sensors", user=user, **pages.sensors_page(config, now))
        if path == "/indicators":
            ctx = pages.indicators_page(config, now)
            return self._page(sr, 200, "indicators", user=user, **ctx)
        if path == "/suppressions":
            return self._suppressions(sr, 200, config, user, form=query, done=_done(query))
        if path == "/hunt":
            try:
                answer = run_hunt(config, query)
            except FilterError as exc:
                raise HttpError(400, str(exc)) from None
            return self._page(sr, 200, "hunt", user=user, answer=answer)
        raise HttpError(404, f"no page {path}")

    def _suppressions(
        self,
        sr: StartResponse,
        status: int,
        config: Config,
        user: str,
        *,
        form: dict[str, str],
        done: str | None = None,
        error: str | None = None,
    ) -> Iterable[bytes]:
        ctx = pages.suppressions_page(config, self.now())
        return self._page(
            sr,
            status,
            "suppressions",
            user=user,
            form={k: form.get(k, "") for k in RULE_FIELDS},
            done=done,
            error=error,
            add_token=self.csrf.token(user, "add"),
            remove_token=self.csrf.token(user, "remove"),
            **ctx,
        )

    # ----------------------------------------------------------------- POST

    def _post(
        self, config: Config, user: str, path: str, environ: dict[str, Any], sr: StartResponse
    ) -> Iterable[bytes]:
        purpose = {"/suppressions/add": "add", "/suppressions/remove": "remove"}.get(path)
        if purpose is None:
            raise HttpError(405 if path in ("/alerts", "/sensors", "/indicators", "/hunt") else 404,
                            f"nothing to post to at {path}")  # fmt: skip
        form = _read_form(environ)
        if not self.csrf.check(form.get("csrf", ""), user, purpose):
            raise HttpError(
                403, "this form is out of date or was not sent from this view: reload the page"
            )
        now = self.now()
        who = f"{user} (web)"
        try:
            if purpose == "add":
                fields: dict[str, Any] = {k: form.get(k, "").strip() or None for k in RULE_FIELDS}
                fields["author"] = user
                rule = add_rule(config, fields, who=who, now=now)
                done = "added=" + quote(rule.id)
            else:
                rule = remove_rule(config, form.get("id", "").strip(), who=who, now=now)
                done = "removed=" + quote(rule.id)
        except RuleError as exc:
            return self._suppressions(sr, 400, config, user, form=form, error=str(exc))
        return self._redirect(sr, "/suppressions?" + done)

    # ------------------------------------------------------------ responses

    def _page(self, sr: StartResponse, status: int, name: str, **ctx: Any) -> Iterable[bytes]:
        ctx.setdefault("user", None)
        body = self.env.get_template(f"web_{name}.html.j2").render(**ctx).encode("utf-8")
        headers = [("Content-Type", "text/html; charset=utf-8"), *HEADERS]
        headers.append(("Content-Length", str(len(body))))
        sr(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]

    def _redirect(self, sr: StartResponse, location: str) -> Iterable[bytes]:
        sr("303 See Other", [("Location", location), ("Content-Length", "0"), *HEADERS])
        return [b""]


_RULE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _done(query: dict[str, str]) -> str | None:
    """What the last post did, from the redirect's query: only a rule id is taken from it."""
    for action in ("added", "removed"):
        rule_id = query.get(action, "")
        if _RULE_ID.fullmatch(rule_id):
            return f"rule {rule_id} {action}"
    return None


def _read_form(environ: dict[str, Any]) -> dict[str, str]:
    ctype = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise HttpError(415, "expected a form (application/x-www-form-urlencoded)")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, "Content-Length is not a number") from None
    if not 0 <= length <= MAX_FORM:
        raise HttpError(413, f"a form of at most {MAX_FORM} bytes")
    body = environ["wsgi.input"].read(length) if length else b""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "the form is not UTF-8") from None
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
