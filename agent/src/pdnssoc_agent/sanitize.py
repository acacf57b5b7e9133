# SPDX-License-Identifier: Apache-2.0
"""Text from outside, made safe to log: one printable line, bounded, without secrets.

* :func:`printable` escapes control characters (line breaks included, C1
  controls and Unicode line separators too) so that a remote answer cannot
  forge log lines, and cuts the text to a length.
* :func:`redact` replaces every secret the process has read (API keys, the
  SMTP password, webhook URLs: :func:`register_secret` is called by
  ``read_secret``) with ``***``, in the forms a secret takes inside error
  texts: as it is, JSON-escaped, as a Python ``repr`` shows it, URL-encoded
  and as :func:`printable` escapes it.
* :class:`LogSanitizer` is a logging filter doing both for every record that
  reaches the agent's log handler.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_secrets: set[str] = set()
_MIN_SECRET = 6
"""Shorter values are not hunted for in texts (they would match ordinary words)."""


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _SHORT.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def printable(text: str, limit: int = 500) -> str:
    """``text`` on one line, control characters escaped, at most ``limit`` characters."""
    text = _UNSAFE.sub(_escape, text)
    if len(text) > limit:
        return f"{text[: max(0, limit - 30)]}... ({len(text) - limit + 30} more characters)"
    return text


def is_printable(text: str) -> bool:
    """Whether :func:`printable` leaves ``text`` as it is (up to ``limit``, its length)."""
    return _UNSAFE.search(text) is None


def register_secret(value: str) -> None:
    """Remember ``value`` so that :func:`redact` removes it from any text."""
    if len(value) >= _MIN_SECRET:
        _secrets.add(value)


def _forms(secret: str) -> set[str]:
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        _UNSAFE.sub(_escape, secret),
    }
    # A secret read with a line break would show each line on its own.
    forms.update(line for line in secret.splitlines() if len(line) >= _MIN_SECRET)
    return {f for f in forms if f}


def redact(text: str, *secrets: str) -> str:
    """``text`` with every registered secret (and ``secrets``) replaced by ``***``."""
    wanted = _secrets.union(s for s in secrets if s and len(s) >= _MIN_SECRET)
    if not wanted:
        return text
    for form in sorted({f for s in wanted for f in _forms(s)}, key=len, reverse=True):
        if form in text:
            text = text.replace(form, "***")
    return text


class LogSanitizer(logging.Filter):
    """Redacts secrets in every record; makes other libraries' records one bounded line.

    The agent's own messages are left as written (they already quote remote
    text through :func:`printable`); a record from a library (PyMISP logs the
    body of a failed answer as it came) has its control characters escaped
    and is cut to ``limit`` characters.
    """

    def __init__(self, own_prefix: str = "pdnssoc_agent", limit: int = 1000) -> None:
        super().__init__()
        self.own_prefix = own_prefix
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logged as it is
            return True
        own = record.name == self.own_prefix or record.name.startswith(self.own_prefix + ".")
        cleaned = redact(message)
        if not own:
            cleaned = printable(cleaned, self.limit)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class SafeFormatter(logging.Formatter):
    """A formatter whose output (tracebacks included) never shows a registered secret."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
