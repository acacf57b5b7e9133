# SPDX-License-Identifier: Apache-2.0
"""Silent sensors: correlate counts each sensor's replies in the pass it makes over
the query log (:mod:`.book`); the ``alert`` step tells the operators when one
stops sending and when it sends again (:mod:`.watch`); ``status`` lists them."""

from __future__ import annotations

from .book import BOOK_FILE, SensorBook, SensorSeen

__all__ = ["BOOK_FILE", "SensorBook", "SensorSeen"]
