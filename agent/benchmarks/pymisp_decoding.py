# SPDX-License-Identifier: Apache-2.0
"""MISP read the plain PyMISP way, kept only for ``bench_fetch`` to measure against.

The agent decodes each restSearch page with msgspec straight into its records
(:class:`pdnssoc_agent.iocs.misp.MispSource`). This source lets PyMISP parse
each page into dicts first, as PyMISP normally does, and converts those; the
benchmark runs both on the same attributes and compares their time and the
lists they write.
"""

from __future__ import annotations

import warnings
from typing import Any

import msgspec
import requests
import urllib3
from pymisp import PyMISPError

from pdnssoc_agent.iocs.misp import MispSource, _misp_message
from pdnssoc_agent.iocs.source import Attribute


class PyMispDecodedSource(MispSource):
    """A :class:`MispSource` whose pages go through PyMISP's own JSON parsing."""

    def _search_page(self, **query: Any) -> tuple[list[Attribute], int | None]:
        misp = self.misp
        try:
            with self._session_lock, warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                result = misp.search(controller="attributes", pythonify=False, **query)
        except (PyMISPError, requests.RequestException) as exc:
            raise self._error(self._describe(exc)) from None
        if isinstance(result, dict) and "errors" in result:
            raise self._error(f"HTTP {_misp_message(str(result['errors']))}")
        if not isinstance(result, dict) or not isinstance(result.get("Attribute"), list):
            raise self._error("garbled response: no Attribute list")
        try:
            attrs = msgspec.convert(result["Attribute"], list[Attribute], strict=False)
        except msgspec.ValidationError as exc:
            raise self._error(f"garbled response: {exc}") from None
        return attrs, None
