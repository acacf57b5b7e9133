# SPDX-License-Identifier: Apache-2.0
"""Templates and escaping.

Everything that comes from DNS data or an indicator source (query names, answers, client
addresses, sensor names, event titles, comments, tags) reaches a message
through a template, and every ``{{ value }}`` is escaped for its channel:

* HTML e-mail: control characters removed, then Jinja2 autoescape (``<``
  becomes ``&lt;``...);
* plain-text e-mail: control characters (C0 and C1, so U+0085 NEL too) and
  line breaks (also U+2028, U+2029) removed from values;
* Slack: ``&``, ``<``, ``>`` as entities (so ``<!channel>`` or ``<@U1>`` cannot
  be formed) and ``@`` followed by a zero-width space (no ``@here``);
* Mattermost: the same, plus Markdown punctuation backslash-escaped;
* Teams (Adaptive Card text): Markdown punctuation backslash-escaped, ``<``
  ``>`` ``&`` as entities, ``@`` neutralised.

Values built by the agent itself (links) are marked :class:`Safe` and passed
through; their text part is escaped when the link is built.

What a template sees is built here too: alerts grouped into incidents (one
sensor, one indicator: a storm of random subdomains is one row with a sample
of its names), strings cut to a readable length, and source details above the
channel's TLP ceiling withheld (:mod:`.tlp`).

Templates are looked up by name in ``alerting.templates_dir`` first, then in
the copies shipped inside the package (``pdnssoc_agent/templates``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import markupsafe

from ..alertfile import Alert, MispAttribute
from ..errors import DeliveryError
from ..timefmt import parse_rfc3339
from .tlp import Ceiling, marking

_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
"""C0 and C1 controls but tab and newline, line and paragraph separators, bidi controls."""
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
ZWSP = "\u200b"


class Safe(str):
    """Text already escaped for its channel (built by the agent, not from data)."""

    __slots__ = ()


def strip_controls(text: str) -> str:
    """Remove control, line-separator and bidi characters (keeps tab and newline)."""
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


def _html_finalize(value: Any) -> Any:
    """Controls out of every value; autoescape then escapes what is left."""
    if isinstance(value, markupsafe.Markup | jinja2.Undefined) or value is None:
        return "" if value is None else value
    return strip_controls(str(value)) if isinstance(value, str) else value


def _format_time(value: str) -> str:
    try:
        return parse_rfc3339(value).strftime("%Y-%m-%d %H:%M:%S UTC")
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
                finalize=_html_finalize,
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.filters["link"] = lambda url, text: (
                markupsafe.Markup('<a href="{}">{}</a>').format(good, strip_controls(str(text)))
                if (good := safe_url(str(url)))
                else strip_controls(str(text))
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


MAX_FIELD = 500
"""Longest text of one value in a message (a MISP comment, a query name); then "…"."""
EVENTS_SHOWN = 5
"""Source records (MISP attributes...) listed per row; the rest are counted."""
SAMPLE = 10
"""Query names and clients listed per incident; the rest are counted."""


def cut(text: str, limit: int = MAX_FIELD) -> str:
    """``text`` at most ``limit`` characters long, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


SOURCE_KINDS: dict[str, tuple[str, str]] = {
    "misp": ("MISP", "event"),
    "misp_feed": ("MISP feed", "event"),
    "threatfox": ("ThreatFox", "IOC"),
    "taxii": ("TAXII", "indicator"),
    "list": ("list", ""),
}
"""``source_type`` -> how a message names that kind of source, and one of its records."""


def source_title(m: MispAttribute) -> str:
    """How a message names where an indicator came from: ``abusech (ThreatFox) IOC 123``."""
    kind, noun = SOURCE_KINDS.get(m.source_type, (m.source_type, "record"))
    title = f"{cut(m.server, 100)} ({cut(kind, 40)})"
    return f"{title} {noun} {cut(m.event_id, 40)}" if noun and m.event_id else title


def event_view(m: MispAttribute, ceiling: Ceiling) -> dict[str, Any]:
    """One source record (a MISP attribute...) as a template sees it.

    Details above ``ceiling`` are withheld. ``source`` is the configured
    source's name, ``source_kind`` its kind (``MISP``, ``ThreatFox``...),
    ``title`` both with the record's id, ``url`` its page (empty for a list).
    """
    mark = marking(m, ceiling.unmarked)
    withheld = not ceiling.allows(mark)
    level = f"TLP:{mark.level.upper()}"
    label = level if mark.marked else f"{level} (no TLP tag)"
    return {
        "server": cut(m.server, 100),
        "source": cut(m.server, 100),
        "source_type": cut(m.source_type, 40),
        "source_kind": cut(SOURCE_KINDS.get(m.source_type, (m.source_type, ""))[0], 40),
        "title": source_title(m),
        "event_id": cut(m.event_id, 40),
        "url": m.event_url,
        "info": "" if withheld else cut(m.event_info),
        "org": "" if withheld or mark.chatham_house else cut(m.org, 100),
        "tags": [] if withheld else [cut(t, 100) for t in m.tags[:30]],
        "tlp": f"tlp:{mark.level}" if mark.marked else "",
        "tlp_label": label,
        "withheld": withheld,
        "comment": "" if withheld else cut(m.comment),
        "category": cut(m.category, 100),
    }


def alert_view(alert: Alert, ceiling: Ceiling | None = None) -> dict[str, Any]:
    """What a template sees of one alert (raw values: the environment escapes them)."""
    ceiling = ceiling or Ceiling()
    answers = [
        {
            "name": cut(a.name, 300),
            "type": cut(a.type, 20),
            "data": cut(a.data, 300),
            "ttl": cut(str(a.ttl), 20),
        }
        for a in alert.answers[: EVENTS_SHOWN * 2]
    ]
    events = [event_view(m, ceiling) for m in alert.misp[:EVENTS_SHOWN]]
    return {
        "id": alert.id,
        "revision": alert.revision,
        "kind": alert.kind,
        "retro": alert.kind == "retro",
        "sensor": cut(alert.sensor, 100),
        "client": cut(alert.client, 100),
        "query": cut(alert.query.name, 300),
        "qtype": cut(alert.query.type, 20),
        "rcode": cut(alert.query.rcode, 20),
        "how": cut(alert.match.how, 20),
        "indicator": cut(alert.match.indicator, 300),
        "matched": cut(alert.match.value, 300),
        "detected_at": alert.detected_at,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "count": alert.count,
        "answers": answers,
        "answers_more": len(alert.answers) - len(answers) + alert.answers_more,
        "events": events,
        "events_more": len(alert.misp) - len(events) + alert.misp_more,
        "withheld": sum(e["withheld"] for e in events),
    }


def group_incidents(alerts: Sequence[Alert]) -> list[list[Alert]]:
    """Alerts a person reads as one incident: same sensor and indicator, in order of arrival."""
    groups: dict[tuple[str, str], list[Alert]] = {}
    for alert in alerts:
        groups.setdefault((alert.sensor, alert.match.indicator), []).append(alert)
    return list(groups.values())


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def incident_view(group: Sequence[Alert], ceiling: Ceiling | None = None) -> dict[str, Any]:
    """One incident: the first alert's view plus what the group adds up to.

    ``size`` alerts; ``queries``/``clients`` a sample of the distinct query
    names and clients (``queries_total``, ``clients_total``, ``*_more``);
    ``count`` the DNS messages of all; ``first_seen``/``last_seen`` the span;
    ``kinds`` live and/or retro.
    """
    view = alert_view(group[0], ceiling)
    queries = _distinct(a.query.name for a in group)
    clients = _distinct(a.client for a in group)
    firsts = [a.first_seen or a.last_seen or a.detected_at for a in group]
    lasts = [a.last_seen or a.detected_at for a in group]
    view.update(
        size=len(group),
        queries=[cut(q, 300) for q in queries[:SAMPLE]],
        queries_total=len(queries),
        queries_more=max(0, len(queries) - SAMPLE),
        clients=[cut(c, 100) for c in clients[:SAMPLE]],
        clients_total=len(clients),
        clients_more=max(0, len(clients) - SAMPLE),
        count=sum(a.count for a in group),
        first_seen=min(firsts, key=parse_rfc3339),
        last_seen=max(lasts, key=parse_rfc3339),
        kinds=sorted({a.kind for a in group}),
    )
    return view


def common_context(
    alerts: Sequence[Alert],
    shown: int,
    now: datetime,
    *,
    ceiling: Ceiling | None = None,
    remaining: int = 0,
) -> dict[str, Any]:
    """Context shared by every template.

    ``incidents`` (at most ``shown``; ``incidents_more`` not shown) is what
    the packaged templates list; ``alerts`` (at most ``shown`` single alerts;
    ``more`` not shown) is kept for templates written before incidents.
    ``remaining``: alerts of this channel left for the next run by
    ``alerting.max_messages_per_run``. ``withheld``: MISP attributes listed
    whose details the channel's TLP ceiling (``tlp_ceiling``) holds back.
    """
    ceiling = ceiling or Ceiling()
    groups = group_incidents(alerts)
    incidents = [incident_view(g, ceiling) for g in groups[:shown]]
    return {
        "alerts": [alert_view(a, ceiling) for a in alerts[:shown]],
        "total": len(alerts),
        "more": max(0, len(alerts) - shown),
        "incidents": incidents,
        "incidents_total": len(groups),
        "incidents_more": max(0, len(groups) - shown),
        "remaining": remaining,
        "tlp_ceiling": ceiling.label,
        "withheld": sum(i["withheld"] for i in incidents),
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "sensors": sorted({a.sensor for a in alerts}),
        "source_names": _distinct(
            f"{e['source']} ({e['source_kind']})" for i in incidents for e in i["events"]
        ),
    }
