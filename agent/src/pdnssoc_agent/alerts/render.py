# SPDX-License-Identifier: Apache-2.0
"""Templates and escaping.

Everything that comes from DNS data or MISP (query names, answers, client
addresses, sensor names, event titles, comments, tags) reaches a message
through a template, and every ``{{ value }}`` is escaped for its channel:

* HTML e-mail: Jinja2 autoescape (``<`` becomes ``&lt;``...);
* plain-text e-mail: control characters and line breaks removed from values;
* Slack: ``&``, ``<``, ``>`` as entities (so ``<!channel>`` or ``<@U1>`` cannot
  be formed) and ``@`` followed by a zero-width space (no ``@here``);
* Mattermost: the same, plus Markdown punctuation backslash-escaped;
* Teams (Adaptive Card text): Markdown punctuation backslash-escaped, ``<``
  ``>`` ``&`` as entities, ``@`` neutralised.

Values built by the agent itself (links) are marked :class:`Safe` and passed
through; their text part is escaped when the link is built.

Templates are looked up by name in ``alerting.templates_dir`` first, then in
the copies shipped inside the package (``pdnssoc_agent/templates``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import markupsafe

from .model import Alert, parse_time
from .sink import DeliveryError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
ZWSP = "\u200b"


class Safe(str):
    """Text already escaped for its channel (built by the agent, not from data)."""

    __slots__ = ()


def strip_controls(text: str) -> str:
    """Remove control and bidi-override characters (keeps tab and newline)."""
    return _CONTROL.sub("", text)


def one_line(text: str) -> str:
    """Control characters and newlines removed: safe in a header or a list item."""
    return strip_controls(text).replace("\n", " ").replace("\t", " ")


def escape_slack(text: str) -> str:
    """Slack ``mrkdwn``: only ``&<>`` are special; ``@`` gets a zero-width space."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("@", "@" + ZWSP)


def escape_mattermost(text: str) -> str:
    """Mattermost Markdown, which also understands Slack's ``<!channel>`` forms."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    return text.replace("@", "@" + ZWSP)


def escape_teams(text: str) -> str:
    """Teams Markdown subset (Adaptive Card TextBlock)."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    return text.replace("@", "@" + ZWSP)


def safe_url(url: str) -> str | None:
    """``url`` when it is a plain http(s) URL without spaces or markup, else None."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(c in url for c in " <>|\"'`\\()[]") or _CONTROL.search(url):
        return None
    return url


def _slack_link(url: str, text: str) -> Safe:
    good = safe_url(url)
    return Safe(f"<{good}|{escape_slack(text)}>" if good else escape_slack(text))


def _markdown_link(escape: Callable[[str], str]) -> Callable[[str, str], Safe]:
    def link(url: str, text: str) -> Safe:
        good = safe_url(url)
        return Safe(f"[{escape(text)}]({good})" if good else escape(text))

    return link


Flavor = tuple[Callable[[str], str], Callable[[str, str], Safe]]

FLAVORS: dict[str, Flavor] = {
    "slack": (escape_slack, _slack_link),
    "mattermost": (escape_mattermost, _markdown_link(escape_mattermost)),
    "teams": (escape_teams, _markdown_link(escape_teams)),
    "text": (one_line, lambda url, text: Safe(f"{one_line(text)} <{one_line(url)}>")),
}


def _finalizer(escape: Callable[[str], str]) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        if isinstance(value, Safe | jinja2.Undefined):
            return value
        return escape("" if value is None else str(value))

    return finalize


def _format_time(value: str) -> str:
    try:
        return parse_time(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, AttributeError):
        return str(value)


class Templates:
    """Jinja2 environments for each kind of output."""

    def __init__(self, templates_dir: Path | None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
        loaders.append(jinja2.PackageLoader("pdnssoc_agent", "templates"))
        self._loader = jinja2.ChoiceLoader(loaders)
        self._envs: dict[str, jinja2.Environment] = {}

    def env(self, flavor: str) -> jinja2.Environment:
        """The environment for ``flavor``: html, text, slack, mattermost or teams."""
        if flavor in self._envs:
            return self._envs[flavor]
        if flavor == "html":
            env = jinja2.Environment(
                loader=self._loader,
                autoescape=True,
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.filters["link"] = lambda url, text: (
                markupsafe.Markup('<a href="{}">{}</a>').format(good, text)
                if (good := safe_url(str(url)))
                else text
            )
        else:
            escape, link = FLAVORS[flavor]
            env = jinja2.Environment(
                loader=self._loader,
                autoescape=False,  # noqa: S701 - finalize escapes for the channel
                finalize=_finalizer(escape),
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
            )
            env.filters["link"] = link
            env.filters["esc"] = lambda v: Safe(escape(str(v)))
        env.filters["when"] = _format_time
        self._envs[flavor] = env
        return env

    def render(self, flavor: str, name: str, override: Path | None = None, **context: Any) -> str:
        """Render template ``name`` (or the file ``override``) for ``flavor``.

        A missing or broken template raises DeliveryError naming it: the
        channel fails and keeps its alerts until the template is fixed.
        """
        env = self.env(flavor)
        label = str(override) if override is not None else name
        try:
            if override is not None:
                template = env.from_string(override.read_text(encoding="utf-8"))
            else:
                template = env.get_template(name)
            return template.render(**context)
        except OSError as exc:
            raise DeliveryError(f"template {label}: {exc.strerror or exc}") from None
        except jinja2.TemplateError as exc:
            where = f" line {exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            raise DeliveryError(f"template {label}{where}: {type(exc).__name__}: {exc}") from None


def alert_view(alert: Alert) -> dict[str, Any]:
    """What a template sees of one alert (raw values: the environment escapes them)."""
    answers = [
        {
            "name": str(a.get("name", "")),
            "type": str(a.get("type", "")),
            "data": str(a.get("data", "")),
            "ttl": a.get("ttl", ""),
        }
        for a in alert.answers
    ]
    events = [
        {
            "server": m.server,
            "event_id": m.event_id,
            "info": m.event_info,
            "url": m.event_url,
            "org": m.org,
            "tags": list(m.tags),
            "tlp": m.tlp or "",
            "comment": m.comment,
            "category": m.category,
        }
        for m in alert.misp
    ]
    return {
        "id": alert.id,
        "revision": alert.revision,
        "kind": alert.kind,
        "retro": alert.kind == "retro",
        "sensor": alert.sensor,
        "client": alert.client,
        "query": alert.query_name,
        "qtype": alert.query_type,
        "rcode": alert.rcode,
        "how": alert.match_how,
        "indicator": alert.indicator,
        "matched": alert.match_value,
        "detected_at": alert.detected_at,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "count": alert.count,
        "answers": answers,
        "events": events,
    }


def common_context(alerts: Sequence[Alert], shown: int, now: datetime) -> dict[str, Any]:
    """Context shared by every template: the alerts shown and how many are left out."""
    return {
        "alerts": [alert_view(a) for a in alerts[:shown]],
        "total": len(alerts),
        "more": max(0, len(alerts) - shown),
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "sensors": sorted({a.sensor for a in alerts}),
    }
