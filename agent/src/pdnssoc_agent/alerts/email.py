# SPDX-License-Identifier: Apache-2.0
"""E-mail over SMTP: one summary to the operators, one message per institution.

Channels: ``email-summary`` (all alerts, to ``summary_to``) and
``email:<sensor>`` for every sensor mapped in ``alerting.email.mappings``
(to that institution's contact). The two names cannot collide, whatever a
sensor is called (a sensor named ``summary`` gets ``email:summary``). An
alert from an unmapped sensor goes to the summary only, and a warning names
the sensor. One SMTP connection serves the
whole run; if it cannot be opened, every e-mail channel fails for this run.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from .. import httpclient
from ..alertfile import Alert
from ..config import Email, read_secret
from ..errors import DeliveryError
from ..sanitize import printable, redact
from .render import Templates, common_context, cut, one_line
from .sink import Record, Sink
from .tlp import Ceiling, level_of

log = logging.getLogger(__name__)

SUMMARY = "email-summary"
INSTITUTION_PREFIX = "email:"


def _recipients(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class _WatchedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose connection is put under the deadline running in this thread."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        httpclient.watch_socket(sock)
        return sock  # type: ignore[no-any-return]


class _WatchedSMTPSSL(smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL whose connection is put under the deadline running in this thread."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        httpclient.watch_socket(sock)
        return sock  # type: ignore[no-any-return]


class EmailSink(Sink):
    """Delivers alerts by SMTP (none, STARTTLS or implicit TLS; optional auth)."""

    def __init__(
        self, config: Email, templates: Templates, now: datetime, tlp_unmarked: str = "amber"
    ) -> None:
        self.config = config
        self.templates = templates
        self.now = now
        self.contacts = {m.client_id: _recipients(m.contact) for m in config.mappings}
        self.ceilings = {
            m.client_id: Ceiling(level_of(m.tlp_ceiling or config.tlp_ceiling), tlp_unmarked)
            for m in config.mappings
        }
        self.summary_ceiling = Ceiling(level_of(config.summary_tlp_ceiling), tlp_unmarked)
        self._smtp: smtplib.SMTP | None = None
        self._broken: str | None = None
        self._warned: set[str] = set()

    def channels(self, alert: Alert) -> list[str]:
        out: list[str] = []
        if self.config.summary_to:
            out.append(SUMMARY)
        if alert.sensor in self.contacts:
            out.append(f"email:{alert.sensor}")
        elif alert.sensor not in self._warned:
            self._warned.add(alert.sensor)
            log.warning(
                "alerting.email: no contact mapped for sensor %r: its alerts go to the "
                "summary only%s",
                one_line(alert.sensor),
                "" if self.config.summary_to else " (and summary_to is not set: to nobody)",
            )
        return out

    def deliver(self, channel: str, alerts: Sequence[Alert], record: Record) -> None:
        if not alerts:
            return
        if channel == SUMMARY:
            to = _recipients(self.config.summary_to)
            kind = "summary"
            unmapped = sorted({a.sensor for a in alerts if a.sensor not in self.contacts})
            subject = f"{self.config.subject} - summary: {len(alerts)} alert(s)"
            sensor = ""
            ceiling = self.summary_ceiling
        else:
            sensor = channel.removeprefix("email:")
            to = self.contacts.get(sensor, [])
            if not to:
                raise DeliveryError(f"{channel}: no contact mapped any more")
            kind = "institution"
            unmapped = []
            subject = f"{self.config.subject} - {sensor}: {len(alerts)} alert(s)"
            ceiling = self.ceilings[sensor]
        message = self._message(
            kind,
            alerts=alerts,
            to=to,
            subject=subject,
            sensor=sensor,
            unmapped=unmapped,
            ceiling=ceiling,
        )
        self._send(channel, message, to)
        record(alerts)

    def _message(
        self,
        kind: str,
        *,
        alerts: Sequence[Alert],
        to: list[str],
        subject: str,
        sensor: str,
        unmapped: list[str],
        ceiling: Ceiling,
    ) -> EmailMessage:
        cfg = self.config
        context = common_context(alerts, cfg.max_alerts_per_message, self.now, ceiling=ceiling)
        context.update(sensor=sensor, unmapped=unmapped)
        if kind == "summary":
            html_override, text_override = cfg.summary_template, cfg.summary_text_template
        else:
            html_override, text_override = cfg.template, cfg.text_template
        text = self.templates.render("text", f"email_{kind}.txt.j2", text_override, **context)
        html = self.templates.render("html", f"email_{kind}.html.j2", html_override, **context)
        msg = EmailMessage()
        msg["Subject"] = cut(one_line(subject), 250)
        msg["From"] = cfg.from_
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(self.now.timestamp(), usegmt=True)
        msg["Message-ID"] = make_msgid(domain=cfg.from_.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        return msg

    def notice(self, subject: str, text: str) -> None:
        """Send a plain-text message about the deployment itself to ``summary_to``."""
        to = _recipients(self.config.summary_to)
        if not to:
            raise DeliveryError(f"{SUMMARY}: summary_to is not set")
        cfg = self.config
        msg = EmailMessage()
        msg["Subject"] = cut(one_line(f"{cfg.subject} - {subject}"), 250)
        msg["From"] = cfg.from_
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(self.now.timestamp(), usegmt=True)
        msg["Message-ID"] = make_msgid(domain=cfg.from_.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        self._send(SUMMARY, msg, to)

    def _tls_context(self) -> ssl.SSLContext:
        ca = str(self.config.ca_file) if self.config.ca_file else None
        return ssl.create_default_context(cafile=ca)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        where = f"SMTP {cfg.server}:{cfg.port}"
        password = None
        if cfg.username:
            try:
                password = read_secret(
                    "alerting.email password", cfg.password, cfg.password_file, cfg.password_env
                )
            except ValueError as exc:
                raise DeliveryError(str(exc)) from None
        # smtplib's timeout is per socket operation: the whole exchange gets cfg.timeout.
        smtp: smtplib.SMTP | None = None
        with httpclient.deadline(cfg.timeout) as watch:
            try:
                if cfg.security == "tls":
                    smtp = _WatchedSMTPSSL(
                        cfg.server, cfg.port, timeout=cfg.timeout, context=self._tls_context()
                    )
                else:
                    smtp = _WatchedSMTP(cfg.server, cfg.port, timeout=cfg.timeout)
                smtp.ehlo()
                if cfg.security == "starttls":
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if cfg.username and password is not None:
                    smtp.login(cfg.username, password)
            except smtplib.SMTPAuthenticationError as exc:
                if smtp is not None:
                    smtp.close()
                raise DeliveryError(f"{where}: login refused ({exc.smtp_code})") from None
            except (OSError, smtplib.SMTPException) as exc:
                if smtp is not None:
                    smtp.close()
                if watch.expired:
                    raise DeliveryError(
                        f"{where}: timed out: no complete answer within {cfg.timeout:g} s"
                    ) from None
                raise DeliveryError(
                    f"{where}: {type(exc).__name__}: {printable(redact(str(exc)), 200)}"
                ) from None
        return smtp

    def _send(self, channel: str, message: EmailMessage, to: list[str]) -> None:
        if self._broken is not None:
            raise DeliveryError(self._broken)
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except DeliveryError as exc:
                self._broken = str(exc)
                raise
        smtp = self._smtp
        try:
            with httpclient.deadline(self.config.timeout) as watch:
                watch.add_socket(lambda: smtp.sock)
                try:
                    refused = smtp.send_message(message, to_addrs=to)
                except (OSError, smtplib.SMTPServerDisconnected):
                    if watch.expired:
                        raise TimeoutError(
                            f"timed out: no complete answer within {self.config.timeout:g} s"
                        ) from None
                    raise
        except smtplib.SMTPRecipientsRefused as exc:
            refused_all = sorted(exc.recipients)
            raise DeliveryError(f"{channel}: every recipient refused: {refused_all}") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{channel}: server answered {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            self._smtp = None
            self._broken = f"SMTP {self.config.server}:{self.config.port}: {type(exc).__name__}"
            reason = printable(redact(str(exc)), 200)
            raise DeliveryError(f"{channel}: {self._broken}: {reason}") from None
        if refused:
            log.warning("%s: some recipients refused: %s", channel, sorted(refused))

    def close(self) -> None:
        if self._smtp is not None:
            smtp = self._smtp
            try:
                with httpclient.deadline(self.config.timeout) as watch:
                    watch.add_socket(lambda: smtp.sock)
                    smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
            self._smtp = None
