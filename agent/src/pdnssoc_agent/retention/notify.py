# SPDX-License-Identifier: Apache-2.0
"""Tell the operators: the e-mail summary recipients (``summary_to``) and the
chat webhooks (Slack, Mattermost, Teams). The generic webhook carries alerts
only and institutions' contacts get nothing: the data root is the operators'.
"""

from __future__ import annotations

import logging

from ..alerts.email import EmailSink
from ..alerts.render import Templates
from ..alerts.webhooks import KINDS, WebhookSink
from ..config import Config
from ..errors import DeliveryError
from ..state import utcnow

log = logging.getLogger(__name__)

CHAT_KINDS = tuple(k for k in KINDS if k != "webhook")


def notify_operators(config: Config, subject: str, text: str) -> dict[str, str]:
    """Send one message on every operator channel; channel -> "sent" or why not."""
    alerting, now = config.alerting, utcnow()
    templates = Templates(alerting.templates_dir)
    sinks: list[tuple[str, EmailSink | WebhookSink]] = []
    if alerting.email is not None and alerting.email.summary_to:
        sinks.append(("email-summary", EmailSink(alerting.email, templates, now)))
    for kind in CHAT_KINDS:
        hook = getattr(alerting, kind)
        if hook is not None:
            sinks.append((kind, WebhookSink(kind, hook, templates, now)))
    out: dict[str, str] = {}
    for name, sink in sinks:
        try:
            sink.notice(subject, text)
            out[name] = "sent"
        except DeliveryError as exc:
            out[name] = str(exc)
            log.error("retention: could not tell the operators on %s: %s", name, exc)  # noqa: TRY400
        finally:
            sink.close()
    if not sinks:
        log.warning("retention: no operator channel configured (alerting.email.summary_to, chat)")
    return out
