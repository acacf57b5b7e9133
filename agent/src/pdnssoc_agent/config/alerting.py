# SPDX-License-Identifier: Apache-2.0
"""``alerting``: delivery channels (pdnssoc-cli keys plus webhooks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from ._schema import Problem, Secret

TlpLevel = Literal["clear", "white", "green", "amber", "amber+strict", "red"]
"""A TLP level as MISP's ``tlp:`` tags name it (``white`` is the former ``clear``)."""


@dataclass(frozen=True)
class Mapping:
    """Security contact of the institution whose sensor reports as ``client_id``."""

    client_id: str
    contact: str | list[str]
    tlp_ceiling: TlpLevel | None = None
    """This institution's TLP ceiling (default: ``alerting.email.tlp_ceiling``)."""


@dataclass(frozen=True)
class Email:
    """E-mail over SMTP: a summary to the operators, one message per institution."""

    from_: str = field(metadata={"key": "from"})
    summary_to: str | list[str] | None = None
    subject: str = "[pDNSSOC] DNS alert"
    server: str = "localhost"
    port: int = field(default=25, metadata={"min": 1, "max": 65535})
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: Secret | None = None
    password_file: Path | None = None
    password_env: str | None = None
    timeout: float = field(default=30.0, metadata={"min": 1, "max": 3600, "doc": "seconds"})
    """Seconds one SMTP exchange may take in all (connecting and logging in, one message)."""
    ca_file: Path | None = None
    """CA bundle to verify the SMTP server's certificate (default: the system's)."""
    template: Path | None = None
    """HTML template of the per-institution message (pdnssoc-cli ``template``)."""
    text_template: Path | None = None
    """Plain-text template of the per-institution message."""
    summary_template: Path | None = None
    summary_text_template: Path | None = None
    max_alerts_per_message: int = field(default=500, metadata={"min": 1, "max": 100000})
    """Rows (incidents) listed in one e-mail; the rest are counted ("and N more")."""
    tlp_ceiling: TlpLevel = "amber"
    """Most a message to an institution carries: TLP:AMBER may go to a CSIRT's constituents."""
    summary_tlp_ceiling: TlpLevel = "amber+strict"
    """Most the summary to the operators carries: the CSIRT's own organisation."""
    mappings: list[Mapping] = field(default_factory=list)

    def _check(self, path: str, problems: list[Problem]) -> None:
        given = [k for k in ("password", "password_file", "password_env") if getattr(self, k)]
        if len(given) > 1:
            problems.append(Problem(f"{path}.{given[1]}", f"give only one of {', '.join(given)}"))
        if given and not self.username:
            problems.append(Problem(f"{path}.username", "required when a password is given"))
        if given and self.security == "none":
            problems.append(
                Problem(
                    f"{path}.security", "a password must not travel in clear: use starttls or tls"
                )
            )
        seen: set[str] = set()
        for i, m in enumerate(self.mappings):
            if m.client_id in seen:
                problems.append(
                    Problem(f"{path}.mappings[{i}].client_id", f"{m.client_id!r} is mapped twice")
                )
            seen.add(m.client_id)


@dataclass(frozen=True)
class Webhook:
    """An incoming-webhook channel (Slack, Mattermost, Teams or generic JSON)."""

    webhook_url: Secret | None = field(default=None, metadata={"aliases": ("slack_hook", "url")})
    webhook_url_file: Path | None = None
    webhook_url_env: str | None = None
    template: Path | None = None
    """Template of the message text (chat webhooks; ignored by the generic webhook)."""
    timeout: float = field(default=15.0, metadata={"min": 1, "max": 3600, "doc": "seconds"})
    """Seconds one POST may take in all, from connecting to the last byte of the answer."""
    max_alerts_per_message: int = field(default=20, metadata={"min": 1, "max": 10000})
    """Chat: alerts listed per message (the rest are counted); generic: alerts per POST."""
    max_message_chars: int = field(default=3500, metadata={"min": 200, "max": 1000000})
    """Chat: longest message text; longer lists are cut with "and N more"."""
    ca_file: Path | None = None
    """CA bundle to verify the webhook's certificate (default: the system's)."""
    tlp_ceiling: TlpLevel | None = None
    """Most this channel carries (default: ``green`` for chat, ``amber+strict`` for ``webhook``)."""

    def _check(self, path: str, problems: list[Problem]) -> None:
        given = [
            k for k in ("webhook_url", "webhook_url_file", "webhook_url_env") if getattr(self, k)
        ]
        if not given:
            problems.append(
                Problem(
                    f"{path}.webhook_url",
                    "one of webhook_url, webhook_url_file or webhook_url_env is required",
                )
            )
        elif len(given) > 1:
            problems.append(Problem(f"{path}.{given[1]}", f"give only one of {', '.join(given)}"))


@dataclass(frozen=True)
class Alerting:
    """Channels are enabled by being present."""

    last_alerting_pointer_file: Path = Path("alert.last")
    renotify_after: timedelta = timedelta(hours=24)
    """The same alert is not sent again on a channel within this time."""
    templates_dir: Path | None = None
    """Directory whose templates override the packaged ones, file by file."""
    retry_after: timedelta = timedelta(minutes=5)
    """First back-off of a failing channel; doubled after each failure."""
    retry_max: timedelta = timedelta(hours=6)
    """Longest back-off of a failing channel."""
    ledger_retention: timedelta = timedelta(days=30)
    """Delivery records are kept this long (at least ``renotify_after``)."""
    tlp_unmarked: TlpLevel = "amber"
    """The TLP of a MISP attribute and event without any ``tlp:`` tag."""
    max_messages_per_run: int = field(default=50, metadata={"min": 1, "max": 100000})
    """Messages (e-mails, chat messages, webhook POSTs) per channel and run; the rest wait."""
    max_sightings_per_run: int = field(default=200, metadata={"min": 1, "max": 100000})
    """Sighting requests per MISP server and run (one per indicator); the rest wait."""
    email: Email | None = None
    slack: Webhook | None = None
    mattermost: Webhook | None = None
    teams: Webhook | None = None
    webhook: Webhook | None = None
