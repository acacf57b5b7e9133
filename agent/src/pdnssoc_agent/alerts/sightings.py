# SPDX-License-Identifier: Apache-2.0
"""MISP sightings: tell the community an indicator is live.

For every ``misp_servers[]`` entry with ``sightings.enabled``, each indicator
of that server's alerts is reported with PyMISP's ``add_sighting``
(``POST /sightings/add`` by value, which MISP records on every attribute with
that value), with the server's ``sightings.source`` and the time of the DNS
answer. One sighting per indicator and run, whatever the number of alerts
behind it (a storm of random subdomains of one listed domain is one request),
dated by the latest ``last_seen`` among them; at most
``alerting.max_sightings_per_run`` requests a run, the other indicators wait
for the next run. One channel per server: ``sightings:<server name>``. No
client address, sensor or query name leaves the agent: only the indicator
value and the time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from ..alertfile import Alert, show
from ..config import MispServer, read_secret
from ..errors import DeliveryError
from ..httpclient import DeadlineExceeded
from ..sanitize import printable, redact
from .sink import Record, Sink

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6c1b9a52-3f0e-4d5c-9a57-70d1a1e5c0de")


class SightingsSink(Sink):
    """Sightings to one MISP server."""

    def __init__(self, server: MispServer, max_requests: int = 200) -> None:
        self.server = server
        self.max_requests = max_requests
        self.channel = f"sightings:{server.label}"
        self._misp: Any = None

    def channels(self, alert: Alert) -> list[str]:
        if any(m.server == self.server.label for m in alert.misp):
            return [self.channel]
        return []

    def _connect(self) -> Any:
        if self._misp is not None:
            return self._misp
        from pymisp import PyMISPError  # noqa: PLC0415 - heavy import, only when used

        from ..iocs.misp import open_pymisp  # noqa: PLC0415 - imports PyMISP

        server = self.server
        try:
            key = read_secret(
                f"misp_servers {server.label} api key",
                server.api_key,
                server.api_key_file,
                server.api_key_env,
            )
        except ValueError as exc:
            raise DeliveryError(str(exc)) from None
        verify: bool | str = server.verify_ssl
        if server.verify_ssl and server.ca_file is not None:
            verify = str(server.ca_file)
        try:
            self._misp = open_pymisp(server.base_url, key, ssl=verify, timeout=server.timeout)
        except PyMISPError as exc:
            reason = _clean(str(exc))
            raise DeliveryError(f"{self.channel}: cannot connect: {reason}") from None
        except Exception as exc:  # noqa: BLE001 - PyMISP raises anything requests raises
            raise DeliveryError(f"{self.channel}: cannot connect: {type(exc).__name__}") from None
        return self._misp

    def deliver(self, channel: str, alerts: Sequence[Alert], record: Record) -> None:
        misp = self._connect()
        source = self.server.sightings.source
        groups: dict[str, list[Alert]] = {}
        for alert in alerts:
            groups.setdefault(alert.match.indicator, []).append(alert)
        for indicator, group in list(groups.items())[: self.max_requests]:
            first = group[0]
            sighting = {
                "value": indicator,
                "source": source,
                "timestamp": max(a.seen_epoch() for a in group),
                "type": "0",
                # Stable for the oldest alert still owed (a sighting re-sent
                # after a crash is recognised by MISP instead of counted twice).
                "sighting_uuid": str(
                    uuid.uuid5(_NAMESPACE, f"{self.server.label}/{first.id}/{first.revision}")
                ),
            }
            try:
                answer = misp.add_sighting(sighting)
            except DeadlineExceeded:
                raise DeliveryError(
                    f"{channel}: no complete answer within {self.server.timeout:g} s"
                ) from None
            except Exception as exc:  # noqa: BLE001 - network and decoding errors alike
                raise DeliveryError(f"{channel}: {type(exc).__name__}") from None
            if not isinstance(answer, dict):
                raise DeliveryError(f"{channel}: unexpected answer {_clean(str(answer), 100)}")
            if "errors" in answer:
                raise DeliveryError(
                    f"{channel}: MISP refused the sighting: {_clean(str(answer['errors']))}"
                )
            if "Sighting" not in answer:
                # MISP refuses a sighting with HTTP 200 and a message.
                message = _clean(str(answer.get("message", answer)))
                if "No valid attributes" not in message:
                    raise DeliveryError(f"{channel}: MISP refused the sighting: {message}")
                # The attribute is gone from MISP: nothing to sight, do not retry forever.
                log.warning(
                    "%s: MISP has no attribute %s any more: sighting dropped (%s)",
                    channel,
                    show(indicator, 200),
                    message,
                )
            record(group)


def _clean(text: str, limit: int = 200) -> str:
    """Remote text as one printable line, without any secret the agent read."""
    return printable(redact(text), limit)
