# SPDX-License-Identifier: Apache-2.0
"""MISP sightings: tell the community an indicator is live.

For every ``misp_servers[]`` entry with ``sightings.enabled``, each alert whose
indicator came from that server is reported with PyMISP's ``add_sighting``
(``POST /sightings/add`` by value), with the server's ``sightings.source`` and
the time of the DNS answer (the alert's ``last_seen``). One channel per
server: ``sightings:<server name>``. No client address, sensor or query name
leaves the agent: only the indicator value and the time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..config import MispServer, read_secret
from .model import Alert
from .sink import DeliveryError, Record, Sink

log = logging.getLogger(__name__)


class SightingsSink(Sink):
    """Sightings to one MISP server."""

    def __init__(self, server: MispServer) -> None:
        self.server = server
        self.channel = f"sightings:{server.label}"
        self._misp: Any = None

    def channels(self, alert: Alert) -> list[str]:
        if any(m.server == self.server.label for m in alert.misp):
            return [self.channel]
        return []

    def _connect(self) -> Any:
        if self._misp is not None:
            return self._misp
        from pymisp import PyMISP, PyMISPError  # noqa: PLC0415 - heavy import, only when used

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
            self._misp = PyMISP(
                server.base_url, key, ssl=verify, timeout=server.timeout, tool="pdnssoc-agent"
            )
        except PyMISPError as exc:
            reason = _clean(str(exc), key)
            raise DeliveryError(f"{self.channel}: cannot connect: {reason}") from None
        except Exception as exc:  # noqa: BLE001 - PyMISP raises anything requests raises
            raise DeliveryError(f"{self.channel}: cannot connect: {type(exc).__name__}") from None
        return self._misp

    def deliver(self, channel: str, alerts: Sequence[Alert], record: Record) -> None:
        misp = self._connect()
        source = self.server.sightings.source
        for alert in alerts:
            sighting = {
                "value": alert.indicator,
                "source": source,
                "timestamp": alert.seen_epoch(),
                "type": "0",
            }
            try:
                answer = misp.add_sighting(sighting)
            except Exception as exc:  # noqa: BLE001 - network and decoding errors alike
                raise DeliveryError(f"{channel}: {type(exc).__name__}") from None
            if not isinstance(answer, dict):
                raise DeliveryError(f"{channel}: unexpected answer {str(answer)[:100]!r}")
            errors = answer.get("errors")
            if errors is not None:
                status = errors[0] if isinstance(errors, list | tuple) and errors else None
                if status in (400, 404):
                    # The attribute is gone from MISP: nothing to sight, do not retry forever.
                    log.warning(
                        "%s: MISP has no attribute %r any more (HTTP %s): sighting dropped",
                        channel,
                        alert.indicator,
                        status,
                    )
                else:
                    raise DeliveryError(
                        f"{channel}: MISP refused the sighting: {_clean(str(errors), '')[:200]}"
                    )
            record([alert])


def _clean(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
