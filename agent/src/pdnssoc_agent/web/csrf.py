# SPDX-License-Identifier: Apache-2.0
"""Tokens for the suppression forms: a form posted from another site is refused.

A browser sends a client certificate (or the proxy's session cookie) with any
request to the view, also one a hostile page makes it send, so a change needs
more than the identity. Each form carries ``issued.mac``: the HMAC-SHA256, with
a key drawn when the view starts, of the analyst's name, the issue time and the
form's purpose. A token is good for :data:`MAX_AGE` seconds, for that analyst and
that form only; a restart of the view makes open forms ask for a reload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

MAX_AGE = 8 * 3600


class Csrf:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)

    def _mac(self, user: str, purpose: str, issued: int) -> str:
        msg = f"{user}\x00{purpose}\x00{issued}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def token(self, user: str, purpose: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._mac(user, purpose, issued)}"

    def check(self, token: str, user: str, purpose: str, now: float | None = None) -> bool:
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        age = (time.time() if now is None else now) - issued
        if not 0 <= age <= MAX_AGE:
            return False
        return hmac.compare_digest(mac, self._mac(user, purpose, issued))
