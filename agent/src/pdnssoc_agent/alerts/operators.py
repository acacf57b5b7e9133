# SPDX-License-Identifier: Apache-2.0
"""Notices to the operators (retention, silent sensors).

They go to the e-mail summary recipients (``summary_to``) and the chat
webhooks (Slack, Mattermost, Teams). The generic webhook carries alerts only
and institutions' contacts get nothing: the data root is the operators'.
"""

from __future__ import annotations

import logging

from ..config import Config
from ..errors import DeliveryError
from ..state import utcnow
from .email import EmailSink
from .render import Templates
from .webhooks import KINDS, WebhookSink

log = logging.getLogger(__name__)

CHAT_KINDS = tuple(k for k in KINDS if k != "webhook")


def notify_operators(config: Config, subject: str, text: str, *, what: str) -> dict[str, str]:
    """Send one message on every operator channel; channel -> "sent" or why not.

    ``what`` names the sender in the log (``retention``, ``sensors``).
    """
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
            log.error("%s: could not tell the operators on %s: %s", what, name, exc)  # noqa: TRY400
        finally:
            sink.close()
    if not sinks:
        log.warning("%s: no operator channel configured (alerting.email.summary_to, chat)", what)
    return out
