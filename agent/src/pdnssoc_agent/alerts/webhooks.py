# SPDX-License-Identifier: Apache-2.0
"""Incoming webhooks: Slack, Mattermost, Microsoft Teams and a generic JSON receiver.

Chat messages are grouped per sensor, list one line per incident (sensor and
indicator) and are capped (``max_alerts_per_message`` incidents and
``max_message_chars`` characters, then "and N more"); the generic webhook
receives the alert objects themselves, ``max_alerts_per_message`` per POST.
At most ``alerting.max_messages_per_run`` messages go out per run; the alerts
of the others stay pending for the next run, and the messages sent say how
many wait. MISP details above the channel's TLP ceiling are withheld. A 2xx
answer means accepted. The URL is a secret: it never appears in a log line or
an error message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import requests

from .. import httpclient
from ..alertfile import Alert
from ..config import Webhook, read_secret
from ..errors import DeliveryError
from .render import Templates, common_context
from .sink import Record, Sink
from .tlp import Ceiling, level_of, withhold

log = logging.getLogger(__name__)

KINDS = ("slack", "mattermost", "teams", "webhook")


def _by_sensor(alerts: Sequence[Alert]) -> dict[str, list[Alert]]:
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.sensor, []).append(alert)
    return groups


class WebhookSink(Sink):
    """One webhook channel named after its kind."""

    def __init__(
        self,
        kind: str,
        config: Webhook,
        templates: Templates,
        now: datetime,
        *,
        max_messages: int = 50,
        tlp_unmarked: str = "amber",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown webhook kind {kind!r}")
        self.kind = kind
        self.config = config
        self.templates = templates
        self.now = now
        self.max_messages = max_messages
        default = "amber+strict" if kind == "webhook" else "green"
        self.ceiling = Ceiling(level_of(config.tlp_ceiling or default), tlp_unmarked)
        # Each POST has config.timeout in all, however slowly the answer trickles in.
        self._session = httpclient.session(config.timeout)
        self._session.trust_env = False  # no proxy from the environment for a secret URL

    def channels(self, alert: Alert) -> list[str]:
        return [self.kind]

    def deliver(self, channel: str, alerts: Sequence[Alert], record: Record) -> None:
        try:
            url = read_secret(
                f"alerting.{self.kind} webhook URL",
                self.config.webhook_url,
                self.config.webhook_url_file,
                self.config.webhook_url_env,
            )
        except ValueError as exc:
            raise DeliveryError(str(exc)) from None
        for batch, payload in self.payloads(alerts):
            self._post(url, payload)
            record(batch)

    def notice(self, subject: str, text: str) -> None:
        """Post a message about the deployment itself (chat channels only)."""
        if self.kind == "webhook":
            raise DeliveryError("webhook: carries alerts only, no notices")
        try:
            url = read_secret(
                f"alerting.{self.kind} webhook URL",
                self.config.webhook_url,
                self.config.webhook_url_file,
                self.config.webhook_url_env,
            )
        except ValueError as exc:
            raise DeliveryError(str(exc)) from None
        body = f"pDNSSOC: {subject}\n{text}"[: self.config.max_message_chars]
        self._post(url, self._chat_body("", [], body))

    # -- building messages --------------------------------------------------

    def plan(self, alerts: Sequence[Alert]) -> list[tuple[str, list[Alert]]]:
        """(sensor, alerts) of each message this run may send, at most ``max_messages``."""
        messages: list[tuple[str, list[Alert]]] = []
        per_post = self.config.max_alerts_per_message
        for sensor, group in _by_sensor(alerts).items():
            if self.kind == "webhook":
                chunks = [group[i : i + per_post] for i in range(0, len(group), per_post)]
                messages += [(sensor, chunk) for chunk in chunks]
            else:
                messages.append((sensor, group))
        return messages[: self.max_messages]

    def payloads(self, alerts: Sequence[Alert]) -> list[tuple[list[Alert], dict[str, Any]]]:
        """(alerts covered, JSON body) for each message to send this run."""
        planned = self.plan(alerts)
        remaining = len(alerts) - sum(len(group) for _sensor, group in planned)
        out: list[tuple[list[Alert], dict[str, Any]]] = []
        for sensor, group in planned:
            if self.kind == "webhook":
                out.append((group, self._generic_body(sensor, group, remaining)))
            else:
                text = self.render_text(sensor, group, remaining)
                out.append((group, self._chat_body(sensor, group, text)))
        return out

    def _generic_body(self, sensor: str, group: Sequence[Alert], remaining: int) -> dict[str, Any]:
        withheld = 0
        objects = []
        for alert in group:
            obj, n = withhold(alert, self.ceiling)
            objects.append(obj)
            withheld += n
        return {
            "source": "pdnssoc",
            "sensor": sensor,
            "count": len(group),
            "alerts": objects,
            "remaining": remaining,
            "tlp_ceiling": self.ceiling.label,
            "withheld_by_tlp": withheld,
        }

    def render_text(self, sensor: str, group: Sequence[Alert], remaining: int = 0) -> str:
        """The chat text for one sensor, cut to the configured size."""
        flavor = "slack" if self.kind == "slack" else self.kind
        shown = min(self.config.max_alerts_per_message, len(group))
        while True:
            context = common_context(
                group, shown, self.now, ceiling=self.ceiling, remaining=remaining
            )
            context.update(sensor=sensor, max_messages=self.max_messages)
            text = self.templates.render(flavor, "chat.j2", self.config.template, **context).strip()
            if len(text) <= self.config.max_message_chars or shown <= 1:
                break
            shown = max(1, shown * self.config.max_message_chars // len(text) - 1)
        if len(text) > self.config.max_message_chars:
            text = text[: self.config.max_message_chars - 1] + "…"
        return text

    def _chat_body(self, sensor: str, group: Sequence[Alert], text: str) -> dict[str, Any]:
        if self.kind in ("slack", "mattermost"):
            # No link_names / parse: mentions are not expanded from our text.
            return (
                {"text": text, "username": "pDNSSOC"}
                if self.kind == "mattermost"
                else {"text": text}
            )
        # Teams: an Adaptive Card in the message envelope of incoming webhooks
        # and Workflows; the text is Markdown escaped by the chat template.
        lines = text.split("\n")
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "text": line,
                                "wrap": True,
                                **({"weight": "Bolder"} if i == 0 else {}),
                            }
                            for i, line in enumerate(lines)
                            if line.strip()
                        ],
                    },
                }
            ],
        }

    # -- sending --------------------------------------------------------------

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        verify: bool | str = str(self.config.ca_file) if self.config.ca_file else True
        try:
            response = self._session.post(
                url,
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
                timeout=self.config.timeout,
                verify=verify,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise DeliveryError(
                f"{self.kind} webhook: no answer within {self.config.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            # The exception text contains the URL: name only its type.
            raise DeliveryError(f"{self.kind} webhook: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"{self.kind} webhook: HTTP {response.status_code}")

    def close(self) -> None:
        self._session.close()
